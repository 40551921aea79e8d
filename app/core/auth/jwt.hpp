#pragma once

// HS256 bearer tokens carrying tenant_id, sub and roles.

#include "core/auth/principal.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace riveredge::core {

/// A signed token for `principal`, valid for `lifetime`.
std::string issue_token(const Principal& principal,
                        std::string_view secret,
                        std::chrono::seconds lifetime = std::chrono::hours(12));

/// The principal of a valid token: HS256, signature checked in constant time, not expired, and
/// carrying a tenant_id that `valid_tenant_id` accepts and a non-empty sub. nullopt otherwise.
std::optional<Principal> verify_token(std::string_view token, std::string_view secret);

/// A valid token's principal and when it expires (for connections that outlive a request).
struct VerifiedToken {
    Principal who;
    std::chrono::system_clock::time_point expires_at;
};
std::optional<VerifiedToken> verify_token_until(std::string_view token, std::string_view secret);

/// Equal without telling, by timing, how much of a secret matched.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace riveredge::core
