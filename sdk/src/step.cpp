#include "execution/invocation.hpp"
#include "time_format.hpp"

#include <inngest/client.hpp>
#include <inngest/errors.hpp>
#include <inngest/step.hpp>

#include <boost/json/value_from.hpp>

namespace inngest {
namespace {

bool only_key(const boost::json::value& value, std::string_view key) {
    const auto* object = value.if_object();
    return object != nullptr && object->size() == 1 && object->contains(key);
}

StepError invoke_error(std::string_view id, const boost::json::value& error) {
    std::string name = "Error";
    std::string message = "invoked function failed";
    if (const auto* object = error.if_object()) {
        if (const auto* v = object->if_contains("name"); v != nullptr && v->is_string()) {
            name = v->get_string();
        }
        if (const auto* v = object->if_contains("message"); v != nullptr && v->is_string()) {
            message = v->get_string();
        }
    }
    return StepError(std::string(id), std::move(name), message, {}, error);
}

}  // namespace

void Step::sleep(std::string_view id, Duration duration) {
    if (duration < Duration::zero()) {
        throw std::invalid_argument("sleep duration must not be negative");
    }
    detail::open_async(*invocation_, id, detail::AsyncOp::kSleep,
                       boost::json::object{{"duration", format_duration(duration)}});
}

void Step::sleep_until(std::string_view id, std::chrono::system_clock::time_point until) {
    detail::open_async(*invocation_, id, detail::AsyncOp::kSleep,
                       boost::json::object{{"duration", detail::format_rfc3339(until)}});
}

void Step::sleep_until(std::string_view id, std::string_view rfc3339) {
    const auto until = detail::parse_rfc3339(rfc3339);
    if (!until) {
        throw std::invalid_argument("sleep_until: '" + std::string(rfc3339) +
                                    "' is not an RFC 3339 instant");
    }
    sleep_until(id, *until);
}

std::optional<Event> Step::wait_for_event(std::string_view id, const WaitForEventOptions& options) {
    if (options.event.empty()) {
        throw std::invalid_argument("wait_for_event needs an event name");
    }
    boost::json::object opts{{"event", options.event},
                             {"timeout", format_duration(options.timeout)}};
    std::string expression;
    if (options.match) {
        expression = "event." + *options.match + " == async." + *options.match;
    }
    if (options.if_expression) {
        expression = expression.empty()
                         ? *options.if_expression
                         : "(" + expression + ") && (" + *options.if_expression + ")";
    }
    if (!expression.empty()) {
        opts["if"] = expression;
    }
    const boost::json::value& memo =
        detail::open_async(*invocation_, id, detail::AsyncOp::kWaitForEvent, std::move(opts));
    if (memo.is_null()) {
        return std::nullopt;
    }
    if (only_key(memo, "data")) {
        const auto& data = memo.get_object().at("data");
        if (data.is_null()) {
            return std::nullopt;
        }
        return boost::json::value_to<Event>(data);
    }
    return boost::json::value_to<Event>(memo);
}

SendEventResult Step::send_event(std::string_view id, const Event& event) {
    return send_event(id, std::vector<Event>{event});
}

SendEventResult Step::send_event(std::string_view id, const std::vector<Event>& events) {
    const detail::RunSlot slot = detail::open_run(*invocation_, id, detail::RunKind::kSendEvent);
    if (slot.memoized()) {
        return boost::json::value_to<SendEventResult>(detail::read_memo(slot.memo));
    }
    boost::json::value data;
    try {
        Result<SendEventResult> sent = invocation_->send_events(events);
        if (!sent) {
            if (sent.error().code == ErrorCode::kInvalidArgument) {
                throw NonRetriableError(sent.error().message);
            }
            throw std::runtime_error(sent.error().message);
        }
        data = boost::json::value_from(*sent);
    } catch (...) {
        detail::fail_run(*invocation_, std::current_exception());
    }
    detail::complete_run(*invocation_, std::move(data));
}

boost::json::value Step::invoke(std::string_view id, const InvokeOptions& options) {
    if (options.function_id.empty()) {
        throw std::invalid_argument("invoke needs a function_id");
    }
    // As the TS SDK's referenceFunction: an id is a function of `app_id`, or of this app when
    // none is given. This app's full slug is accepted as it is.
    std::string target = options.function_id;
    if (options.app_id) {
        target = *options.app_id + "-" + options.function_id;
    } else if (const Client* client = invocation_->client();
               client != nullptr && client->find_function(options.function_id) == nullptr) {
        target = client->app_id() + "-" + options.function_id;
    }
    boost::json::object payload{{"data", options.data}};
    if (options.user) {
        payload["user"] = *options.user;
    }
    boost::json::object opts{{"function_id", target}, {"payload", std::move(payload)}};
    if (options.timeout) {
        opts["timeout"] = format_duration(*options.timeout);
    }
    const boost::json::value& memo =
        detail::open_async(*invocation_, id, detail::AsyncOp::kInvokeFunction, std::move(opts));
    if (memo.is_null()) {
        throw StepError(std::string(id), "InngestInvokeTimeoutError",
                        "Timed out waiting for invoked function to complete");
    }
    if (only_key(memo, "data")) {
        return memo.get_object().at("data");
    }
    if (only_key(memo, "error")) {
        throw invoke_error(id, memo.get_object().at("error"));
    }
    return memo;
}

}  // namespace inngest
