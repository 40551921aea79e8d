// Cron schedules (inngest/local/cron.hpp): parse, then walk to the next fire times.
//
// Input: the expression. It is refused as a kInvalidArgument result or parsed; a parsed
// schedule's next fire time lies after the start, on a whole minute, and matches the fields.

#include "fuzz_target.hpp"

#include <inngest/local/cron.hpp>

#include <chrono>
#include <ctime>
#include <string>

namespace {

using inngest::local::CronSchedule;

// 2026-03-29 00:30 UTC: the night Europe's clocks go forward, so zones meet a DST change.
constexpr std::int64_t kStart = 1774744200;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(inngest::fuzz::as_text(data, size));
    const auto schedule = CronSchedule::parse(text);
    if (!schedule) {
        FUZZ_CHECK(schedule.error().code == inngest::ErrorCode::kInvalidArgument);
        FUZZ_CHECK(!schedule.error().message.empty());
        return 0;
    }
    FUZZ_CHECK(schedule->expression() == text);
    FUZZ_CHECK(!schedule->time_zone().empty());
    const auto start = std::chrono::system_clock::from_time_t(kStart);
    const auto next = schedule->next_after(start);
    if (!next) {
        return 0;
    }
    FUZZ_CHECK(*next > start);
    FUZZ_CHECK(std::chrono::floor<std::chrono::minutes>(*next) == *next);
    if (schedule->time_zone() == "UTC") {
        const std::time_t t = std::chrono::system_clock::to_time_t(*next);
        std::tm utc{};
        gmtime_r(&t, &utc);
        FUZZ_CHECK(schedule->matches_minute(utc.tm_min));
        FUZZ_CHECK(schedule->matches_hour(utc.tm_hour));
        FUZZ_CHECK(schedule->matches_day(utc.tm_mday, utc.tm_mon + 1, utc.tm_wday));
    }
    const auto after = schedule->next_after(*next);
    FUZZ_CHECK(!after || *after > *next);
    return 0;
}
