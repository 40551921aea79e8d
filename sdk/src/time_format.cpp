#include "time_format.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>

namespace inngest::detail {
namespace {

bool digits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
    if (pos + count > text.size()) {
        return false;
    }
    out = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (std::isdigit(static_cast<unsigned char>(text[i])) == 0) {
            return false;
        }
        out = out * 10 + (text[i] - '0');
    }
    return true;
}

}  // namespace

std::string format_rfc3339(std::chrono::system_clock::time_point when) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch());
    auto seconds = std::chrono::floor<std::chrono::seconds>(ms);
    const auto millis = (ms - seconds).count();
    const std::time_t t = seconds.count();
    std::tm utc{};
    gmtime_r(&t, &utc);
    std::array<char, 40> text{};
    std::size_t length = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    std::string out(text.data(), length);
    if (millis != 0) {
        const auto fraction = static_cast<int>(millis);  // 1..999
        out += '.';
        out += static_cast<char>('0' + fraction / 100);
        out += static_cast<char>('0' + fraction / 10 % 10);
        out += static_cast<char>('0' + fraction % 10);
    }
    out += 'Z';
    return out;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
    int year = 0;
    int month = 0;
    int day = 0;
    int hour = 0;
    int minute = 0;
    int second = 0;
    if (!digits(text, 0, 4, year) || text.size() < 20 || text[4] != '-' ||
        !digits(text, 5, 2, month) || text[7] != '-' || !digits(text, 8, 2, day) ||
        (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(text, 11, 2, hour) ||
        text[13] != ':' || !digits(text, 14, 2, minute) || text[16] != ':' ||
        !digits(text, 17, 2, second)) {
        return std::nullopt;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    long long nanos = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        long long scale = 100000000;
        const std::size_t start = pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0) {
            nanos += (text[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start) {
            return std::nullopt;
        }
    }
    long long offset_seconds = 0;
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        const int sign = text[pos] == '+' ? 1 : -1;
        int oh = 0;
        int om = 0;
        if (!digits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
            !digits(text, pos + 4, 2, om)) {
            return std::nullopt;
        }
        offset_seconds = sign * (oh * 3600LL + om * 60LL);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != text.size()) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const std::time_t base = timegm(&tm);
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(base - offset_seconds) + std::chrono::nanoseconds(nanos)));
}

std::optional<std::chrono::milliseconds> parse_time_string(std::string_view text) {
    if (text.empty()) {
        return std::nullopt;
    }
    double total = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t start = i;
        while (i < text.size() &&
               (std::isdigit(static_cast<unsigned char>(text[i])) != 0 || text[i] == '.')) {
            ++i;
        }
        if (start == i) {
            return std::nullopt;
        }
        const double number =
            std::strtod(std::string(text.substr(start, i - start)).c_str(), nullptr);
        const std::size_t unit_start = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])) != 0) {
            ++i;
        }
        const std::string_view unit = text.substr(unit_start, i - unit_start);
        double scale = 0;
        if (unit == "ms") {
            scale = 1;
        } else if (unit == "s") {
            scale = 1e3;
        } else if (unit == "m") {
            scale = 60e3;
        } else if (unit == "h") {
            scale = 3600e3;
        } else if (unit == "d") {
            scale = 86400e3;
        } else if (unit == "w") {
            scale = 604800e3;
        } else if (unit == "us" || unit == "ns") {
            scale = unit == "us" ? 1e-3 : 1e-6;
        } else {
            return std::nullopt;
        }
        total += number * scale;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(total));
}

}  // namespace inngest::detail
