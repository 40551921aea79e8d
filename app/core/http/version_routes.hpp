#pragma once

// The two read routes of anything kept as immutable numbered versions (scripts, process
// definitions; next, records and print templates): `GET <item>/versions` (newest first) and
// `GET <item>/versions/{version}`, declared once with the same permission, 404s and documentation.

#include "core/http/router.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace riveredge::core {

struct VersionRoutes {
    /// The item's path with its id parameter: `/api/v1/scripts/{id}`.
    std::string item_pattern;
    /// What the item is called in summaries and 404s: "script".
    std::string noun;
    Access access = Access::kUser;
    /// Schema of one version (empty: a generic object).
    std::string version_schema{};
    /// Throws the item's not-found DomainError when the tenant has no such item.
    std::function<void(const TenantId&, std::int64_t id)> require_item;
    /// Every version's summary, newest first.
    std::function<boost::json::array(const TenantId&, std::int64_t id)> versions;
    std::function<std::optional<boost::json::object>(const TenantId&, std::int64_t id, int number)>
        version;
};

void add_version_routes(Router& router, VersionRoutes routes);

}  // namespace riveredge::core
