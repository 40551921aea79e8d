#include "modules/schedules/schedule_math.hpp"

#include <inngest/local/cron.hpp>

#include <regex>

#include <date/tz.h>

namespace riveredge::schedules {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;

const date::time_zone* zone_of(std::string_view name) {
    try {
        return date::locate_zone(std::string(name));
    } catch (const std::exception&) {
        return nullptr;
    }
}

std::optional<TimePoint> next_cron(const inngest::local::CronSchedule& cron,
                                   const date::time_zone& zone,
                                   TimePoint after) {
    // Walk wall-clock minutes in the zone, skipping whole days and hours that cannot match,
    // and map each matching local minute back to an instant.
    auto local = date::floor<minutes>(zone.to_local(after)) + minutes(1);
    const auto limit = local + days(366 * 5);
    while (local < limit) {
        const auto day = date::floor<days>(local);
        const date::year_month_day ymd{day};
        const date::weekday weekday{day};
        if (!cron.matches_day(static_cast<int>(static_cast<unsigned>(ymd.day())),
                              static_cast<int>(static_cast<unsigned>(ymd.month())),
                              static_cast<int>(weekday.c_encoding()))) {
            local = day + days(1);
            continue;
        }
        const auto since_midnight = local - day;
        const auto hour = date::floor<hours>(since_midnight);
        if (!cron.matches_hour(static_cast<int>(hour.count()))) {
            local = day + hour + hours(1);
            continue;
        }
        const auto minute = date::floor<minutes>(since_midnight - hour);
        if (cron.matches_minute(static_cast<int>(minute.count()))) {
            const auto info = zone.get_info(local);
            if (info.result != date::local_info::nonexistent) {
                // Unique, or the first of two occurrences; the second is the repeat and
                // never fires on its own.
                const TimePoint instant{local.time_since_epoch() - info.first.offset};
                if (instant > after) {
                    return instant;
                }
            }
        }
        local += minutes(1);
    }
    return std::nullopt;
}

// A trigger's parsed cron and zone, so a run of fire times parses and looks them up once.
struct ParsedTrigger {
    std::optional<inngest::local::CronSchedule> cron;
    const date::time_zone* zone = nullptr;
};

ParsedTrigger parse(const Trigger& trigger) {
    ParsedTrigger parsed;
    if (trigger.kind == TriggerKind::kCron) {
        if (auto cron = inngest::local::CronSchedule::parse(trigger.cron)) {
            parsed.cron = std::move(*cron);
        }
        parsed.zone = zone_of(trigger.time_zone);
    }
    return parsed;
}

std::optional<TimePoint> unbounded_next(const Trigger& trigger,
                                        const ParsedTrigger& parsed,
                                        TimePoint after) {
    switch (trigger.kind) {
        case TriggerKind::kOnce:
            return trigger.once_at > after ? std::optional(trigger.once_at) : std::nullopt;
        case TriggerKind::kInterval: {
            if (trigger.every.count() <= 0) {
                return std::nullopt;
            }
            if (after < trigger.anchor) {
                return trigger.anchor;
            }
            const auto step = std::chrono::duration_cast<milliseconds>(trigger.every);
            const auto periods = (after - trigger.anchor) / step + 1;
            return trigger.anchor + periods * step;
        }
        case TriggerKind::kCron:
            if (!parsed.cron || parsed.zone == nullptr) {
                return std::nullopt;
            }
            return next_cron(*parsed.cron, *parsed.zone, after);
    }
    return std::nullopt;
}

std::optional<TimePoint> bounded_next(const Trigger& trigger,
                                      const ParsedTrigger& parsed,
                                      TimePoint after) {
    if (trigger.start_at && after < *trigger.start_at) {
        after = *trigger.start_at - milliseconds(1);
    }
    const auto next = unbounded_next(trigger, parsed, after);
    if (!next || (trigger.end_at && *next > *trigger.end_at)) {
        return std::nullopt;
    }
    return next;
}

}  // namespace

bool known_zone(std::string_view zone) {
    return zone_of(zone) != nullptr;
}

std::optional<TriggerProblem> check_trigger(const Trigger& trigger) {
    if (!known_zone(trigger.time_zone)) {
        return TriggerProblem{"time_zone",
                              "unknown time zone '" + trigger.time_zone + "' (IANA names)"};
    }
    switch (trigger.kind) {
        case TriggerKind::kCron: {
            if (trigger.cron.find('=') != std::string::npos) {
                return TriggerProblem{"cron", "give the zone in time_zone, not as a TZ= prefix"};
            }
            const auto cron = inngest::local::CronSchedule::parse(trigger.cron);
            if (!cron) {
                return TriggerProblem{"cron", cron.error().message};
            }
            break;
        }
        case TriggerKind::kInterval:
            if (trigger.every < std::chrono::seconds(1) ||
                trigger.every > std::chrono::seconds(366LL * 24 * 3600)) {
                return TriggerProblem{"every_seconds", "from 1 second to 366 days"};
            }
            break;
        case TriggerKind::kOnce:
            break;
    }
    if (trigger.start_at && trigger.end_at && *trigger.end_at <= *trigger.start_at) {
        return TriggerProblem{"end_at", "must be after start_at"};
    }
    return std::nullopt;
}

std::optional<TimePoint> next_fire(const Trigger& trigger, TimePoint after) {
    return bounded_next(trigger, parse(trigger), after);
}

std::vector<TimePoint> upcoming_fires(const Trigger& trigger, TimePoint after, int count) {
    const auto parsed = parse(trigger);
    std::vector<TimePoint> out;
    for (int i = 0; i < count; ++i) {
        const auto next = bounded_next(trigger, parsed, after);
        if (!next) {
            break;
        }
        out.push_back(*next);
        after = *next;
    }
    return out;
}

std::string format_local(TimePoint time, std::string_view zone) {
    const auto* z = zone_of(zone);
    if (z == nullptr) {
        return format_utc(time);
    }
    const date::zoned_time<std::chrono::milliseconds> zoned{
        z, date::floor<std::chrono::milliseconds>(time)};
    return date::format("%FT%T%Ez", zoned);
}

}  // namespace riveredge::schedules
