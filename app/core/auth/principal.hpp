#pragma once

// Who a request runs as. `TenantId` can only be built by the auth layer (and tests through
// `TenantId::trusted`), so repositories cannot be handed a raw, unchecked string.

#include <string>
#include <vector>

namespace riveredge::core {

class TenantId {
public:
    /// For code that has already authenticated the tenant (token verification, Inngest events
    /// the app itself emitted, tests).
    static TenantId trusted(std::string value) { return TenantId(std::move(value)); }
    const std::string& value() const noexcept { return value_; }
    bool operator==(const TenantId& other) const noexcept { return value_ == other.value_; }

private:
    explicit TenantId(std::string value) : value_(std::move(value)) {}
    std::string value_;
};

/// The role of tenant administrators.
inline constexpr const char* kAdminRole = "admin";

struct Principal {
    TenantId tenant;
    std::string user_id;
    std::vector<std::string> roles;

    bool has_role(const std::string& role) const;
};

}  // namespace riveredge::core
