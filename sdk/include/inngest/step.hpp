#pragma once

/// @file
/// @brief `Step`: durable, memoized steps of a function run.

#include <inngest/detail/invocation_api.hpp>
#include <inngest/event.hpp>
#include <inngest/function.hpp>

#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace inngest {

/// The deepest a value returned by a step (or by a function) may nest, in arrays and objects:
/// `[[1]]` nests 2. The SDK reads step state with room for this and the protocol's levels
/// around it, so anything a step may return can be replayed.
inline constexpr int kMaxStepResultDepth = 64;

/// Options of `Step::wait_for_event`.
struct WaitForEventOptions {
    /// The event name to wait for.
    std::string event{};
    /// Give up after this long; the step then returns `std::nullopt`.
    Duration timeout{};
    /// CEL over `event` (this run's trigger) and `async` (the candidate event).
    std::optional<std::string> if_expression{};
    /// Shorthand: a dotted field that must be equal in both events, e.g. `data.order_id`.
    /// Combined with `if_expression` by `&&` when both are given.
    std::optional<std::string> match{};
};

/// Options of `Step::invoke`.
struct InvokeOptions {
    /// The function to call: its id within `app_id` (this app when unset, as the TS SDK's
    /// `referenceFunction`), or this app's full slug.
    std::string function_id{};
    /// Another app's id, to call one of its functions.
    std::optional<std::string> app_id{};
    /// The payload the invoked function receives as `event.data`.
    boost::json::object data{};
    /// Optional `event.user` for the invoked function.
    std::optional<boost::json::object> user{};
    /// Fail the step with `StepError` when the call takes longer (server default: 1 year).
    std::optional<Duration> timeout{};
};

/// The result of `Step::send_event`: the ids the event API assigned, in order.
struct SendEventResult {
    std::vector<std::string> ids{};
};

void tag_invoke(const boost::json::value_from_tag&,
                boost::json::value& out,
                const SendEventResult& result);
SendEventResult tag_invoke(const boost::json::value_to_tag<SendEventResult>&,
                           const boost::json::value& json);

/// A memoized step result that is converted on first use (returned by `Step::run_lazy`).
///
/// It refers to the call request's body, so it is valid only while the function runs: do not
/// keep it (or a pointer into it) past the function's return. `get` converts the memoized JSON
/// with `boost::json::value_to<T>` the first time and returns the same value afterwards.
template <class T>
class Lazy {
public:
    Lazy(Lazy&&) noexcept = default;
    Lazy& operator=(Lazy&&) noexcept = default;
    Lazy(const Lazy&) = delete;
    Lazy& operator=(const Lazy&) = delete;
    ~Lazy() = default;

    /// The value, converted now if it has not been yet.
    const T& get() const;
    const T& operator*() const { return get(); }
    const T* operator->() const { return &get(); }
    /// The result exactly as memoized, as JSON text (never parsed).
    std::string_view json() const noexcept { return memo_; }
    /// Whether `get` has converted the value yet.
    bool converted() const noexcept { return value_.has_value(); }

private:
    friend class Step;
    explicit Lazy(std::string_view memo) noexcept : memo_(memo) {}

    std::string_view memo_;
    mutable std::optional<T> value_{};
};

/// The durable steps of one invocation. Reached through `Context::step`.
///
/// Every invocation replays the function from the top. A step whose result is memoized returns
/// it without running anything; the first new step is run (or planned) and ends the invocation
/// by throwing an internal interrupt that user code must not swallow (`catch (...)` without a
/// rethrow is a bug; the SDK detects it and fails the attempt).
///
/// Step ids must be stable across invocations; a repeated id gets the suffixes `:1`, `:2`, ...
/// in the order the steps are reached, as the other Inngest SDKs do.
///
/// @par Thread safety
/// Not thread-safe: use a `Step` only on the thread that runs the function.
class Step {
public:
    explicit Step(detail::Invocation& invocation) noexcept : invocation_(&invocation) {}

    /// Runs `fn` once per run and returns its result (anything Boost.JSON converts).
    ///
    /// @par Replay
    /// Executes at most once per successful attempt; later invocations return the memoized
    /// value, converted with `boost::json::value_to<T>`.
    /// @par Errors
    /// An exception from `fn` fails the step: it is retried per the function's retries
    /// (`NonRetriableError` stops at once, `RetryAfterError` delays the retry). When retries
    /// are exhausted, `StepError` is thrown here on the next invocation.
    /// @par Depth
    /// A result nested deeper than `kMaxStepResultDepth` (64) arrays and objects is not
    /// memoized: the step fails at once, as if `fn` had thrown `NonRetriableError`, so
    /// `StepError` (name "NonRetriableError") is thrown here on the next invocation. Anything
    /// within the limit is read back on replay. A function's own result is held to the same
    /// limit (an invoking run replays it): deeper, the run fails without retries.
    template <class Fn>
    auto run(std::string_view id, Fn&& fn) -> std::invoke_result_t<Fn&>;

    /// `run` for a result the function may not read: a replay returns a `Lazy` that converts
    /// the memoized value only when `get` is called, so passing over a large result costs a
    /// scan of the request, not a parse and a copy. `fn` must return a value (not `void`).
    template <class Fn>
    auto run_lazy(std::string_view id, Fn&& fn)
        -> Lazy<std::remove_cvref_t<std::invoke_result_t<Fn&>>>;

    /// Pauses the run for `duration` (at most a year), without holding any thread.
    void sleep(std::string_view id, Duration duration);
    /// Pauses the run until `until` (a past instant continues at once).
    void sleep_until(std::string_view id, std::chrono::system_clock::time_point until);
    /// Pauses the run until an RFC 3339 / ISO 8601 instant, e.g. `2030-01-01T00:00:00Z`.
    void sleep_until(std::string_view id, std::string_view rfc3339);

    /// Waits for a matching event; `std::nullopt` after the timeout.
    std::optional<Event> wait_for_event(std::string_view id, const WaitForEventOptions& options);

    /// Sends events as a step (sent once per run; the ids are memoized).
    SendEventResult send_event(std::string_view id, const Event& event);
    SendEventResult send_event(std::string_view id, const std::vector<Event>& events);

    /// Calls another Inngest function and waits for its result.
    /// @par Errors
    /// `StepError` when the invoked function fails or times out.
    boost::json::value invoke(std::string_view id, const InvokeOptions& options);

    /// Typed `invoke`: converts the result with `boost::json::value_to<T>`.
    template <class T>
    T invoke_as(std::string_view id, const InvokeOptions& options) {
        return boost::json::value_to<T>(invoke(id, options));
    }

    /// Runs branches in parallel: all their new steps are reported together and executed by
    /// Inngest concurrently. Returns every branch's result (`std::monostate` for `void`) once
    /// all are memoized. An exception a branch throws (anything but the SDK's interrupt) leaves
    /// `parallel` at once and fails the attempt as if the function had thrown it (a plain
    /// exception is retried, `RetryAfterError` keeps its delay, an escaped `StepError` fails the
    /// run), even when an earlier branch had planned a step.
    template <class... Branches>
    requires(sizeof...(Branches) > 0 &&
             (std::is_invocable_v<Branches&> && ...)) auto parallel(Branches&&... branches);

    /// Dynamic fan-out: like the variadic `parallel`, for a run-time list of branches.
    template <class T>
    std::vector<T> parallel(const std::vector<std::function<T()>>& branches);

private:
    /// Runs a new step's body and ends the invocation with its result or failure.
    template <class Fn>
    [[noreturn]] void execute(Fn& fn);

    template <class Fn>
    using BranchResult = std::conditional_t<std::is_void_v<std::invoke_result_t<Fn&>>,
                                            std::monostate,
                                            std::invoke_result_t<Fn&>>;

    template <class Fn>
    static auto call_branch(Fn& fn) -> BranchResult<Fn> {
        if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
            fn();
            return std::monostate{};
        } else {
            return fn();
        }
    }

    detail::Invocation* invocation_;
};

namespace detail {

template <class T>
T convert_memo(std::string_view memo) {
    if constexpr (std::is_same_v<T, std::string>) {
        return read_memo_string(memo);
    } else {
        return boost::json::value_to<T>(read_memo(memo));
    }
}

}  // namespace detail

template <class T>
const T& Lazy<T>::get() const {
    if (!value_) {
        value_.emplace(detail::convert_memo<T>(memo_));
    }
    return *value_;
}

template <class Fn>
auto Step::run(std::string_view id, Fn&& fn) -> std::invoke_result_t<Fn&> {
    using T = std::invoke_result_t<Fn&>;
    const detail::RunSlot slot = detail::open_run(*invocation_, id);
    if (slot.memoized()) {
        if constexpr (std::is_void_v<T>) {
            return;
        } else {
            return detail::convert_memo<std::remove_cvref_t<T>>(slot.memo);
        }
    }
    execute(fn);
}

template <class Fn>
void Step::execute(Fn& fn) {
    using T = std::invoke_result_t<Fn&>;
    boost::json::value data{};
    try {
        detail::StepBodyScope body(*invocation_);
        if constexpr (std::is_void_v<T>) {
            fn();
        } else {
            data = boost::json::value_from(fn());
        }
    } catch (...) {
        detail::fail_run(*invocation_, std::current_exception());
    }
    detail::complete_run(*invocation_, std::move(data));
}

template <class Fn>
auto Step::run_lazy(std::string_view id, Fn&& fn)
    -> Lazy<std::remove_cvref_t<std::invoke_result_t<Fn&>>> {
    using T = std::remove_cvref_t<std::invoke_result_t<Fn&>>;
    static_assert(!std::is_void_v<T>, "run_lazy needs a step that returns a value; use run");
    const detail::RunSlot slot = detail::open_run(*invocation_, id);
    if (!slot.memoized()) {
        execute(fn);  // ends the invocation
    }
    return Lazy<T>(slot.memo);
}

template <class... Branches>
requires(sizeof...(Branches) > 0 &&
         (std::is_invocable_v<Branches&> && ...)) auto Step::parallel(Branches&&... branches) {
    detail::ParallelScope scope(*invocation_);
    std::tuple<std::optional<BranchResult<Branches>>...> partial{};
    auto run_branch = [&](std::size_t index, auto& branch, auto& slot) {
        if (scope.sealed()) {
            return;
        }
        scope.begin_branch(index);
        try {
            slot.emplace(call_branch(branch));
        } catch (const detail::Interrupt&) {
            scope.branch_pending();
        }
    };
    std::apply(
        [&](auto&... slots) {
            std::size_t index = 0;
            (run_branch(index++, branches, slots), ...);
        },
        partial);
    if (const auto lone = scope.lone_step_branch()) {
        std::apply(
            [&](auto&... slots) {
                std::size_t index = 0;
                ((index++ == *lone ? run_branch(*lone, branches, slots) : void()), ...);
            },
            partial);
    }
    scope.finish();
    return std::apply([](auto&... slots) { return std::make_tuple(std::move(*slots)...); },
                      partial);
}

template <class T>
std::vector<T> Step::parallel(const std::vector<std::function<T()>>& branches) {
    detail::ParallelScope scope(*invocation_);
    std::vector<std::optional<T>> partial(branches.size());
    auto run_branch = [&](std::size_t i) {
        scope.begin_branch(i);
        try {
            partial[i].emplace(branches[i]());
        } catch (const detail::Interrupt&) {
            scope.branch_pending();
        }
    };
    for (std::size_t i = 0; i < branches.size() && !scope.sealed(); ++i) {
        run_branch(i);
    }
    if (const auto lone = scope.lone_step_branch()) {
        run_branch(*lone);
    }
    scope.finish();
    std::vector<T> results{};
    results.reserve(partial.size());
    for (auto& value : partial) {
        results.push_back(std::move(*value));
    }
    return results;
}

}  // namespace inngest
