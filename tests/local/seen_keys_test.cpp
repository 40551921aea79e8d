// The executor's dedupe keys: exact while recent, then in Bloom filters backed by the store.

#include "local/seen_keys.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using inngest::local::internal::SeenKeys;
using inngest::local::internal::TimePoint;
using namespace std::chrono_literals;

TEST_CASE("dedupe keys: exact for 24 hours without a store", "[local][unit]") {
    SeenKeys keys;
    const TimePoint t0{std::chrono::hours(500000)};
    keys.insert("fn\nevt-1", t0);
    CHECK(keys.seen("fn\nevt-1", t0 + 23h, nullptr));
    CHECK_FALSE(keys.seen("fn\nevt-2", t0, nullptr));
    CHECK(keys.expire(t0 + 23h).empty());
    CHECK(keys.expire(t0 + 24h) == std::vector<std::string>{"fn\nevt-1"});
    CHECK_FALSE(keys.seen("fn\nevt-1", t0 + 24h, nullptr));
}

TEST_CASE("dedupe keys: older keys leave memory and the store answers for them", "[local][unit]") {
    SeenKeys keys;
    const TimePoint t0{std::chrono::hours(500000)};
    std::set<std::string> store;  // what the state store holds
    int lookups = 0;
    const SeenKeys::Lookup lookup = [&](const std::string& key, std::int64_t) {
        ++lookups;
        return store.count(key) == 1;
    };
    for (int i = 0; i < 20000; ++i) {
        const std::string key = "fn\nold-" + std::to_string(i);
        keys.insert(key, t0);
        store.insert(key);
    }
    keys.insert("fn\nrecent", t0 + 5min);
    keys.move_to_filters(t0 + 1min, t0 + 6min);
    CHECK(keys.recent_size() == 1);  // only the recent key stays exact
    CHECK(keys.filter_count() == 1);

    // Every moved key is still caught: the filter holds it and the store confirms it.
    for (int i = 0; i < 20000; i += 97) {
        CHECK(keys.seen("fn\nold-" + std::to_string(i), t0 + 2h, lookup));
    }
    CHECK(keys.seen("fn\nrecent", t0 + 2h, lookup));
    // New keys rarely reach the store (the filter's false positives only).
    lookups = 0;
    int wrongly_seen = 0;
    for (int i = 0; i < 10000; ++i) {
        wrongly_seen += keys.seen("fn\nnew-" + std::to_string(i), t0 + 2h, lookup) ? 1 : 0;
    }
    CHECK(wrongly_seen == 0);
    CHECK(lookups < 100);  // under 1%

    // A day after the newest key it held, the filter goes, and with it every lookup.
    keys.move_to_filters(t0 + 24h + 10min, t0 + 24h + 10min);
    CHECK(keys.filter_count() == 0);
    CHECK(keys.recent_size() == 0);
    lookups = 0;
    CHECK_FALSE(keys.seen("fn\nold-1", t0 + 24h + 10min, lookup));
    CHECK(lookups == 0);
}
