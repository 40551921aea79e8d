#include "protocol/call_request.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value_to.hpp>

namespace inngest::detail {
namespace {

Error malformed(std::string message) {
    return Error{ErrorCode::kMalformedRequest, std::move(message)};
}

bool read_int(const boost::json::object& object, std::string_view key, std::int64_t& out) {
    const auto* value = object.if_contains(key);
    if (value == nullptr || value->is_null()) {
        return true;
    }
    if (value->is_int64()) {
        out = value->get_int64();
        return true;
    }
    if (value->is_uint64()) {
        out = static_cast<std::int64_t>(value->get_uint64());
        return true;
    }
    return false;
}

bool read_bool(const boost::json::object& object, std::string_view key, bool& out) {
    const auto* value = object.if_contains(key);
    if (value == nullptr || value->is_null()) {
        return true;
    }
    if (!value->is_bool()) {
        return false;
    }
    out = value->get_bool();
    return true;
}

bool read_string(const boost::json::object& object, std::string_view key, std::string& out) {
    const auto* value = object.if_contains(key);
    if (value == nullptr || value->is_null()) {
        return true;
    }
    if (!value->is_string()) {
        return false;
    }
    out = value->get_string();
    return true;
}

}  // namespace

Result<CallRequest> parse_call_request(std::string_view body) {
    boost::system::error_code ec;
    boost::json::value root = boost::json::parse(body, ec);
    if (ec) {
        return malformed("request body is not valid JSON: " + ec.message());
    }
    auto* object = root.if_object();
    if (object == nullptr) {
        return malformed("request body must be a JSON object");
    }
    CallRequest request;

    try {
        if (auto* event = object->if_contains("event"); event != nullptr && !event->is_null()) {
            request.event = boost::json::value_to<Event>(*event);
        }
        if (auto* events = object->if_contains("events"); events != nullptr && !events->is_null()) {
            if (!events->is_array()) {
                return malformed("'events' must be an array");
            }
            request.events.reserve(events->get_array().size());
            for (const auto& event : events->get_array()) {
                request.events.push_back(boost::json::value_to<Event>(event));
            }
        }
    } catch (const std::exception& error) {
        return malformed(std::string("'event'/'events': ") + error.what());
    }
    if (request.event.name.empty() && request.events.empty()) {
        // Nothing to run the function with: not a call request an executor would send.
        return malformed("the call request carries no 'event'");
    }
    if (request.events.empty() && !request.event.name.empty()) {
        request.events.push_back(request.event);
    } else if (request.event.name.empty() && !request.events.empty()) {
        request.event = request.events.front();
    }

    if (auto* steps = object->if_contains("steps"); steps != nullptr && !steps->is_null()) {
        if (!steps->is_object()) {
            return malformed("'steps' must be an object");
        }
        request.steps = std::move(steps->get_object());
    }
    if (!read_int(*object, "version", request.version)) {
        return malformed("'version' must be an integer");
    }
    if (!read_bool(*object, "use_api", request.use_api)) {
        return malformed("'use_api' must be a boolean");
    }

    if (auto* ctx_value = object->if_contains("ctx");
        ctx_value != nullptr && !ctx_value->is_null()) {
        auto* ctx = ctx_value->if_object();
        if (ctx == nullptr) {
            return malformed("'ctx' must be an object");
        }
        if (!read_int(*ctx, "attempt", request.attempt) || request.attempt < 0) {
            return malformed("'ctx.attempt' must be a non-negative integer");
        }
        if (!read_int(*ctx, "max_attempts", request.max_attempts) || request.max_attempts < 0) {
            return malformed("'ctx.max_attempts' must be a non-negative integer");
        }
        if (!read_bool(*ctx, "disable_immediate_execution", request.disable_immediate_execution)) {
            return malformed("'ctx.disable_immediate_execution' must be a boolean");
        }
        bool ctx_use_api = false;
        if (!read_bool(*ctx, "use_api", ctx_use_api)) {
            return malformed("'ctx.use_api' must be a boolean");
        }
        request.use_api = request.use_api || ctx_use_api;
        if (!read_string(*ctx, "run_id", request.run_id)) {
            return malformed("'ctx.run_id' must be a string");
        }
        if (!read_string(*ctx, "fn_id", request.fn_id)) {
            return malformed("'ctx.fn_id' must be a string");
        }
        if (!read_string(*ctx, "env", request.env)) {
            return malformed("'ctx.env' must be a string");
        }
        if (auto* stack = ctx->if_contains("stack"); stack != nullptr && !stack->is_null()) {
            auto* stack_object = stack->if_object();
            if (stack_object == nullptr) {
                return malformed("'ctx.stack' must be an object");
            }
            if (auto* ids = stack_object->if_contains("stack"); ids != nullptr && !ids->is_null()) {
                if (!ids->is_array()) {
                    return malformed("'ctx.stack.stack' must be an array");
                }
                request.stack.reserve(ids->get_array().size());
                for (const auto& id : ids->get_array()) {
                    if (!id.is_string()) {
                        return malformed("'ctx.stack.stack' must hold strings");
                    }
                    request.stack.emplace_back(id.get_string());
                }
            }
        }
    }
    return request;
}

}  // namespace inngest::detail
