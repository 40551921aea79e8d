#pragma once

// The event namespaces. The app's own functions trigger only on names under reserved prefixes,
// and only the app sends those (the executor's event API needs the event key). Events a tenant
// defines (schedule actions, later webhooks) travel as `tenants/<tenant>/<name>` with the
// tenant taken from the caller's token, so they can never start one of the app's functions or
// speak for another tenant.

#include "core/auth/principal.hpp"

#include <inngest/errors.hpp>

#include <boost/json/object.hpp>

#include <array>
#include <string>
#include <string_view>

namespace riveredge::core {

inline constexpr std::array<std::string_view, 10> kReservedEventPrefixes{
    "messages/", "schedules/", "scripts/", "approvals/", "records/",
    "print/",    "workflows/", "inngest/", "riveredge/", "tenants/"};

/// True when `name` lies in the app's own namespace (or Inngest's).
inline bool is_reserved_event_name(std::string_view name) {
    for (const auto prefix : kReservedEventPrefixes) {
        if (name.starts_with(prefix)) {
            return true;
        }
    }
    return false;
}

/// The name a tenant-defined event is sent under.
inline std::string tenant_event_name(const TenantId& tenant, std::string_view name) {
    return "tenants/" + tenant.value() + "/" + std::string(name);
}

/// The tenant of one of the app's own events (`data.tenant_id`). Only the app sends these, so the
/// tenant is the one the app authenticated; a malformed one fails the run without retries, and
/// each function still loads its rows in this tenant only, refusing ids that are not its.
inline TenantId event_tenant(const boost::json::object& data) {
    const auto* value = data.if_contains("tenant_id");
    if (value == nullptr || !value->is_string() || value->get_string().empty() ||
        value->get_string().size() > 200) {
        throw inngest::NonRetriableError("the event carries no valid data.tenant_id");
    }
    return TenantId::trusted(std::string(value->get_string()));
}

}  // namespace riveredge::core
