#include "protocol/json_writer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

namespace inngest::detail {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void write_string(std::string& out, std::string_view text) {
    out.push_back('"');
    std::size_t run_start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        out.append(text.data() + run_start, i - run_start);
        run_start = i + 1;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                out += "\\u00";
                out.push_back(kHex[c >> 4U]);
                out.push_back(kHex[c & 0x0FU]);
        }
    }
    out.append(text.data() + run_start, text.size() - run_start);
    out.push_back('"');
}

template <class Integer>
void write_integer(std::string& out, Integer value) {
    std::array<char, 24> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(buffer.data(), result.ptr);
}

}  // namespace

void write_number(std::string& out, double number) {
    if (!std::isfinite(number)) {
        out += "null";
        return;
    }
    if (number == 0) {
        out.push_back('0');  // ECMAScript writes -0 as 0 too
        return;
    }
    if (number < 0) {
        out.push_back('-');
        number = -number;
    }
    // Shortest round-trip digits, then laid out per ECMAScript Number::toString.
    std::array<char, 40> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), number,
                                      std::chars_format::scientific);
    const std::string_view text(buffer.data(),
                                static_cast<std::size_t>(result.ptr - buffer.data()));
    const std::size_t e_pos = text.find('e');
    std::string digits;
    for (const char c : text.substr(0, e_pos)) {
        if (c != '.') {
            digits.push_back(c);
        }
    }
    const int exponent = std::atoi(std::string(text.substr(e_pos + 1)).c_str());
    const int k = static_cast<int>(digits.size());
    const int n = exponent + 1;
    if (k <= n && n <= 21) {
        out += digits;
        out.append(static_cast<std::size_t>(n - k), '0');
    } else if (0 < n && n <= 21) {
        out.append(digits, 0, static_cast<std::size_t>(n));
        out.push_back('.');
        out.append(digits, static_cast<std::size_t>(n), std::string::npos);
    } else if (-6 < n && n <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-n), '0');
        out += digits;
    } else {
        out.push_back(digits[0]);
        if (k > 1) {
            out.push_back('.');
            out.append(digits, 1, std::string::npos);
        }
        out.push_back('e');
        out.push_back(n - 1 >= 0 ? '+' : '-');
        write_integer(out, std::abs(n - 1));
    }
}

void write_json(std::string& out, const boost::json::value& value) {
    switch (value.kind()) {
        case boost::json::kind::null:
            out += "null";
            return;
        case boost::json::kind::bool_:
            out += value.get_bool() ? "true" : "false";
            return;
        case boost::json::kind::int64:
            write_integer(out, value.get_int64());
            return;
        case boost::json::kind::uint64:
            write_integer(out, value.get_uint64());
            return;
        case boost::json::kind::double_:
            write_number(out, value.get_double());
            return;
        case boost::json::kind::string:
            write_string(out, value.get_string());
            return;
        case boost::json::kind::array: {
            out.push_back('[');
            bool first = true;
            for (const auto& item : value.get_array()) {
                if (!first) {
                    out.push_back(',');
                }
                first = false;
                write_json(out, item);
            }
            out.push_back(']');
            return;
        }
        case boost::json::kind::object: {
            out.push_back('{');
            bool first = true;
            for (const auto& entry : value.get_object()) {
                if (!first) {
                    out.push_back(',');
                }
                first = false;
                write_string(out, entry.key());
                out.push_back(':');
                write_json(out, entry.value());
            }
            out.push_back('}');
            return;
        }
    }
}

namespace {

std::u16string utf16_of(std::string_view utf8) {
    std::u16string out;
    out.reserve(utf8.size());
    for (std::size_t i = 0; i < utf8.size();) {
        const auto c = static_cast<unsigned char>(utf8[i]);
        char32_t code = c;
        std::size_t length = 1;
        if (c >= 0xF0 && i + 3 < utf8.size()) {
            code = ((c & 0x07U) << 18U) |
                   ((static_cast<unsigned char>(utf8[i + 1]) & 0x3FU) << 12U) |
                   ((static_cast<unsigned char>(utf8[i + 2]) & 0x3FU) << 6U) |
                   (static_cast<unsigned char>(utf8[i + 3]) & 0x3FU);
            length = 4;
        } else if (c >= 0xE0 && i + 2 < utf8.size()) {
            code = ((c & 0x0FU) << 12U) |
                   ((static_cast<unsigned char>(utf8[i + 1]) & 0x3FU) << 6U) |
                   (static_cast<unsigned char>(utf8[i + 2]) & 0x3FU);
            length = 3;
        } else if (c >= 0xC0 && i + 1 < utf8.size()) {
            code = ((c & 0x1FU) << 6U) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3FU);
            length = 2;
        }
        if (code >= 0x10000) {
            code -= 0x10000;
            out.push_back(static_cast<char16_t>(0xD800 + (code >> 10U)));
            out.push_back(static_cast<char16_t>(0xDC00 + (code & 0x3FFU)));
        } else {
            out.push_back(static_cast<char16_t>(code));
        }
        i += length;
    }
    return out;
}

void write_canonical(std::string& out, const boost::json::value& value) {
    if (const auto* object = value.if_object()) {
        std::vector<std::pair<std::u16string, const boost::json::key_value_pair*>> entries;
        entries.reserve(object->size());
        for (const auto& entry : *object) {
            entries.emplace_back(utf16_of(entry.key()), &entry);
        }
        std::sort(entries.begin(), entries.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        out.push_back('{');
        bool first = true;
        for (const auto& [key, entry] : entries) {
            if (!first) {
                out.push_back(',');
            }
            first = false;
            write_string(out, entry->key());
            out.push_back(':');
            write_canonical(out, entry->value());
        }
        out.push_back('}');
        return;
    }
    if (const auto* array = value.if_array()) {
        out.push_back('[');
        bool first = true;
        for (const auto& item : *array) {
            if (!first) {
                out.push_back(',');
            }
            first = false;
            write_canonical(out, item);
        }
        out.push_back(']');
        return;
    }
    write_json(out, value);
}

}  // namespace

std::string to_canonical_json(const boost::json::value& value) {
    std::string out;
    write_canonical(out, value);
    return out;
}

std::string to_json(const boost::json::value& value) {
    std::string out;
    write_json(out, value);
    return out;
}

}  // namespace inngest::detail
