#pragma once

// Business rules of the messages module: validation, idempotent sends, the inbox.

#include "core/auth/principal.hpp"
#include "modules/messages/repository.hpp"

#include <boost/json/object.hpp>

namespace inngest {
class Client;
class Metrics;
}  // namespace inngest

namespace riveredge::messages {

/// The Inngest event that asks for a message's deliveries to be made.
inline constexpr const char* kMessageRequested = "messages/message.requested";

class Service {
public:
    /// `outbound`: where SMTP relays and SMS endpoints may be; `smtp_ca_file`: an extra CA
    /// bundle trusted for every tenant's SMTP relay.
    /// `metrics`: where delivery results are counted (none when null).
    Service(Repository& repository,
            const core::OutboundPolicy& outbound,
            std::optional<std::string> smtp_ca_file = std::nullopt,
            inngest::Metrics* metrics = nullptr)
        : repository_(repository),
          outbound_(outbound),
          smtp_ca_file_(std::move(smtp_ca_file)),
          metrics_(metrics) {}

    /// Validates and records a message with one delivery per (channel, recipient) and, in the same
    /// transaction, its announcement through the outbox:
    /// `messages/message.requested`. The same idempotency key returns the first message. The
    /// sender is the user (user_sender). A send by `template_key` (with `locale` and
    /// `variables`) is held to the rules of a direct send: what the template renders as
    /// subject, body and HTML body is refused like a `subject`, `body` or `html` sent so.
    boost::json::object send(const core::Principal& sender, const boost::json::object& request);

    /// What another module calls to notify users in the app (approvals, schedules ...): the
    /// sender is the module's (system_sender), never a user's.
    std::int64_t notify(const core::TenantId& tenant,
                        const std::string& sender,
                        const std::vector<std::string>& user_ids,
                        const std::string& subject,
                        const std::string& body,
                        const std::optional<std::string>& idempotency_key);

    /// Delivers one delivery (called from the Inngest function, once per delivery step). On
    /// the `last_attempt` a failure the provider calls temporary is recorded as failed.
    boost::json::object deliver(const core::TenantId& tenant,
                                std::int64_t delivery_id,
                                const std::string& channel,
                                bool last_attempt);

    /// Stores the tenant's SMTP settings (the password is kept when omitted).
    void save_smtp_settings(const core::TenantId& tenant, const boost::json::object& request);
    /// The settings without the password: `has_password` says whether one is stored.
    boost::json::object smtp_settings(const core::TenantId& tenant);

    /// A new version of a template (the source must compile).
    boost::json::object add_template(const core::Principal& author,
                                     const boost::json::object& request);
    /// Renders a stored template (`key`, `channel`, `locale`) or inline `subject`/`body`.
    boost::json::object preview(const core::TenantId& tenant, const boost::json::object& request);

    /// Stores the tenant's SMS gateway settings (the API key is kept when omitted).
    void save_sms_settings(const core::TenantId& tenant, const boost::json::object& request);
    /// The SMS settings without the API key: `has_api_key` says whether one is stored.
    boost::json::object sms_settings(const core::TenantId& tenant);

    Repository& repository() noexcept { return repository_; }

private:
    boost::json::object deliver_on_channel(const core::TenantId& tenant,
                                           std::int64_t delivery_id,
                                           const std::string& channel,
                                           bool last_attempt);
    boost::json::object deliver_sms(const core::TenantId& tenant,
                                    std::int64_t delivery_id,
                                    bool last_attempt);
    /// The latest version of a stored template rendered over `variables`: {subject, body,
    /// html_body, version}; 404 when there is none, 422 naming `template` when it cannot render.
    boost::json::object render_stored(const core::TenantId& tenant,
                                      const std::string& key,
                                      const std::string& channel,
                                      const std::string& locale,
                                      const boost::json::object& variables);
    /// Template sources rendered over `variables` (an email body with HTML escapes its values):
    /// {subject, body, html_body, version}; 422 naming `template` when one cannot render.
    static boost::json::object render(const std::string& subject_source,
                                      const std::string& body_source,
                                      const std::optional<std::string>& html_source,
                                      const std::string& channel,
                                      const boost::json::object& variables,
                                      const boost::json::value& version);
    std::int64_t record(const core::TenantId& tenant,
                        const std::string& sender,
                        const MessageContent& content,
                        const std::optional<std::string>& idempotency_key,
                        const std::vector<NewDelivery>& deliveries,
                        bool& created);

    Repository& repository_;
    const core::OutboundPolicy& outbound_;
    std::optional<std::string> smtp_ca_file_;
    inngest::Metrics* metrics_;
};

}  // namespace riveredge::messages
