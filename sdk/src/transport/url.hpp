#pragma once

// Query values in URLs: what we build has everything but RFC 3986's unreserved characters
// percent-encoded, so an id with `&`, `=`, `#`, spaces or UTF-8 survives the round trip; what
// we receive is decoded (form style: `+` is a space, a malformed escape stays as it is).

#include "crypto/crypto.hpp"

#include <string>
#include <string_view>

namespace inngest::detail {

inline std::string percent_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_' ||
            byte == '~') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 0x0f]);
        }
    }
    return out;
}

inline std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out.push_back(' ');
        } else if (text[i] == '%' && i + 2 < text.size() && crypto::hex_value(text[i + 1]) >= 0 &&
                   crypto::hex_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(crypto::hex_value(text[i + 1]) * 16 +
                                            crypto::hex_value(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

}  // namespace inngest::detail
