#pragma once

// Template glue between `Step` (header-only templates) and the executor (compiled in sdk/src).
// Not API: anything in inngest::detail may change without notice.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace inngest::detail {

class Invocation;

/// Unwinds user code when a step ends the invocation. Deliberately not a std::exception, so
/// `catch (const std::exception&)` in user code lets it pass.
struct Interrupt final {};

/// What `Step::run` must do with a step it has just reached.
struct RunSlot {
    /// The memoized result as JSON text, not parsed yet; empty when the body must execute now.
    std::string_view memo{};

    bool memoized() const noexcept { return !memo.empty(); }
};

/// Parses a memoized result (on first use: a step whose result is never read is never parsed).
boost::json::value read_memo(std::string_view memo);
/// The same for a result read as a string: decoded straight from the JSON text.
std::string read_memo_string(std::string_view memo);

/// How a step whose body runs in the SDK is reported: `step.run` as itself, `send_event` as the
/// official SDKs name it ("sendEvent", `opts.type` "step.sendEvent").
enum class RunKind { kRun, kSendEvent };

/// Reaches a run step: returns its memo, or a slot to execute. Throws `Interrupt` when the step
/// is only planned (or not the targeted one) and `StepError` for a memoized failure.
RunSlot open_run(Invocation& invocation, std::string_view id, RunKind kind = RunKind::kRun);
/// Records a successful step body and ends the invocation.
[[noreturn]] void complete_run(Invocation& invocation, boost::json::value data);
/// Records a failed step body (the current exception) and ends the invocation.
[[noreturn]] void fail_run(Invocation& invocation, std::exception_ptr error);

/// Marks the current thread as being inside a step body, so nested steps are refused.
class StepBodyScope {
public:
    explicit StepBodyScope(Invocation& invocation);
    ~StepBodyScope();
    StepBodyScope(const StepBodyScope&) = delete;
    StepBodyScope& operator=(const StepBodyScope&) = delete;

private:
    Invocation& invocation_;
};

/// Kinds of steps the server carries out (they always end the invocation when new).
enum class AsyncOp { kSleep, kWaitForEvent, kInvokeFunction };

/// Reaches an async step: returns its memo (possibly null), or records the op and throws
/// `Interrupt`.
const boost::json::value& open_async(Invocation& invocation,
                                     std::string_view id,
                                     AsyncOp op,
                                     boost::json::object opts);

/// Where an invocation stood when a parallel branch began, so that it can be rewound there.
struct BranchMark {
    std::size_t reached = 0;
    std::size_t memo_hits = 0;
    std::size_t new_steps = 0;
    std::size_t ops = 0;
};

/// Discovery of parallel branches: each branch runs until its first new step, which is
/// planned rather than run; the scope then ends the invocation if any branch was pending. When
/// the branches reached only one new step, a run step, and immediate execution is allowed, that
/// branch runs again and executes it at once, as the official SDKs do.
class ParallelScope {
public:
    explicit ParallelScope(Invocation& invocation);
    ~ParallelScope();
    ParallelScope(const ParallelScope&) = delete;
    ParallelScope& operator=(const ParallelScope&) = delete;

    /// True once a step has executed or the invocation is otherwise finished: skip branches.
    bool sealed() const noexcept;
    /// Called before branch `index` runs.
    void begin_branch(std::size_t index) noexcept;
    /// Called when a branch was interrupted by a new step.
    void branch_pending() noexcept;
    /// After every branch ran once: the branch to run again because its one new step runs now
    /// (the invocation is rewound to where that branch began).
    std::optional<std::size_t> lone_step_branch();
    /// Throws `Interrupt` when any branch is pending; otherwise returns.
    void finish();

private:
    Invocation& invocation_;
    int pending_ = 0;
    bool finished_ = false;
    std::size_t current_ = 0;
    BranchMark current_mark_{};
    std::size_t pending_branch_ = 0;
    BranchMark pending_mark_{};
};

}  // namespace inngest::detail
