#include "core/json/canonical.hpp"

#include "core/json/separated.hpp"
#include "core/text/hex.hpp"
#include "core/text/utf8.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <vector>

namespace riveredge::core {
namespace {

constexpr std::int64_t kMaxExactInteger = std::int64_t{1} << 53;

// The UTF-16 code units of a UTF-8 name: JCS sorts member names by them.
std::u16string utf16(std::string_view text) {
    std::u16string out;
    for (std::size_t i = 0; i < text.size();) {
        const auto [length, decoded] = utf8_at(text, i);
        if (length == 0) {
            throw CanonicalJsonError("invalid UTF-8 in a JSON string");
        }
        auto point = decoded;
        if (point >= 0x10000) {
            point -= 0x10000;
            out.push_back(static_cast<char16_t>(0xD800 + (point >> 10)));
            out.push_back(static_cast<char16_t>(0xDC00 + (point & 0x3FF)));
        } else {
            out.push_back(static_cast<char16_t>(point));
        }
        i += length;
    }
    return out;
}

void write_string(std::string_view text, std::string& out) {
    utf16(text);  // validates
    out.push_back('"');
    for (const char c : text) {
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
                if (static_cast<unsigned char>(c) < 0x20) {
                    static constexpr char kHex[] = "0123456789abcdef";
                    out += "\\u00";
                    out.push_back(kHex[(c >> 4) & 0xF]);
                    out.push_back(kHex[c & 0xF]);
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

// ECMAScript's Number::toString for a finite double (ECMA-262 7.1.12.1), from the shortest
// digits that read back to the same double.
void write_number(double number, std::string& out) {
    if (!std::isfinite(number)) {
        throw CanonicalJsonError("NaN and infinities have no JSON form");
    }
    if (number == 0) {
        out.push_back('0');  // -0 too
        return;
    }
    if (number < 0) {
        out.push_back('-');
        number = -number;
    }
    std::array<char, 40> buffer{};
    const auto [end, error] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), number,
                                            std::chars_format::scientific);
    const std::string_view scientific(buffer.data(), static_cast<std::size_t>(end - buffer.data()));
    const std::size_t e = scientific.find('e');
    std::string digits;
    for (const char c : scientific.substr(0, e)) {
        if (c != '.') {
            digits.push_back(c);
        }
    }
    const int exponent = std::stoi(std::string(scientific.substr(e + 1)));
    const int k = static_cast<int>(digits.size());
    const int n = exponent + 1;  // the value is 0.<digits> x 10^n
    if (k <= n && n <= 21) {
        out += digits;
        out.append(static_cast<std::size_t>(n - k), '0');
    } else if (0 < n && n <= 21) {
        out += digits.substr(0, static_cast<std::size_t>(n));
        out.push_back('.');
        out += digits.substr(static_cast<std::size_t>(n));
    } else if (-6 < n && n <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-n), '0');
        out += digits;
    } else {
        out.push_back(digits[0]);
        if (k > 1) {
            out.push_back('.');
            out += digits.substr(1);
        }
        out.push_back('e');
        out.push_back(n - 1 >= 0 ? '+' : '-');
        out += std::to_string(std::abs(n - 1));
    }
}

void write(const boost::json::value& value, std::string& out) {
    switch (value.kind()) {
        case boost::json::kind::null:
            out += "null";
            return;
        case boost::json::kind::bool_:
            out += value.get_bool() ? "true" : "false";
            return;
        case boost::json::kind::int64:
            // Beyond 2^53 a double would merge neighbouring integers into one form, and with it
            // different contents into one hash: refused, as I-JSON advises.
            if (value.get_int64() > kMaxExactInteger || value.get_int64() < -kMaxExactInteger) {
                throw CanonicalJsonError("integers beyond 2^53 have no exact canonical form");
            }
            write_number(static_cast<double>(value.get_int64()), out);
            return;
        case boost::json::kind::uint64:
            if (value.get_uint64() > static_cast<std::uint64_t>(kMaxExactInteger)) {
                throw CanonicalJsonError("integers beyond 2^53 have no exact canonical form");
            }
            write_number(static_cast<double>(value.get_uint64()), out);
            return;
        case boost::json::kind::double_:
            write_number(value.get_double(), out);
            return;
        case boost::json::kind::string:
            write_string(value.get_string(), out);
            return;
        case boost::json::kind::array:
            json_detail::write_separated(value.get_array(), '[', ']', out, write);
            return;
        case boost::json::kind::object: {
            std::vector<std::pair<std::u16string, const boost::json::key_value_pair*>> members;
            for (const auto& member : value.get_object()) {
                members.emplace_back(utf16(member.key()), &member);
            }
            std::sort(members.begin(), members.end(),
                      [](const auto& a, const auto& b) { return a.first < b.first; });
            json_detail::write_separated(members, '{', '}', out,
                                         [](const auto& sorted, std::string& text) {
                                             write_string(sorted.second->key(), text);
                                             text.push_back(':');
                                             write(sorted.second->value(), text);
                                         });
            return;
        }
    }
}

std::optional<std::string> beyond_exact(const boost::json::value& value, const std::string& path) {
    switch (value.kind()) {
        case boost::json::kind::int64:
            return value.get_int64() > kMaxExactInteger || value.get_int64() < -kMaxExactInteger
                       ? std::optional(path)
                       : std::nullopt;
        case boost::json::kind::uint64:
            return value.get_uint64() > static_cast<std::uint64_t>(kMaxExactInteger)
                       ? std::optional(path)
                       : std::nullopt;
        case boost::json::kind::array: {
            const auto& items = value.get_array();
            for (std::size_t i = 0; i < items.size(); ++i) {
                if (auto found = beyond_exact(items[i], path + "[" + std::to_string(i) + "]")) {
                    return found;
                }
            }
            return std::nullopt;
        }
        case boost::json::kind::object:
            for (const auto& [name, member] : value.get_object()) {
                const std::string at(name);
                if (auto found = beyond_exact(member, path.empty() ? at : path + "." + at)) {
                    return found;
                }
            }
            return std::nullopt;
        default:
            return std::nullopt;
    }
}

}  // namespace

std::optional<std::string> integer_beyond_exact(const boost::json::value& value) {
    return beyond_exact(value, "");
}

std::string canonical_json(const boost::json::value& value) {
    std::string out;
    write(value, out);
    return out;
}

std::string sha256_hex(const std::string& bytes) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr) !=
        1) {
        throw std::runtime_error("SHA-256 failed");
    }
    return to_hex(digest.data(), length);
}

}  // namespace riveredge::core
