#pragma once

/// @file
/// @brief Run a function in this process, as Inngest would, to test it: no server, no HTTP, no
/// signing. Steps can be given results (they then never run) or failures, waits and invokes are
/// answered by callbacks, events a `send_event` step sends are kept, retries and `on_failure`
/// happen as on the server, and time is virtual (sleeps move a clock; nothing waits).
///
/// @code
/// auto result = inngest::testing::run(client, "process-order",
///                                     {.events = {{.name = "shop/order.placed",
///                                                  .data = {{"order", 7}}}},
///                                      .step_results = {{"charge-card", {{"ok", true}}}}});
/// REQUIRE(result.status == inngest::testing::Status::kCompleted);
/// CHECK(result.step("send-receipt")->data == "sent");
/// @endcode

#include <inngest/client.hpp>
#include <inngest/event.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inngest::testing {

/// An error a step or a run ended with (`name` as the SDKs report it: "Error",
/// "NonRetriableError", ...).
struct Failure {
    std::string name = "Error";
    std::string message{};
};

/// What a `wait_for_event` step asked for.
struct WaitRequest {
    std::string step_id{};
    std::string event{};
    /// The step's `if` expression, when it has one.
    std::optional<std::string> if_expression{};
    /// The step's timeout as an Inngest time string ("1h").
    std::string timeout{};
};

/// What an `invoke` step asked for.
struct InvokeRequest {
    std::string step_id{};
    /// The function invoked, as the step names it (app prefix included).
    std::string function_id{};
    boost::json::object data{};
};

struct RunOptions {
    /// The triggering events; the first is `ctx.event`. When empty, one event named after the
    /// function's first event trigger (or `inngest/scheduled.timer` for a cron), with no data.
    std::vector<Event> events{};
    /// Steps that do not run: their result by step id (a repeated id's later uses are
    /// `"id:1"`, `"id:2"`...). A `send_event` step given a result sends nothing.
    std::map<std::string, boost::json::value, std::less<>> step_results{};
    /// Steps that fail on every attempt with this error instead of running their body.
    std::map<std::string, Failure, std::less<>> step_failures{};
    /// The event a `wait_for_event` receives, or nothing for its timeout (the default).
    std::function<std::optional<Event>(const WaitRequest&)> on_wait{};
    /// What an `invoke` returns (null by default); throwing fails the step with that message.
    std::function<boost::json::value(const InvokeRequest&)> on_invoke{};
    /// When the run starts on the virtual clock (the system clock's now by default).
    std::optional<std::chrono::system_clock::time_point> start{};
    /// Stop before this step's body runs: the result has the steps up to it, status kStopped.
    std::optional<std::string> stop_before_step{};
    /// Attempts per step and for the function (0: the function's `retries` + 1).
    int max_attempts = 0;
    /// Calls of the function before the run is given up as one that never ends.
    int max_calls = 1000;
};

enum class Status {
    kCompleted,
    kFailed,
    /// Stopped at `RunOptions::stop_before_step`.
    kStopped,
};

/// One step as the run saw it, in the order the steps were reported. Steps given a result or a
/// failure in `RunOptions` never run and are not listed.
struct StepRecord {
    /// The id the function gave the step, and the hashed id the protocol uses.
    std::string id{};
    std::string hashed_id{};
    /// "run", "send_event", "sleep", "wait_for_event" or "invoke".
    std::string kind{};
    /// Attempts its body took (1 when it succeeded at once; 0 for steps that run nowhere).
    int attempts = 0;
    /// Its result: a run step's value, the event a wait received (null on timeout), an
    /// invoke's value; null for a sleep.
    boost::json::value data{};
    /// Set when it failed for good.
    std::optional<Failure> error{};
    /// The op's options as the SDK reported them (a sleep's duration, a wait's event...).
    boost::json::object opts{};
    /// On the virtual clock: when it finished (a sleep: when it woke up).
    std::chrono::system_clock::time_point finished_at{};
};

struct RunResult {
    Status status = Status::kFailed;
    /// The function's return value (kCompleted).
    boost::json::value output{};
    /// Why the run failed (kFailed).
    std::optional<Failure> error{};
    std::vector<StepRecord> steps{};
    /// The events `send_event` steps sent (nothing leaves the process), with the ids returned.
    std::vector<Event> sent_events{};
    /// Calls of the function, and those that failed outside any step (each one a
    /// function-level retry, or the final failure).
    int calls = 0;
    int function_errors = 0;
    /// Virtual time from the start to the end.
    std::chrono::milliseconds elapsed{0};
    /// When the run failed and the function has `on_failure`: that handler's result, run with the
    /// `inngest/function.failed` event.
    std::optional<boost::json::value> on_failure_output{};
    std::optional<Failure> on_failure_error{};

    /// The last record of step `id`, or null.
    const StepRecord* step(std::string_view id) const noexcept;
};

/// Runs function `function_id` of `client` (its id as registered, or its full slug) to its end.
/// Throws `std::invalid_argument` for an unknown function.
RunResult run(const Client& client, std::string_view function_id, const RunOptions& options = {});

}  // namespace inngest::testing
