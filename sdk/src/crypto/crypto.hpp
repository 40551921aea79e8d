#pragma once

// Hashes, MACs and encodings the protocol needs, over OpenSSL.

#include <cstddef>
#include <string>
#include <string_view>

namespace inngest::detail::crypto {

/// Lower-case hex SHA-1 (step ids, protocol §10.2).
std::string sha1_hex(std::string_view data);
/// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view data);
/// Lower-case hex HMAC-SHA256 of `data1 || data2` with `key` used as raw bytes.
std::string hmac_sha256_hex(std::string_view key, std::string_view data1, std::string_view data2);
/// Constant-time equality; the length is not secret.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;
/// The value of one hex digit (either case), or -1.
int hex_value(char c) noexcept;
/// Decodes hex; returns false on odd length or a non-hex digit.
bool hex_decode(std::string_view hex, std::string& out);
/// Cryptographically random bytes.
std::string random_bytes(std::size_t count);
/// Standard base64 with padding.
std::string base64_encode(std::string_view data);

}  // namespace inngest::detail::crypto
