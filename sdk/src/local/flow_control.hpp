#pragma once

// A synced function's flow-control options, compiled, and the arithmetic the executor applies
// with them. The executor keeps the state (debounce and batch buffers, throttle and rate-limit
// windows) as jobs in its state store, so it survives a restart; this file holds no state.

#include <inngest/errors.hpp>
#include <inngest/local/expression.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace inngest::local::internal {

using TimePoint = std::chrono::system_clock::time_point;
using std::chrono::milliseconds;

enum class ConcurrencyScope { kFunction, kEnvironment, kAccount };

struct ConcurrencyLimit {
    int limit = 0;
    ConcurrencyScope scope = ConcurrencyScope::kFunction;
    std::optional<Expression> key;
};

struct ThrottleRule {
    int limit = 1;
    milliseconds period{};
    int burst = 1;
    std::optional<Expression> key;
};

struct RateLimitRule {
    int limit = 1;
    milliseconds period{};
    std::optional<Expression> key;
};

struct DebounceRule {
    milliseconds period{};
    std::optional<milliseconds> timeout;
    std::optional<Expression> key;
};

struct BatchRule {
    int max_size = 2;
    milliseconds timeout{};
    std::optional<Expression> key;
    std::optional<Expression> condition;
};

struct SingletonRule {
    bool cancel = false;  // else skip
    std::optional<Expression> key;
};

struct FlowControl {
    std::vector<ConcurrencyLimit> concurrency;
    std::optional<ThrottleRule> throttle;
    std::optional<RateLimitRule> rate_limit;
    std::optional<DebounceRule> debounce;
    std::optional<BatchRule> batch;
    std::optional<SingletonRule> singleton;
    std::optional<Expression> priority;
};

/// Compiles the flow-control fields of function `slug`'s config (protocol §7.4); a field the
/// server would refuse is an error naming it.
Result<FlowControl> compile_flow_control(const std::string& slug,
                                         const boost::json::object& config);

/// `key` evaluated against the event as text (empty without a key, or when it does not
/// evaluate): the part of a flow-control bucket's name the event decides.
std::string key_of(const std::optional<Expression>& key, const boost::json::object& event);

/// The name of the concurrency bucket a run of `slug` holds for `limit`: function-scoped
/// buckets are the function's own, environment and account buckets are shared by every function
/// that names the same key.
std::string concurrency_bucket(const std::string& slug,
                               const ConcurrencyLimit& limit,
                               const boost::json::object& event);

/// The priority in seconds `priority` gives the event (clamped to ±43200 as the server does);
/// 0 without an expression.
std::int64_t priority_of(const std::optional<Expression>& priority,
                         const boost::json::object& event);

/// Throttling by the generic cell rate algorithm: runs start `period / limit` apart, the first
/// `burst` back to back. Given the bucket's theoretical arrival time (none when idle), when the
/// next run may start and the new arrival time.
struct ThrottleSlot {
    TimePoint start;
    TimePoint next_arrival;
};
ThrottleSlot throttle_slot(const ThrottleRule& rule,
                           std::optional<TimePoint> arrival,
                           TimePoint now);

}  // namespace inngest::local::internal
