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

/// What the version routes of a versioned item are called and who may read them.
struct VersionedItem {
    std::string item_pattern;
    std::string noun;
    Access access = Access::kUser;
    std::string version_schema{};
};

/// The version routes of a module whose service's `get(tenant, id)` throws the item's 404 and
/// whose repository lists `versions(tenant, id)` and finds `version(tenant, id, number)` (an
/// optional row with `to_json()`, or its JSON): the shape every versioned module has.
template <class Service>
void add_version_routes(Router& router, VersionedItem item, Service& service) {
    add_version_routes(
        router,
        VersionRoutes{.item_pattern = std::move(item.item_pattern),
                      .noun = std::move(item.noun),
                      .access = item.access,
                      .version_schema = std::move(item.version_schema),
                      .require_item = [&service](const TenantId& tenant,
                                                 std::int64_t id) { service.get(tenant, id); },
                      .versions =
                          [&service](const TenantId& tenant, std::int64_t id) {
                              return service.repository().versions(tenant, id);
                          },
                      .version = [&service](const TenantId& tenant, std::int64_t id,
                                            int number) -> std::optional<boost::json::object> {
                          auto found = service.repository().version(tenant, id, number);
                          if constexpr (requires { found->to_json(); }) {
                              return found ? std::optional(found->to_json()) : std::nullopt;
                          } else {
                              return found;  // already the version's JSON
                          }
                      }});
}

}  // namespace riveredge::core
