#pragma once

// One invocation of a function: replays memoized steps, finds new ones, and decides what to
// report (protocol §10). The state here, not the interrupt exception, records the outcome.

#include "protocol/call_request.hpp"

#include <inngest/detail/invocation_api.hpp>
#include <inngest/function.hpp>
#include <inngest/step.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace inngest {
class Client;
class Context;
}  // namespace inngest

namespace inngest::detail {

/// An op object of a 206 response (protocol §9.2).
struct Op {
    std::string op;
    std::string id;
    std::string name;
    std::optional<boost::json::object> opts;
    boost::json::value data;
    std::optional<boost::json::object> error;
    /// The user's step id (`displayName`, `userland.id`) and its repeat index (`userland.index`,
    /// sent when above 0).
    std::string user_id;
    int index = 0;
    /// When the body ran: start (Unix ns) and duration (ns), as `timing: {a, b}`.
    std::optional<std::pair<std::int64_t, std::int64_t>> timing;
};

/// What the serve handler turns into an HTTP response.
struct Outcome {
    int status = 200;
    std::string body;
    /// `X-Inngest-No-Retry` when set.
    std::optional<bool> no_retry;
    /// `Retry-After` when set.
    std::optional<std::string> retry_after;
};

/// Where `send_event` steps send: the client's event API, or (in tests) a function.
using EventSink = std::function<Result<SendEventResult>(const std::vector<Event>&)>;

class Invocation {
public:
    /// `target` is the `stepId` query value: empty or `step` for discovery, else a hash.
    Invocation(const CallRequest& request,
               std::string_view target,
               int max_attempts,
               const Client* client);

    /// True while memoized steps remain ahead of the code (the step logger is muted).
    bool replaying() const noexcept { return memo_hits_ < memo_size_; }

    const Client* client() const noexcept { return client_; }
    /// Sends a `send_event` step's events: to `sink` when one is set, else the client.
    Result<SendEventResult> send_events(const std::vector<Event>& events) const;
    void set_event_sink(const EventSink* sink) noexcept { event_sink_ = sink; }

    // Used by the detail:: entry points of invocation_api.hpp.
    RunSlot open_run(std::string_view id, RunKind kind);
    [[noreturn]] void complete_run(boost::json::value data);
    [[noreturn]] void fail_run(std::exception_ptr error);
    const boost::json::value& open_async(std::string_view id, AsyncOp op, boost::json::object opts);
    void enter_step_body();
    void leave_step_body() noexcept { in_step_body_ = false; }
    void enter_parallel() noexcept { ++parallel_depth_; }
    void leave_parallel() noexcept { --parallel_depth_; }
    int parallel_depth() const noexcept { return parallel_depth_; }
    bool sealed() const noexcept { return sealed_; }
    /// The SDK caught an interrupt (a parallel scope's pending branch): not swallowed by user code.
    void interrupt_handled() noexcept { --unhandled_interrupts_; }
    /// Ends the invocation from a parallel scope.
    [[noreturn]] void interrupt_from_parallel();
    /// Where a parallel branch begins.
    BranchMark mark_branch() const noexcept;
    /// When the one new step the branch marked by `mark` planned is the invocation's only op,
    /// a run step that may run now: rewinds to `mark` and lets that step run when the branch
    /// reaches it again.
    bool rewind_for_lone_step(const BranchMark& mark);

    /// Runs `handler` for this invocation and decides the response.
    Outcome run(const Function& function, Context& context);

private:
    struct Reached {
        std::string hashed_id;
        const StepMemo* memo = nullptr;
        int index = 0;  // the how-manieth time this id was reached in this call
    };

    Op new_op(const char* op, Reached& reached, std::string_view id, RunKind kind) const;
    void time_body(Op& op) const;

    Reached reach(std::string_view id);
    [[noreturn]] void interrupt();
    Outcome step_not_found() const;

    const CallRequest& request_;
    std::string target_;  // empty in discovery mode
    int max_attempts_;
    const Client* client_;
    const EventSink* event_sink_ = nullptr;
    std::unordered_map<std::string, int> repeats_;
    // The ids reached inside parallel scopes, in order, to undo their counts on a rewind.
    std::vector<std::string> reached_in_parallel_;
    bool run_lone_step_ = false;
    std::vector<Op> ops_;
    std::vector<std::string> reached_new_;        // hashed ids of new steps seen (for diagnostics)
    std::deque<boost::json::value> async_memos_;  // parsed memos of async steps (stable)
    std::size_t memo_hits_ = 0;
    std::size_t memo_size_ = 0;
    int parallel_depth_ = 0;
    bool in_step_body_ = false;
    bool sealed_ = false;
    // Interrupts thrown and not yet caught by the SDK itself (a parallel scope's branch, a
    // failing step body). Still above 0 when the function returns or throws something else:
    // user code swallowed one.
    int unhandled_interrupts_ = 0;
    bool target_ran_ = false;
    std::optional<bool> no_retry_;
    std::optional<std::string> retry_after_;
    std::chrono::system_clock::time_point body_started_;
    std::chrono::steady_clock::time_point body_started_steady_;
};

/// How many memoized values this thread has parsed or decoded (to test that unread ones are
/// not).
std::size_t memo_reads_on_this_thread() noexcept;

/// The JSON of a 206 body.
std::string serialize_ops(const std::vector<Op>& ops);

/// Runs one call of `function` against `request` and decides the response.
/// Runs one call of `function` against `request` and decides the response; `send_event` steps
/// send to `sink` when given.
Outcome execute_call(const Function& function,
                     const CallRequest& request,
                     std::string_view target_step,
                     const Client& client,
                     const EventSink* sink = nullptr);

}  // namespace inngest::detail
