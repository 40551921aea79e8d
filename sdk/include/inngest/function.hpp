#pragma once

/// @file
/// @brief Function options (triggers and flow control) as they are synced to Inngest.

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace inngest {

class Context;

/// Durations in options and steps. Any `std::chrono` duration converts to it (`5s`, `1min`).
using Duration = std::chrono::milliseconds;

/// The body of a function: returns its JSON result (null for none). Throw to fail.
using Handler = std::function<boost::json::value(Context&)>;

/// Run the function for each event with this name (wildcards `prefix/*` allowed).
struct EventTrigger {
    std::string event{};
    /// A CEL expression over `event` that must be true for the run to start.
    std::optional<std::string> expression{};
};

/// Run the function on a schedule: 5-field cron, optionally prefixed `TZ=<IANA zone> `.
struct CronTrigger {
    std::string cron{};
    /// Random delay added to each tick (0 or 1s..5m).
    std::optional<Duration> jitter{};
};

using Trigger = std::variant<EventTrigger, CronTrigger>;

/// Where a concurrency limit applies.
enum class ConcurrencyScope { kFunction, kEnvironment, kAccount };

/// At most `limit` steps running at once, per `key` value when given.
struct Concurrency {
    int limit = 0;
    std::optional<std::string> key{};
    /// Default: the function. `kEnvironment`/`kAccount` need a `key`.
    std::optional<ConcurrencyScope> scope{};
};

/// At most `limit` run starts per `period` (queued, not dropped), with an optional burst.
struct Throttle {
    int limit = 0;
    Duration period{};
    std::optional<int> burst{};
    std::optional<std::string> key{};
};

/// At most `limit` runs per `period` (<= 24h); extra events are dropped.
struct RateLimit {
    int limit = 0;
    Duration period{};
    std::optional<std::string> key{};
};

/// Start one run with the last event after `period` (1s..7d) of quiet, at most `timeout` late.
struct Debounce {
    Duration period{};
    std::optional<std::string> key{};
    std::optional<Duration> timeout{};
};

/// Run once with up to `max_size` (>= 2) events, or after `timeout` (>= 1s).
struct BatchEvents {
    int max_size = 0;
    Duration timeout{};
    std::optional<std::string> key{};
    /// Only events for which this CEL expression is true are batched.
    std::optional<std::string> if_expression{};
};

/// A CEL expression over `event` giving a priority in seconds (clamped by the server).
struct Priority {
    std::string run{};
};

/// Cancel a running run when a matching event arrives.
struct CancelOn {
    std::string event{};
    /// CEL over `event` (the run's trigger) and `async` (the incoming event).
    std::optional<std::string> if_expression{};
    /// Stop listening after this long.
    std::optional<Duration> timeout{};
};

/// Cancel runs that do not start, or do not finish, within these limits.
struct Timeouts {
    std::optional<Duration> start{};
    std::optional<Duration> finish{};
};

enum class SingletonMode { kSkip, kCancel };

/// At most one run at a time (per `key`): skip the new one, or cancel the running one.
struct Singleton {
    SingletonMode mode = SingletonMode::kSkip;
    std::optional<std::string> key{};
};

/// Everything a function is registered with. Unset options are left out of the sync payload.
struct FunctionOptions {
    /// The function's id within the app; synced as `<app_id>-<id>`.
    std::string id{};
    /// Display name; defaults to `id`.
    std::optional<std::string> name{};
    /// One to ten triggers.
    std::vector<Trigger> triggers{};
    /// Number of retries after the first attempt (0..20); server default 4.
    std::optional<int> retries{};
    /// Up to two limits.
    std::vector<Concurrency> concurrency{};
    std::optional<Throttle> throttle{};
    std::optional<RateLimit> rate_limit{};
    std::optional<Debounce> debounce{};
    std::optional<BatchEvents> batch_events{};
    std::optional<Priority> priority{};
    /// CEL key: one run per key value per 24 hours.
    std::optional<std::string> idempotency{};
    /// Up to five cancellation rules.
    std::vector<CancelOn> cancel_on{};
    std::optional<Timeouts> timeouts{};
    std::optional<Singleton> singleton{};
    /// Runs after the function fails for good, with the `inngest/function.failed` event.
    /// Synced as a second function `<id>-failure`.
    Handler on_failure{};
};

/// Formats a duration the way Inngest time strings are written (`90s` -> `1m30s`, `1d`).
std::string format_duration(Duration duration);

}  // namespace inngest

namespace inngest {

/// A registered function: its options, its synced id and its body. Created by
/// `Client::create_function`; immutable afterwards.
class Function {
public:
    Function(std::string slug, FunctionOptions options, Handler handler);

    /// The synced id, `<app_id>-<id>`.
    const std::string& slug() const noexcept { return slug_; }
    /// The id given at registration.
    const std::string& id() const noexcept { return options_.id; }
    /// The display name (`name`, or the id).
    const std::string& name() const noexcept { return name_; }
    const FunctionOptions& options() const noexcept { return options_; }
    const Handler& handler() const noexcept { return handler_; }
    /// Retries + 1, with the server's default of 4 retries when unset.
    int max_attempts() const noexcept;

private:
    std::string slug_{};
    std::string name_{};
    FunctionOptions options_;
    Handler handler_{};
};

}  // namespace inngest
