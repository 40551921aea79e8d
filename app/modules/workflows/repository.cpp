#include "modules/workflows/repository.hpp"

#include "core/db/sql_time.hpp"
#include "core/errors.hpp"

#include <boost/json/serialize.hpp>

namespace riveredge::workflows {

namespace json = boost::json;

namespace {

constexpr const char* kDefinitionColumns =
    "d.id, d.key, d.name, d.kind, d.latest_version, d.published_version, "
    "d.created_by, " SQL_UTC_TIME("d.created_at") " AS created_at, " SQL_UTC_TIME(
        "d.updated_at") " AS updated_at";

constexpr const char* kExecutionColumns =
    "e.id, e.definition_id, d.key AS definition_key, e.version, e.kind, e.status, "
    "e.current_state, e.target_state, e.input::text AS input, e.context::text AS context, "
    "e.output::text AS output, e.error, e.compensated, e.priority, e.started_by, " SQL_UTC_TIME(
        "e.created_at") " AS created_at, " SQL_UTC_TIME("e.started_at") " AS started_at, " SQL_UTC_TIME("e.ended_at") " AS "
                                                                                                                     "ended_at, " SQL_UTC_TIME(
                                                                                                                         "e.updated_at") " AS updated_at";

constexpr const char* kNodeRunColumns =
    "r.id, r.step_key, r.node, r.phase, r.action_kind, r.status, r.input::text AS input, "
    "r.output::text AS output, r.attempts, r.error, " SQL_UTC_TIME(
        "r.started_at") " AS started_at, " SQL_UTC_TIME("r.ended_at") " AS ended_at, "
                                                                      "(extract(epoch FROM "
                                                                      "r.ended_at - "
                                                                      "r.started_at) * "
                                                                      "1000)::bigint AS "
                                                                      "duration_ms";

constexpr const char* kEventColumns =
    "v.id, v.name, v.data::text AS data, v.from_state, v.to_state, v.transition, v.status, "
    "v.sent_by, " SQL_UTC_TIME("v.created_at") " AS created_at, " SQL_UTC_TIME(
        "v.applied_at") " AS applied_at";

}  // namespace

std::pair<std::int64_t, int> Repository::add_version(const core::Principal& who,
                                                     const std::string& key,
                                                     const std::string& name,
                                                     const std::string& kind,
                                                     const std::string& format,
                                                     const std::string& source,
                                                     const json::object& model,
                                                     const std::optional<json::array>& groups) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        // One statement creates the definition or takes the next version number under its lock.
        const auto rows = tx.exec(
            "INSERT INTO workflow_definitions (tenant_id, key, name, kind, created_by) VALUES "
            "($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, key) DO UPDATE SET latest_version = "
            "workflow_definitions.latest_version + 1, name = EXCLUDED.name, updated_at = now() "
            "RETURNING id, latest_version, kind",
            {who.tenant, key, name, kind, who.user_id});
        if (rows.text(0, "kind") != kind) {
            throw core::DomainError::conflict("definition '" + key + "' is a " +
                                              rows.text(0, "kind") + ", not a " + kind);
        }
        const auto id = rows.integer(0, "id");
        const int version = static_cast<int>(rows.integer(0, "latest_version"));
        tx.exec(
            "INSERT INTO workflow_definition_versions (tenant_id, definition_id, version, format, "
            "source, model, groups, created_by) VALUES ($1, $2, $3::int, $4, $5, $6::jsonb, "
            "$7::jsonb, $8)",
            {who.tenant, id, version, format, source, model,
             groups ? Param(json::serialize(*groups)) : std::nullopt, who.user_id});
        return std::pair{id, version};
    });
}

std::optional<DefinitionRow> Repository::definition(const core::TenantId& tenant, std::int64_t id) {
    return core::db::select_first<DefinitionRow>(
        {pool_, tenant}, kDefinitionColumns,
        "FROM workflow_definitions d WHERE d.tenant_id = $1 AND d.id = $2", {tenant, id});
}

std::optional<DefinitionRow> Repository::definition_by_key(const core::TenantId& tenant,
                                                           const std::string& key) {
    return core::db::select_first<DefinitionRow>(
        {pool_, tenant}, kDefinitionColumns,
        "FROM workflow_definitions d WHERE d.tenant_id = $1 AND d.key = $2", {tenant, key});
}

core::db::Page<DefinitionRow> Repository::definitions(const core::TenantId& tenant,
                                                      const core::db::ListRequest& page) {
    return core::db::page_of<DefinitionRow>(pool_, tenant, kDefinitionColumns,
                                            "FROM workflow_definitions d WHERE d.tenant_id = $1",
                                            {tenant}, page);
}

json::array Repository::versions(const core::TenantId& tenant, std::int64_t id) {
    return core::db::rows_json<VersionSummary>(core::db::exec_once(
        pool_, tenant,
        "SELECT v.version, v.format, v.created_by, " SQL_UTC_TIME(
            "v.created_at") " AS created_at, " SQL_UTC_TIME("v.published_at") " AS published_at "
                                                                              "FROM "
                                                                              "workflow_"
                                                                              "definition_"
                                                                              "versions v "
                                                                              "WHERE "
                                                                              "v.tenant_id = "
                                                                              "$1 AND "
                                                                              "v.definition_"
                                                                              "id = $2 ORDER "
                                                                              "BY v.version "
                                                                              "DESC",
        {tenant, id}));
}

std::optional<VersionRow> Repository::version(const core::TenantId& tenant,
                                              std::int64_t id,
                                              int number) {
    return core::db::first_as<VersionRow>(core::db::exec_once(
        pool_, tenant,
        "SELECT v.version, v.format, v.source, v.model::text AS model, v.groups::text AS groups, "
        "v.created_by, " SQL_UTC_TIME("v.created_at") " AS created_at, " SQL_UTC_TIME(
            "v.published_at") " AS published_at FROM workflow_definition_versions v WHERE "
                              "v.tenant_id = $1 AND v.definition_id = $2 AND v.version = $3::int",
        {tenant, id, number}));
}

bool Repository::publish(const core::TenantId& tenant, std::int64_t id, int number) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        const auto rows = tx.exec(
            "UPDATE workflow_definition_versions SET published_at = coalesce(published_at, "
            "now()) WHERE tenant_id = $1 AND definition_id = $2 AND version = $3::int",
            {tenant, id, number});
        if (rows.affected() == 0) {
            return false;
        }
        tx.exec(
            "UPDATE workflow_definitions SET published_version = $3::int, updated_at = now() "
            "WHERE tenant_id = $1 AND id = $2",
            {tenant, id, number});
        return true;
    });
}

std::optional<ExecutionRow> Repository::execution(const core::db::ReadIn& in,
                                                  const core::TenantId& tenant,
                                                  std::int64_t id,
                                                  bool for_update) {
    return core::db::select_first<ExecutionRow>(
        in, kExecutionColumns,
        std::string("FROM workflow_executions e JOIN workflow_definitions d ON d.id = "
                    "e.definition_id WHERE e.tenant_id = $1 AND e.id = $2") +
            (for_update ? " FOR UPDATE OF e" : ""),
        {tenant, id});
}

core::db::Page<ExecutionRow> Repository::executions(const core::TenantId& tenant,
                                                    const core::db::ListRequest& page) {
    return core::db::page_of<ExecutionRow>(
        pool_, tenant, kExecutionColumns,
        "FROM workflow_executions e JOIN workflow_definitions d ON d.id = e.definition_id WHERE "
        "e.tenant_id = $1",
        {tenant}, page);
}

std::int64_t Repository::insert_execution(Transaction& tx,
                                          const core::Principal& who,
                                          const DefinitionRow& definition,
                                          int version,
                                          const json::object& input,
                                          const json::object& context,
                                          const std::optional<std::string>& initial_state,
                                          int priority) {
    return tx
        .exec(
            "INSERT INTO workflow_executions (tenant_id, definition_id, version, kind, "
            "target_state, input, context, priority, started_by) VALUES ($1, $2, $3::int, $4, "
            "$5, $6::jsonb, $7::jsonb, $8::int, $9) RETURNING id",
            {who.tenant, definition.id, version, definition.kind, initial_state, input, context,
             priority, who.user_id})
        .integer(0, "id");
}

bool Repository::set_status(Transaction& tx,
                            const core::TenantId& tenant,
                            std::int64_t id,
                            const std::string& status,
                            const std::vector<std::string>& only_from,
                            const std::optional<std::string>& error,
                            const std::optional<json::value>& output) {
    json::array from;
    for (const auto& s : only_from) {
        from.emplace_back(s);
    }
    const bool ends = status == "completed" || status == "failed" || status == "cancelled";
    return tx.exec(
                 "UPDATE workflow_executions SET status = $3, updated_at = now(), "
                 "started_at = CASE WHEN $3 = 'running' THEN coalesce(started_at, now()) ELSE "
                 "started_at END, ended_at = CASE WHEN $4::boolean THEN now() ELSE ended_at END, "
                 "error = coalesce($5, error), output = coalesce($6::jsonb, output) "
                 "WHERE tenant_id = $1 AND id = $2 AND status IN (SELECT "
                 "jsonb_array_elements_text($7::jsonb))",
                 {tenant, id, status, ends, error,
                  output ? Param(json::serialize(*output)) : std::nullopt, from})
               .affected() > 0;
}

void Repository::merge_context(Transaction& tx,
                               const core::TenantId& tenant,
                               std::int64_t id,
                               const json::object& values) {
    tx.exec(
        "UPDATE workflow_executions SET context = context || $3::jsonb, updated_at = now() WHERE "
        "tenant_id = $1 AND id = $2",
        {tenant, id, values});
}

void Repository::set_node_output(Transaction& tx,
                                 const core::TenantId& tenant,
                                 std::int64_t id,
                                 const std::string& node,
                                 const json::value& output) {
    tx.exec(
        "UPDATE workflow_executions SET context = jsonb_set(CASE WHEN context ? 'nodes' THEN "
        "context ELSE context || '{\"nodes\":{}}'::jsonb END, ARRAY['nodes', $3], $4::jsonb), "
        "updated_at = now() WHERE tenant_id = $1 AND id = $2",
        {tenant, id, node, output});
}

void Repository::set_current_state(Transaction& tx,
                                   const core::TenantId& tenant,
                                   std::int64_t id,
                                   const std::string& state) {
    tx.exec(
        "UPDATE workflow_executions SET current_state = $3, updated_at = now() WHERE tenant_id = "
        "$1 AND id = $2",
        {tenant, id, state});
}

void Repository::mark_compensated(const core::TenantId& tenant, std::int64_t id) {
    core::db::exec_once(pool_, tenant,
                        "UPDATE workflow_executions SET compensated = true, updated_at = now() "
                        "WHERE tenant_id = $1 AND id = $2",
                        {tenant, id});
}

std::optional<NodeRunRow> Repository::node_run(const core::TenantId& tenant,
                                               std::int64_t execution_id,
                                               const std::string& step_key) {
    return core::db::select_first<NodeRunRow>(
        {pool_, tenant}, kNodeRunColumns,
        "FROM workflow_node_runs r WHERE r.tenant_id = $1 AND r.execution_id = $2 AND "
        "r.step_key = $3",
        {tenant, execution_id, step_key});
}

void Repository::begin_node_run(const core::TenantId& tenant,
                                std::int64_t execution_id,
                                const std::string& step_key,
                                const std::string& node,
                                const std::string& phase,
                                const std::string& action_kind,
                                const json::value& input,
                                int attempt) {
    // The attempt number comes from the interpreter, so a replayed step counts once.
    core::db::exec_once(
        pool_, tenant,
        "INSERT INTO workflow_node_runs (tenant_id, execution_id, step_key, node, phase, "
        "action_kind, input, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::int) "
        "ON CONFLICT (execution_id, step_key) DO UPDATE SET attempts = greatest("
        "workflow_node_runs.attempts, EXCLUDED.attempts), status = 'running', input = "
        "EXCLUDED.input",
        {tenant, execution_id, step_key, node, phase, action_kind, input, attempt});
}

void Repository::end_node_run(Transaction& tx,
                              const core::TenantId& tenant,
                              std::int64_t execution_id,
                              const std::string& step_key,
                              const std::string& status,
                              const std::optional<json::value>& output,
                              const std::optional<std::string>& error) {
    tx.exec(
        "UPDATE workflow_node_runs SET status = $4, output = $5::jsonb, error = $6, ended_at = "
        "now(), completed_seq = CASE WHEN $4 = 'succeeded' THEN "
        "nextval('workflow_completion_seq') ELSE completed_seq END WHERE tenant_id = $1 AND "
        "execution_id = $2 AND step_key = $3",
        {tenant, execution_id, step_key, status,
         output ? Param(json::serialize(*output)) : std::nullopt, error});
}

core::db::JsonPage Repository::history(const core::TenantId& tenant,
                                       std::int64_t execution_id,
                                       const core::db::ListRequest& page) {
    return core::db::json_page(core::db::page_of<NodeRunRow>(
        pool_, tenant, kNodeRunColumns,
        "FROM workflow_node_runs r WHERE r.tenant_id = $1 AND r.execution_id = $2",
        {tenant, execution_id}, page));
}

std::map<std::string, int> Repository::entry_visits(const core::TenantId& tenant,
                                                    std::int64_t execution_id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT node, max(substring(step_key FROM '#([0-9]+)$')::int) AS visits FROM "
        "workflow_node_runs WHERE tenant_id = $1 AND execution_id = $2 AND phase = 'entry' "
        "GROUP BY node",
        {tenant, execution_id});
    std::map<std::string, int> out;
    for (int i = 0; i < rows.size(); ++i) {
        out[rows.text(i, "node")] = static_cast<int>(rows.integer(i, "visits"));
    }
    return out;
}

std::vector<NodeRunRow> Repository::completed_runs(const core::TenantId& tenant,
                                                   std::int64_t execution_id,
                                                   const std::string& phase) {
    return core::db::select_rows<NodeRunRow>(
        {pool_, tenant}, kNodeRunColumns,
        "FROM workflow_node_runs r WHERE r.tenant_id = $1 AND r.execution_id = $2 AND "
        "r.phase = $3 AND r.status = 'succeeded' ORDER BY r.completed_seq DESC",
        {tenant, execution_id, phase});
}

std::int64_t Repository::insert_event(Transaction& tx,
                                      const core::TenantId& tenant,
                                      std::int64_t execution_id,
                                      const std::string& name,
                                      const json::object& data,
                                      const std::string& from_state,
                                      const std::string& to_state,
                                      int transition,
                                      const std::string& sent_by) {
    return tx
        .exec(
            "INSERT INTO workflow_events (tenant_id, execution_id, name, data, from_state, "
            "to_state, transition, sent_by) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::int, $8) "
            "RETURNING id",
            {tenant, execution_id, name, data, from_state, to_state, transition, sent_by})
        .integer(0, "id");
}

void Repository::set_target_state(Transaction& tx,
                                  const core::TenantId& tenant,
                                  std::int64_t id,
                                  const std::string& state) {
    tx.exec(
        "UPDATE workflow_executions SET target_state = $3, updated_at = now() WHERE tenant_id = $1 "
        "AND id = $2",
        {tenant, id, state});
}

std::optional<EventRow> Repository::next_event(const core::TenantId& tenant,
                                               std::int64_t execution_id) {
    return core::db::select_first<EventRow>(
        {pool_, tenant}, kEventColumns,
        "FROM workflow_events v WHERE v.tenant_id = $1 AND v.execution_id = $2 AND "
        "v.status = 'accepted' ORDER BY v.id LIMIT 1",
        {tenant, execution_id});
}

void Repository::mark_applied(Transaction& tx,
                              const core::TenantId& tenant,
                              std::int64_t event_id,
                              std::int64_t execution_id) {
    tx.exec(
        "UPDATE workflow_events SET status = 'applied', applied_at = now() WHERE tenant_id = $1 "
        "AND id = $2 AND execution_id = $3",
        {tenant, event_id, execution_id});
}

json::array Repository::events(const core::TenantId& tenant, std::int64_t execution_id) {
    return core::db::rows_json<EventRow>(core::db::exec_once(
        pool_, tenant,
        std::string("SELECT ") + kEventColumns +
            " FROM workflow_events v WHERE v.tenant_id = $1 AND v.execution_id = $2 ORDER BY v.id",
        {tenant, execution_id}));
}

const core::db::ListSpec kDefinitionList{
    .sort_fields = core::db::sort_fields("d", {"key", "name", "updated_at"}),
    .default_sort = "key",
    .tiebreak_sql = "d.id",
    .filters = {
        {"q", "text contained in the name or the key (any case)", "",
         "strpos(lower(d.name), lower($?)) > 0 OR strpos(lower(d.key), lower($?)) > 0"},
        {"kind", "the definition's kind", R"({"enum":["dag","state_machine"]})", "d.kind = $?"}}};

const core::db::ListSpec kExecutionList{
    .sort_fields = core::db::sort_fields("e", {"created_at", "ended_at", "status", "priority"}),
    .default_sort = "-created_at",
    .tiebreak_sql = "e.id",
    .filters = {{"status", "the execution's status",
                 R"({"enum":["queued","running","paused","completed","failed","cancelled"]})",
                 "e.status = $?"},
                {"definition_id", "the definition's id", R"({"type":"integer"})",
                 "e.definition_id = $?::bigint"}}};

const core::db::ListSpec kHistoryList{
    .sort_fields = core::db::sort_fields("r", {"id", "started_at", "node"}),
    .default_sort = "id",
    .tiebreak_sql = "r.id",
    .filters = {{"phase", "the run's phase",
                 R"({"enum":["node","entry","exit","transition","on_error","compensate"]})",
                 "r.phase = $?"},
                {"status", "the run's status",
                 R"({"enum":["running","retrying","succeeded","failed"]})", "r.status = $?"}},
    .default_page_size = 100};

}  // namespace riveredge::workflows
