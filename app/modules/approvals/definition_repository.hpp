#pragma once

// Process definitions' tables: drafts and their immutable published versions. Every call
// takes the tenant and runs in a transaction bound to it (row-level security).

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"

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

/// A definition: its draft and how far it is published.
struct DefinitionRow {
    std::int64_t id = 0;
    std::string key;
    std::string name;
    std::string format;
    boost::json::value draft;
    int latest_version = 0;
    std::string created_by;
    std::string created_at;
    std::string updated_at;
    std::optional<std::string> archived_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(
    DefinitionRow,
    (),
    (id, key, name, format, draft, latest_version, created_by, created_at, updated_at, archived_at))

/// A definition as lists show it.
struct DefinitionSummary {
    std::int64_t id = 0;
    std::string key;
    std::string name;
    std::string format;
    int latest_version = 0;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(DefinitionSummary, (), (id, key, name, format, latest_version))

/// A published, immutable version: the compiled definition and the source it came from.
struct DefinitionVersionRow {
    int version = 0;
    boost::json::object compiled;
    boost::json::value source;
    std::string content_hash;
    std::string published_by;
    std::string published_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(DefinitionVersionRow,
                      (),
                      (version, compiled, source, content_hash, published_by, published_at))

/// The definition list's sort fields and filters.
extern const core::db::ListSpec kDefinitionList;

/// One version of a decision table.
struct DecisionRow {
    std::string key;
    int version = 0;
    std::string name;
    boost::json::object source;
    std::string created_by;
    std::string created_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(DecisionRow, (), (key, version, name, source, created_by, created_at))

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
    std::optional<DefinitionRow> find(const core::TenantId& tenant, std::int64_t id);
    /// The tenant's definition with `key` (not archived).
    std::optional<DefinitionRow> find_key(const core::TenantId& tenant, const std::string& key);
    /// The page asked for, its filters applied (`kDefinitionList`).
    core::db::Page<DefinitionSummary> list(const core::TenantId& tenant,
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
    std::optional<DefinitionVersionRow> version(const core::TenantId& tenant,
                                                std::int64_t id,
                                                int version);

    /// Stores `source` as the next version of decision table `key` (1 for a new key).
    DecisionRow save_decision(const core::TenantId& tenant,
                              const std::string& key,
                              const std::string& name,
                              const boost::json::object& source,
                              const std::string& author);
    /// A version of decision table `key`, the latest when `version` is empty.
    std::optional<DecisionRow> decision(const core::TenantId& tenant,
                                        const std::string& key,
                                        std::optional<int> version = std::nullopt);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::approvals
