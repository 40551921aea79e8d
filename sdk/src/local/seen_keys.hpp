#pragma once

// The executor's dedupe keys (event ids, idempotency keys), each remembered for 24 hours.
//
// Recent keys are kept exactly. With a state store, keys older than the recent window move into
// fixed-size Bloom filters, one per hour of moves, dropped 24 hours after their newest key; a key
// that a filter may hold is confirmed against the store (which has every key). So memory is
// bounded by the recent window and a few filters, whatever the event rate, and a duplicate is
// still caught after the window: the filters never miss a key they hold.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace inngest::local::internal {

using TimePoint = std::chrono::system_clock::time_point;

class SeenKeys {
public:
    /// Asks the store whether `key` was seen at or after `since_ms`.
    using Lookup = std::function<bool(const std::string& key, std::int64_t since_ms)>;

    static constexpr std::chrono::hours kWindow{24};

    /// True when `key` was seen in the 24 hours before `now`.
    bool seen(const std::string& key, TimePoint now, const Lookup& lookup) const;
    void insert(const std::string& key, TimePoint at);
    /// When `key` was seen, if it is still among the exact recent keys.
    std::optional<TimePoint> recent_time(const std::string& key) const;

    /// Without a store: forgets keys older than 24 hours; returns them (for the store's
    /// `forgotten`).
    std::vector<std::string> expire(TimePoint now);
    /// With a store: moves keys seen before `before` into the filters, and drops filters whose
    /// newest key is older than 24 hours.
    void move_to_filters(TimePoint before, TimePoint now);

    std::size_t recent_size() const noexcept { return recent_.size(); }
    std::size_t filter_count() const noexcept { return filters_.size(); }

private:
    struct Filter {
        TimePoint opened{};
        TimePoint newest{};
        std::size_t keys = 0;
        std::vector<std::uint64_t> bits;
    };
    static constexpr std::size_t kFilterBits = std::size_t{1} << 20;  // 128 KiB, ~110k keys at 1%
    static constexpr int kHashes = 7;
    /// Keys per filter before the next one opens (about 1% false positives at this fill).
    static constexpr std::size_t kFilterKeys = 100000;

    static void add(Filter& filter, const std::string& key);
    static bool may_hold(const Filter& filter, const std::string& key);

    std::unordered_map<std::string, TimePoint> recent_;
    // Recent keys, oldest first, pointing at the keys in `recent_` (an unordered_map never moves
    // its nodes; a node is erased only when its own entry here is popped).
    std::deque<std::pair<TimePoint, const std::string*>> order_;
    std::deque<Filter> filters_;  // oldest first
};

}  // namespace inngest::local::internal
