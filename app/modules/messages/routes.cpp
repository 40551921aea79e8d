// HTTP in and out for the messages module: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/messages/service.hpp"

#include <charconv>

namespace riveredge::messages {
namespace {

using core::ApiError;
using core::id_param;
using core::json_response;
using core::RequestContext;
using inngest::HttpRequest;

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router.add(
        "POST", "/api/v1/messages/send",
        [&service](const HttpRequest& request, RequestContext& context) {
            const auto result = service.send(context.who(), context.json_body(request));
            return json_response(result.at("created").as_bool() ? 201 : 200, result);
        },
        core::Access::kUser, "Send a message to users (in-app), idempotent by key");
    router.document("POST", "/api/v1/messages/send", R"({"type":"object",
        "required":["channels","recipients"],"properties":{
        "template_key":{"type":"string"},"locale":{"type":"string"},"variables":{"type":"object"},
        "subject":{"type":"string","maxLength":500},"body":{"type":"string"},
        "html":{"type":"string","description":"HTML body: email goes as multipart/alternative"},
        "channels":{"type":"array","items":{"enum":["in_app","email","sms"]}},
        "recipients":{"type":"array","items":{"type":"string"},"maxItems":1000},
        "idempotency_key":{"type":"string","maxLength":200}}})",
                    R"({"type":"object","properties":{"message_id":{"type":"integer"},
        "created":{"type":"boolean"},"deliveries":{"type":"integer"}}})");

    router.add(
        "PUT", "/api/v1/messages/settings/smtp",
        [&service](const HttpRequest& request, RequestContext& context) {
            service.save_smtp_settings(context.who().tenant, context.json_body(request));
            return json_response(200, service.smtp_settings(context.who().tenant));
        },
        core::Access::kAdmin, "Set the tenant's SMTP settings (the password is never returned)");

    router.add(
        "GET", "/api/v1/messages/settings/smtp",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.smtp_settings(context.who().tenant));
        },
        core::Access::kAdmin, "The tenant's SMTP settings, without the password");

    router.add(
        "GET", "/api/v1/messages/deliveries",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            const auto filter = [&](const char* name) {
                return core::query_filter(context, name);
            };
            const auto status = filter("status");
            if (status && *status != "queued" && *status != "sending" && *status != "sent" &&
                *status != "failed") {
                throw ApiError::validation(
                    boost::json::object{{"status", "queued, sending, sent or failed"}});
            }
            const auto channel = filter("channel");
            if (channel && *channel != "in_app" && *channel != "email" && *channel != "sms" &&
                *channel != "push") {
                throw ApiError::validation(
                    boost::json::object{{"channel", "in_app, email, sms or push"}});
            }
            const auto page = core::page_query(context, 50, 500);
            // since/until are cast by PostgreSQL; a malformed one is a 400 (SQLSTATE 22007).
            auto items = service.repository().delivery_log(
                who.tenant, status, channel, filter("recipient"), filter("since"), filter("until"),
                page.size, page.offset());
            return json_response(200, core::paged("items", std::move(items), page));
        },
        core::Access::kAdmin,
        "The delivery log: filter by status, channel, recipient, since, until (RFC 3339)");

    router.add(
        "GET", "/api/v1/messages/ws",
        [](const HttpRequest&, RequestContext&) -> inngest::HttpResponse {
            // Reached only without an Upgrade header: the socket itself is taken over before
            // routing (core/http/websocket_hub).
            throw ApiError(426, "upgrade_required",
                           "open a WebSocket here (token in Authorization or ?token=); new inbox "
                           "items are pushed as JSON");
        },
        core::Access::kPublic, "WebSocket: real-time push of new inbox items");

    router.add(
        "PUT", "/api/v1/messages/settings/sms",
        [&service](const HttpRequest& request, RequestContext& context) {
            service.save_sms_settings(context.who().tenant, context.json_body(request));
            return json_response(200, service.sms_settings(context.who().tenant));
        },
        core::Access::kAdmin,
        "Set the tenant's SMS gateway (endpoint, api_key, sign_name, template_id)");

    router.add(
        "GET", "/api/v1/messages/settings/sms",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.sms_settings(context.who().tenant));
        },
        core::Access::kAdmin, "The tenant's SMS gateway settings, without the API key");

    router.add(
        "POST", "/api/v1/messages/templates",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(201,
                                 service.add_template(context.who(), context.json_body(request)));
        },
        core::Access::kAdmin,
        "Add a template version (key, channel, locale, subject, body; Mustache)");

    router.add(
        "GET", "/api/v1/messages/templates",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(
                200, boost::json::object{
                         {"templates", service.repository().templates(context.who().tenant)}});
        },
        core::Access::kUser, "The latest version of every template");

    router.add(
        "POST", "/api/v1/messages/templates/preview",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200,
                                 service.preview(context.who().tenant, context.json_body(request)));
        },
        core::Access::kUser, "Render a stored or inline template with sample variables");

    router.add(
        "GET", "/api/v1/messages/inbox",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            std::string filter = "all";
            if (const auto it = context.query.find("status"); it != context.query.end()) {
                filter = it->second;
            }
            if (filter != "all" && filter != "unread" && filter != "read" && filter != "archived") {
                throw ApiError::validation(
                    boost::json::object{{"status", "all, unread, read or archived"}});
            }
            const auto page = core::page_query(context, 20, 200);
            auto items = service.repository().inbox(who.tenant, who.user_id, filter, page.size,
                                                    page.offset());
            return json_response(200, core::paged("items", std::move(items), page));
        },
        core::Access::kUser,
        "List the caller's inbox (status=all|unread|read|archived, page, page_size)");

    router.add(
        "GET", "/api/v1/messages/inbox/unread-count",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            return json_response(
                200, boost::json::object{
                         {"unread", service.repository().unread_count(who.tenant, who.user_id)}});
        },
        core::Access::kUser, "Count the caller's unread inbox items");

    router.add(
        "POST", "/api/v1/messages/inbox/read-all",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            return json_response(
                200, boost::json::object{
                         {"marked", service.repository().mark_all_read(who.tenant, who.user_id)}});
        },
        core::Access::kUser, "Mark every inbox item read");

    router.add(
        "POST", "/api/v1/messages/inbox/{id}/read",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            if (!service.repository().mark_read(who.tenant, who.user_id, id_param(context, "id"))) {
                throw ApiError::not_found("inbox item");
            }
            return json_response(200, boost::json::object{{"read", true}});
        },
        core::Access::kUser, "Mark one inbox item read");

    router.add(
        "POST", "/api/v1/messages/inbox/{id}/archive",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            if (!service.repository().archive(who.tenant, who.user_id, id_param(context, "id"))) {
                throw ApiError::not_found("inbox item");
            }
            return json_response(200, boost::json::object{{"archived", true}});
        },
        core::Access::kUser, "Archive one inbox item");

    router.add(
        "GET", "/api/v1/messages/{id}/deliveries",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& who = context.who();
            const auto id = id_param(context, "id");
            const auto sender = service.repository().sender_of(who.tenant, id);
            if (!sender) {
                throw ApiError::not_found("message");
            }
            if (*sender != who.user_id && !context.is_admin()) {
                throw ApiError::forbidden(
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
        },
        core::Access::kUser, "The delivery log of one message (its sender or an administrator)");
}

}  // namespace riveredge::messages
