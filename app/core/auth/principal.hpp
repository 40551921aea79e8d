#pragma once

// Who a request runs as. `TenantId` can only be built by the auth layer (and tests through
// `TenantId::trusted`), so repositories cannot be handed a raw, unchecked string.

#include <string>
#include <string_view>
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

/// A tenant id is 1 to 64 of A-Z, a-z, 0-9, '_', '.' and '-': it is joined into event names
/// (`tenants/<tenant>/<name>`, split at the '/' after it), queue names and keys, so no id can
/// read as another's.
inline bool valid_tenant_id(std::string_view id) {
    if (id.empty() || id.size() > 64) {
        return false;
    }
    for (const char c : id) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/// The role of tenant administrators.
inline constexpr const char* kAdminRole = "admin";

struct Principal {
    TenantId tenant;
    std::string user_id;
    std::vector<std::string> roles;

    bool has_role(const std::string& role) const;
};

}  // namespace riveredge::core
