#include "modules/approvals/history.hpp"

#include "core/json/depth.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::approvals {

namespace json = boost::json;

void append_timeline(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t instance_id,
                     const std::string& actor,
                     const std::string& action,
                     const std::optional<std::string>& node_id,
                     const boost::json::object& detail,
                     const std::optional<std::string>& step_key) {
    tx.exec(
        "INSERT INTO approval_timeline (tenant_id, instance_id, actor, action, node_id, detail, "
        "step_key) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING",
        {tenant, instance_id, actor, action, node_id, detail, step_key});
}

void merge_variables(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t instance_id,
                     const boost::json::object& changes,
                     const std::string& actor,
                     const std::string& source) {
    if (changes.empty()) {
        return;
    }
    const auto rows = tx.exec(
        "SELECT variables::text AS v FROM approval_instances WHERE tenant_id = $1 AND id = $2 FOR "
        "UPDATE",
        {tenant, instance_id});
    if (rows.empty()) {
        return;
    }
    auto variables = core::parse_stored_json(rows.text(0, "v")).as_object();
    for (const auto& [name, value] : changes) {
        const auto* old = variables.if_contains(name);
        if (old != nullptr && *old == value) {
            continue;
        }
        tx.exec(
            "INSERT INTO approval_variable_changes (tenant_id, instance_id, name, old_value, "
            "new_value, actor, source) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7)",
            {tenant, instance_id, std::string(name),
             old != nullptr ? core::db::Param(*old) : std::nullopt, value, actor, source});
        variables[name] = value;
    }
    tx.exec("UPDATE approval_instances SET variables = $3::jsonb WHERE tenant_id = $1 AND id = $2",
            {tenant, instance_id, variables});
}

void log_event(core::db::Transaction& tx,
               const core::TenantId& tenant,
               std::int64_t instance_id,
               const std::string& name,
               const boost::json::object& data,
               const std::optional<std::string>& step_key) {
    tx.exec(
        "INSERT INTO approval_events (tenant_id, instance_id, name, data, step_key) VALUES ($1, "
        "$2, $3, $4::jsonb, $5) ON CONFLICT DO NOTHING",
        {tenant, instance_id, name, data, step_key});
}

}  // namespace riveredge::approvals
