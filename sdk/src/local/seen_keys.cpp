#include "local/seen_keys.hpp"

#include <algorithm>

namespace inngest::local::internal {
namespace {

// Two independent 64-bit hashes of the key; filter positions are h1 + i * h2 (Kirsch and
// Mitzenmacher), which is as good as k independent hashes for a Bloom filter.
std::pair<std::uint64_t, std::uint64_t> hashes(const std::string& key) {
    std::uint64_t fnv = 0xcbf29ce484222325ULL;
    for (const char c : key) {
        fnv = (fnv ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    std::uint64_t mixed = std::hash<std::string>{}(key) ^ 0x9e3779b97f4a7c15ULL;
    mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ULL;
    mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebULL;
    mixed ^= mixed >> 31;
    return {fnv, mixed | 1};
}

std::int64_t millis(TimePoint at) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

}  // namespace

void SeenKeys::add(Filter& filter, const std::string& key) {
    const auto [h1, h2] = hashes(key);
    for (int i = 0; i < kHashes; ++i) {
        const std::uint64_t bit = (h1 + static_cast<std::uint64_t>(i) * h2) % kFilterBits;
        filter.bits[bit / 64] |= std::uint64_t{1} << (bit % 64);
    }
}

bool SeenKeys::may_hold(const Filter& filter, const std::string& key) {
    const auto [h1, h2] = hashes(key);
    for (int i = 0; i < kHashes; ++i) {
        const std::uint64_t bit = (h1 + static_cast<std::uint64_t>(i) * h2) % kFilterBits;
        if ((filter.bits[bit / 64] & (std::uint64_t{1} << (bit % 64))) == 0) {
            return false;
        }
    }
    return true;
}

bool SeenKeys::seen(const std::string& key, TimePoint now, const Lookup& lookup) const {
    if (const auto it = recent_.find(key); it != recent_.end()) {
        return now - it->second < kWindow;
    }
    const bool maybe = std::any_of(filters_.begin(), filters_.end(), [&](const Filter& filter) {
        return now - filter.newest < kWindow && may_hold(filter, key);
    });
    return maybe && lookup && lookup(key, millis(now - kWindow));
}

void SeenKeys::insert(const std::string& key, TimePoint at) {
    const auto [it, added] = recent_.try_emplace(key, at);
    if (!added) {
        if (it->second == at) {
            return;  // one entry per (key, time): popping it is what erases the key
        }
        it->second = at;
    }
    order_.emplace_back(at, &it->first);
}

std::optional<TimePoint> SeenKeys::recent_time(const std::string& key) const {
    const auto it = recent_.find(key);
    return it == recent_.end() ? std::nullopt : std::optional(it->second);
}

std::vector<std::string> SeenKeys::expire(TimePoint now) {
    std::vector<std::string> gone;
    while (!order_.empty() && now - order_.front().first >= kWindow) {
        const auto it = recent_.find(*order_.front().second);
        if (it != recent_.end() && it->second == order_.front().first) {
            gone.push_back(it->first);
            recent_.erase(it);
        }
        order_.pop_front();
    }
    return gone;
}

void SeenKeys::move_to_filters(TimePoint before, TimePoint now) {
    while (!order_.empty() && order_.front().first < before) {
        const auto [at, key] = order_.front();
        const auto it = recent_.find(*key);
        if (it != recent_.end() && it->second == at) {
            if (now - at < kWindow) {
                // One filter per hour of moves, so whole filters can be dropped as they age.
                // And a new one when it is full: a restore moves a whole day of keys at once.
                if (filters_.empty() || now - filters_.back().opened >= std::chrono::hours(1) ||
                    filters_.back().keys >= kFilterKeys) {
                    filters_.push_back(
                        Filter{now, at, 0, std::vector<std::uint64_t>(kFilterBits / 64)});
                }
                add(filters_.back(), *key);
                ++filters_.back().keys;
                filters_.back().newest = std::max(filters_.back().newest, at);
            }
            recent_.erase(it);
        }
        order_.pop_front();
    }
    while (!filters_.empty() && now - filters_.front().newest >= kWindow) {
        filters_.pop_front();
    }
}

}  // namespace inngest::local::internal
