#pragma once

// Process definitions' tables: drafts and their immutable published versions. Every call
// takes the tenant and runs in a transaction bound to it (row-level security).

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace riveredge::approvals {

struct NewDefinition {
    std::string key;
    std::string name;
    std::string format;
    boost::json::value draft;
};

/// The definition list's sort fields and filters.
extern const core::db::ListSpec kDefinitionList;

class DefinitionRepository {
public:
    explicit DefinitionRepository(core::db::Pool& pool) : pool_(pool) {}

    /// nullopt when the key is taken in the tenant.
    std::optional<std::int64_t> create(const core::TenantId& tenant,
                                       const NewDefinition& definition,
                                       const std::string& author);
    bool update_draft(const core::TenantId& tenant,
                      std::int64_t id,
                      const std::string& name,
                      const std::string& format,
                      const boost::json::value& draft);
    /// {id, key, name, format, draft, latest_version, created_by, created_at, updated_at}.
    std::optional<boost::json::object> find(const core::TenantId& tenant, std::int64_t id);
    core::db::JsonPage list(const core::TenantId& tenant,
                            const core::db::Param& name_contains,
                            const core::db::ListRequest& page);
    /// Hides the definition from lists and new instances; its versions stay for the instances
    /// pinned to them. False when there is no such definition.
    bool archive(const core::TenantId& tenant, std::int64_t id);
    /// The next version number, stored with its compiled definition and source.
    int publish(const core::TenantId& tenant,
                std::int64_t id,
                const boost::json::object& compiled,
                const boost::json::value& source,
                const std::string& content_hash,
                const std::string& author);
    boost::json::array versions(const core::TenantId& tenant, std::int64_t id);
    std::optional<boost::json::object> version(const core::TenantId& tenant,
                                               std::int64_t id,
                                               int version);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::approvals
