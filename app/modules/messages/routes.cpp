// HTTP in and out for the messages module: parse, call the service, write JSON.

#include "core/found.hpp"
#include "core/http/router.hpp"
#include "modules/messages/service.hpp"

namespace riveredge::messages {
namespace {

namespace json = boost::json;
using enum core::Access;
using core::Call;
using core::DomainError;

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router
        .post("/api/v1/messages/send", kUser, "Send a message to users (in-app), idempotent by key")
        .accepts(R"({"type":"object",
        "required":["channels","recipients"],"properties":{
        "template_key":{"type":"string"},"locale":{"type":"string"},"variables":{"type":"object"},
        "subject":{"type":"string","maxLength":500},"body":{"type":"string"},
        "html":{"type":"string","description":"HTML body: email goes as multipart/alternative"},
        "channels":{"type":"array","items":{"enum":["in_app","email","sms"]}},
        "recipients":{"type":"array","items":{"type":"string"},"maxItems":1000},
        "idempotency_key":{"type":"string","maxLength":200}}})")
        .returns(R"({"type":"object","properties":{"message_id":{"type":"integer"},
        "created":{"type":"boolean"},"deliveries":{"type":"integer"}}})")
        .status(201)
        .also(200)
        .to([&service](Call& call) {
            auto result = service.send(call.who(), call.body());
            if (!result.at("created").as_bool()) {
                call.answer(200);  // sent before under the same idempotency key
            }
            return result;
        });

    // A channel's settings: PUT stores them and answers them as GET shows them, secrets left out.
    using Save = void (Service::*)(const core::TenantId&, const json::object&);
    using Show = json::object (Service::*)(const core::TenantId&);
    const auto settings_routes = [&router, &service](
                                     const std::string& channel, const char* put_summary,
                                     const char* get_summary, Save save, Show show) {
        const std::string path = "/api/v1/messages/settings/" + channel;
        router.put(path, kAdmin, put_summary).to([&service, save, show](Call& call) {
            (service.*save)(call.tenant(), call.body());
            return (service.*show)(call.tenant());
        });
        router.get(path, kAdmin, get_summary).to([&service, show](Call& call) {
            return (service.*show)(call.tenant());
        });
    };
    settings_routes("smtp", "Set the tenant's SMTP settings (the password is never returned)",
                    "The tenant's SMTP settings, without the password",
                    &Service::save_smtp_settings, &Service::smtp_settings);
    settings_routes("sms",
                    "Set the tenant's SMS gateway (endpoint, api_key, sign_name, template_id)",
                    "The tenant's SMS gateway settings, without the API key",
                    &Service::save_sms_settings, &Service::sms_settings);

    router.get("/api/v1/messages/deliveries", kAdmin, "The delivery log")
        .lists(kDeliveryLogList)
        .to([&service](Call& call) {
            return call.list(service.repository().delivery_log(call.tenant(), call.paging()));
        });

    router.get("/api/v1/messages/ws", kPublic, "WebSocket: real-time push of new inbox items")
        .to([](Call&) -> json::value {
            // Reached only without an Upgrade header: the socket itself is taken over before
            // routing (core/http/websocket_hub).
            throw DomainError(
                DomainError::Kind::kUpgradeRequired, "upgrade_required",
                "open a WebSocket here (token in Authorization or ?token=); new inbox "
                "items are pushed as JSON");
        });

    router
        .post("/api/v1/messages/templates", kAdmin,
              "Add a template version (key, channel, locale, subject, body; Mustache)")
        .status(201)
        .to([&service](Call& call) { return service.add_template(call.who(), call.body()); });

    router.get("/api/v1/messages/templates", kUser, "The latest version of every template")
        .to([&service](Call& call) {
            return json::object{{"templates", service.repository().templates(call.tenant())}};
        });

    router
        .post("/api/v1/messages/templates/preview", kUser,
              "Render a stored or inline template with sample variables")
        .to([&service](Call& call) { return service.preview(call.tenant(), call.body()); });

    router.get("/api/v1/messages/inbox", kUser, "The caller's inbox")
        .lists(kInboxList)
        .to([&service](Call& call) {
            const auto& who = call.who();
            // Checked against kInboxList's enum by the router.
            const std::string filter = call.filter("status").value_or("all");
            return call.list(
                service.repository().inbox(who.tenant, who.user_id, filter, call.paging()));
        });

    router
        .get("/api/v1/messages/inbox/unread-count", kUser, "Count the caller's unread inbox items")
        .to([&service](Call& call) {
            const auto& who = call.who();
            return json::object{
                {"unread", service.repository().unread_count(who.tenant, who.user_id)}};
        });

    router.post("/api/v1/messages/inbox/read-all", kUser, "Mark every inbox item read")
        .to([&service](Call& call) {
            const auto& who = call.who();
            return json::object{
                {"marked", service.repository().mark_all_read(who.tenant, who.user_id)}};
        });

    // Marking one of the caller's inbox items: 404 when it is not theirs.
    const auto mark = [&router, &service](const char* verb, const char* summary, const char* field,
                                          auto change) {
        router.post(std::string("/api/v1/messages/inbox/{id}/") + verb, kUser, summary)
            .to([&service, field, change](Call& call) {
                const auto& who = call.who();
                if (!(service.repository().*change)(who.tenant, who.user_id, call.id())) {
                    throw DomainError::not_found("inbox item");
                }
                return json::object{{field, true}};
            });
    };
    mark("read", "Mark one inbox item read", "read", &Repository::mark_read);
    mark("archive", "Archive one inbox item", "archived", &Repository::archive);

    router
        .get("/api/v1/messages/{id}/deliveries", kUser,
             "The delivery log of one message (its sender or an administrator)")
        .to([&service](Call& call) {
            const auto& who = call.who();
            const auto id = call.id();
            const auto sender =
                core::found(service.repository().sender_of(who.tenant, id), "message");
            if (sender != user_sender(who.user_id) && !call.is_admin()) {
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
