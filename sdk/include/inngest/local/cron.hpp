#pragma once

/// @file
/// @brief 5-field cron schedules with an optional `TZ=<IANA zone>` prefix, as Inngest accepts.

#include <inngest/errors.hpp>

#include <array>
#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace inngest::local {

/// A parsed cron expression: minute hour day-of-month month day-of-week, with `*`, lists,
/// ranges, steps and names (`JAN`, `MON`); `TZ=`/`CRON_TZ=` selects the zone (default UTC).
/// Day-of-month and day-of-week combine as in Vixie cron: when both are restricted, either
/// matching is enough.
///
/// Daylight saving: a local time that does not exist is skipped; a local time that occurs
/// twice fires at its first occurrence only.
class CronSchedule {
public:
    using TimePoint = std::chrono::system_clock::time_point;

    static Result<CronSchedule> parse(std::string_view expression);

    /// The first fire time strictly after `after` (whole minutes), or nullopt if none within
    /// five years.
    std::optional<TimePoint> next_after(TimePoint after) const;

    /// Field tests on a local (wall-clock) time, for callers that walk time in their own zone
    /// library. `month` is 1-12, `weekday` 0-6 from Sunday.
    bool matches_day(int day_of_month, int month, int weekday) const;
    bool matches_hour(int hour) const;
    bool matches_minute(int minute) const;

    /// The IANA zone, or "UTC".
    const std::string& time_zone() const noexcept { return zone_; }
    const std::string& expression() const noexcept { return expression_; }

private:
    CronSchedule() = default;
    bool matches_local(const struct std::tm& local) const;

    std::string expression_;
    std::string zone_ = "UTC";
    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;
    std::bitset<13> months_;
    std::bitset<7> weekdays_;
    bool days_restricted_ = false;
    bool weekdays_restricted_ = false;
};

}  // namespace inngest::local
