#include "modules/approvals/instance_repository.hpp"

#include "core/http/api_error.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;
using core::db::Transaction;

#define ISO(column) "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

constexpr const char* kInstanceJson =
    "json_build_object('id', i.id, 'definition_id', i.definition_id, 'version', i.version, "
    "'business_key', i.business_key, 'status', i.status, 'variables', i.variables, 'initiator', "
    "i.initiator, 'current_nodes', i.current_nodes, 'started_at', " ISO(
        "i.started_at") ", 'ended_at', " ISO("i.ended_at") ")";

constexpr const char* kTaskJson =
    "json_build_object('id', t.id, 'instance_id', t.instance_id, 'node_id', t.node_id, 'visit', "
    "t.visit, 'assignee', t.assignee, 'status', t.status, 'decided_by', t.decided_by, 'comment', "
    "t.comment, 'created_at', " ISO("t.created_at") ", 'decided_at', " ISO("t.decided_at") ")";

#undef ISO

// One timeline entry, in the caller's transaction; `step_key` makes an engine step's entry
// idempotent (a retried step writes none).
void append_timeline(Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t instance_id,
                     const std::string& actor,
                     const std::string& action,
                     const std::optional<std::string>& node_id,
                     const json::object& detail,
                     const std::optional<std::string>& step_key) {
    tx.exec(
        "INSERT INTO approval_timeline (tenant_id, instance_id, actor, action, node_id, detail, "
        "step_key) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING",
        {tenant.value(), std::to_string(instance_id), actor, action, node_id,
         json::serialize(detail), step_key});
}

std::string roles_json(const core::Principal& who) {
    json::array roles;
    for (const auto& role : who.roles) {
        roles.emplace_back("role:" + role);
    }
    return json::serialize(roles);
}

}  // namespace

std::optional<std::int64_t> InstanceRepository::create(
    const core::TenantId& tenant,
    std::int64_t definition_id,
    int version,
    const std::optional<std::string>& business_key,
    const boost::json::object& variables,
    const std::string& initiator) {
    Transaction tx(pool_, tenant);
    const auto rows = tx.exec(
        "INSERT INTO approval_instances (tenant_id, definition_id, version, business_key, "
        "variables, initiator) VALUES ($1, $2, $3::int, $4, $5::jsonb, $6) ON CONFLICT DO NOTHING "
        "RETURNING id",
        {tenant.value(), std::to_string(definition_id), std::to_string(version), business_key,
         json::serialize(variables), initiator});
    if (rows.empty()) {
        return std::nullopt;
    }
    const auto id = rows.integer(0, "id");
    append_timeline(tx, tenant, id, initiator, "started", std::nullopt,
                    json::object{{"version", version}}, std::nullopt);
    tx.commit();
    return id;
}

std::optional<boost::json::object> InstanceRepository::find(const core::TenantId& tenant,
                                                            std::int64_t id) {
    Transaction tx(pool_, tenant);
    const auto rows = tx.exec(std::string("SELECT ") + kInstanceJson +
                                  "::text AS row FROM approval_instances i WHERE i.tenant_id = $1 "
                                  "AND i.id = $2",
                              {tenant.value(), std::to_string(id)});
    tx.commit();
    if (rows.empty()) {
        return std::nullopt;
    }
    return core::db::json_row(rows);
}

boost::json::array InstanceRepository::list(const core::TenantId& tenant,
                                            const core::db::Param& status,
                                            const core::db::Param& initiator,
                                            int limit,
                                            int offset) {
    Transaction tx(pool_, tenant);
    const auto rows = tx.exec(
        std::string("SELECT ") + kInstanceJson +
            "::text AS row FROM approval_instances i WHERE i.tenant_id = $1 AND ($2::text IS NULL "
            "OR i.status = $2) AND ($3::text IS NULL OR i.initiator = $3) ORDER BY i.id DESC "
            "LIMIT $4::int OFFSET $5::int",
        {tenant.value(), status, initiator, std::to_string(limit), std::to_string(offset)});
    tx.commit();
    return core::db::json_rows(rows);
}

void InstanceRepository::finish(const core::TenantId& tenant,
                                std::int64_t id,
                                const std::string& status,
                                const std::optional<std::string>& node_id,
                                const std::optional<std::string>& step_key) {
    Transaction tx(pool_, tenant);
    tx.exec(
        "UPDATE approval_instances SET status = $3, current_nodes = '[]', ended_at = "
        "coalesce(ended_at, now()) WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
        {tenant.value(), std::to_string(id), status});
    tx.exec(
        "UPDATE approval_tasks SET status = 'cancelled' WHERE tenant_id = $1 AND instance_id = $2 "
        "AND status = 'pending'",
        {tenant.value(), std::to_string(id)});
    if (step_key) {
        append_timeline(tx, tenant, id, "system", status, node_id, json::object{}, step_key);
    }
    tx.commit();
}

void InstanceRepository::open_node(const core::TenantId& tenant,
                                   std::int64_t instance_id,
                                   const std::string& node_id,
                                   int visit,
                                   const std::vector<std::string>& assignees,
                                   const std::string& step_key) {
    Transaction tx(pool_, tenant);
    json::array who;
    for (const auto& assignee : assignees) {
        tx.exec(
            "INSERT INTO approval_tasks (tenant_id, instance_id, node_id, visit, assignee) VALUES "
            "($1, $2, $3, $4::int, $5) ON CONFLICT DO NOTHING",
            {tenant.value(), std::to_string(instance_id), node_id, std::to_string(visit),
             assignee});
        who.emplace_back(assignee);
    }
    tx.exec(
        "UPDATE approval_instances SET current_nodes = $3::jsonb WHERE tenant_id = $1 AND id = $2",
        {tenant.value(), std::to_string(instance_id),
         json::serialize(json::array{json::value(node_id)})});
    append_timeline(tx, tenant, instance_id, "system", "task_created", node_id,
                    json::object{{"assignees", std::move(who)}, {"visit", visit}}, step_key);
    tx.commit();
}

std::string InstanceRepository::node_outcome(const core::TenantId& tenant,
                                             std::int64_t instance_id,
                                             const std::string& node_id,
                                             int visit) {
    Transaction tx(pool_, tenant);
    const auto rows = tx.exec(
        "SELECT coalesce(bool_or(status = 'rejected'), false) AS rejected, "
        "coalesce(bool_or(status = 'approved'), false) AS approved FROM approval_tasks WHERE "
        "tenant_id = $1 AND instance_id = $2 AND node_id = $3 AND visit = $4::int",
        {tenant.value(), std::to_string(instance_id), node_id, std::to_string(visit)});
    tx.commit();
    if (rows.boolean(0, "rejected")) {
        return "rejected";
    }
    return rows.boolean(0, "approved") ? "approved" : "pending";
}

Decision InstanceRepository::decide(const core::Principal& who,
                                    std::int64_t task_id,
                                    bool approve,
                                    const std::optional<std::string>& comment) {
    Transaction tx(pool_, who.tenant);
    const auto task = tx.exec(
        "SELECT instance_id, node_id, visit, assignee, status FROM approval_tasks WHERE tenant_id "
        "= $1 AND id = $2",
        {who.tenant.value(), std::to_string(task_id)});
    if (task.empty()) {
        throw core::ApiError::not_found("task " + std::to_string(task_id));
    }
    Decision decision{task.integer(0, "instance_id"), task.text(0, "node_id"),
                      static_cast<int>(task.integer(0, "visit"))};
    const std::string assignee = task.text(0, "assignee");
    const bool mine = assignee == who.user_id ||
                      (assignee.rfind("role:", 0) == 0 && who.has_role(assignee.substr(5)));
    if (!mine) {
        throw core::ApiError::forbidden("this task is assigned to someone else");
    }
    // Lock every task of the node visit: concurrent deciders queue here, and the second finds
    // the node settled.
    const auto siblings = tx.exec(
        "SELECT id, status FROM approval_tasks WHERE tenant_id = $1 AND instance_id = $2 AND "
        "node_id = $3 AND visit = $4::int ORDER BY id FOR UPDATE",
        {who.tenant.value(), std::to_string(decision.instance_id), decision.node_id,
         std::to_string(decision.visit)});
    for (int i = 0; i < siblings.size(); ++i) {
        const auto status = siblings.text(i, "status");
        if (status == "approved" || status == "rejected") {
            throw core::ApiError::conflict("this step was already decided");
        }
        if (siblings.integer(i, "id") == task_id && status != "pending") {
            throw core::ApiError::conflict("this task is " + status);
        }
    }
    const std::string outcome = approve ? "approved" : "rejected";
    tx.exec(
        "UPDATE approval_tasks SET status = $3, decided_by = $4, comment = $5, decided_at = now() "
        "WHERE tenant_id = $1 AND id = $2",
        {who.tenant.value(), std::to_string(task_id), outcome, who.user_id, comment});
    // Any one approver decides (或签): the others' tasks close.
    tx.exec(
        "UPDATE approval_tasks SET status = 'cancelled' WHERE tenant_id = $1 AND instance_id = $2 "
        "AND node_id = $3 AND visit = $4::int AND status = 'pending'",
        {who.tenant.value(), std::to_string(decision.instance_id), decision.node_id,
         std::to_string(decision.visit)});
    append_timeline(
        tx, who.tenant, decision.instance_id, who.user_id, outcome, decision.node_id,
        json::object{{"task_id", task_id},
                     {"comment", comment ? json::value(*comment) : json::value(nullptr)}},
        std::nullopt);
    tx.commit();
    return decision;
}

boost::json::array InstanceRepository::tasks_for(const core::Principal& who,
                                                 const std::string& status) {
    Transaction tx(pool_, who.tenant);
    const auto rows = tx.exec(
        std::string("SELECT ") + kTaskJson +
            "::text AS row FROM approval_tasks t WHERE t.tenant_id = $1 AND t.status = $2 AND "
            "(t.assignee = $3 OR t.assignee IN (SELECT jsonb_array_elements_text($4::jsonb))) "
            "ORDER BY t.id",
        {who.tenant.value(), status, who.user_id, roles_json(who)});
    tx.commit();
    return core::db::json_rows(rows);
}

boost::json::array InstanceRepository::tasks_of(const core::TenantId& tenant,
                                                std::int64_t instance_id) {
    Transaction tx(pool_, tenant);
    const auto rows = tx.exec(std::string("SELECT ") + kTaskJson +
                                  "::text AS row FROM approval_tasks t WHERE t.tenant_id = $1 AND "
                                  "t.instance_id = $2 ORDER BY t.id",
                              {tenant.value(), std::to_string(instance_id)});
    tx.commit();
    return core::db::json_rows(rows);
}

boost::json::array InstanceRepository::timeline(const core::TenantId& tenant,
                                                std::int64_t instance_id) {
    Transaction tx(pool_, tenant);
    const auto rows = tx.exec(
        "SELECT json_build_object('at', to_char(l.at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'actor', l.actor, 'action', l.action, 'node_id', "
        "l.node_id, 'detail', l.detail)::text AS row FROM approval_timeline l WHERE l.tenant_id = "
        "$1 AND l.instance_id = $2 ORDER BY l.id",
        {tenant.value(), std::to_string(instance_id)});
    tx.commit();
    return core::db::json_rows(rows);
}

}  // namespace riveredge::approvals
