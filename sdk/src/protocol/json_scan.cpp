#include "protocol/json_scan.hpp"

#include "crypto/crypto.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <bitset>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace inngest::detail {
namespace {

constexpr bool is_ws(char c) noexcept {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

// Reads the four hex digits after `\u` at `p` (which points at the backslash).
bool read_u_escape(const char* p, const char* end, std::uint32_t& code) noexcept {
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
        return false;
    }
    code = 0;
    for (int i = 2; i < 6; ++i) {
        const int digit = crypto::hex_value(p[i]);
        if (digit < 0) {
            return false;
        }
        code = code * 16 + static_cast<std::uint32_t>(digit);
    }
    return true;
}

bool is_continuation(unsigned char c) noexcept {
    return (c & 0xC0U) == 0x80U;
}

void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
        out += static_cast<char>(code);
    } else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (code >> 18));
        out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    }
}

// Boost.JSON refuses a number whose decimal exponent, adjusted by the mantissa's digits, leaves
// int (error::exponent_overflow). Within the digit count of INT_MAX that depends on how it
// counts the digits, so for that rare case it decides itself.
constexpr std::uint64_t kExponentLimit = std::numeric_limits<int>::max();

bool exponent_accepted(std::string_view token, std::uint64_t exponent) noexcept {
    if (exponent > kExponentLimit) {
        return false;
    }
    unsigned char buffer[256];
    boost::json::monotonic_resource arena(buffer, sizeof buffer);
    boost::system::error_code ec;
    boost::json::parse(token, ec, &arena);
    return !ec;
}

}  // namespace

bool JsonScanner::skip_ws() noexcept {
    while (p_ != end_ && is_ws(*p_)) {
        ++p_;
    }
    return p_ != end_;
}

bool JsonScanner::consume(char c) noexcept {
    if (skip_ws() && *p_ == c) {
        ++p_;
        return true;
    }
    return false;
}

bool JsonScanner::literal(std::string_view word) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
        return false;
    }
    p_ += word.size();
    return true;
}

bool JsonScanner::number() noexcept {
    const char* start = p_;
    if (p_ != end_ && *p_ == '-') {
        ++p_;
    }
    if (p_ == end_) {
        return false;
    }
    const char* digits_start = p_;
    if (*p_ == '0') {
        ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
        while (p_ != end_ && is_digit(*p_)) {
            ++p_;
        }
    } else {
        return false;
    }
    if (p_ != end_ && *p_ == '.') {
        ++p_;
        if (p_ == end_ || !is_digit(*p_)) {
            return false;
        }
        while (p_ != end_ && is_digit(*p_)) {
            ++p_;
        }
    }
    const auto digits = static_cast<std::uint64_t>(p_ - digits_start);  // the point counted too
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
        ++p_;
        if (p_ != end_ && (*p_ == '+' || *p_ == '-')) {
            ++p_;
        }
        if (p_ == end_ || !is_digit(*p_)) {
            return false;
        }
        std::uint64_t exponent = 0;
        while (p_ != end_ && is_digit(*p_)) {
            exponent = std::min<std::uint64_t>(exponent * 10 + static_cast<unsigned>(*p_ - '0'),
                                               kExponentLimit + 1);
            ++p_;
        }
        if (exponent + digits > kExponentLimit) {
            return exponent_accepted(std::string_view(start, static_cast<std::size_t>(p_ - start)),
                                     exponent);
        }
    }
    return true;
}

bool JsonScanner::escape() noexcept {
    // p_ is at the backslash.
    if (end_ - p_ < 2) {
        return false;
    }
    switch (p_[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p_ += 2;
            return true;
        case 'u':
            break;
        default:
            return false;
    }
    std::uint32_t code = 0;
    if (!read_u_escape(p_, end_, code)) {
        return false;
    }
    p_ += 6;
    if (code >= 0xDC00 && code <= 0xDFFF) {
        return false;  // a trailing surrogate with no leading one
    }
    if (code >= 0xD800 && code <= 0xDBFF) {
        std::uint32_t low = 0;
        if (!read_u_escape(p_, end_, low) || low < 0xDC00 || low > 0xDFFF) {
            return false;
        }
        p_ += 6;
    }
    return true;
}

bool JsonScanner::utf8() noexcept {
    // p_ is at a byte >= 0x80. Well-formed sequences only (RFC 3629 table 3-7).
    const auto* s = reinterpret_cast<const unsigned char*>(p_);
    const auto left = static_cast<std::size_t>(end_ - p_);
    const unsigned char lead = s[0];
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) {
            low = 0xA0;
        } else if (lead == 0xED) {
            high = 0x9F;
        }
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) {
            low = 0x90;
        } else if (lead == 0xF4) {
            high = 0x8F;
        }
    } else {
        return false;
    }
    if (left < length || s[1] < low || s[1] > high) {
        return false;
    }
    for (std::size_t i = 2; i < length; ++i) {
        if (!is_continuation(s[i])) {
            return false;
        }
    }
    p_ += length;
    return true;
}

bool JsonScanner::string(std::string_view& raw, bool& escaped) noexcept {
    if (!skip_ws() || *p_ != '"') {
        return false;
    }
    const char* start = p_;
    ++p_;
    escaped = false;
    for (;;) {
#if defined(__SSE2__)
        // 16 bytes at a time: stop at a quote, a backslash, a control byte or a non-ASCII byte
        // (a signed compare below 0x20 catches both of the latter).
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i backslash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);
        while (end_ - p_ >= 16) {
            const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
            const __m128i special = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)),
                _mm_cmplt_epi8(chunk, space));
            const int mask = _mm_movemask_epi8(special);
            if (mask != 0) {
                p_ += __builtin_ctz(static_cast<unsigned>(mask));
                break;
            }
            p_ += 16;
        }
#endif
        if (p_ == end_) {
            return false;
        }
        const auto c = static_cast<unsigned char>(*p_);
        if (c == '"') {
            ++p_;
            raw = std::string_view(start, static_cast<std::size_t>(p_ - start));
            return true;
        }
        if (c == '\\') {
            escaped = true;
            if (!escape()) {
                return false;
            }
        } else if (c < 0x20) {
            return false;
        } else if (c >= 0x80) {
            if (!utf8()) {
                return false;
            }
        } else {
            ++p_;
        }
    }
}

bool JsonScanner::value(std::string_view& raw, int depth) noexcept {
    if (!skip_ws()) {
        return false;
    }
    const char* start = p_;
    // One bit per open container, set for objects: no recursion, bounded depth.
    std::bitset<kMaxJsonDepth> objects;
    int level = 0;
    std::string_view token;
    bool escaped = false;
    for (;;) {
        // A value is expected here.
        if (!skip_ws()) {
            return false;
        }
        switch (*p_) {
            case '{':
            case '[': {
                if (depth + level + 1 > kMaxJsonDepth) {
                    return false;
                }
                const bool object = *p_ == '{';
                ++p_;
                objects[static_cast<std::size_t>(level)] = object;
                ++level;
                if (consume(object ? '}' : ']')) {
                    --level;
                    break;
                }
                if (object) {
                    if (!string(token, escaped) || !consume(':')) {
                        return false;
                    }
                }
                continue;  // the first member's value
            }
            case '"':
                if (!string(token, escaped)) {
                    return false;
                }
                break;
            case 't':
                if (!literal("true")) {
                    return false;
                }
                break;
            case 'f':
                if (!literal("false")) {
                    return false;
                }
                break;
            case 'n':
                if (!literal("null")) {
                    return false;
                }
                break;
            default:
                if (*p_ != '-' && !is_digit(*p_)) {
                    return false;
                }
                if (!number()) {
                    return false;
                }
                break;
        }
        // A value ended: close containers or move to the next member.
        for (;;) {
            if (level == 0) {
                raw = std::string_view(start, static_cast<std::size_t>(p_ - start));
                return true;
            }
            const bool object = objects[static_cast<std::size_t>(level - 1)];
            if (!skip_ws()) {
                return false;
            }
            if (*p_ == ',') {
                ++p_;
                if (object && (!string(token, escaped) || !consume(':'))) {
                    return false;
                }
                break;  // the next value
            }
            if (*p_ != (object ? '}' : ']')) {
                return false;
            }
            ++p_;
            --level;
        }
    }
}

boost::json::parse_options json_parse_options() noexcept {
    boost::json::parse_options options;
    options.max_depth = static_cast<std::size_t>(kMaxJsonDepth);
    return options;
}

boost::json::value parse_json(std::string_view text,
                              boost::system::error_code& ec,
                              boost::json::storage_ptr storage) {
    return boost::json::parse(text, ec, std::move(storage), json_parse_options());
}

int json_depth(const boost::json::value& value, int limit) noexcept {
    if (limit < 0) {
        return 0;  // deeper than the caller asked about: not looked at
    }
    int deepest = 0;
    if (const auto* array = value.if_array()) {
        for (const auto& item : *array) {
            deepest = std::max(deepest, json_depth(item, limit - 1));
            if (deepest >= limit) {
                break;
            }
        }
        return 1 + deepest;
    }
    if (const auto* object = value.if_object()) {
        for (const auto& member : *object) {
            deepest = std::max(deepest, json_depth(member.value(), limit - 1));
            if (deepest >= limit) {
                break;
            }
        }
        return 1 + deepest;
    }
    return 0;
}

bool is_valid_json(std::string_view text) noexcept {
    JsonScanner scanner(text);
    std::string_view raw;
    return scanner.value(raw, 0) && scanner.at_end();
}

void decode_json_string(std::string_view raw, std::string& out) {
    std::string_view rest = raw.substr(1, raw.size() - 2);
    out.reserve(out.size() + rest.size());
    while (!rest.empty()) {
        const std::size_t slash = rest.find('\\');
        out.append(rest.substr(0, slash));
        if (slash == std::string_view::npos) {
            return;
        }
        rest.remove_prefix(slash);
        const char kind = rest[1];
        switch (kind) {
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': {
                std::uint32_t code = 0;
                read_u_escape(rest.data(), rest.data() + rest.size(), code);
                rest.remove_prefix(6);
                if (code >= 0xD800 && code <= 0xDBFF) {
                    std::uint32_t low = 0;
                    read_u_escape(rest.data(), rest.data() + rest.size(), low);
                    rest.remove_prefix(6);
                    code = 0x10000 + ((code - 0xD800) << 10U) + (low - 0xDC00);
                }
                append_utf8(out, code);
                continue;
            }
            default:  // " \ /
                out += kind;
                break;
        }
        rest.remove_prefix(2);
    }
}

}  // namespace inngest::detail
