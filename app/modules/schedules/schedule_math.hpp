#pragma once

// When a schedule fires: pure functions of (trigger, now), on Howard Hinnant's date/tz library
// against the system tzdata (GCC 12 has no C++20 time zones).
//
// Daylight saving, for cron triggers in a zone: a local time that does not exist (the hour
// skipped in spring) does not fire; a local time that occurs twice (the hour repeated in
// autumn) fires once, at its first occurrence. Interval triggers are exact durations in
// absolute time (every 24 h is not "every day at 09:00" across a DST change: use cron for that).

#include "core/time/rfc3339.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riveredge::schedules {

using core::format_utc;
using core::parse_time;
using core::TimePoint;

enum class TriggerKind { kCron, kInterval, kOnce };

struct Trigger {
    TriggerKind kind = TriggerKind::kCron;
    /// 5 fields: minute hour day-of-month month day-of-week (the dialect Inngest documents).
    std::string cron;
    /// IANA zone for cron triggers and for showing times.
    std::string time_zone = "UTC";
    std::chrono::seconds every{0};
    TimePoint anchor{};
    TimePoint once_at{};
    std::optional<TimePoint> start_at;
    std::optional<TimePoint> end_at;
};

/// Why a trigger is unusable, or nullopt. The field named is the API's.
struct TriggerProblem {
    std::string field;
    std::string message;
};
std::optional<TriggerProblem> check_trigger(const Trigger& trigger);

/// True if `zone` is a known IANA zone in the system tzdata.
bool known_zone(std::string_view zone);

/// The first fire strictly after `after`, within the trigger's bounds; nullopt when there is
/// none (a past one-time trigger, an end bound passed, or none within five years).
std::optional<TimePoint> next_fire(const Trigger& trigger, TimePoint after);

/// The next `count` fires after `after`.
std::vector<TimePoint> upcoming_fires(const Trigger& trigger, TimePoint after, int count);

/// `2026-03-08T03:00:00.000-04:00`: the wall-clock time in `zone` with its offset.
std::string format_local(TimePoint time, std::string_view zone);

}  // namespace riveredge::schedules
