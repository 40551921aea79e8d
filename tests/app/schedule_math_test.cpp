// Fire-time maths against tables of known times, DST transitions in two zones and leap days.

#include "modules/schedules/schedule_math.hpp"

#include <catch2/catch.hpp>

using namespace riveredge::schedules;
using namespace std::chrono_literals;

namespace {

TimePoint at(const char* text) {
    const auto parsed = parse_time(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

Trigger cron(const char* expression, const char* zone = "UTC") {
    Trigger trigger;
    trigger.kind = TriggerKind::kCron;
    trigger.cron = expression;
    trigger.time_zone = zone;
    return trigger;
}

std::string next(const Trigger& trigger, const char* after) {
    const auto fire = next_fire(trigger, at(after));
    return fire ? format_utc(*fire) : "none";
}

}  // namespace

TEST_CASE("cron fire times in UTC and in zones without DST", "[schedules]") {
    struct Row {
        const char* expression;
        const char* zone;
        const char* after;
        const char* expected;
    };
    const Row table[] = {
        {"*/15 * * * *", "UTC", "2026-11-23T10:07:00.000Z", "2026-11-23T10:15:00.000Z"},
        {"*/15 * * * *", "UTC", "2026-11-23T10:15:00.000Z", "2026-11-23T10:30:00.000Z"},
        {"0 0 * * *", "UTC", "2026-12-31T23:59:59.000Z", "2027-01-01T00:00:00.000Z"},
        {"0 9 * * MON-FRI", "Asia/Shanghai", "2026-11-20T02:00:00.000Z",
         "2026-11-23T01:00:00.000Z"},
        {"30 8 1 * *", "Asia/Shanghai", "2026-11-23T00:00:00.000Z", "2026-12-01T00:30:00.000Z"},
        {"0 12 * JAN,JUL *", "UTC", "2026-02-01T00:00:00.000Z", "2026-07-01T12:00:00.000Z"},
        // Day-of-month and day-of-week both restricted: either matches (Vixie cron).
        {"0 0 13 * FRI", "UTC", "2026-11-01T00:00:00.000Z", "2026-11-06T00:00:00.000Z"},
        // Leap days.
        {"0 0 29 2 *", "UTC", "2026-03-01T00:00:00.000Z", "2028-02-29T00:00:00.000Z"},
        {"0 6 29 FEB *", "Asia/Shanghai", "2027-06-01T00:00:00.000Z", "2028-02-28T22:00:00.000Z"},
        {"0 0 31 * *", "UTC", "2027-01-31T00:00:00.000Z", "2027-03-31T00:00:00.000Z"},
    };
    for (const auto& row : table) {
        CAPTURE(row.expression, row.zone, row.after);
        CHECK(next(cron(row.expression, row.zone), row.after) == row.expected);
    }
}

TEST_CASE("DST in New York: the skipped hour does not fire and the repeated hour fires once",
          "[schedules]") {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist that day.
    CHECK(next(cron("30 2 * * *", "America/New_York"), "2026-03-07T12:00:00.000Z") ==
          "2026-03-09T06:30:00.000Z");
    CHECK(next(cron("30 3 * * *", "America/New_York"), "2026-03-08T06:00:00.000Z") ==
          "2026-03-08T07:30:00.000Z");
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice and fires once.
    const auto repeated = cron("30 1 * * *", "America/New_York");
    CHECK(next(repeated, "2026-11-01T04:00:00.000Z") == "2026-11-01T05:30:00.000Z");
    CHECK(next(repeated, "2026-11-01T05:30:00.000Z") == "2026-11-02T06:30:00.000Z");
    CHECK(next(repeated, "2026-11-01T06:00:00.000Z") == "2026-11-02T06:30:00.000Z");
    // Every 30 minutes across the fall-back: the repeated local hour is not run again.
    const auto fires =
        upcoming_fires(cron("*/30 * * * *", "America/New_York"), at("2026-11-01T04:45:00.000Z"), 4);
    REQUIRE(fires.size() == 4);
    CHECK(format_utc(fires[0]) == "2026-11-01T05:00:00.000Z");  // 01:00 EDT
    CHECK(format_utc(fires[1]) == "2026-11-01T05:30:00.000Z");  // 01:30 EDT
    CHECK(format_utc(fires[2]) == "2026-11-01T07:00:00.000Z");  // 02:00 EST
    CHECK(format_utc(fires[3]) == "2026-11-01T07:30:00.000Z");
}

TEST_CASE("DST in Berlin: spring forward and fall back", "[schedules]") {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    CHECK(next(cron("0 2 * * *", "Europe/Berlin"), "2026-03-28T12:00:00.000Z") ==
          "2026-03-30T00:00:00.000Z");
    CHECK(next(cron("0 9 * * *", "Europe/Berlin"), "2026-03-28T12:00:00.000Z") ==
          "2026-03-29T07:00:00.000Z");
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:15 fires at its first occurrence.
    CHECK(next(cron("15 2 * * *", "Europe/Berlin"), "2026-10-24T12:00:00.000Z") ==
          "2026-10-25T00:15:00.000Z");
    CHECK(next(cron("15 2 * * *", "Europe/Berlin"), "2026-10-25T00:15:00.000Z") ==
          "2026-10-26T01:15:00.000Z");
    CHECK(format_local(at("2026-07-01T10:00:00.000Z"), "Europe/Berlin") ==
          "2026-07-01T12:00:00.000+02:00");
    CHECK(format_local(at("2026-12-01T10:00:00.000Z"), "Europe/Berlin") ==
          "2026-12-01T11:00:00.000+01:00");
}

TEST_CASE("interval and one-time triggers and the start and end bounds", "[schedules]") {
    Trigger every;
    every.kind = TriggerKind::kInterval;
    every.every = 90s;
    every.anchor = at("2026-01-01T00:00:00.000Z");
    CHECK(next(every, "2025-12-31T00:00:00.000Z") == "2026-01-01T00:00:00.000Z");
    CHECK(next(every, "2026-01-01T00:00:00.000Z") == "2026-01-01T00:01:30.000Z");
    CHECK(next(every, "2026-01-01T00:04:00.000Z") == "2026-01-01T00:04:30.000Z");
    every.start_at = at("2026-02-01T00:00:10.000Z");
    every.end_at = at("2026-02-01T00:05:00.000Z");
    // Jan has 29 760 periods of 90 s: 2026-02-01T00:00:00Z is a fire, before the start bound.
    CHECK(next(every, "2026-01-01T00:04:00.000Z") == "2026-02-01T00:01:30.000Z");
    CHECK(upcoming_fires(every, at("2026-01-01T00:00:00.000Z"), 100).size() == 3);
    CHECK(next(every, "2026-02-01T00:04:30.000Z") == "none");

    Trigger once;
    once.kind = TriggerKind::kOnce;
    once.once_at = at("2026-12-24T18:00:00.000+08:00");
    CHECK(next(once, "2026-12-01T00:00:00.000Z") == "2026-12-24T10:00:00.000Z");
    CHECK(next(once, "2026-12-24T10:00:00.000Z") == "none");

    auto bounded = cron("0 * * * *");
    bounded.end_at = at("2026-11-23T12:30:00.000Z");
    CHECK(next(bounded, "2026-11-23T11:10:00.000Z") == "2026-11-23T12:00:00.000Z");
    CHECK(next(bounded, "2026-11-23T12:00:00.000Z") == "none");
}

TEST_CASE("bad triggers are named by field", "[schedules]") {
    CHECK(check_trigger(cron("61 * * * *"))->field == "cron");
    CHECK(check_trigger(cron("* * * *"))->field == "cron");
    CHECK(check_trigger(cron("TZ=Asia/Tokyo 0 * * * *"))->field == "cron");
    CHECK(check_trigger(cron("0 * * * *", "Mars/Olympus"))->field == "time_zone");
    CHECK(check_trigger(cron("0 * * * *", "../etc/passwd"))->field == "time_zone");
    CHECK_FALSE(check_trigger(cron("0 9 * * 1-5", "Asia/Shanghai")).has_value());
    auto bounded = cron("0 * * * *");
    bounded.start_at = at("2026-02-01T00:00:00.000Z");
    bounded.end_at = at("2026-01-01T00:00:00.000Z");
    CHECK(check_trigger(bounded)->field == "end_at");
    Trigger every;
    every.kind = TriggerKind::kInterval;
    every.every = 0s;
    CHECK(check_trigger(every)->field == "every_seconds");
}

TEST_CASE("RFC 3339 times parse with offsets and fractions", "[schedules]") {
    CHECK(format_utc(at("2026-03-08T03:00:00.000-04:00")) == "2026-03-08T07:00:00.000Z");
    CHECK((at("2026-01-01T00:00:00.250Z") - at("2026-01-01T00:00:00.000Z")) == 250ms);
    CHECK_FALSE(parse_time("2026-02-30T00:00:00.000Z").has_value());
    CHECK_FALSE(parse_time("2026-01-01 00:00").has_value());
    CHECK_FALSE(parse_time("yesterday").has_value());
}
