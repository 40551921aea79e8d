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

// Whether a Host header names this machine's loopback: localhost, 127.0.0.0/8 or [::1], with or
// without a port. A page whose own name was rebound to 127.0.0.1 still sends that name.
inline bool loopback_host_header(std::string_view host) {
    std::string_view name = host;
    std::string_view port;
    if (name.starts_with('[')) {
        const auto close = name.find(']');
        if (close == std::string_view::npos) {
            return false;
        }
        port = name.substr(close + 1);
        name = name.substr(0, close + 1);
    } else if (const auto colon = name.find(':'); colon != std::string_view::npos) {
        port = name.substr(colon);
        name = name.substr(0, colon);
    }
    if (!port.empty()) {
        if (port.size() < 2 || port.size() > 6 || port.front() != ':') {
            return false;
        }
        for (const char c : port.substr(1)) {
            if (c < '0' || c > '9') {
                return false;
            }
        }
    }
    std::string lowered(name);
    for (char& c : lowered) {
        c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    if (lowered == "localhost" || lowered == "[::1]") {
        return true;
    }
    // 127.a.b.c, each part a decimal number below 256
    if (!lowered.starts_with("127.")) {
        return false;
    }
    int parts = 0;
    std::string_view rest = std::string_view(lowered);
    while (true) {
        const auto dot = rest.find('.');
        const std::string_view part = rest.substr(0, dot);
        if (part.empty() || part.size() > 3) {
            return false;
        }
        int value = 0;
        for (const char c : part) {
            if (c < '0' || c > '9') {
                return false;
            }
            value = value * 10 + (c - '0');
        }
        if (value > 255) {
            return false;
        }
        ++parts;
        if (dot == std::string_view::npos) {
            break;
        }
        rest = rest.substr(dot + 1);
    }
    return parts == 4;
}

}  // namespace inngest::detail
