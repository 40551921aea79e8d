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

// The key's bytes as the TypeScript SDK reads them for hashing, so that any key (not only a
// hex one) gives the bearer value that SDK gives: letters and digits only, a leading '0' when
// their count is odd, then each pair read as a base-16 number from its start (a pair that does
// not start with a hex digit is 0; "1z" is 1). For a hex key this is plain hex decoding.
std::string lenient_hex_bytes(std::string_view key) {
    std::string kept;
    for (const char c : key) {
        if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
            kept += c;
        }
    }
    if (kept.size() % 2 != 0) {
        kept.insert(kept.begin(), '0');
    }
    std::string bytes;
    bytes.reserve(kept.size() / 2);
    for (std::size_t i = 0; i < kept.size(); i += 2) {
        const int high = crypto::hex_value(kept[i]);
        const int low = crypto::hex_value(kept[i + 1]);
        const int value = high < 0 ? 0 : low < 0 ? high : high * 16 + low;
        bytes += static_cast<char>(value);
    }
    return bytes;
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
    if (key.normalized_.empty()) {
        throw ConfigError("signing key is empty (expected signkey-<env>-<hex>)");
    }
    key.hashed_ =
        std::string(raw.substr(0, prefix)) + crypto::sha256_hex(lenient_hex_bytes(key.normalized_));
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
