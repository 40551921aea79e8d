#pragma once

// All SQL of the messages module. Every method takes the tenant first and runs inside a
// transaction that sets it, so row-level security applies too.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/outbox/outbox.hpp"
#include "modules/messages/channels/sms_channel.hpp"
#include "modules/messages/channels/smtp_channel.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::messages {

/// PostgreSQL NOTIFY channel announcing new inbox items by id: {"tenant_id","item_id"}.
inline constexpr const char* kInboxChannel = "riveredge_inbox";

/// An inbox item as pushed to its user's sockets.
struct InboxNote {
    std::string user_id;
    std::string json;
};

struct NewDelivery {
    std::string channel;
    std::string recipient;
};

/// What a message or template says: a subject, a text body and, for mail, an HTML body.
struct MessageContent {
    std::string subject;
    std::string body;
    std::optional<std::string> html_body;
};

struct DeliveryDetail {
    std::string channel;
    std::string recipient;
    std::string status;
    std::string subject;
    std::string body;
    int attempts = 0;
    std::optional<std::string> html_body;
};

struct Delivery {
    std::int64_t id = 0;
    std::string channel;
    std::string recipient;
    std::string status;
    int attempts = 0;
};

/// The delivery log's and the inbox's sort fields and filters.
extern const core::db::ListSpec kDeliveryLogList;
extern const core::db::ListSpec kInboxList;

/// A message's sender as stored: a user (a token's `sub`, any text) and one of the app's own
/// senders (approvals, workflows, schedule:<id> ...) never have the same id, so neither can
/// take the other's idempotency keys (a key is its sender's own).
inline std::string user_sender(const std::string& user_id) {
    return "user:" + user_id;
}
inline std::string system_sender(const std::string& name) {
    return "system:" + name;
}

class Repository {
public:
    explicit Repository(core::db::Pool& pool) : pool_(pool) {}

    /// Message id of the sender's earlier send with this idempotency key (a key is its
    /// sender's own: one sender cannot take another's place).
    std::optional<std::int64_t> find_by_idempotency_key(const core::TenantId& tenant,
                                                        const std::string& sender,
                                                        const std::string& key);
    /// Inserts the message, its deliveries and the event `announce` makes of its id in one
    /// transaction.
    std::int64_t create_message(const core::TenantId& tenant,
                                const std::string& sender,
                                const MessageContent& content,
                                const std::optional<std::string>& idempotency_key,
                                const std::vector<NewDelivery>& deliveries,
                                const core::outbox::Announcement& announce);
    std::vector<Delivery> deliveries(const core::TenantId& tenant, std::int64_t message_id);
    /// Delivers an in-app delivery: the inbox item and the `sent` state, once.
    bool deliver_in_app(const core::TenantId& tenant, std::int64_t delivery_id);
    /// Who sent message `message_id` (user_sender's or system_sender's id), if it is `tenant`'s.
    std::optional<std::string> sender_of(const core::TenantId& tenant, std::int64_t message_id);
    /// What a socket of the item's user receives about it, if the item exists in `tenant`.
    std::optional<InboxNote> inbox_note(const core::TenantId& tenant, std::int64_t item_id);

    std::optional<DeliveryDetail> delivery(const core::TenantId& tenant, std::int64_t delivery_id);
    /// Sets a delivery's state and provider reply; `attempted` counts one more attempt.
    void update_delivery(const core::TenantId& tenant,
                         std::int64_t delivery_id,
                         const std::string& status,
                         const std::string& reply,
                         bool attempted);
    /// Fails the message's deliveries still queued or sending (its run ended failed); returns
    /// how many.
    std::int64_t fail_unfinished(const core::TenantId& tenant,
                                 std::int64_t message_id,
                                 const std::string& reason);
    void save_smtp_settings(const core::TenantId& tenant, const SmtpSettings& settings);
    std::optional<SmtpSettings> smtp_settings(const core::TenantId& tenant);
    void save_sms_settings(const core::TenantId& tenant, const SmsSettings& settings);
    std::optional<SmsSettings> sms_settings(const core::TenantId& tenant);

    /// Stores a new version of a template; returns (id, version).
    std::pair<std::int64_t, int> add_template(const core::TenantId& tenant,
                                              const std::string& key,
                                              const std::string& channel,
                                              const std::string& locale,
                                              const MessageContent& content,
                                              const std::string& author);
    /// The latest version of a template: {id, key, channel, locale, version, subject, body,
    /// html_body (null when none)}.
    std::optional<boost::json::object> latest_template(const core::TenantId& tenant,
                                                       const std::string& key,
                                                       const std::string& channel,
                                                       const std::string& locale);
    /// The latest version of every template.
    boost::json::array templates(const core::TenantId& tenant);

    /// The delivery log: the page asked for, its filters applied (`kDeliveryLogList`).
    core::db::JsonPage delivery_log(const core::TenantId& tenant,
                                    const core::db::ListRequest& page);

    core::db::JsonPage inbox(const core::TenantId& tenant,
                             const std::string& user,
                             const std::string& filter,
                             const core::db::ListRequest& page);
    std::int64_t unread_count(const core::TenantId& tenant, const std::string& user);
    bool mark_read(const core::TenantId& tenant, const std::string& user, std::int64_t item);
    std::int64_t mark_all_read(const core::TenantId& tenant, const std::string& user);
    bool archive(const core::TenantId& tenant, const std::string& user, std::int64_t item);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::messages
