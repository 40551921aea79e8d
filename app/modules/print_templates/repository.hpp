#pragma once

// Print templates' rows: templates with their draft, immutable versions, renders and the PDFs
// they produced (kept once per tenant and SHA-256), as typed rows.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::print {

struct TemplateRow {
    std::int64_t id = 0;
    std::string key;
    std::string name;
    boost::json::value draft;
    int latest_version = 0;
    std::string created_by;
    std::string created_at;
    std::string updated_at;

    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(TemplateRow,
                      (),
                      (id, key, name, draft, latest_version, created_by, created_at, updated_at))

struct RenderRow {
    std::int64_t id = 0;
    std::int64_t template_id = 0;
    int version = 0;
    boost::json::value items;
    std::string status;
    std::optional<std::string> output_sha256;
    std::optional<int> pages;
    boost::json::value warnings;
    std::optional<std::string> error;
    std::string requested_by;
    std::string created_at;
    std::optional<std::string> finished_at;

    /// Without the items (they can be large); `items` counts them.
    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(RenderRow,
                      (),
                      (id,
                       template_id,
                       version,
                       items,
                       status,
                       output_sha256,
                       pages,
                       warnings,
                       error,
                       requested_by,
                       created_at,
                       finished_at))

struct Output {
    std::string sha256;
    std::string bytes;
    int pages = 0;
};

/// The template list: its sort fields and filter.
extern const core::db::ListSpec kTemplateList;

class Repository {
public:
    explicit Repository(core::db::Pool& pool) : pool_(pool) {}
    core::db::Pool& pool() noexcept { return pool_; }

    /// nullopt when the key is taken.
    std::optional<std::int64_t> create(const core::TenantId& tenant,
                                       const std::string& key,
                                       const std::string& name,
                                       const boost::json::value& draft,
                                       const std::string& author);
    std::optional<TemplateRow> find(core::db::Transaction& tx,
                                    const core::TenantId& tenant,
                                    std::int64_t id,
                                    bool for_update);
    /// The page asked for, its filters applied (`kTemplateList`).
    core::db::Page<TemplateRow> list(const core::TenantId& tenant,
                                     const core::db::ListRequest& page);
    void save_draft(core::db::Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t id,
                    const std::optional<std::string>& name,
                    const boost::json::value& draft);
    void add_version(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t id,
                     int version,
                     const boost::json::value& source,
                     const std::string& content_hash,
                     const std::string& author);
    std::optional<boost::json::value> version_source(core::db::Transaction& tx,
                                                     const core::TenantId& tenant,
                                                     std::int64_t id,
                                                     int version);
    boost::json::array versions(const core::TenantId& tenant, std::int64_t id);
    std::optional<boost::json::object> version(const core::TenantId& tenant,
                                               std::int64_t id,
                                               int version);

    /// A render asked for; the existing id when the idempotency key was used before.
    std::pair<std::int64_t, bool> add_render(core::db::Transaction& tx,
                                             const core::TenantId& tenant,
                                             std::int64_t template_id,
                                             int version,
                                             const boost::json::value& items,
                                             const std::string& requested_by,
                                             const std::optional<std::string>& idempotency_key);
    /// Whether render `id` was asked for over `items`, compared as the database keeps them (as
    /// jsonb: 1e2 and 100 are one number, the order of an object's members does not count).
    bool same_items(core::db::Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t id,
                    const boost::json::value& items);
    std::optional<RenderRow> render(core::db::Transaction& tx,
                                    const core::TenantId& tenant,
                                    std::int64_t id,
                                    bool for_update);
    void finish_render(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       std::int64_t id,
                       const std::optional<Output>& output,
                       const boost::json::array& warnings,
                       const std::optional<std::string>& error);
    std::optional<Output> output(const core::TenantId& tenant, const std::string& sha256);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::print
