#include <inngest/local/cron.hpp>

#include <catch2/catch.hpp>

#include <ctime>

using inngest::local::CronSchedule;

namespace {

CronSchedule::TimePoint utc(int year, int month, int day, int hour, int minute) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

CronSchedule parse(const char* text) {
    auto schedule = CronSchedule::parse(text);
    REQUIRE(schedule.has_value());
    return *schedule;
}

}  // namespace

TEST_CASE("cron fields: lists, ranges, steps and names", "[unit]") {
    const auto every15 = parse("*/15 * * * *");
    CHECK(every15.next_after(utc(2026, 1, 1, 10, 7)) == utc(2026, 1, 1, 10, 15));
    CHECK(every15.next_after(utc(2026, 1, 1, 10, 45)) == utc(2026, 1, 1, 11, 0));
    const auto weekdays = parse("0 9 * * MON-FRI");
    // 2026-01-03 is a Saturday: next is Monday the 5th.
    CHECK(weekdays.next_after(utc(2026, 1, 3, 8, 0)) == utc(2026, 1, 5, 9, 0));
    const auto yearly = parse("0 0 1 1 *");
    CHECK(yearly.next_after(utc(2026, 6, 1, 0, 0)) == utc(2027, 1, 1, 0, 0));
    const auto list = parse("5,10 1-2 * JAN,jul *");
    CHECK(list.next_after(utc(2026, 1, 1, 2, 10)) == utc(2026, 1, 2, 1, 5));
    CHECK(list.next_after(utc(2026, 1, 31, 2, 10)) == utc(2026, 7, 1, 1, 5));
    const auto sunday7 = parse("0 0 * * 7");
    CHECK(sunday7.next_after(utc(2026, 1, 1, 0, 0)) == utc(2026, 1, 4, 0, 0));
    // Both day fields restricted: either one matching is enough (Vixie cron).
    const auto either = parse("0 0 13 * FRI");
    CHECK(either.next_after(utc(2026, 1, 1, 0, 0)) == utc(2026, 1, 2, 0, 0));
}

TEST_CASE("cron with TZ= fires at local wall-clock time", "[unit]") {
    const auto shanghai = parse("TZ=Asia/Shanghai 0 9 * * 1-5");
    CHECK(shanghai.time_zone() == "Asia/Shanghai");
    // 09:00 in Shanghai (UTC+8) is 01:00 UTC. 2026-01-05 is a Monday.
    CHECK(shanghai.next_after(utc(2026, 1, 5, 0, 0)) == utc(2026, 1, 5, 1, 0));
}

TEST_CASE("cron across daylight saving: skipped times skip, repeated times fire once", "[unit]") {
    // Europe/Paris springs forward on 2026-03-29 at 02:00 -> 03:00: 02:30 does not exist.
    const auto spring = parse("TZ=Europe/Paris 30 2 * * *");
    CHECK(spring.next_after(utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 30, 0, 30));
    // And falls back on 2026-10-25 at 03:00 -> 02:00: 02:30 happens twice, fire once (UTC 00:30).
    const auto autumn = parse("TZ=Europe/Paris 30 2 * * *");
    const auto first = autumn.next_after(utc(2026, 10, 24, 12, 0));
    CHECK(first == utc(2026, 10, 25, 0, 30));
    CHECK(autumn.next_after(*first) == utc(2026, 10, 26, 1, 30));
}

TEST_CASE("invalid cron expressions are rejected with a reason", "[unit]") {
    for (const char* bad : {"* * * *", "* * * * * *", "@daily", "60 * * * *", "* 24 * * *",
                            "TZ=Mars/Base * * * * *", "*/0 * * * *", "5-1 * * * *", "x * * * *"}) {
        CAPTURE(bad);
        const auto schedule = CronSchedule::parse(bad);
        REQUIRE_FALSE(schedule.has_value());
        CHECK_FALSE(schedule.error().message.empty());
    }
}
