#include "crypto/signing_key.hpp"

#include "crypto/crypto.hpp"

#include <inngest/errors.hpp>

#include <cctype>
#include <charconv>
#include <ostream>

namespace inngest::detail {
namespace {

// Length of a `signkey-<word>-` prefix, or 0 (regex `^signkey-\w+-`).
std::size_t prefix_length(std::string_view raw) noexcept {
    constexpr std::string_view kStart = "signkey-";
    if (raw.substr(0, kStart.size()) != kStart) {
        return 0;
    }
    std::size_t i = kStart.size();
    const std::size_t word_start = i;
    while (i < raw.size() &&
           (std::isalnum(static_cast<unsigned char>(raw[i])) != 0 || raw[i] == '_')) {
        ++i;
    }
    if (i == word_start || i >= raw.size() || raw[i] != '-') {
        return 0;
    }
    return i + 1;
}

bool parse_int(std::string_view text, std::int64_t& out) noexcept {
    if (text.empty()) {
        return false;
    }
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end;
}

}  // namespace

SigningKey SigningKey::parse(std::string_view raw) {
    const std::size_t prefix = prefix_length(raw);
    SigningKey key;
    key.normalized_ = std::string(raw.substr(prefix));
    std::string decoded;
    if (key.normalized_.empty() || !crypto::hex_decode(key.normalized_, decoded)) {
        throw ConfigError("signing key must be hex, optionally prefixed by signkey-<env>-");
    }
    key.hashed_ = std::string(raw.substr(0, prefix)) + crypto::sha256_hex(decoded);
    return key;
}

std::string SigningKey::mac(std::string_view body, std::string_view timestamp) const {
    return crypto::hmac_sha256_hex(normalized_, body, timestamp);
}

std::ostream& operator<<(std::ostream& out, const SigningKey& key) {
    // Twelve hex characters of the *hashed* key: enough to tell keys apart, useless to forge.
    const std::size_t start = key.hashed_.size() >= 64 ? key.hashed_.size() - 64 : 0;
    return out << "signkey:" << key.hashed_.substr(start, 12) << "…";
}

SignatureCheck verify_signature(std::string_view header,
                                std::string_view body,
                                const SigningKey& primary,
                                const std::optional<SigningKey>& fallback,
                                std::int64_t now_seconds) {
    if (header.empty()) {
        return SignatureCheck::kMissing;
    }
    std::string_view t;
    std::string_view s;
    bool seen_t = false;
    bool seen_s = false;
    while (!header.empty()) {
        const std::size_t amp = header.find('&');
        const std::string_view pair = header.substr(0, amp);
        header = amp == std::string_view::npos ? std::string_view{} : header.substr(amp + 1);
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        const std::string_view name = pair.substr(0, eq);
        if (name == "t" && !seen_t) {
            t = pair.substr(eq + 1);
            seen_t = true;
        } else if (name == "s" && !seen_s) {
            s = pair.substr(eq + 1);
            seen_s = true;
        }
    }
    std::int64_t timestamp = 0;
    if (!seen_t || !seen_s || s.empty() || !parse_int(t, timestamp)) {
        return SignatureCheck::kMalformed;
    }
    constexpr std::int64_t kWindowSeconds = 5 * 60;
    // Bounds around now rather than now - t, which overflows for a t near the int64 limits.
    if (timestamp < now_seconds - kWindowSeconds || timestamp > now_seconds + kWindowSeconds) {
        return SignatureCheck::kExpired;
    }
    if (crypto::constant_time_equal(primary.mac(body, t), s)) {
        return SignatureCheck::kPrimary;
    }
    if (fallback && crypto::constant_time_equal(fallback->mac(body, t), s)) {
        return SignatureCheck::kFallback;
    }
    return SignatureCheck::kMismatch;
}

std::string sign_body(const SigningKey& key, std::string_view body, std::int64_t now_seconds) {
    const std::string t = std::to_string(now_seconds);
    return "t=" + t + "&s=" + key.mac(body, t);
}

}  // namespace inngest::detail
