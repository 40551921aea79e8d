#include "modules/messages/service.hpp"

#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/found.hpp"
#include "core/json/request_fields.hpp"
#include "core/log/logger.hpp"
#include "core/text/storable.hpp"
#include "modules/messages/templates.hpp"

#include <inngest/client.hpp>
#include <inngest/errors.hpp>
#include <inngest/metrics.hpp>

#include <set>

namespace riveredge::messages {
namespace {

constexpr std::size_t kMaxSubject = 500;
constexpr std::size_t kMaxBody = 64 * 1024;
constexpr std::size_t kMaxRecipients = 1000;
constexpr std::size_t kMaxTemplateKey = 100;
constexpr std::size_t kMaxLocale = 20;
constexpr const char* kDefaultLocale = "zh-CN";

// What a template rendered, held to the rules of the field a direct send would have sent it in
// (`subject`, `body`, `html`): its problem filed under that field, said to be the rendering's.
void check_rendered(const std::string& text,
                    const char* field,
                    core::TextRule rule,
                    boost::json::object& problems) {
    boost::json::object found;
    core::text_field(boost::json::object{{field, text}}, field, rule, found);
    if (const auto* problem = found.if_contains(field)) {
        problems[field] = "as the template renders it (" + std::to_string(text.size()) +
                          " bytes), " + std::string(problem->as_string());
    }
}
// A deliberately strict address check: one @, no spaces, no angle brackets or line breaks, so
// an address can never inject SMTP commands or headers.
bool valid_address(const std::string& address) {
    const auto at = address.find('@');
    if (at == 0 || at == std::string::npos || address.find('@', at + 1) != std::string::npos ||
        at + 1 >= address.size() || address.size() > 254) {
        return false;
    }
    for (const char c : address) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '\\' ||
            u == 0x7F) {
            return false;
        }
    }
    return address.find('.', at) != std::string::npos;
}

// A delivery's stable id across retries: the email's Message-ID and the SMS gateway's
// Idempotency-Key, so a provider can tell a delivery sent again from a new one.
std::string delivery_key(const core::TenantId& tenant, std::int64_t delivery_id) {
    return "delivery-" + std::to_string(delivery_id) + "." + tenant.value();
}

// Delivery through an outside provider (SMTP, SMS gateway), the same for every channel: an
// already sent delivery is not sent again, a tenant without settings fails for good, each try
// counts as an attempt, and the provider's answer decides between sent, retry and failure.
template <class LoadSettings, class Send>
boost::json::object deliver_through_provider(Repository& repository,
                                             const core::TenantId& tenant,
                                             std::int64_t delivery_id,
                                             const std::string& provider,
                                             bool last_attempt,
                                             LoadSettings load_settings,
                                             Send send) {
    const auto delivery = repository.delivery(tenant, delivery_id);
    if (!delivery) {
        throw inngest::NonRetriableError("delivery " + std::to_string(delivery_id) +
                                         " does not exist");
    }
    if (delivery->status == "sent") {
        return boost::json::object{
            {"delivery_id", delivery_id}, {"status", "sent"}, {"changed", false}};
    }
    const auto settings = load_settings();
    if (!settings) {
        const std::string reason = "no " + provider + " settings for this tenant";
        repository.update_delivery(tenant, delivery_id, "failed", reason, false);
        throw inngest::NonRetriableError(reason);
    }
    repository.update_delivery(tenant, delivery_id, "sending", "", true);
    auto result = send(*settings, *delivery);
    // The provider's words, stored and logged: a NUL or a character cut by the reply's size cap
    // would make the store fail after the message went out.
    result.reply = core::storable_text(result.reply);
    if (result.sent) {
        repository.update_delivery(tenant, delivery_id, "sent", result.reply, false);
        return boost::json::object{
            {"delivery_id", delivery_id}, {"status", "sent"}, {"reply", result.reply}};
    }
    if (result.retriable && !last_attempt) {
        repository.update_delivery(tenant, delivery_id, "queued", result.reply, false);
        throw std::runtime_error(provider + " delivery will be retried: " + result.reply);
    }
    if (result.retriable) {
        // No retry is left: the delivery must not look queued forever.
        const std::string reason = "gave up after the last attempt: " + result.reply;
        repository.update_delivery(tenant, delivery_id, "failed", reason, false);
        throw inngest::NonRetriableError(provider + " " + reason);
    }
    repository.update_delivery(tenant, delivery_id, "failed", result.reply, false);
    throw inngest::NonRetriableError(provider + " refused the message: " + result.reply);
}

}  // namespace

boost::json::object Service::send(const core::Principal& sender,
                                  const boost::json::object& request) {
    boost::json::object problems;
    MessageContent content;
    // A send by template reads its own fields by the rules a direct send's fields follow, and
    // renders only once every field is right.
    const auto* template_value = request.if_contains("template_key");
    const bool by_template = template_value != nullptr && !template_value->is_null();
    std::string template_key;
    std::string locale = kDefaultLocale;
    boost::json::object variables;
    if (by_template) {
        template_key = core::required_text(request, "template_key", kMaxTemplateKey, problems);
        locale = core::text_field(request, "locale", {.max = kMaxLocale, .min = 1}, problems)
                     .value_or(kDefaultLocale);
        variables = core::object_field(request, "variables", problems).value_or(variables);
    } else {
        content.subject = core::required_text(request, "subject", kMaxSubject, problems);
        content.body = core::required_text(request, "body", kMaxBody, problems);
        content.html_body = core::text_field(request, "html", {.max = kMaxBody}, problems);
    }
    std::vector<NewDelivery> deliveries;
    std::set<std::string> channels;
    // A template is rendered as the first channel's (the in-app one when no channel is right).
    std::string template_channel = "in_app";
    if (const auto list = core::text_list_field(
            request, "channels",
            {.min = 1, .max = 10, .item = {.max = 10, .min = 1}, .required = true}, problems)) {
        template_channel = list->front();
        for (const auto& channel : *list) {
            if (channel != "in_app" && channel != "email" && channel != "sms") {
                problems["channels"] = "supported channels: in_app, email, sms";
                break;
            }
            channels.insert(channel);
        }
    }
    const auto recipients = core::text_list_field(request, "recipients",
                                                  {.min = 1,
                                                   .max = kMaxRecipients,
                                                   .item = {.max = 200, .min = 1},
                                                   .required = true,
                                                   .distinct = true},
                                                  problems);
    for (const auto& address : recipients.value_or(std::vector<std::string>{})) {
        // An address goes to the email channel, a user id to the in-app inbox.
        const bool is_email = address.find('@') != std::string::npos;
        if (is_email && !valid_address(address)) {
            problems["recipients"] = "'" + address + "' is not a valid email address";
            break;
        }
        const bool is_phone = !is_email && valid_phone(address);
        const std::string channel = is_email ? "email" : (is_phone ? "sms" : "in_app");
        if (channels.count(channel) != 0) {
            deliveries.push_back({channel, address});
        }
    }
    const auto key = core::text_field(request, "idempotency_key", {.max = 200, .min = 1}, problems);
    if (problems.empty() && deliveries.empty()) {
        problems["recipients"] =
            "no recipient matches the channels (user ids: in_app, addresses: email, phone numbers: "
            "sms)";
    }
    core::refuse_if_any(problems);
    if (by_template) {
        // Rendered once, with the template of the locale (plain text, no HTML escaping), and
        // held to the limits of a subject, body and HTML body sent directly.
        const auto rendered =
            render_stored(sender.tenant, template_key, template_channel, locale, variables);
        content.subject = std::string(rendered.at("subject").as_string());
        content.body = std::string(rendered.at("body").as_string());
        if (rendered.at("html_body").is_string()) {
            content.html_body = std::string(rendered.at("html_body").as_string());
        }
        check_rendered(content.subject, "subject", {.max = kMaxSubject, .min = 1}, problems);
        check_rendered(content.body, "body", {.max = kMaxBody, .min = 1}, problems);
        if (content.html_body) {
            check_rendered(*content.html_body, "html", {.max = kMaxBody}, problems);
        }
        core::refuse_if_any(problems);
    }
    bool created = false;
    const std::int64_t id =
        record(sender.tenant, user_sender(sender.user_id), content, key, deliveries, created);
    return boost::json::object{{"message_id", id},
                               {"created", created},
                               {"deliveries", static_cast<std::int64_t>(deliveries.size())}};
}

std::int64_t Service::notify(const core::TenantId& tenant,
                             const std::string& sender,
                             const std::vector<std::string>& user_ids,
                             const std::string& subject,
                             const std::string& body,
                             const std::optional<std::string>& idempotency_key) {
    std::vector<NewDelivery> deliveries;
    for (const auto& user : user_ids) {
        deliveries.push_back({"in_app", user});
    }
    bool created = false;
    return record(tenant, system_sender(sender), MessageContent{subject, body, std::nullopt},
                  idempotency_key, deliveries, created);
}

std::int64_t Service::record(const core::TenantId& tenant,
                             const std::string& sender,
                             const MessageContent& content,
                             const std::optional<std::string>& idempotency_key,
                             const std::vector<NewDelivery>& deliveries,
                             bool& created) {
    if (idempotency_key) {
        if (const auto existing =
                repository_.find_by_idempotency_key(tenant, sender, *idempotency_key)) {
            created = false;
            return *existing;
        }
    }
    // The event goes out with the rows (the outbox): its id makes a repeated relay (after a
    // crash) start no second run.
    const auto announce = [&tenant](std::int64_t id) {
        return core::row_event(kMessageRequested, tenant, "message_id", id, "message");
    };
    std::int64_t id = 0;
    try {
        id = repository_.create_message(tenant, sender, content, idempotency_key, deliveries,
                                        announce);
    } catch (const core::db::DbError& error) {
        // Two concurrent sends with one key: the loser answers with the winner's message.
        if (error.sqlstate() == "23505" && idempotency_key) {
            if (const auto existing =
                    repository_.find_by_idempotency_key(tenant, sender, *idempotency_key)) {
                created = false;
                return *existing;
            }
        }
        throw;
    }
    created = true;
    return id;
}

boost::json::object Service::deliver(const core::TenantId& tenant,
                                     std::int64_t delivery_id,
                                     const std::string& channel,
                                     bool last_attempt) {
    const auto count = [&](const char* result) {
        if (metrics_ != nullptr) {
            metrics_->add("riveredge_message_deliveries_total",
                          {{"channel", channel}, {"result", result}});
        }
    };
    try {
        auto delivered = deliver_on_channel(tenant, delivery_id, channel, last_attempt);
        count("sent");
        return delivered;
    } catch (const inngest::NonRetriableError&) {
        count("failed");
        throw;
    } catch (...) {
        count("retry");
        throw;
    }
}

boost::json::object Service::deliver_on_channel(const core::TenantId& tenant,
                                                std::int64_t delivery_id,
                                                const std::string& channel,
                                                bool last_attempt) {
    if (channel == "in_app") {
        const bool changed = repository_.deliver_in_app(tenant, delivery_id);
        return boost::json::object{
            {"delivery_id", delivery_id}, {"status", "sent"}, {"changed", changed}};
    }
    if (channel == "sms") {
        return deliver_sms(tenant, delivery_id, last_attempt);
    }
    if (channel != "email") {
        throw inngest::NonRetriableError("channel " + channel + " is not deliverable");
    }
    return deliver_through_provider(
        repository_, tenant, delivery_id, "SMTP", last_attempt,
        [&] { return repository_.smtp_settings(tenant); },
        [&](const SmtpSettings& smtp, const DeliveryDetail& delivery) {
            SmtpSettings settings = smtp;
            settings.ca_file = smtp_ca_file_;
            return send_email(
                outbound_, settings,
                Email{delivery.recipient, delivery.subject, delivery.body, delivery.html_body,
                      delivery_key(tenant, delivery_id) + "@riveredge-flow"});
        });
}

boost::json::object Service::add_template(const core::Principal& author,
                                          const boost::json::object& request) {
    boost::json::object problems;
    const std::string key = core::required_text(request, "key", 100, problems);
    const std::string channel = core::required_text(request, "channel", 20, problems);
    if (!channel.empty() && channel != "in_app" && channel != "email" && channel != "sms" &&
        channel != "push") {
        problems["channel"] = "in_app, email, sms or push";
    }
    std::string locale = "zh-CN";
    if (const auto* value = request.if_contains("locale"); value != nullptr && !value->is_null()) {
        locale = core::required_text(request, "locale", 20, problems);
    }
    const std::string subject = core::required_text(request, "subject", kMaxSubject, problems);
    const std::string body = core::required_text(request, "body", kMaxBody, problems);
    const auto html_body = core::text_field(request, "html_body", {.max = kMaxBody}, problems);
    if (html_body && channel != "email") {
        problems["html_body"] = "only email templates have an HTML body";
    }
    for (const auto& [field, source] :
         {std::pair{"subject", subject}, std::pair{"body", body},
          std::pair{"html_body", html_body.value_or(std::string())}}) {
        if (!source.empty()) {
            if (const auto error = template_error(source)) {
                problems[field] = "template does not compile: " + *error;
            }
        }
    }
    core::refuse_if_any(problems);
    const auto [id, version] =
        repository_.add_template(author.tenant, key, channel, locale,
                                 MessageContent{subject, body, html_body}, author.user_id);
    return boost::json::object{
        {"id", id}, {"key", key}, {"channel", channel}, {"locale", locale}, {"version", version}};
}

boost::json::object Service::preview(const core::TenantId& tenant,
                                     const boost::json::object& request) {
    boost::json::object problems;
    const auto variables =
        core::object_field(request, "variables", problems).value_or(boost::json::object{});
    const auto channel =
        core::text_field(request, "channel", {.max = 20, .min = 1}, problems).value_or("in_app");
    if (const auto* key = request.if_contains("key"); key != nullptr && !key->is_null()) {
        const std::string key_text = core::required_text(request, "key", kMaxTemplateKey, problems);
        const auto locale =
            core::text_field(request, "locale", {.max = kMaxLocale, .min = 1}, problems)
                .value_or(kDefaultLocale);
        core::refuse_if_any(problems);
        return render_stored(tenant, key_text, channel, locale, variables);
    }
    const auto subject_source = core::required_text(request, "subject", kMaxSubject, problems);
    const auto body_source = core::required_text(request, "body", kMaxBody, problems);
    const auto html_source = core::text_field(request, "html_body", {.max = kMaxBody}, problems);
    core::refuse_if_any(problems);
    return render(subject_source, body_source, html_source, channel, variables, nullptr);
}

boost::json::object Service::render_stored(const core::TenantId& tenant,
                                           const std::string& key,
                                           const std::string& channel,
                                           const std::string& locale,
                                           const boost::json::object& variables) {
    const auto stored = core::found(repository_.latest_template(tenant, key, channel, locale),
                                    "template " + key + " (" + channel + ", " + locale + ")");
    std::optional<std::string> html_source;
    if (stored.at("html_body").is_string()) {
        html_source = std::string(stored.at("html_body").as_string());
    }
    return render(std::string(stored.at("subject").as_string()),
                  std::string(stored.at("body").as_string()), html_source, channel, variables,
                  stored.at("version"));
}

boost::json::object Service::render(const std::string& subject_source,
                                    const std::string& body_source,
                                    const std::optional<std::string>& html_source,
                                    const std::string& channel,
                                    const boost::json::object& variables,
                                    const boost::json::value& version) {
    try {
        // Only an HTML mail body escapes values; subjects and text channels take them as they are.
        const bool html = channel == "email" && body_source.find('<') != std::string::npos;
        boost::json::value html_body = nullptr;
        if (html_source) {
            html_body = render_template(*html_source, variables, true);
        }
        return boost::json::object{{"subject", render_template(subject_source, variables, false)},
                                   {"body", render_template(body_source, variables, html)},
                                   {"html_body", std::move(html_body)},
                                   {"version", version}};
    } catch (const std::invalid_argument& error) {
        throw core::DomainError::validation(boost::json::object{{"template", error.what()}});
    }
}

boost::json::object Service::deliver_sms(const core::TenantId& tenant,
                                         std::int64_t delivery_id,
                                         bool last_attempt) {
    return deliver_through_provider(
        repository_, tenant, delivery_id, "SMS", last_attempt,
        [&] { return repository_.sms_settings(tenant); },
        [&](const SmsSettings& sms, const DeliveryDetail& delivery) {
            return send_sms(outbound_, sms, delivery.recipient, delivery.subject, delivery.body,
                            delivery_key(tenant, delivery_id));
        });
}

void Service::save_sms_settings(const core::TenantId& tenant, const boost::json::object& request) {
    boost::json::object problems;
    SmsSettings settings;
    settings.endpoint = core::required_text(request, "endpoint", 500, problems);
    if (!settings.endpoint.empty() && !settings.endpoint.starts_with("http://") &&
        !settings.endpoint.starts_with("https://")) {
        problems["endpoint"] = "an http(s) URL";
    }
    settings.sign_name = core::required_text(request, "sign_name", 100, problems);
    settings.template_id = core::required_text(request, "template_id", 100, problems);
    // An empty key reads as none sent.
    // On one line: it goes into an HTTP header.
    if (auto key =
            core::text_field(request, "api_key", {.max = 500, .single_line = true}, problems);
        key && !key->empty()) {
        settings.api_key = std::move(key);
    }
    core::refuse_if_any(problems);
    repository_.save_sms_settings(tenant, settings);
}

boost::json::object Service::sms_settings(const core::TenantId& tenant) {
    const auto settings = core::found(repository_.sms_settings(tenant), "SMS settings");
    return boost::json::object{{"endpoint", settings.endpoint},
                               {"has_api_key", settings.api_key.has_value()},
                               {"sign_name", settings.sign_name},
                               {"template_id", settings.template_id}};
}

void Service::save_smtp_settings(const core::TenantId& tenant, const boost::json::object& request) {
    boost::json::object problems;
    SmtpSettings settings;
    settings.host = core::required_text(request, "host", 253, problems);
    settings.from_address = core::required_text(request, "from_address", 254, problems);
    if (!settings.from_address.empty() && !valid_address(settings.from_address)) {
        problems["from_address"] = "a valid email address";
    }
    core::require_fields(request, {"port", "tls_mode"}, problems);
    settings.port =
        static_cast<int>(core::int_field(request, "port", 1, 65535, problems).value_or(0));
    settings.tls_mode =
        core::choice_field(request, "tls_mode", {"none", "starttls", "smtps"}, problems)
            .value_or("");
    // Empty is the same as absent: no login, no display name.
    const auto optional_text = [&](const char* field) {
        auto value = core::text_field(request, field, {.max = 500}, problems);
        return value && !value->empty() ? value : std::nullopt;
    };
    settings.username = optional_text("username");
    settings.password = optional_text("password");
    settings.from_name = optional_text("from_name");
    core::refuse_if_any(problems);
    repository_.save_smtp_settings(tenant, settings);
}

boost::json::object Service::smtp_settings(const core::TenantId& tenant) {
    const auto settings = core::found(repository_.smtp_settings(tenant), "SMTP settings");
    const auto or_null = [](const std::optional<std::string>& value) {
        return value ? boost::json::value(*value) : boost::json::value(nullptr);
    };
    return boost::json::object{{"host", settings.host},
                               {"port", settings.port},
                               {"tls_mode", settings.tls_mode},
                               {"username", or_null(settings.username)},
                               {"has_password", settings.password.has_value()},
                               {"from_address", settings.from_address},
                               {"from_name", or_null(settings.from_name)}};
}

}  // namespace riveredge::messages
