#include "modules/approvals/tenant_setup.hpp"

#include "core/db/row.hpp"

#include <boost/json/value_from.hpp>

namespace riveredge::approvals {

namespace json = boost::json;
using core::db::Transaction;

// In the struct's own namespace, where the typed readers look for it.
BOOST_DESCRIBE_STRUCT(ActivityBinding, (), (kind, config))

namespace {

// A person in the tenant's directory, as the list shows them.
struct DirectoryEntry {
    std::string user_id;
    std::optional<std::string> manager_id;
    std::optional<std::string> display_name;
    std::vector<std::string> roles;
};
BOOST_DESCRIBE_STRUCT(DirectoryEntry, (), (user_id, manager_id, display_name, roles))

// A named activity binding, as the list shows it.
struct ActivityEntry {
    std::string name;
    std::string kind;
    json::value config;
    std::string updated_by;
};
BOOST_DESCRIBE_STRUCT(ActivityEntry, (), (name, kind, config, updated_by))

}  // namespace

void Directory::set(const core::TenantId& tenant,
                    const std::string& user_id,
                    const std::optional<std::string>& manager_id,
                    const std::optional<std::string>& display_name,
                    const std::vector<std::string>& roles) {
    core::db::exec_once(
        pool_, tenant,
        "INSERT INTO approval_directory (tenant_id, user_id, manager_id, display_name, roles) "
        "VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb))) ON CONFLICT "
        "(tenant_id, user_id) DO UPDATE SET manager_id = EXCLUDED.manager_id, display_name = "
        "EXCLUDED.display_name, roles = EXCLUDED.roles, updated_at = now()",
        {tenant, user_id, manager_id, display_name, json::value_from(roles)});
}

boost::json::array Directory::list(const core::TenantId& tenant) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT user_id, manager_id, display_name, to_json(roles)::text AS roles FROM "
        "approval_directory "
        "WHERE tenant_id = $1 ORDER BY user_id",
        {tenant});
    return core::db::rows_json<DirectoryEntry>(rows);
}

std::optional<std::string> Directory::manager_of(const core::TenantId& tenant,
                                                 const std::string& user_id,
                                                 int levels) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        std::optional<std::string> current = user_id;
        // Bounded: a cycle in the directory cannot loop forever.
        for (int i = 0; i < levels && i < 20 && current; ++i) {
            const auto rows = tx.exec(
                "SELECT manager_id FROM approval_directory WHERE tenant_id = $1 AND user_id = $2",
                {tenant, *current});
            current = rows.empty() || rows.is_null(0, "manager_id")
                          ? std::nullopt
                          : std::optional(rows.text(0, "manager_id"));
        }
        return current;
    });
}

std::vector<std::string> Directory::members_of(const core::TenantId& tenant,
                                               const std::string& role) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT user_id FROM approval_directory WHERE tenant_id = $1 AND $2 = ANY (roles) ORDER "
        "BY user_id",
        {tenant, role});
    std::vector<std::string> users;
    users.reserve(static_cast<std::size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
        users.push_back(rows.text(i, "user_id"));
    }
    return users;
}

void ActivityBindings::set(const core::Principal& who,
                           const std::string& name,
                           const ActivityBinding& binding) {
    core::db::exec_once(
        pool_, who.tenant,
        "INSERT INTO approval_activities (tenant_id, name, kind, config, updated_by) VALUES ($1, "
        "$2, $3, $4::jsonb, $5) ON CONFLICT (tenant_id, name) DO UPDATE SET kind = EXCLUDED.kind, "
        "config = EXCLUDED.config, updated_by = EXCLUDED.updated_by, updated_at = now()",
        {who.tenant, name, binding.kind, binding.config, who.user_id});
}

boost::json::array ActivityBindings::list(const core::TenantId& tenant) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT name, kind, config::text AS config, updated_by FROM approval_activities WHERE "
        "tenant_id = $1 ORDER BY name",
        {tenant});
    return core::db::rows_json<ActivityEntry>(rows);
}

std::optional<ActivityBinding> ActivityBindings::find(const core::TenantId& tenant,
                                                      const std::string& name) {
    return core::db::select_first<ActivityBinding>(
        {pool_, tenant}, "kind, config::text AS config",
        "FROM approval_activities WHERE tenant_id = $1 AND name = $2", {tenant, name});
}

}  // namespace riveredge::approvals
