#include "modules/approvals/definition_repository.hpp"

#include "core/db/sql_time.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;
using core::db::Transaction;

constexpr const char* kDefinitionColumns =
    "d.id, d.key, d.name, d.format, d.draft::text AS draft, d.latest_version, "
    "d.created_by, " SQL_UTC_TIME("d.created_at") " AS created_at, " SQL_UTC_TIME(
        "d.updated_at") " AS updated_at, " SQL_UTC_TIME("d.archived_at") " AS archived_at";

constexpr const char* kVersionColumns =
    "v.version, v.compiled::text AS compiled, v.source::text AS source, v.content_hash, "
    "v.published_by, " SQL_UTC_TIME("v.published_at") " AS published_at";

// A version as listed, without the definition itself.
struct VersionSummary {
    int version = 0;
    std::string content_hash;
    std::string published_by;
    std::string published_at;
};
BOOST_DESCRIBE_STRUCT(VersionSummary, (), (version, content_hash, published_by, published_at))

}  // namespace

std::optional<std::int64_t> DefinitionRepository::create(const core::TenantId& tenant,
                                                         const NewDefinition& definition,
                                                         const std::string& author) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "INSERT INTO approval_definitions (tenant_id, key, name, format, draft, created_by) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT (tenant_id, key) DO NOTHING "
        "RETURNING id",
        {tenant, definition.key, definition.name, definition.format, definition.draft, author});
    if (rows.empty()) {
        return std::nullopt;
    }
    return rows.integer(0, "id");
}

bool DefinitionRepository::update_draft(const core::TenantId& tenant,
                                        std::int64_t id,
                                        const std::string& name,
                                        const std::string& format,
                                        const boost::json::value& draft) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "UPDATE approval_definitions SET name = $3, format = $4, draft = $5::jsonb, updated_at = "
        "now() WHERE tenant_id = $1 AND id = $2",
        {tenant, id, name, format, draft});
    return rows.affected() == 1;
}

std::optional<DefinitionRow> DefinitionRepository::find(const core::TenantId& tenant,
                                                        std::int64_t id) {
    return core::db::select_first<DefinitionRow>(
        {pool_, tenant}, kDefinitionColumns,
        "FROM approval_definitions d WHERE d.tenant_id = $1 AND d.id = $2", {tenant, id});
}

std::optional<DefinitionRow> DefinitionRepository::find_key(const core::TenantId& tenant,
                                                            const std::string& key) {
    return core::db::select_first<DefinitionRow>(
        {pool_, tenant}, kDefinitionColumns,
        "FROM approval_definitions d WHERE d.tenant_id = $1 AND d.key = $2 AND "
        "d.archived_at IS NULL",
        {tenant, key});
}

const core::db::ListSpec kDefinitionList{
    .sort_fields = core::db::sort_fields("d", {"key", "name", "updated_at"}),
    .default_sort = "key",
    .tiebreak_sql = "d.id",
    .filters = {{"q", "text contained in the key or the name (any case)", "",
                 "strpos(lower(d.name), lower($?)) > 0 OR strpos(lower(d.key), lower($?)) > 0"}}};

core::db::Page<DefinitionSummary> DefinitionRepository::list(const core::TenantId& tenant,
                                                             const core::db::ListRequest& page) {
    return core::db::page_of<DefinitionSummary>(
        pool_, tenant, "d.id, d.key, d.name, d.format, d.latest_version",
        "FROM approval_definitions d WHERE d.tenant_id = $1 AND d.archived_at IS NULL", {tenant},
        page);
}

bool DefinitionRepository::archive(const core::TenantId& tenant, std::int64_t id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "UPDATE approval_definitions SET archived_at = coalesce(archived_at, now()) WHERE "
        "tenant_id = $1 AND id = $2",
        {tenant, id});
    return rows.affected() == 1;
}

int DefinitionRepository::publish(const core::TenantId& tenant,
                                  std::int64_t id,
                                  const boost::json::object& compiled,
                                  const boost::json::value& source,
                                  const std::string& content_hash,
                                  const std::string& author) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // The row lock orders concurrent publishes: version numbers never collide.
        const auto rows = tx.exec(
            "UPDATE approval_definitions SET latest_version = latest_version + 1, updated_at = "
            "now() "
            "WHERE tenant_id = $1 AND id = $2 RETURNING latest_version",
            {tenant, id});
        const int version = static_cast<int>(rows.integer(0, "latest_version"));
        tx.exec(
            "INSERT INTO approval_definition_versions (tenant_id, definition_id, version, "
            "compiled, "
            "source, content_hash, published_by) VALUES ($1, $2, $3::int, $4::jsonb, $5::jsonb, "
            "$6, "
            "$7)",
            {tenant, id, version, compiled, source, content_hash, author});
        return version;
    });
}

boost::json::array DefinitionRepository::versions(const core::TenantId& tenant, std::int64_t id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT v.version, v.content_hash, v.published_by, " SQL_UTC_TIME("v.published_at") " AS "
        "published_at FROM approval_definition_versions v WHERE v.tenant_id = $1 AND "
        "v.definition_id = $2 ORDER BY v.version DESC",
        {tenant, id});
    return core::db::rows_json<VersionSummary>(rows);
}

std::optional<DefinitionVersionRow> DefinitionRepository::version(const core::TenantId& tenant,
                                                                  std::int64_t id,
                                                                  int version) {
    return core::db::select_first<DefinitionVersionRow>(
        {pool_, tenant}, kVersionColumns,
        "FROM approval_definition_versions v WHERE v.tenant_id = $1 AND v.definition_id = $2 "
        "AND v.version = $3::int",
        {tenant, id, version});
}

namespace {

constexpr const char* kDecisionColumns =
    "key, version, name, source::text AS source, created_by, " SQL_UTC_TIME(
        "created_at") " AS created_at";

}  // namespace

DecisionRow DefinitionRepository::save_decision(const core::TenantId& tenant,
                                                const std::string& key,
                                                const std::string& name,
                                                const boost::json::object& source,
                                                const std::string& author) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // Saves of one key take turns, so each gets the next version.
        tx.exec("SELECT pg_advisory_xact_lock(hashtext('approval_decisions/' || $1 || '/' || $2))",
                {tenant, key});
        const auto rows = tx.exec(
            std::string(
                "INSERT INTO approval_decisions (tenant_id, key, version, name, source, "
                "created_by) SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4::jsonb, $5 "
                "FROM approval_decisions WHERE tenant_id = $1 AND key = $2 RETURNING ") +
                kDecisionColumns,
            {tenant, key, name, source, author});
        return core::db::row_as<DecisionRow>(rows);
    });
}

std::optional<DecisionRow> DefinitionRepository::decision(const core::TenantId& tenant,
                                                          const std::string& key,
                                                          std::optional<int> version) {
    return core::db::select_first<DecisionRow>(
        {pool_, tenant}, kDecisionColumns,
        "FROM approval_decisions WHERE tenant_id = $1 AND key = $2 AND ($3::int IS NULL OR "
        "version = $3::int) ORDER BY version DESC LIMIT 1",
        {tenant, key, version});
}

}  // namespace riveredge::approvals
