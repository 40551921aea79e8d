// The actions nodes and states run: built-in ones (noop, set, fail) and the app's capabilities
// (stored scripts, notifications, HTTP calls to hosts the tenant allows).

#include "core/http/host_allow_list.hpp"
#include "core/http/outbound.hpp"
#include "core/json/fields.hpp"
#include "modules/workflows/definition.hpp"
#include "modules/workflows/service.hpp"

#include <boost/json/serialize.hpp>

#include <stdexcept>

namespace riveredge::workflows {

namespace json = boost::json;

json::value Service::run_action(const core::TenantId& tenant,
                                std::int64_t id,
                                const StepCall& call,
                                const json::object& action,
                                std::size_t index,
                                const json::object& scope,
                                json::object& context_changes) {
    const std::string kind(action.at("kind").as_string());
    // What makes this action's effect once: a notification, a script run, the HTTP call's
    // Idempotency-Key (the same when the step runs again; an HTTP call's own per attempt).
    const auto once =
        "workflow-" + std::to_string(id) + "-" + call.key + "-" + std::to_string(index);
    if (kind == "noop") {
        return nullptr;
    }
    if (kind == "set") {
        json::object values;
        if (const auto* given = action.if_contains("values")) {
            values = given->as_object();
        }
        if (const auto* expressions = action.if_contains("expressions")) {
            for (const auto& [key, text] : expressions->as_object()) {
                auto value = compile_expression(text.as_string()).evaluate(scope);
                if (!value) {
                    throw std::runtime_error("expression for '" + std::string(key) +
                                             "': " + value.error().message);
                }
                values[key] = std::move(*value);
            }
        }
        for (const auto& [key, value] : values) {
            context_changes[key] = value;
        }
        return values;
    }
    if (kind == "fail") {
        const auto* times = action.if_contains("times");
        if (times == nullptr || call.attempt <= times->to_number<std::int64_t>()) {
            const auto message = core::string_field(action, "message");
            throw std::runtime_error(message.empty() ? "failed by a fail action" : message);
        }
        return json::object{{"recovered_at_attempt", call.attempt}};
    }
    if (kind == "script") {
        const auto* args = action.if_contains("arguments");
        return c_.scripts
            .run_to_success(tenant, "workflows", action.at("script_id").to_number<std::int64_t>(),
                            args ? *args : nullptr, "workflow", once)
            .at("result");
    }
    if (kind == "notify") {
        std::vector<std::string> users;
        for (const auto& u : action.at("users").as_array()) {
            users.emplace_back(u.as_string());
        }
        const auto message_id =
            c_.notifier.notify(tenant, "workflows", users, core::string_field(action, "subject"),
                               core::string_field(action, "body"), once);
        return json::object{{"message_id", message_id}, {"notified", users.size()}};
    }
    if (kind == "http") {
        const std::string url(action.at("url").as_string());
        const auto host = core::http_host(url);
        if (host.empty() || !core::host_allowed(host, c_.scripts.http_allow_list(tenant))) {
            throw std::runtime_error("host '" + host + "' is not on the tenant's allow-list");
        }
        json::object request{
            {"url", url},
            {"method", action.contains("method") ? action.at("method") : json::value("POST")}};
        request["body"] = action.contains("body") ? action.at("body") : json::value(scope);
        const int timeout = action.contains("timeout_seconds")
                                ? static_cast<int>(action.at("timeout_seconds").as_int64())
                                : 30;
        // Each of the node's own retry attempts is a new call (a receiver that answers a known
        // key with its stored answer would repeat the failure); a step re-run of the same
        // attempt is the same call.
        return core::call_http(c_.outbound, request, timeout,
                               core::attempt_key(once, call.attempt));
    }
    throw std::runtime_error("unknown action kind " + kind);
}

}  // namespace riveredge::workflows
