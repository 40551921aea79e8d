// HTTP in and out for the messages module: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/messages/service.hpp"

#include <charconv>

namespace riveredge::messages {
namespace {

using core::DomainError;
using core::id_param;
using core::json_response;
using core::RequestContext;
using inngest::HttpRequest;

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/messages/send",
            .access = core::Access::kUser,
            .summary = "Send a message to users (in-app), idempotent by key",
            .request_schema = R"({"type":"object",
        "required":["channels","recipients"],"properties":{
        "template_key":{"type":"string"},"locale":{"type":"string"},"variables":{"type":"object"},
        "subject":{"type":"string","maxLength":500},"body":{"type":"string"},
        "html":{"type":"string","description":"HTML body: email goes as multipart/alternative"},
        "channels":{"type":"array","items":{"enum":["in_app","email","sms"]}},
        "recipients":{"type":"array","items":{"type":"string"},"maxItems":1000},
        "idempotency_key":{"type":"string","maxLength":200}}})",
            .response_schema = R"({"type":"object","properties":{"message_id":{"type":"integer"},
        "created":{"type":"boolean"},"deliveries":{"type":"integer"}}})"},
        [&service](const HttpRequest& request, RequestContext& context) {
            const auto result = service.send(context.who(), context.json_body(request));
            return json_response(result.at("created").as_bool() ? 201 : 200, result);
        });

    router.add(
        core::RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/messages/settings/smtp",
            .access = core::Access::kAdmin,
            .summary = "Set the tenant's SMTP settings (the password is never returned)"},
        [&service](const HttpRequest& request, RequestContext& context) {
            service.save_smtp_settings(context.who().tenant, context.json_body(request));
            return json_response(200, service.smtp_settings(context.who().tenant));
        });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/messages/settings/smtp",
                               .access = core::Access::kAdmin,
                               .summary = "The tenant's SMTP settings, without the password"},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(200, service.smtp_settings(context.who().tenant));
               });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/messages/deliveries",
                               .access = core::Access::kAdmin,
                               .summary = "The delivery log",
                               .list = &kDeliveryLogList},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto& who = context.who();
                   const auto filter = [&](const char* name) {
                       return core::query_filter(context, name);
                   };
                   const auto status = filter("status");
                   if (status && *status != "queued" && *status != "sending" && *status != "sent" &&
                       *status != "failed") {
                       throw DomainError::validation(
                           boost::json::object{{"status", "queued, sending, sent or failed"}});
                   }
                   const auto channel = filter("channel");
                   if (channel && *channel != "in_app" && *channel != "email" &&
                       *channel != "sms" && *channel != "push") {
                       throw DomainError::validation(
                           boost::json::object{{"channel", "in_app, email, sms or push"}});
                   }
                   // since/until are cast by PostgreSQL; a malformed one is a 400 (SQLSTATE 22007).
                   auto page = service.repository().delivery_log(
                       who.tenant, status, channel, filter("recipient"), filter("since"),
                       filter("until"), context.list);
                   return core::list_response(context, std::move(page.items), page.total);
               });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/messages/ws",
                               .access = core::Access::kPublic,
                               .summary = "WebSocket: real-time push of new inbox items"},
               [](const HttpRequest&, RequestContext&) -> inngest::HttpResponse {
                   // Reached only without an Upgrade header: the socket itself is taken over before
                   // routing (core/http/websocket_hub).
                   throw DomainError(
                       core::DomainError::Kind::kUpgradeRequired, "upgrade_required",
                       "open a WebSocket here (token in Authorization or ?token=); new inbox "
                       "items are pushed as JSON");
               });

    router.add(
        core::RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/messages/settings/sms",
            .access = core::Access::kAdmin,
            .summary = "Set the tenant's SMS gateway (endpoint, api_key, sign_name, template_id)"},
        [&service](const HttpRequest& request, RequestContext& context) {
            service.save_sms_settings(context.who().tenant, context.json_body(request));
            return json_response(200, service.sms_settings(context.who().tenant));
        });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/messages/settings/sms",
                               .access = core::Access::kAdmin,
                               .summary = "The tenant's SMS gateway settings, without the API key"},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(200, service.sms_settings(context.who().tenant));
               });

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/messages/templates",
            .access = core::Access::kAdmin,
            .summary = "Add a template version (key, channel, locale, subject, body; Mustache)"},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(201,
                                 service.add_template(context.who(), context.json_body(request)));
        });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/messages/templates",
                               .access = core::Access::kUser,
                               .summary = "The latest version of every template"},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(
                       200, boost::json::object{{"templates", service.repository().templates(
                                                                  context.who().tenant)}});
               });

    router.add(
        core::RouteSpec{.method = "POST",
                        .pattern = "/api/v1/messages/templates/preview",
                        .access = core::Access::kUser,
                        .summary = "Render a stored or inline template with sample variables"},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200,
                                 service.preview(context.who().tenant, context.json_body(request)));
        });

    router.add(
        core::RouteSpec{.method = "GET",
                        .pattern = "/api/v1/messages/inbox",
                        .access = core::Access::kUser,
                        .summary = "The caller's inbox",
                        .list = &kInboxList},
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            std::string filter = "all";
            if (const auto it = context.query.find("status"); it != context.query.end()) {
                filter = it->second;
            }
            if (filter != "all" && filter != "unread" && filter != "read" && filter != "archived") {
                throw DomainError::validation(
                    boost::json::object{{"status", "all, unread, read or archived"}});
            }
            auto page = service.repository().inbox(who.tenant, who.user_id, filter, context.list);
            return core::list_response(context, std::move(page.items), page.total);
        });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/messages/inbox/unread-count",
                               .access = core::Access::kUser,
                               .summary = "Count the caller's unread inbox items"},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto& who = context.who();
                   return json_response(
                       200, boost::json::object{{"unread", service.repository().unread_count(
                                                               who.tenant, who.user_id)}});
               });

    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/messages/inbox/read-all",
                               .access = core::Access::kUser,
                               .summary = "Mark every inbox item read"},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto& who = context.who();
                   return json_response(
                       200, boost::json::object{{"marked", service.repository().mark_all_read(
                                                               who.tenant, who.user_id)}});
               });

    router.add(
        core::RouteSpec{.method = "POST",
                        .pattern = "/api/v1/messages/inbox/{id}/read",
                        .access = core::Access::kUser,
                        .summary = "Mark one inbox item read"},
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            if (!service.repository().mark_read(who.tenant, who.user_id, id_param(context, "id"))) {
                throw DomainError::not_found("inbox item");
            }
            return json_response(200, boost::json::object{{"read", true}});
        });

    router.add(
        core::RouteSpec{.method = "POST",
                        .pattern = "/api/v1/messages/inbox/{id}/archive",
                        .access = core::Access::kUser,
                        .summary = "Archive one inbox item"},
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            if (!service.repository().archive(who.tenant, who.user_id, id_param(context, "id"))) {
                throw DomainError::not_found("inbox item");
            }
            return json_response(200, boost::json::object{{"archived", true}});
        });

    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/messages/{id}/deliveries",
            .access = core::Access::kUser,
            .summary = "The delivery log of one message (its sender or an administrator)"},
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            const auto id = id_param(context, "id");
            const auto sender = service.repository().sender_of(who.tenant, id);
            if (!sender) {
                throw DomainError::not_found("message");
            }
            if (*sender != who.user_id && !context.is_admin()) {
                throw DomainError::forbidden(
                    "a message's deliveries are for its sender and tenant administrators");
            }
            const auto deliveries = service.repository().deliveries(who.tenant, id);
            boost::json::array out;
            for (const auto& d : deliveries) {
                out.push_back(boost::json::object{{"id", d.id},
                                                  {"channel", d.channel},
                                                  {"recipient", d.recipient},
                                                  {"status", d.status},
                                                  {"attempts", d.attempts}});
            }
            return json_response(200, boost::json::object{{"deliveries", std::move(out)}});
        });
}

}  // namespace riveredge::messages
