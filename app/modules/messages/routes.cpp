// HTTP in and out for the messages module: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/messages/service.hpp"

namespace riveredge::messages {
namespace {

namespace json = boost::json;
using core::Access;
using core::Call;
using core::DomainError;
using core::RouteSpec;

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router.add(RouteSpec{.method = "POST",
                         .pattern = "/api/v1/messages/send",
                         .access = Access::kUser,
                         .summary = "Send a message to users (in-app), idempotent by key",
                         .request_schema = R"({"type":"object",
        "required":["channels","recipients"],"properties":{
        "template_key":{"type":"string"},"locale":{"type":"string"},"variables":{"type":"object"},
        "subject":{"type":"string","maxLength":500},"body":{"type":"string"},
        "html":{"type":"string","description":"HTML body: email goes as multipart/alternative"},
        "channels":{"type":"array","items":{"enum":["in_app","email","sms"]}},
        "recipients":{"type":"array","items":{"type":"string"},"maxItems":1000},
        "idempotency_key":{"type":"string","maxLength":200}}})",
                         .response_schema =
                             R"({"type":"object","properties":{"message_id":{"type":"integer"},
        "created":{"type":"boolean"},"deliveries":{"type":"integer"}}})",
                         .status = 201,
                         .other_status = 200},
               [&service](Call& call) {
                   auto result = service.send(call.who(), call.body());
                   if (!result.at("created").as_bool()) {
                       call.answer(200);  // sent before under the same idempotency key
                   }
                   return result;
               });

    router.add(
        RouteSpec{.method = "PUT",
                  .pattern = "/api/v1/messages/settings/smtp",
                  .access = Access::kAdmin,
                  .summary = "Set the tenant's SMTP settings (the password is never returned)"},
        [&service](Call& call) {
            service.save_smtp_settings(call.tenant(), call.body());
            return service.smtp_settings(call.tenant());
        });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/messages/settings/smtp",
                         .access = Access::kAdmin,
                         .summary = "The tenant's SMTP settings, without the password"},
               [&service](Call& call) { return service.smtp_settings(call.tenant()); });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/messages/deliveries",
                         .access = Access::kAdmin,
                         .summary = "The delivery log",
                         .list = &kDeliveryLogList},
               [&service](Call& call) {
                   const auto status = call.filter("status");
                   if (status && *status != "queued" && *status != "sending" && *status != "sent" &&
                       *status != "failed") {
                       throw DomainError::validation(
                           json::object{{"status", "queued, sending, sent or failed"}});
                   }
                   const auto channel = call.filter("channel");
                   if (channel && *channel != "in_app" && *channel != "email" &&
                       *channel != "sms" && *channel != "push") {
                       throw DomainError::validation(
                           json::object{{"channel", "in_app, email, sms or push"}});
                   }
                   // since/until are cast by PostgreSQL; a malformed one is a 400 (SQLSTATE 22007).
                   return call.list(service.repository().delivery_log(
                       call.tenant(), status, channel, call.filter("recipient"),
                       call.filter("since"), call.filter("until"), call.paging()));
               });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/messages/ws",
                         .access = Access::kPublic,
                         .summary = "WebSocket: real-time push of new inbox items"},
               [](Call&) -> json::value {
                   // Reached only without an Upgrade header: the socket itself is taken over before
                   // routing (core/http/websocket_hub).
                   throw DomainError(
                       DomainError::Kind::kUpgradeRequired, "upgrade_required",
                       "open a WebSocket here (token in Authorization or ?token=); new inbox "
                       "items are pushed as JSON");
               });

    router.add(
        RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/messages/settings/sms",
            .access = Access::kAdmin,
            .summary = "Set the tenant's SMS gateway (endpoint, api_key, sign_name, template_id)"},
        [&service](Call& call) {
            service.save_sms_settings(call.tenant(), call.body());
            return service.sms_settings(call.tenant());
        });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/messages/settings/sms",
                         .access = Access::kAdmin,
                         .summary = "The tenant's SMS gateway settings, without the API key"},
               [&service](Call& call) { return service.sms_settings(call.tenant()); });

    router.add(
        RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/messages/templates",
            .access = Access::kAdmin,
            .summary = "Add a template version (key, channel, locale, subject, body; Mustache)",
            .status = 201},
        [&service](Call& call) { return service.add_template(call.who(), call.body()); });

    router.add(
        RouteSpec{.method = "GET",
                  .pattern = "/api/v1/messages/templates",
                  .access = Access::kUser,
                  .summary = "The latest version of every template"},
        [&service](Call& call) {
            return json::object{{"templates", service.repository().templates(call.tenant())}};
        });

    router.add(RouteSpec{.method = "POST",
                         .pattern = "/api/v1/messages/templates/preview",
                         .access = Access::kUser,
                         .summary = "Render a stored or inline template with sample variables"},
               [&service](Call& call) { return service.preview(call.tenant(), call.body()); });

    router.add(
        RouteSpec{.method = "GET",
                  .pattern = "/api/v1/messages/inbox",
                  .access = Access::kUser,
                  .summary = "The caller's inbox",
                  .list = &kInboxList},
        [&service](Call& call) {
            const auto& who = call.who();
            const std::string filter = call.query("status").value_or("all");
            if (filter != "all" && filter != "unread" && filter != "read" && filter != "archived") {
                throw DomainError::validation(
                    json::object{{"status", "all, unread, read or archived"}});
            }
            return call.list(
                service.repository().inbox(who.tenant, who.user_id, filter, call.paging()));
        });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/messages/inbox/unread-count",
                         .access = Access::kUser,
                         .summary = "Count the caller's unread inbox items"},
               [&service](Call& call) {
                   const auto& who = call.who();
                   return json::object{
                       {"unread", service.repository().unread_count(who.tenant, who.user_id)}};
               });

    router.add(RouteSpec{.method = "POST",
                         .pattern = "/api/v1/messages/inbox/read-all",
                         .access = Access::kUser,
                         .summary = "Mark every inbox item read"},
               [&service](Call& call) {
                   const auto& who = call.who();
                   return json::object{
                       {"marked", service.repository().mark_all_read(who.tenant, who.user_id)}};
               });

    // Marking one of the caller's inbox items: 404 when it is not theirs.
    const auto mark = [&router, &service](const char* verb, const char* summary, const char* field,
                                          auto change) {
        router.add(RouteSpec{.method = "POST",
                             .pattern = std::string("/api/v1/messages/inbox/{id}/") + verb,
                             .access = Access::kUser,
                             .summary = summary},
                   [&service, field, change](Call& call) {
                       const auto& who = call.who();
                       if (!(service.repository().*change)(who.tenant, who.user_id, call.id())) {
                           throw DomainError::not_found("inbox item");
                       }
                       return json::object{{field, true}};
                   });
    };
    mark("read", "Mark one inbox item read", "read", &Repository::mark_read);
    mark("archive", "Archive one inbox item", "archived", &Repository::archive);

    router.add(
        RouteSpec{.method = "GET",
                  .pattern = "/api/v1/messages/{id}/deliveries",
                  .access = Access::kUser,
                  .summary = "The delivery log of one message (its sender or an administrator)"},
        [&service](Call& call) {
            const auto& who = call.who();
            const auto id = call.id();
            const auto sender = service.repository().sender_of(who.tenant, id);
            if (!sender) {
                throw DomainError::not_found("message");
            }
            if (*sender != who.user_id && !call.is_admin()) {
                throw DomainError::forbidden(
                    "a message's deliveries are for its sender and tenant administrators");
            }
            json::array out;
            for (const auto& d : service.repository().deliveries(who.tenant, id)) {
                out.push_back(json::object{{"id", d.id},
                                           {"channel", d.channel},
                                           {"recipient", d.recipient},
                                           {"status", d.status},
                                           {"attempts", d.attempts}});
            }
            return json::object{{"deliveries", std::move(out)}};
        });
}

}  // namespace riveredge::messages
