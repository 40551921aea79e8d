#pragma once

// Lowercase hex: of bytes, and of fresh random bytes (keys, ids).

#include <openssl/rand.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace riveredge::core {

inline std::string to_hex(const unsigned char* data, std::size_t size) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        hex.push_back(kDigits[data[i] >> 4]);
        hex.push_back(kDigits[data[i] & 15]);
    }
    return hex;
}

/// The bytes of lowercase or uppercase `hex`; throws `std::invalid_argument` on anything else.
inline std::string from_hex(const std::string& hex) {
    const auto digit = [](char c) {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        throw std::invalid_argument("not a hex digit");
    };
    if (hex.size() % 2 != 0) {
        throw std::invalid_argument("hex of odd length");
    }
    std::string out(hex.size() / 2, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<char>(digit(hex[2 * i]) * 16 + digit(hex[2 * i + 1]));
    }
    return out;
}

/// `bytes` random bytes from OpenSSL, as hex; throws when none are available.
inline std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    if (RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) {
        throw std::runtime_error("no random bytes available");
    }
    return to_hex(raw.data(), raw.size());
}

}  // namespace riveredge::core
