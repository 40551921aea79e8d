#include "modules/print_templates/text_binding.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

namespace riveredge::print {
namespace {

namespace json = boost::json;

std::string trim(std::string text) {
    const auto first = text.find_first_not_of(" \t");
    const auto last = text.find_last_not_of(" \t");
    return first == std::string::npos ? "" : text.substr(first, last - first + 1);
}

// `value` as a placeholder prints it (a string as it is, null as nothing, anything else as
// JSON); nullopt when that passes `room` bytes, found without copying or serialising it whole.
std::optional<std::string> plain_within(const json::value& value, std::size_t room) {
    if (value.is_string()) {
        return value.get_string().size() <= room ? std::optional<std::string>(value.get_string())
                                                 : std::nullopt;
    }
    if (value.is_null()) {
        return std::string();
    }
    json::serializer writer;
    writer.reset(&value);
    std::string out;
    char buffer[4096];
    while (!writer.done()) {
        const auto part = writer.read(buffer, sizeof buffer);
        if (part.size() > room - out.size()) {
            return std::nullopt;
        }
        out.append(part.data(), part.size());
    }
    return out;
}

// 65536 as "65,536".
std::string counted(std::size_t n) {
    std::string digits = std::to_string(n);
    for (auto at = static_cast<std::ptrdiff_t>(digits.size()) - 3; at > 0; at -= 3) {
        digits.insert(static_cast<std::size_t>(at), ",");
    }
    return digits;
}

}  // namespace

std::optional<double> number_value(const json::value& value) {
    if (value.is_number()) {
        return value.to_number<double>();
    }
    if (value.is_string()) {
        const std::string text(value.get_string());
        char* end = nullptr;
        const double parsed = std::strtod(text.c_str(), &end);
        if (!text.empty() && end == text.c_str() + text.size() && std::isfinite(parsed)) {
            return parsed;
        }
    }
    return std::nullopt;
}

namespace {

std::optional<double> number_of(const json::value& value) {
    return number_value(value);
}

std::string grouped(double value, int decimals) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, std::fabs(value));
    std::string digits(buffer);
    const auto point = digits.find('.');
    std::string whole = digits.substr(0, point);
    const std::string fraction = point == std::string::npos ? "" : digits.substr(point);
    for (int i = static_cast<int>(whole.size()) - 3; i > 0; i -= 3) {
        whole.insert(static_cast<std::size_t>(i), ",");
    }
    const bool negative = value < 0 && std::round(value * std::pow(10, decimals)) != 0;
    return (negative ? "-" : "") + whole + fraction;
}

// YYYY-MM-DD, optionally followed by THH:MM[:SS[.fff]] and Z or ±HH:MM -> its parts as written
// (no zone conversion); nullopt when the text is not such a date or names no real day.
std::optional<std::array<int, 6>> date_parts(const std::string& text) {
    std::array<int, 6> parts{0, 0, 0, 0, 0, 0};
    int consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &parts[0], &parts[1], &parts[2], &consumed) !=
            3 ||
        consumed != 10 || parts[1] < 1 || parts[1] > 12 || parts[2] < 1) {
        return std::nullopt;
    }
    static constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const int year = parts[0];
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (parts[2] >
        kDays[static_cast<std::size_t>(parts[1] - 1)] + (parts[1] == 2 && leap ? 1 : 0)) {
        return std::nullopt;
    }
    std::size_t at = 10;
    if (at < text.size() && (text[at] == 'T' || text[at] == ' ')) {
        int used = 0;
        if (std::sscanf(text.c_str() + at + 1, "%2d:%2d%n", &parts[3], &parts[4], &used) != 2 ||
            used != 5 || parts[3] > 23 || parts[4] > 59) {
            return std::nullopt;
        }
        at += 1 + 5;
        if (at < text.size() && text[at] == ':') {
            if (std::sscanf(text.c_str() + at + 1, "%2d%n", &parts[5], &used) != 1 || used != 2 ||
                parts[5] > 60) {
                return std::nullopt;
            }
            at += 3;
            if (at < text.size() && text[at] == '.') {
                ++at;
                while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) {
                    ++at;
                }
            }
        }
        if (at < text.size() && text[at] == 'Z') {
            ++at;
        } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') &&
                   text[at + 3] == ':') {
            at += 6;
        }
    }
    return at == text.size() ? std::optional(parts) : std::nullopt;
}

std::string two(int value) {
    return (value < 10 ? "0" : "") + std::to_string(value);
}

std::string format_date(const std::array<int, 6>& d, const std::string& pattern) {
    std::string out;
    for (std::size_t i = 0; i < pattern.size();) {
        const auto take = [&](const char* token) {
            const std::size_t n = std::char_traits<char>::length(token);
            if (pattern.compare(i, n, token) == 0) {
                i += n;
                return true;
            }
            return false;
        };
        if (take("YYYY")) {
            out += std::to_string(d[0]);
        } else if (take("MM")) {
            out += two(d[1]);
        } else if (take("DD")) {
            out += two(d[2]);
        } else if (take("HH")) {
            out += two(d[3]);
        } else if (take("mm")) {
            out += two(d[4]);
        } else if (take("ss")) {
            out += two(d[5]);
        } else {
            out += pattern[i++];
        }
    }
    return out;
}

// The value through one formatter; nullopt when that passes `room` bytes.
std::optional<std::string> apply(const std::string& placeholder,
                                 const std::string& formatter,
                                 const std::string& argument,
                                 const json::value& value,
                                 std::size_t room) {
    const auto need_number = [&]() {
        const auto n = number_of(value);
        if (!n) {
            throw BindingError(placeholder, "formatter " + formatter + " needs a number, got " +
                                                json::serialize(value));
        }
        return *n;
    };
    const auto need_date = [&]() {
        const auto d =
            value.is_string() ? date_parts(std::string(value.get_string())) : std::nullopt;
        if (!d) {
            throw BindingError(placeholder, "formatter " + formatter +
                                                " needs a date such as 2026-12-06, got " +
                                                json::serialize(value));
        }
        return *d;
    };
    const auto need_bounded = [&]() {
        const double n = need_number();
        if (std::fabs(n) >= 1e15) {
            throw BindingError(placeholder,
                               "formatter " + formatter + " takes numbers below 10^15");
        }
        return n;
    };
    if (formatter == "number") {
        const int decimals = argument.empty() ? 2 : std::clamp(std::atoi(argument.c_str()), 0, 10);
        return grouped(need_bounded(), decimals);
    }
    if (formatter == "currency") {
        static const std::array<std::pair<const char*, const char*>, 5> symbols{
            {{"CNY", "¥"}, {"USD", "$"}, {"EUR", "€"}, {"JPY", "¥"}, {"GBP", "£"}}};
        const std::string code = argument.empty() ? "CNY" : argument;
        for (const auto& [name, symbol] : symbols) {
            if (code == name) {
                const double amount = need_bounded();
                const std::string text = grouped(amount, code == "JPY" ? 0 : 2);
                return text[0] == '-' ? "-" + std::string(symbol) + text.substr(1) : symbol + text;
            }
        }
        throw BindingError(placeholder, "currency is CNY, USD, EUR, JPY or GBP");
    }
    if (formatter == "cn_amount") {
        const double amount = need_number();
        // Checked again once rounded to the fen: 999999999999.999 is 10^12 yuan.
        constexpr std::int64_t kLimitCents = 100'000'000'000'000;
        const std::int64_t cents =
            std::fabs(amount) < 1e12 ? std::llround(amount * 100) : kLimitCents;
        if (cents >= kLimitCents || cents <= -kLimitCents) {
            throw BindingError(placeholder, "cn_amount takes amounts below 1万亿 (10^12)");
        }
        return chinese_capital_amount(cents);
    }
    if (formatter == "date") {
        return format_date(need_date(), argument.empty() ? "YYYY-MM-DD" : argument);
    }
    if (formatter == "cn_date") {
        const auto d = need_date();
        return std::to_string(d[0]) + "年" + std::to_string(d[1]) + "月" + std::to_string(d[2]) +
               "日";
    }
    if (formatter == "upper") {
        auto text = plain_within(value, room);
        if (text) {
            for (auto& c : *text) {
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            }
        }
        return text;
    }
    throw BindingError(placeholder, "unknown formatter " + formatter +
                                        " (number, currency, cn_amount, date, cn_date, upper, "
                                        "default)");
}

}  // namespace

const json::value* value_at(const json::value& data, const std::string& path) {
    const json::value* at = &data;
    std::size_t i = 0;
    while (i < path.size() && at != nullptr) {
        if (path[i] == '[') {
            const auto close = path.find(']', i);
            if (close == std::string::npos || !at->is_array()) {
                return nullptr;
            }
            const std::string index = path.substr(i + 1, close - i - 1);
            if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos ||
                index.size() > 9) {
                return nullptr;
            }
            const auto n = static_cast<std::size_t>(std::stoul(index));
            at = n < at->get_array().size() ? &at->get_array()[n] : nullptr;
            i = close + 1;
        } else {
            if (path[i] == '.') {
                ++i;
            }
            const auto end = path.find_first_of(".[", i);
            const std::string key = path.substr(i, end == std::string::npos ? end : end - i);
            if (key.empty() || !at->is_object()) {
                return nullptr;
            }
            at = at->get_object().if_contains(key);
            i = end == std::string::npos ? path.size() : end;
        }
    }
    return at;
}

bool truthy(const json::value& data, const std::string& path) {
    const auto* value = value_at(data, path);
    if (value == nullptr || value->is_null()) {
        return false;
    }
    if (value->is_bool()) {
        return value->get_bool();
    }
    if (value->is_number()) {
        return value->to_number<double>() != 0;
    }
    if (value->is_string()) {
        return !value->get_string().empty();
    }
    if (value->is_array()) {
        return !value->get_array().empty();
    }
    return true;
}

std::string bind_text(const std::string& text, const json::value& data, std::size_t limit) {
    std::string out;
    std::string last;  // the placeholder bound last, which names literal text past the limit
    // Refused as soon as the text would pass `limit`, before the piece is added.
    const auto too_long = [&](const std::string& path, bool after) {
        return BindingError(path.empty() ? text.substr(0, 40) : path,
                            "bound to the data, this text passes " + counted(limit) +
                                " bytes (the most one text holds) " +
                                (path.empty() ? std::string("in its text")
                                              : (after ? "after {{" : "at {{") + path + "}}"));
    };
    const auto add = [&](std::string_view piece, const std::string& path, bool after) {
        if (piece.size() > limit - out.size()) {
            throw too_long(path, after);
        }
        out.append(piece);
    };
    std::size_t at = 0;
    while (true) {
        const auto open = text.find("{{", at);
        if (open == std::string::npos) {
            add(std::string_view(text).substr(at), last, true);
            return out;
        }
        const auto close = text.find("}}", open + 2);
        if (close == std::string::npos) {
            throw BindingError(text.substr(open, 40), "a {{ without its }}");
        }
        add(std::string_view(text).substr(at, open - at), last, true);
        const std::string placeholder = text.substr(open + 2, close - open - 2);
        std::vector<std::string> parts;
        std::size_t from = 0;
        while (true) {
            const auto bar = placeholder.find('|', from);
            parts.push_back(
                trim(placeholder.substr(from, bar == std::string::npos ? bar : bar - from)));
            if (bar == std::string::npos) {
                break;
            }
            from = bar + 1;
        }
        const std::string& path = parts[0];
        if (path.empty()) {
            throw BindingError(placeholder, "an empty placeholder");
        }
        const json::value* value = value_at(data, path);
        std::optional<std::string> fallback;
        for (std::size_t i = 1; i < parts.size(); ++i) {
            if (parts[i].rfind("default:", 0) == 0) {
                fallback = parts[i].substr(8);
            }
        }
        if (value == nullptr || value->is_null()) {
            if (!fallback) {
                throw BindingError(
                    path, "no value at " + path + " in the data (add | default:… to allow it)");
            }
            add(*fallback, path, false);
        } else {
            // The value as it prints, or through its formatters; none is built past the room
            // left.
            const std::size_t room = limit - out.size();
            std::optional<std::string> piece;
            const json::value* current = value;
            json::value formatted;
            for (std::size_t i = 1; i < parts.size(); ++i) {
                if (parts[i].rfind("default:", 0) == 0) {
                    continue;
                }
                const auto colon = parts[i].find(':');
                const std::string name = trim(parts[i].substr(0, colon));
                const std::string argument =
                    colon == std::string::npos ? "" : trim(parts[i].substr(colon + 1));
                piece = apply(path, name, argument, *current, room);
                if (!piece) {
                    throw too_long(path, false);
                }
                formatted = json::value(*piece);
                current = &formatted;
            }
            if (!piece) {  // no formatter
                piece = plain_within(*value, room);
                if (!piece) {
                    throw too_long(path, false);
                }
            }
            add(*piece, path, false);
        }
        last = path;
        at = close + 2;
    }
}

std::string chinese_capital_amount(std::int64_t cents) {
    static const std::array<const char*, 10> digits{"零", "壹", "贰", "叁", "肆",
                                                    "伍", "陆", "柒", "捌", "玖"};
    static const std::array<const char*, 4> small{"", "拾", "佰", "仟"};
    static const std::array<const char*, 3> big{"", "万", "亿"};  // amounts stay below 10^12
    std::string out = cents < 0 ? "负" : "";
    const std::uint64_t total =
        cents < 0 ? static_cast<std::uint64_t>(-cents) : static_cast<std::uint64_t>(cents);
    std::uint64_t yuan = total / 100;
    const int jiao = static_cast<int>(total / 10 % 10);
    const int fen = static_cast<int>(total % 10);
    if (yuan > 0) {
        // Groups of four digits, highest first; a run of zeros inside is read as one 零.
        std::vector<int> groups;
        for (; yuan > 0; yuan /= 10000) {
            groups.push_back(static_cast<int>(yuan % 10000));
        }
        if (groups.size() > big.size()) {
            throw std::out_of_range("chinese_capital_amount takes amounts below 10^12 yuan");
        }
        bool zero_pending = false;
        bool started = false;
        for (std::size_t g = groups.size(); g-- > 0;) {
            const int group = groups[g];
            if (group == 0) {
                zero_pending = started;
                continue;
            }
            for (int position = 3; position >= 0; --position) {
                const int digit = group / static_cast<int>(std::pow(10, position)) % 10;
                if (digit == 0) {
                    zero_pending = started;
                    continue;
                }
                if (zero_pending) {
                    out += digits[0];
                    zero_pending = false;
                }
                out += digits[static_cast<std::size_t>(digit)];
                out += small[static_cast<std::size_t>(position)];
                started = true;
            }
            out += big[g];
        }
        out += "元";
    }
    if (jiao == 0 && fen == 0) {
        return (total == 0 ? std::string("零元") : out) + "整";
    }
    if (jiao > 0) {
        out += std::string(digits[static_cast<std::size_t>(jiao)]) + "角";
    } else if (total >= 100) {
        out += digits[0];  // 壹拾元零伍分
    }
    if (fen > 0) {
        out += std::string(digits[static_cast<std::size_t>(fen)]) + "分";
    } else {
        out += "整";
    }
    return out;
}

}  // namespace riveredge::print
