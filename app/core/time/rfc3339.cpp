#include "core/time/rfc3339.hpp"

#include <cstdio>
#include <regex>

namespace riveredge::core {

std::string format_utc(TimePoint time) {
    using namespace std::chrono;
    const auto day = floor<days>(time);
    const year_month_day date{day};
    const hh_mm_ss clock{time - day};
    char text[40];
    std::snprintf(
        text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
        static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
        static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
        static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
    return text;
}

std::string format_utc(std::chrono::system_clock::time_point time) {
    return format_utc(std::chrono::floor<std::chrono::milliseconds>(time));
}

std::string now_utc() {
    return format_utc(std::chrono::system_clock::now());
}

std::optional<TimePoint> parse_time(std::string_view text) {
    using namespace std::chrono;
    static const std::regex pattern(
        R"((\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|([+-])(\d{2}):(\d{2})))");
    std::cmatch m;
    if (!std::regex_match(text.begin(), text.end(), m, pattern)) {
        return std::nullopt;
    }
    const auto number = [&](int i) {
        return std::stoi(m[i].str());
    };
    const year_month_day date{year{number(1)}, month{static_cast<unsigned>(number(2))},
                              day{static_cast<unsigned>(number(3))}};
    // Year 0 and offsets past 15:59 are RFC 3339's but not PostgreSQL's, which stores what we read.
    if (!date.ok() || number(1) < 1 || number(4) > 23 || number(5) > 59 || number(6) > 59 ||
        (m[9].matched && (number(10) > 15 || number(11) > 59))) {
        return std::nullopt;
    }
    TimePoint time = sys_days{date} + hours(number(4)) + minutes(number(5)) + seconds(number(6));
    if (m[7].matched) {
        std::string fraction = m[7].str();
        fraction.resize(3, '0');
        time += milliseconds(std::stoi(fraction));
    }
    if (m[9].matched) {
        const auto offset = hours(number(10)) + minutes(number(11));
        time -= m[9].str() == "+" ? offset : -offset;
    }
    return time;
}

}  // namespace riveredge::core
