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

/// `bytes` random bytes from OpenSSL, as hex; throws when none are available.
inline std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    if (RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) {
        throw std::runtime_error("no random bytes available");
    }
    return to_hex(raw.data(), raw.size());
}

}  // namespace riveredge::core
