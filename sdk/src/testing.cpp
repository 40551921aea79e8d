#include "crypto/crypto.hpp"
#include "execution/invocation.hpp"
#include "protocol/call_request.hpp"
#include "protocol/json_scan.hpp"
#include "protocol/json_writer.hpp"
#include "time_format.hpp"

#include <inngest/testing.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <type_traits>

namespace inngest::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::system_clock;

constexpr const char* kRunId = "01TESTRUN000000000000000000";

std::string text_of(const json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

Failure failure_of(const json::value& error) {
    Failure failure;
    if (const auto* object = error.if_object()) {
        if (const auto name = text_of(*object, "name"); !name.empty()) {
            failure.name = name;
        }
        failure.message = text_of(*object, "message");
    }
    return failure;
}

json::object error_json(const Failure& failure) {
    return json::object{{"name", failure.name}, {"message", failure.message}};
}

// The event a run of `function` gets when the test names none.
Event default_event(const Function& function) {
    for (const auto& trigger : function.options().triggers) {
        if (const auto* event = std::get_if<EventTrigger>(&trigger)) {
            return Event{.name = event->event};
        }
    }
    return Event{.name = "inngest/scheduled.timer"};
}

// One run, driven as the executor drives it: discovery calls, planned steps called one by one,
// step and function retries, waits and sleeps resolved on a virtual clock.
class Engine {
public:
    Engine(const Client& client, const Function& function, const RunOptions& options)
        : client_(client),
          function_(function),
          options_(options),
          max_attempts_(options.max_attempts > 0 ? options.max_attempts : function.max_attempts()),
          start_(options.start.value_or(Clock::now())),
          now_(start_) {
        sink_ = [this](const std::vector<Event>& events) -> inngest::Result<SendEventResult> {
            SendEventResult sent;
            for (const auto& event : events) {
                result_.sent_events.push_back(event);
                sent.ids.push_back("test-event-" + std::to_string(result_.sent_events.size()));
            }
            return sent;
        };
        // Given results and failures are memoized before the first call: those steps never run.
        for (const auto& [id, data] : options.step_results) {
            memoize(detail::crypto::sha1_hex(id), json::object{{"data", data}});
        }
        for (const auto& [id, failure] : options.step_failures) {
            memoize(detail::crypto::sha1_hex(id), json::object{{"error", error_json(failure)}});
        }
        // To stop before a step runs, every new step must come back planned first.
        no_immediate_ = options.stop_before_step.has_value();
    }

    RunResult run(std::vector<Event> events) {
        if (events.empty()) {
            events.push_back(default_event(function_));
        }
        events_ = std::move(events);
        while (result_.calls < options_.max_calls) {
            const std::string target = planned_.empty() ? "step" : planned_.front();
            const int attempt = planned_.empty() ? function_attempt_ : step_attempts_[target];
            const detail::Outcome outcome = call(target, attempt);
            ++result_.calls;
            if (outcome.status == 206) {
                if (!planned_.empty()) {
                    planned_.pop_front();
                }
                if (!apply_ops(
                        json::parse(outcome.body, {}, detail::json_parse_options()).as_array())) {
                    return finish(Status::kStopped);
                }
                continue;
            }
            if (outcome.status == 200) {
                result_.output = json::parse(outcome.body, {}, detail::json_parse_options());
                return finish(Status::kCompleted);
            }
            ++result_.function_errors;
            boost::system::error_code ec;
            const json::value body = detail::parse_json(outcome.body, ec);
            result_.error = failure_of(ec ? json::value() : body);
            if (outcome.no_retry.value_or(false) || function_attempt_ + 1 >= max_attempts_) {
                return finish(Status::kFailed);
            }
            ++function_attempt_;
        }
        result_.error = Failure{
            "Error", "the run did not end within " + std::to_string(options_.max_calls) + " calls"};
        return finish(Status::kFailed);
    }

private:
    detail::Outcome call(const std::string& target, int attempt) {
        json::array events;
        for (const auto& event : events_) {
            events.push_back(json::value_from(event));
        }
        json::value body{
            {"event", events.front()},
            {"events", events},
            {"steps", steps_},
            {"ctx",
             {{"run_id", kRunId},
              {"attempt", attempt},
              {"max_attempts", max_attempts_},
              {"disable_immediate_execution", no_immediate_},
              {"stack", {{"stack", stack_}, {"current", stack_.size()}}}}},
            {"version", 2},
        };
        // The request refers into its body: both live for this call.
        const std::string text = detail::to_json(body);
        auto request = detail::parse_call_request(text);
        if (!request) {
            throw std::logic_error("testing: built an unreadable call: " + request.error().message);
        }
        return detail::execute_call(function_, *request, target, client_, &sink_);
    }

    // Acts on one call's ops as the executor would; false when the run stops here.
    bool apply_ops(const json::array& ops) {
        bool retrying = false;
        for (const auto& value : ops) {
            const auto& op = value.as_object();
            const std::string kind = text_of(op, "op");
            const std::string hashed = text_of(op, "id");
            if (kind == "StepPlanned") {
                if (options_.stop_before_step == user_id(op)) {
                    return false;
                }
                planned_.push_back(hashed);
                no_immediate_ = true;
            } else if (kind == "StepRun") {
                record(op, step_kind(op), op.at("data"), std::nullopt, step_attempts_[hashed] + 1);
                memoize(hashed, json::object{{"data", op.at("data")}});
            } else if (kind == "StepError") {
                ++step_attempts_[hashed];
                planned_.push_front(hashed);  // the server calls it again
                retrying = true;
            } else if (kind == "StepFailed") {
                const Failure failure = failure_of(op.at("error"));
                record(op, step_kind(op), nullptr, failure, step_attempts_[hashed] + 1);
                memoize(hashed, json::object{{"error", error_json(failure)}});
            } else if (kind == "Sleep") {
                const auto opts = opts_of(op);
                const json::value* duration = opts.if_contains("duration");
                advance(duration != nullptr ? *duration : op.at("name"));
                record(op, "sleep", nullptr, std::nullopt, 0);
                memoize(hashed, nullptr);
            } else if (kind == "WaitForEvent") {
                resolve_wait(op, hashed);
            } else if (kind == "InvokeFunction") {
                resolve_invoke(op, hashed);
            } else {
                throw std::logic_error("testing: the SDK reported an unknown op " + kind);
            }
        }
        if (planned_.empty() && !retrying && !options_.stop_before_step) {
            no_immediate_ = false;  // the parallel group is done
        }
        return true;
    }

    void resolve_wait(const json::object& op, const std::string& hashed) {
        const auto opts = opts_of(op);
        WaitRequest request{user_id(op), text_of(opts, "event"), std::nullopt,
                            text_of(opts, "timeout")};
        if (opts.contains("if")) {
            request.if_expression = text_of(opts, "if");
        }
        std::optional<Event> received;
        if (options_.on_wait) {
            received = options_.on_wait(request);
        }
        json::value data = nullptr;
        if (received) {
            data = json::value_from(*received);
        } else {
            advance(json::value(request.timeout));
        }
        record(op, "wait_for_event", data, std::nullopt, 0);
        memoize(hashed, data);
    }

    void resolve_invoke(const json::object& op, const std::string& hashed) {
        const auto opts = opts_of(op);
        InvokeRequest request{user_id(op), text_of(opts, "function_id"), {}};
        if (const auto* payload = opts.if_contains("payload");
            payload != nullptr && payload->is_object()) {
            if (const auto* data = payload->as_object().if_contains("data");
                data != nullptr && data->is_object()) {
                request.data = data->as_object();
            }
        }
        if (!options_.on_invoke) {
            record(op, "invoke", nullptr, std::nullopt, 0);
            memoize(hashed, json::object{{"data", nullptr}});
            return;
        }
        try {
            json::value data = options_.on_invoke(request);
            record(op, "invoke", data, std::nullopt, 0);
            memoize(hashed, json::object{{"data", std::move(data)}});
        } catch (const std::exception& e) {
            const Failure failure{"Error", e.what()};
            record(op, "invoke", nullptr, failure, 0);
            memoize(hashed, json::object{{"error", error_json(failure)}});
        }
    }

    static json::object opts_of(const json::object& op) {
        const auto* opts = op.if_contains("opts");
        return opts != nullptr && opts->is_object() ? opts->as_object() : json::object{};
    }

    static std::string user_id(const json::object& op) {
        if (const auto* userland = op.if_contains("userland");
            userland != nullptr && userland->is_object()) {
            const auto& object = userland->as_object();
            std::string id = text_of(object, "id");
            if (const auto* index = object.if_contains("index");
                index != nullptr && index->is_int64() && index->as_int64() > 0) {
                id += ":" + std::to_string(index->as_int64());
            }
            return id;
        }
        return text_of(op, "displayName");
    }

    static std::string step_kind(const json::object& op) {
        return text_of(opts_of(op), "type") == "step.sendEvent" ? "send_event" : "run";
    }

    // Moves the virtual clock to a sleep's or timeout's end (a duration or an instant).
    void advance(const json::value& until) {
        if (!until.is_string()) {
            return;
        }
        const std::string_view text = until.get_string();
        if (const auto instant = detail::parse_rfc3339(text)) {
            now_ = std::max(now_, *instant);
        } else if (const auto duration = detail::parse_time_string(text)) {
            now_ += *duration;
        }
    }

    void record(const json::object& op,
                std::string kind,
                json::value data,
                std::optional<Failure> error,
                int attempts) {
        StepRecord step;
        step.id = user_id(op);
        step.hashed_id = text_of(op, "id");
        step.kind = std::move(kind);
        step.attempts = attempts;
        step.data = std::move(data);
        step.error = std::move(error);
        step.opts = opts_of(op);
        step.finished_at = now_;
        result_.steps.push_back(std::move(step));
        function_attempt_ = 0;  // progress: the function's attempts count afresh
    }

    void memoize(const std::string& hashed, json::value value) {
        steps_[hashed] = std::move(value);
        stack_.emplace_back(hashed);
    }

    RunResult finish(Status status) {
        result_.status = status;
        if (status != Status::kFailed) {
            result_.error.reset();
        }
        result_.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now_ - start_);
        return std::move(result_);
    }

    const Client& client_;
    const Function& function_;
    const RunOptions& options_;
    int max_attempts_;
    Clock::time_point start_;
    Clock::time_point now_;
    detail::EventSink sink_;
    std::vector<Event> events_;
    json::object steps_;
    json::array stack_;
    std::deque<std::string> planned_;
    std::map<std::string, int> step_attempts_;
    int function_attempt_ = 0;
    bool no_immediate_ = false;
    RunResult result_;
};

}  // namespace

const StepRecord* RunResult::step(std::string_view id) const noexcept {
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
        if (it->id == id) {
            return &*it;
        }
    }
    return nullptr;
}

RunResult run(const Client& client, std::string_view function_id, const RunOptions& options) {
    const Function* function = client.find_function(function_id);
    if (function == nullptr) {
        function = client.find_function(client.app_id() + "-" + std::string(function_id));
    }
    if (function == nullptr) {
        throw std::invalid_argument("testing: no function '" + std::string(function_id) +
                                    "' in app " + client.app_id());
    }
    RunResult result = Engine(client, *function, options).run(options.events);
    if (result.status != Status::kFailed) {
        return result;
    }
    const Function* on_failure = client.find_function(function->slug() + "-failure");
    if (on_failure == nullptr) {
        return result;
    }
    // The handler gets the event the server sends when a run fails for good.
    const std::vector<Event> events =
        options.events.empty() ? std::vector<Event>{default_event(*function)} : options.events;
    Event failed{.name = "inngest/function.failed",
                 .data = {{"function_id", function->slug()},
                          {"run_id", kRunId},
                          {"error", error_json(*result.error)},
                          {"event", json::value_from(events.front())}}};
    RunOptions handler_options;
    handler_options.start = options.start;
    handler_options.on_wait = options.on_wait;
    handler_options.on_invoke = options.on_invoke;
    RunResult handled = Engine(client, *on_failure, handler_options).run({std::move(failed)});
    if (handled.status == Status::kCompleted) {
        result.on_failure_output = std::move(handled.output);
    } else {
        result.on_failure_error = handled.error;
    }
    for (auto& event : handled.sent_events) {
        result.sent_events.push_back(std::move(event));
    }
    return result;
}

}  // namespace inngest::testing
