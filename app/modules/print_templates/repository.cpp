#include "modules/print_templates/repository.hpp"

#include "core/db/sql_time.hpp"
#include "core/text/hex.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::print {
namespace {

namespace json = boost::json;
using core::db::Param;
using core::db::Rows;
using core::db::Transaction;

constexpr const char* kTemplateColumns =
    "id, key, name, draft::text AS draft, latest_version, created_by, " SQL_UTC_TIME(
        "created_at") " AS created_at, " SQL_UTC_TIME("updated_at") " AS updated_at";

}  // namespace

json::object TemplateRow::to_json() const {
    return json::object{{"id", id},
                        {"key", key},
                        {"name", name},
                        {"template", draft},
                        {"latest_version", latest_version},
                        {"created_by", created_by},
                        {"created_at", created_at},
                        {"updated_at", updated_at}};
}

json::object RenderRow::to_json() const {
    return json::object{
        {"id", id},
        {"template_id", template_id},
        {"version", version},
        {"items", items.is_array() ? static_cast<std::int64_t>(items.get_array().size()) : 0},
        {"status", status},
        {"output_sha256", json::value_from(output_sha256)},
        {"pages", json::value_from(pages)},
        {"warnings", warnings},
        {"error", json::value_from(error)},
        {"requested_by", requested_by},
        {"created_at", created_at},
        {"finished_at", json::value_from(finished_at)}};
}

std::optional<std::int64_t> Repository::create(const core::TenantId& tenant,
                                               const std::string& key,
                                               const std::string& name,
                                               const json::value& draft,
                                               const std::string& author) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "INSERT INTO print_templates (tenant_id, key, name, draft, created_by) VALUES ($1, $2, "
        "$3, $4::jsonb, $5) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING id",
        {tenant, key, name, draft, author});
    return rows.empty() ? std::nullopt : std::optional(rows.integer(0, "id"));
}

std::optional<TemplateRow> Repository::find(Transaction& tx,
                                            const core::TenantId& tenant,
                                            std::int64_t id,
                                            bool for_update) {
    return core::db::select_first<TemplateRow>(
        tx, kTemplateColumns,
        std::string("FROM print_templates WHERE tenant_id = $1 AND id = $2") +
            (for_update ? " FOR UPDATE" : ""),
        {tenant, id});
}

const core::db::ListSpec kTemplateList{
    .sort_fields = core::db::sort_fields("t", {"key", "name", "created_at", "updated_at"}),
    .default_sort = "key",
    .tiebreak_sql = "t.id",
    .filters = {{"q", "text contained in the key or the name (any case)", "",
                 "strpos(lower(t.key), lower($?)) > 0 OR strpos(lower(t.name), lower($?)) > 0"}}};

core::db::Page<TemplateRow> Repository::list(const core::TenantId& tenant,
                                             const core::db::ListRequest& page) {
    return core::db::page_of<TemplateRow>(pool_, tenant, kTemplateColumns,
                                          "FROM print_templates t WHERE t.tenant_id = $1", {tenant},
                                          page);
}

void Repository::save_draft(Transaction& tx,
                            const core::TenantId& tenant,
                            std::int64_t id,
                            const std::optional<std::string>& name,
                            const json::value& draft) {
    tx.exec(
        "UPDATE print_templates SET draft = $3::jsonb, name = coalesce($4, name), updated_at = "
        "now() WHERE tenant_id = $1 AND id = $2",
        {tenant, id, draft, name});
}

void Repository::add_version(Transaction& tx,
                             const core::TenantId& tenant,
                             std::int64_t id,
                             int version,
                             const json::value& source,
                             const std::string& content_hash,
                             const std::string& author) {
    tx.exec(
        "INSERT INTO print_template_versions (tenant_id, template_id, version, source, "
        "content_hash, published_by) VALUES ($1, $2, $3::int, $4::jsonb, $5, $6)",
        {tenant, id, version, source, content_hash, author});
    tx.exec(
        "UPDATE print_templates SET latest_version = $3::int, updated_at = now() WHERE tenant_id "
        "= $1 AND id = $2",
        {tenant, id, version});
}

std::optional<json::value> Repository::version_source(Transaction& tx,
                                                      const core::TenantId& tenant,
                                                      std::int64_t id,
                                                      int version) {
    const auto rows = tx.exec(
        "SELECT source::text AS source FROM print_template_versions WHERE tenant_id = $1 AND "
        "template_id = $2 AND version = $3::int",
        {tenant, id, version});
    return rows.empty() ? std::nullopt : std::optional(json::parse(rows.text(0, "source")));
}

json::array Repository::versions(const core::TenantId& tenant, std::int64_t id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT version, content_hash, published_by, " SQL_UTC_TIME(
            "published_at") " AS published_at FROM print_template_versions WHERE tenant_id = $1 "
                            "AND template_id = $2 ORDER BY version DESC",
        {tenant, id});
    json::array out;
    for (int i = 0; i < rows.size(); ++i) {
        out.push_back(json::object{{"version", rows.integer(i, "version")},
                                   {"content_hash", rows.text(i, "content_hash")},
                                   {"published_by", rows.text(i, "published_by")},
                                   {"published_at", rows.text(i, "published_at")}});
    }
    return out;
}

std::optional<json::object> Repository::version(const core::TenantId& tenant,
                                                std::int64_t id,
                                                int version) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT version, source::text AS source, content_hash, published_by, " SQL_UTC_TIME(
            "published_at") " AS published_at FROM print_template_versions WHERE tenant_id = $1 "
                            "AND template_id = $2 AND version = $3::int",
        {tenant, id, version});
    if (rows.empty()) {
        return std::nullopt;
    }
    return json::object{{"version", rows.integer(0, "version")},
                        {"template", json::parse(rows.text(0, "source"))},
                        {"content_hash", rows.text(0, "content_hash")},
                        {"published_by", rows.text(0, "published_by")},
                        {"published_at", rows.text(0, "published_at")}};
}

std::pair<std::int64_t, bool> Repository::add_render(Transaction& tx,
                                                     const core::TenantId& tenant,
                                                     std::int64_t template_id,
                                                     int version,
                                                     const json::value& items,
                                                     const std::string& requested_by,
                                                     const std::optional<std::string>& key) {
    const auto rows = tx.exec(
        "INSERT INTO print_renders (tenant_id, template_id, version, items, requested_by, "
        "idempotency_key) VALUES ($1, $2, $3::int, $4::jsonb, $5, $6) ON CONFLICT (tenant_id, "
        "idempotency_key) DO NOTHING RETURNING id",
        {tenant, template_id, version, items, requested_by, key});
    if (!rows.empty()) {
        return {rows.integer(0, "id"), true};
    }
    const auto existing =
        tx.exec("SELECT id FROM print_renders WHERE tenant_id = $1 AND idempotency_key = $2",
                {tenant, key});
    return {existing.integer(0, "id"), false};
}

bool Repository::same_items(Transaction& tx,
                            const core::TenantId& tenant,
                            std::int64_t id,
                            const json::value& items) {
    return tx
        .exec(
            "SELECT items = $3::jsonb AS same FROM print_renders WHERE tenant_id = $1 AND id = $2",
            {tenant, id, items})
        .boolean(0, "same");
}

std::optional<RenderRow> Repository::render(Transaction& tx,
                                            const core::TenantId& tenant,
                                            std::int64_t id,
                                            bool for_update) {
    const auto rows = tx.exec(
        std::string("SELECT id, template_id, version, items::text AS items, status, "
                    "output_sha256, pages, warnings::text AS warnings, error, requested_by, ") +
            SQL_UTC_TIME("created_at") " AS created_at, " SQL_UTC_TIME(
                "finished_at") " AS finished_at FROM print_renders WHERE tenant_id = $1 AND id = "
                               "$2" +
            (for_update ? " FOR UPDATE" : ""),
        {tenant, id});
    return core::db::first_as<RenderRow>(rows);
}

void Repository::finish_render(Transaction& tx,
                               const core::TenantId& tenant,
                               std::int64_t id,
                               const std::optional<Output>& output,
                               const json::array& warnings,
                               const std::optional<std::string>& error) {
    if (output) {
        tx.exec(
            "INSERT INTO print_outputs (tenant_id, sha256, content, size, pages) VALUES ($1, $2, "
            "decode($3, 'hex'), $4::bigint, $5::int) ON CONFLICT DO NOTHING",
            {tenant, output->sha256,
             core::to_hex(reinterpret_cast<const unsigned char*>(output->bytes.data()),
                          output->bytes.size()),
             output->bytes.size(), output->pages});
    }
    tx.exec(
        "UPDATE print_renders SET status = $3, output_sha256 = $4, pages = $5::int, warnings = "
        "$6::jsonb, error = $7, finished_at = now() WHERE tenant_id = $1 AND id = $2",
        {tenant, id, output ? "done" : "failed", output ? Param(output->sha256) : std::nullopt,
         output ? Param(output->pages) : std::nullopt, warnings, error});
}

std::optional<Output> Repository::output(const core::TenantId& tenant, const std::string& sha256) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT encode(content, 'hex') AS content, pages FROM print_outputs WHERE tenant_id = $1 "
        "AND sha256 = $2",
        {tenant, sha256});
    if (rows.empty()) {
        return std::nullopt;
    }
    return Output{sha256, core::from_hex(rows.text(0, "content")),
                  static_cast<int>(rows.integer(0, "pages"))};
}

}  // namespace riveredge::print
