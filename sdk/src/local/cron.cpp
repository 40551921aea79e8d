#include <inngest/local/cron.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <vector>

namespace inngest::local {
namespace {

struct CronError {
    std::string message;
};

constexpr std::array<std::string_view, 12> kMonths{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kWeekdays{"SUN", "MON", "TUE", "WED",
                                                    "THU", "FRI", "SAT"};

int parse_value(std::string_view text, int offset_names, bool months) {
    std::string upper(text);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (months) {
        for (std::size_t i = 0; i < kMonths.size(); ++i) {
            if (upper == kMonths[i]) {
                return static_cast<int>(i) + offset_names;
            }
        }
    } else if (offset_names == 0) {
        for (std::size_t i = 0; i < kWeekdays.size(); ++i) {
            if (upper == kWeekdays[i]) {
                return static_cast<int>(i);
            }
        }
    }
    // from_chars, not atoi: a number past int is an error rather than undefined (glibc wraps
    // "4294967301" to 5).
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || text.front() == '-' || error != std::errc() ||
        end != text.data() + text.size()) {
        throw CronError{"'" + std::string(text) + "' is not a number or name"};
    }
    return value;
}

// Parses one field into `bits` over [low, high]; returns whether it was restricted (not `*`).
template <std::size_t N>
bool parse_field(
    std::string_view field, int low, int high, std::bitset<N>& bits, bool months, bool weekdays) {
    bool restricted = false;
    std::size_t start = 0;
    while (start <= field.size()) {
        const std::size_t comma = field.find(',', start);
        std::string_view part =
            field.substr(start, comma == std::string_view::npos ? field.npos : comma - start);
        start = comma == std::string_view::npos ? field.size() + 1 : comma + 1;
        int step = 1;
        if (const std::size_t slash = part.find('/'); slash != std::string_view::npos) {
            step = parse_value(part.substr(slash + 1), -1, false);
            if (step <= 0) {
                throw CronError{"step must be positive"};
            }
            part = part.substr(0, slash);
        }
        int from = low;
        int to = high;
        if (part == "*" || part == "?") {
            restricted = restricted || step != 1;
        } else {
            restricted = true;
            const std::size_t dash = part.find('-');
            const int offset = months ? 1 : (weekdays ? 0 : -1);
            from = parse_value(part.substr(0, dash), offset, months);
            to = dash == std::string_view::npos
                     ? (step != 1 ? high : from)
                     : parse_value(part.substr(dash + 1), offset, months);
        }
        if (weekdays && to == 7) {
            bits.set(0);  // 7 is Sunday too
            if (from == 7) {
                continue;
            }
            to = 6;
        }
        if (from < low || to > high || from > to) {
            throw CronError{"value out of range in '" + std::string(field) + "'"};
        }
        // A step past the range sets `from` alone; capped, v + step cannot overflow.
        step = std::min(step, high + 1);
        for (int v = from; v <= to; v += step) {
            bits.set(static_cast<std::size_t>(v));
        }
    }
    return restricted;
}

std::mutex& zone_mutex() {
    static std::mutex mutex;
    return mutex;
}

// localtime in `zone`. The C library keeps one process-wide zone, so switch it under a lock.
std::tm to_local(std::time_t t, const std::string& zone) {
    std::tm out{};
    if (zone == "UTC") {
        gmtime_r(&t, &out);
        return out;
    }
    const std::lock_guard lock(zone_mutex());
    const char* previous = std::getenv("TZ");
    const std::string saved = previous != nullptr ? previous : "";
    setenv("TZ", zone.c_str(), 1);
    tzset();
    localtime_r(&t, &out);
    if (previous != nullptr) {
        setenv("TZ", saved.c_str(), 1);
    } else {
        unsetenv("TZ");
    }
    tzset();
    return out;
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(std::string_view expression) {
    CronSchedule schedule;
    schedule.expression_ = std::string(expression);
    try {
        std::vector<std::string_view> fields;
        std::size_t i = 0;
        while (i < expression.size()) {
            while (i < expression.size() && expression[i] == ' ') {
                ++i;
            }
            const std::size_t start = i;
            while (i < expression.size() && expression[i] != ' ') {
                ++i;
            }
            if (i > start) {
                fields.push_back(expression.substr(start, i - start));
            }
        }
        if (!fields.empty() &&
            (fields[0].starts_with("TZ=") || fields[0].starts_with("CRON_TZ="))) {
            schedule.zone_ = std::string(fields[0].substr(fields[0].find('=') + 1));
            fields.erase(fields.begin());
            // A zone file: "TZ=" or a folder such as "TZ=Europe" would silently mean UTC. The
            // error_code overload: a name too long for a path is unknown, not an exception.
            std::error_code no_file;
            const bool known =
                schedule.zone_ == "UTC" || (schedule.zone_.find("..") == std::string::npos &&
                                            std::filesystem::is_regular_file(
                                                "/usr/share/zoneinfo/" + schedule.zone_, no_file));
            if (!known) {
                throw CronError{"unknown time zone '" + schedule.zone_ + "'"};
            }
        }
        if (fields.size() != 5) {
            throw CronError{"expected 5 fields (minute hour day month weekday)"};
        }
        if (fields[0].starts_with("@")) {
            throw CronError{"@ descriptors are not supported"};
        }
        parse_field(fields[0], 0, 59, schedule.minutes_, false, false);
        parse_field(fields[1], 0, 23, schedule.hours_, false, false);
        schedule.days_restricted_ = parse_field(fields[2], 1, 31, schedule.days_, false, false);
        parse_field(fields[3], 1, 12, schedule.months_, true, false);
        schedule.weekdays_restricted_ =
            parse_field(fields[4], 0, 6, schedule.weekdays_, false, true);
    } catch (const CronError& error) {
        return Error{ErrorCode::kInvalidArgument,
                     "cron '" + std::string(expression) + "': " + error.message};
    }
    return schedule;
}

bool CronSchedule::matches_local(const std::tm& local) const {
    if (!minutes_.test(static_cast<std::size_t>(local.tm_min)) ||
        !hours_.test(static_cast<std::size_t>(local.tm_hour)) ||
        !months_.test(static_cast<std::size_t>(local.tm_mon + 1))) {
        return false;
    }
    const bool day = days_.test(static_cast<std::size_t>(local.tm_mday));
    const bool weekday = weekdays_.test(static_cast<std::size_t>(local.tm_wday));
    if (days_restricted_ && weekdays_restricted_) {
        return day || weekday;
    }
    return day && weekday;
}

bool CronSchedule::matches_day(int day_of_month, int month, int weekday) const {
    if (day_of_month < 1 || day_of_month > 31 || month < 1 || month > 12 || weekday < 0 ||
        weekday > 6 || !months_.test(static_cast<std::size_t>(month))) {
        return false;
    }
    const bool day = days_.test(static_cast<std::size_t>(day_of_month));
    const bool week = weekdays_.test(static_cast<std::size_t>(weekday));
    return days_restricted_ && weekdays_restricted_ ? (day || week) : (day && week);
}

bool CronSchedule::matches_hour(int hour) const {
    return hour >= 0 && hour < 24 && hours_.test(static_cast<std::size_t>(hour));
}

bool CronSchedule::matches_minute(int minute) const {
    return minute >= 0 && minute < 60 && minutes_.test(static_cast<std::size_t>(minute));
}

std::optional<CronSchedule::TimePoint> CronSchedule::next_after(TimePoint after) const {
    using std::chrono::minutes;
    auto candidate = std::chrono::floor<minutes>(after) + minutes(1);
    const auto limit = candidate + std::chrono::hours(24 * 366 * 5);
    // Walk UTC minutes and test their local time; skip whole hours and days that cannot match.
    // Walking real instants makes a skipped local time never match and a repeated one match
    // twice; the second is dropped below.
    while (candidate < limit) {
        const std::time_t t = std::chrono::system_clock::to_time_t(candidate);
        const std::tm local = to_local(t, zone_);
        const bool day_ok = months_.test(static_cast<std::size_t>(local.tm_mon + 1)) &&
                            ((days_restricted_ && weekdays_restricted_)
                                 ? (days_.test(static_cast<std::size_t>(local.tm_mday)) ||
                                    weekdays_.test(static_cast<std::size_t>(local.tm_wday)))
                                 : (days_.test(static_cast<std::size_t>(local.tm_mday)) &&
                                    weekdays_.test(static_cast<std::size_t>(local.tm_wday))));
        if (!day_ok) {
            const int to_midnight = (23 - local.tm_hour) * 60 + (60 - local.tm_min);
            candidate += minutes(std::max(1, to_midnight));
            continue;
        }
        if (!hours_.test(static_cast<std::size_t>(local.tm_hour))) {
            candidate += minutes(60 - local.tm_min);
            continue;
        }
        if (matches_local(local)) {
            // The same wall-clock minute seen one hour earlier (DST fall-back): fire once.
            const std::tm earlier = to_local(t - 3600, zone_);
            const bool repeated = earlier.tm_hour == local.tm_hour &&
                                  earlier.tm_min == local.tm_min &&
                                  earlier.tm_mday == local.tm_mday;
            if (!repeated) {
                return candidate;
            }
        }
        candidate += minutes(1);
    }
    return std::nullopt;
}

}  // namespace inngest::local
