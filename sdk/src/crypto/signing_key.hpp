#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace inngest::detail {

/// A signing key. Never printed: `operator<<` writes a redacted fingerprint.
class SigningKey {
public:
    /// Accepts `signkey-<env>-<hex>` or bare hex, and, as the TypeScript SDK does, any other
    /// non-empty text (signed with as it is, hashed as that SDK hashes it); throws
    /// `ConfigError` for an empty key.
    static SigningKey parse(std::string_view raw);

    /// `X-Inngest-Signature`-style MAC: hex HMAC-SHA256(normalised key as ASCII, body || t).
    std::string mac(std::string_view body, std::string_view timestamp) const;
    /// `Authorization: Bearer` value: prefix + hex(SHA-256(hex-decoded key)) (protocol §5.4;
    /// a key that is not hex is decoded leniently, as the TypeScript SDK does).
    const std::string& hashed() const noexcept { return hashed_; }

    friend std::ostream& operator<<(std::ostream& out, const SigningKey& key);

private:
    SigningKey() = default;
    std::string normalized_;  // hex part, prefix removed
    std::string hashed_;
};

/// Result of checking `X-Inngest-Signature`.
enum class SignatureCheck { kMissing, kMalformed, kExpired, kMismatch, kPrimary, kFallback };

/// Verifies a signature header over `body` at `now_seconds`, trying the fallback key too; the
/// timestamp must lie within five minutes either side of now (protocol §5.2).
SignatureCheck verify_signature(std::string_view header,
                                std::string_view body,
                                const SigningKey& primary,
                                const std::optional<SigningKey>& fallback,
                                std::int64_t now_seconds);

/// `t=<now>&s=<mac>` for a response body (protocol §5.3).
std::string sign_body(const SigningKey& key, std::string_view body, std::int64_t now_seconds);

}  // namespace inngest::detail
