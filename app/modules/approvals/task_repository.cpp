#include "modules/approvals/task_repository.hpp"

#include "core/db/sql_time.hpp"
#include "core/errors.hpp"
#include "core/json/depth.hpp"
#include "core/text/integers.hpp"
#include "core/time/rfc3339.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <set>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;
using core::DomainError;
using core::db::Transaction;

constexpr const char* kTaskColumns =
    "t.id, t.instance_id, t.node_id, t.visit, t.kind, t.assignee, t.owner, t.status, t.seq, "
    "t.decided_by, t.comment, " SQL_UTC_TIME("t.created_at") " AS created_at, " SQL_UTC_TIME(
        "t.decided_at") " AS decided_at";

}  // namespace

const core::db::ListSpec kTaskList{
    .sort_fields = core::db::sort_fields("t", {"created_at", "decided_at", "instance_id"}),
    .default_sort = "created_at",
    .tiebreak_sql = "t.id",
    .filters = {{"box",
                 "todo (pending for me or my roles in running instances, the default) or done "
                 "(decided by me); started and cc are instance lists "
                 "(GET /api/v1/approvals/instances?box=started|cc)",
                 R"({"enum":["todo","done"]})"}}};

namespace {

struct TaskRow {
    std::int64_t id = 0;
    std::string assignee;
    std::string status;
    std::string kind;
    std::optional<std::string> owner;
    std::optional<std::string> decided_by;
};
BOOST_DESCRIBE_STRUCT(TaskRow, (), (id, assignee, status, kind, owner, decided_by))

// The node's config in the instance's pinned version, with the instance's variables (both
// JSON objects); nullopt when the version has no such node.
std::optional<std::pair<json::object, json::object>> node_config(Transaction& tx,
                                                                 const core::TenantId& tenant,
                                                                 std::int64_t instance_id,
                                                                 const std::string& node_id) {
    const auto rows = tx.exec(
        "SELECT coalesce(n->'config', '{}')::text AS config, i.variables::text AS variables FROM "
        "approval_instances i JOIN approval_definition_versions v ON v.tenant_id = i.tenant_id "
        "AND v.definition_id = i.definition_id AND v.version = i.version, "
        "jsonb_array_elements(v.compiled->'nodes') n WHERE i.tenant_id = $1 AND i.id = $2 AND "
        "n->>'id' = $3",
        {tenant, instance_id, node_id});
    if (rows.empty()) {
        return std::nullopt;
    }
    return std::pair{core::parse_stored_json(rows.text(0, "config")).as_object(),
                     core::parse_stored_json(rows.text(0, "variables")).as_object()};
}

// An approver changes only the form fields its node declares editable (`editable_fields`);
// the initiator resubmitting at the start edits the whole form.
void check_editable(Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t instance_id,
                    const std::string& node_id,
                    const json::object& changes) {
    std::set<std::string> editable;
    if (const auto node = node_config(tx, tenant, instance_id, node_id)) {
        if (const auto* fields = node->first.if_contains("editable_fields");
            fields != nullptr && fields->is_array()) {
            for (const auto& field : fields->get_array()) {
                if (field.is_string()) {
                    editable.emplace(field.get_string());
                }
            }
        }
    }
    json::object refused;
    for (const auto& change : changes) {
        if (editable.count(std::string(change.key())) == 0) {
            refused["variables." + std::string(change.key())] = "not editable at step " + node_id;
        }
    }
    if (!refused.empty()) {
        throw DomainError::validation(std::move(refused));
    }
}

// The signature a step's approval is, from its config `signature` {meaning, record_variable}:
// nullopt at a step that takes none. 409 when the instance names no record.
std::optional<SignatureStep> signature_step(Transaction& tx,
                                            const core::TenantId& tenant,
                                            std::int64_t instance_id,
                                            const std::string& node_id,
                                            int visit) {
    const auto node = node_config(tx, tenant, instance_id, node_id);
    const auto* signature = node ? node->first.if_contains("signature") : nullptr;
    if (signature == nullptr || !signature->is_object()) {
        return std::nullopt;
    }
    const auto& config = signature->get_object();
    const auto& variables = node->second;
    const std::string variable = config.contains("record_variable")
                                     ? std::string(config.at("record_variable").as_string())
                                     : "record_id";
    SignatureStep step{
        0, std::string(config.at("meaning").as_string()),
        "approvals:" + std::to_string(instance_id) + ":" + node_id + "#" + std::to_string(visit)};
    const auto* record = variables.if_contains(variable);
    if (record != nullptr && record->is_int64() && record->get_int64() > 0) {
        step.record_id = record->get_int64();
    } else if (record != nullptr && record->is_string()) {
        step.record_id = core::parse_integer_in<std::int64_t>(
                             record->get_string(), 1, std::numeric_limits<std::int64_t>::max())
                             .value_or(0);
    }
    if (step.record_id == 0) {
        throw DomainError::conflict("step " + node_id + " signs the record named by variable '" +
                                    variable + "', which the instance does not hold");
    }
    return step;
}

struct Locked {
    std::int64_t instance_id = 0;
    std::string node_id;
    int visit = 0;
    std::int64_t visit_id = 0;
    std::string mode;
    double ratio = 1;
    json::array veto;
    TaskRow task;
    /// The visit's kind: task, resubmit, or manual (a manual task is only confirmed).
    std::string kind;

    VisitKey key(const core::TenantId& tenant) const {
        return {tenant, instance_id, node_id, visit};
    }
};

// The rows of one visit, in a table keyed like approval_node_visits: parameters $1 to $4.
constexpr const char* kOfVisit =
    "tenant_id = $1 AND instance_id = $2 AND node_id = $3 AND visit = $4::int";

// The visit's key as those four parameters, and then `more` ($5 on).
std::vector<core::db::Param> visit_params(const VisitKey& at,
                                          std::initializer_list<core::db::Param> more = {}) {
    std::vector<core::db::Param> params{at.tenant, at.instance_id, at.node_id, at.visit};
    params.insert(params.end(), more.begin(), more.end());
    return params;
}

bool assigned_to(const std::string& assignee, const core::Principal& who) {
    const auto role = group_role(assignee);
    return assignee == who.user_id || (role && who.has_role(*role));
}

std::vector<TaskRow> visit_tasks(Transaction& tx, const VisitKey& at) {
    return core::db::select_rows<TaskRow>(
        tx, "id, assignee, status, kind, owner, decided_by",
        std::string("FROM approval_tasks WHERE ") + kOfVisit + " ORDER BY seq, id",
        visit_params(at));
}

// Locks the task's instance (serialising with withdraw) and its visit (serialising decisions),
// and checks that both are still open and the task is `who`'s to act on.
// `administrator`: the caller acts for the tenant, whoever the task is assigned to.
Locked lock_task(Transaction& tx,
                 const core::Principal& who,
                 std::int64_t task_id,
                 bool as_owner,
                 bool administrator = false) {
    const auto task = tx.exec(
        "SELECT instance_id, node_id, visit FROM approval_tasks WHERE tenant_id = $1 AND id = $2",
        {who.tenant, task_id});
    if (task.empty()) {
        throw DomainError::not_found("task " + std::to_string(task_id));
    }
    Locked locked;
    locked.instance_id = task.integer(0, "instance_id");
    locked.node_id = task.text(0, "node_id");
    locked.visit = static_cast<int>(task.integer(0, "visit"));
    const auto instance =
        tx.exec("SELECT status FROM approval_instances WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                {who.tenant, locked.instance_id});
    if (instance.empty() || instance.text(0, "status") != "running") {
        throw DomainError::conflict("the instance is " +
                                    (instance.empty() ? "gone" : instance.text(0, "status")) +
                                    ", not running");
    }
    const auto visit = tx.exec(
        "SELECT id, status, kind, coalesce(mode, 'any') AS mode, coalesce(ratio, 1) AS ratio, "
        "veto::text AS veto FROM approval_node_visits WHERE " +
            std::string(kOfVisit) + " FOR UPDATE",
        visit_params(locked.key(who.tenant)));
    if (visit.empty() || visit.text(0, "status") != "active") {
        throw DomainError::conflict("this step was already decided");
    }
    locked.visit_id = visit.integer(0, "id");
    locked.kind = visit.text(0, "kind");
    locked.mode = visit.text(0, "mode");
    locked.ratio = std::stod(visit.text(0, "ratio"));
    locked.veto = json::parse(visit.text(0, "veto")).as_array();
    for (auto& row : visit_tasks(tx, locked.key(who.tenant))) {
        if (row.id == task_id) {
            locked.task = std::move(row);
        }
    }
    if (locked.task.status != "pending") {
        throw DomainError::conflict("this task is " + locked.task.status);
    }
    if (administrator) {
        return locked;
    }
    if (!assigned_to(locked.task.assignee, who)) {
        throw DomainError::forbidden("this task is assigned to someone else");
    }
    if (as_owner && locked.task.owner) {
        throw DomainError::conflict("this task is delegated: the delegate resolves it first");
    }
    return locked;
}

// The visit's outcome under its rule: approved, rejected or pending.
std::string evaluate(const Locked& rule, const std::vector<TaskRow>& tasks) {
    int total = 0;
    int approved = 0;
    int rejected = 0;
    bool vetoed = false;
    bool added_open = false;
    for (const auto& t : tasks) {
        if (t.status == "cancelled" || t.status == "transferred") {
            continue;
        }
        if (t.kind == "added") {
            if (t.status == "rejected") {
                return "rejected";
            }
            added_open = added_open || t.status != "approved";
            continue;
        }
        ++total;
        approved += t.status == "approved" ? 1 : 0;
        if (t.status == "rejected") {
            ++rejected;
            for (const auto& v : rule.veto) {
                const std::string who = v.is_string() ? std::string(v.as_string()) : "";
                vetoed = vetoed || who == "*" || (t.decided_by && who == *t.decided_by);
            }
        }
    }
    const int needed = rule.mode == "ratio"
                           ? std::max(1, static_cast<int>(std::ceil(rule.ratio * total - 1e-9)))
                           : (rule.mode == "any" ? 1 : total);
    if (rejected > 0 && (rule.mode != "ratio" || vetoed || total - rejected < needed)) {
        return "rejected";
    }
    if (approved >= needed) {
        return added_open ? "carried" : "approved";
    }
    return "pending";
}

// The node is no longer current once its visit settled.
void leave_node(Transaction& tx,
                const core::TenantId& tenant,
                std::int64_t instance_id,
                const std::string& node_id) {
    tx.exec(
        "UPDATE approval_instances SET current_nodes = current_nodes - $3 WHERE tenant_id = $1 "
        "AND id = $2",
        {tenant, instance_id, node_id});
}

// A settled visit's tasks still open (pending, or queued behind another) are cancelled.
void cancel_open_tasks(Transaction& tx, const VisitKey& at) {
    tx.exec(std::string("UPDATE approval_tasks SET status = 'cancelled' WHERE ") + kOfVisit +
                " AND status IN ('pending', 'queued')",
            visit_params(at));
}

// Locks the visit's instance and then the visit, in a decision's order (lock_task); whether the
// visit is still active.
bool lock_active_visit(Transaction& tx, const VisitKey& at) {
    tx.exec("SELECT 1 FROM approval_instances WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            {at.tenant, at.instance_id});
    return !tx.exec(std::string("SELECT 1 FROM approval_node_visits WHERE ") + kOfVisit +
                        " AND status = 'active' FOR UPDATE",
                    visit_params(at))
                .empty();
}

// Closes the visit with `status` if it is still active; whether it was.
bool close_active_visit(Transaction& tx,
                        const VisitKey& at,
                        const std::string& status,
                        TimePoint now) {
    return tx.exec(std::string("UPDATE approval_node_visits SET status = $5, left_at = "
                               "$6::timestamptz WHERE ") +
                       kOfVisit + " AND status = 'active'",
                   visit_params(at, {status, core::format_utc(now)}))
               .affected() == 1;
}

// Applies the rule after a decision: activates the tasks waiting on an approval, and settles
// the visit when its outcome is known.
std::string settle(Transaction& tx,
                   const core::TenantId& tenant,
                   const Locked& locked,
                   std::optional<std::int64_t> approved_task,
                   TimePoint now,
                   std::vector<TaskRef>& new_work) {
    if (approved_task) {
        const auto activated = core::db::rows_as<TaskRef>(tx.exec(
            "UPDATE approval_tasks SET status = 'pending' WHERE tenant_id = $1 AND blocked_by = $2 "
            "AND status = 'queued' RETURNING id, assignee, status",
            {tenant, *approved_task}));
        new_work.insert(new_work.end(), activated.begin(), activated.end());
    }
    const auto tasks = visit_tasks(tx, locked.key(tenant));
    const std::string outcome = evaluate(locked, tasks);
    if (outcome == "carried") {
        // The approvers carried the node; only added signers remain.
        tx.exec(std::string("UPDATE approval_tasks SET status = 'cancelled' WHERE ") + kOfVisit +
                    " AND kind <> 'added' AND status IN ('pending', 'queued')",
                visit_params(locked.key(tenant)));
        return "active";
    }
    if (outcome == "pending") {
        return "active";
    }
    tx.exec("UPDATE approval_node_visits SET status = $2, left_at = $3::timestamptz WHERE id = $1",
            {locked.visit_id, outcome, core::format_utc(now)});
    leave_node(tx, tenant, locked.instance_id, locked.node_id);
    cancel_open_tasks(tx, locked.key(tenant));
    new_work.clear();
    return outcome;
}

json::value optional_text(const std::optional<std::string>& text) {
    return text ? json::value(*text) : json::value(nullptr);
}

std::int64_t insert_task(Transaction& tx,
                         const VisitKey& at,
                         const std::string& assignee,
                         const std::string& status,
                         const std::string& kind,
                         int seq,
                         std::optional<std::int64_t> blocked_by) {
    const auto rows = tx.exec(
        "INSERT INTO approval_tasks (tenant_id, instance_id, node_id, visit, assignee, status, "
        "kind, seq, blocked_by) VALUES ($1, $2, $3, $4::int, $5, $6, $7, $8::int, $9::bigint) ON "
        "CONFLICT DO NOTHING RETURNING id",
        visit_params(at, {assignee, status, kind, seq, blocked_by}));
    if (rows.empty()) {
        throw DomainError::conflict(assignee + " already has a task on this step");
    }
    return rows.integer(0, "id");
}

// A pending task handed to `to`: the old task is transferred, a new pending task takes its place
// on the same step, and whoever waited on the old task now waits on the new one. 409 when the
// old task is no longer pending (the callers hold the visit's lock, so it never is).
std::int64_t hand_task_to(Transaction& tx,
                          const VisitKey& at,
                          std::int64_t old_id,
                          const std::string& kind,
                          const std::string& to,
                          const std::optional<std::string>& by = std::nullopt,
                          const std::optional<std::string>& comment = std::nullopt) {
    if (tx.exec("UPDATE approval_tasks SET status = 'transferred', decided_by = $3, comment = $4 "
                "WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
                {at.tenant, old_id, by, comment})
            .affected() == 0) {
        throw DomainError::conflict("task " + std::to_string(old_id) + " is no longer pending");
    }
    const auto id = insert_task(tx, at, to, "pending", kind, 0, std::nullopt);
    tx.exec("UPDATE approval_tasks SET blocked_by = $3 WHERE tenant_id = $1 AND blocked_by = $2",
            {at.tenant, old_id, id});
    return id;
}

ActionResult result_of(const Locked& locked, std::string status, std::vector<TaskRef> work) {
    return ActionResult{locked.instance_id, locked.node_id, std::move(status), std::move(work)};
}

}  // namespace

std::vector<TaskRef> TaskRepository::open_visit(const core::TenantId& tenant,
                                                std::int64_t instance_id,
                                                const VisitOpening& opening,
                                                TimePoint now,
                                                const std::string& step_key) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) -> std::vector<TaskRef> {
        const auto veto = json::value_from(opening.rule.veto);
        const auto inserted = tx.exec(
            "INSERT INTO approval_node_visits (tenant_id, instance_id, node_id, visit, kind, mode, "
            "ratio, veto, due_at, deadline, entered_at) VALUES ($1, $2, $3, $4::int, $5, $6, "
            "$7::float8, $8::jsonb, $9::timestamptz, $10::jsonb, $11::timestamptz) ON CONFLICT DO "
            "NOTHING RETURNING id",
            {tenant, instance_id, opening.node_id, opening.visit, opening.kind, opening.rule.mode,
             opening.rule.ratio, veto,
             opening.due_at ? core::db::Param(core::format_utc(*opening.due_at)) : std::nullopt,
             opening.deadline, core::format_utc(now)});
        const VisitKey at{tenant, instance_id, opening.node_id, opening.visit};
        if (!inserted.empty()) {
            std::optional<std::int64_t> previous;
            int seq = 0;
            json::array who;
            for (const auto& assignee : opening.assignees) {
                const bool queued = opening.rule.mode == "sequential" && previous.has_value();
                const auto id = insert_task(tx, at, assignee, queued ? "queued" : "pending",
                                            opening.kind == "resubmit" ? "resubmit" : "approval",
                                            seq++, queued ? previous : std::nullopt);
                previous = id;
                who.emplace_back(assignee);
            }
            tx.exec(
                "UPDATE approval_instances SET current_nodes = (SELECT coalesce(jsonb_agg(DISTINCT "
                "n), '[]') FROM jsonb_array_elements_text(current_nodes || "
                "jsonb_build_array($3::text)) "
                "AS n) WHERE tenant_id = $1 AND id = $2",
                {tenant, instance_id, opening.node_id});
            if (!opening.assignees.empty()) {
                append_timeline(
                    tx, tenant, instance_id, "system",
                    opening.kind == "resubmit" ? "resubmission_requested" : "task_created",
                    opening.node_id,
                    json::object{{"assignees", std::move(who)},
                                 {"visit", opening.visit},
                                 {"mode", opening.rule.mode}},
                    step_key);
            }
        }
        return core::db::select_rows<TaskRef>(
            tx, "id, assignee, status",
            std::string("FROM approval_tasks WHERE ") + kOfVisit + " ORDER BY seq, id",
            visit_params(at));
    });
}

void TaskRepository::record_visit(const VisitKey& at,
                                  const std::string& kind,
                                  const std::string& status,
                                  TimePoint now) {
    core::db::exec_once(
        pool_, at.tenant,
        "INSERT INTO approval_node_visits (tenant_id, instance_id, node_id, visit, kind, status, "
        "entered_at, left_at) VALUES ($1, $2, $3, $4::int, $5, $6, $7::timestamptz, "
        "$7::timestamptz) ON CONFLICT DO NOTHING",
        visit_params(at, {kind, status, core::format_utc(now)}));
}

void TaskRepository::close_visit(const VisitKey& at, const std::string& status, TimePoint now) {
    core::db::transact(pool_, at.tenant, [&](Transaction& tx) {
        close_active_visit(tx, at, status, now);
        leave_node(tx, at.tenant, at.instance_id, at.node_id);
    });
}

std::optional<VisitState> TaskRepository::visit_state(const VisitKey& at) {
    const auto rows = core::db::exec_once(
        pool_, at.tenant,
        "SELECT id, status, return_target, " SQL_UTC_TIME("due_at") " AS due_at, " SQL_UTC_TIME(
            "entered_at") " AS entered_at, deadline::text AS deadline, reminders FROM "
                          "approval_node_visits WHERE " +
            std::string(kOfVisit),
        visit_params(at));
    if (rows.empty()) {
        return std::nullopt;
    }
    VisitState state{rows.integer(0, "id"), rows.text(0, "status"),
                     std::nullopt,          std::nullopt,
                     std::nullopt,          static_cast<int>(rows.integer(0, "reminders")),
                     std::nullopt};
    if (!rows.is_null(0, "return_target")) {
        state.return_target = rows.text(0, "return_target");
    }
    if (!rows.is_null(0, "due_at")) {
        if (const auto due = core::parse_time(rows.text(0, "due_at"))) {
            state.due_at = TimePoint(*due);
        }
    }
    if (!rows.is_null(0, "deadline")) {
        state.deadline = json::parse(rows.text(0, "deadline")).as_object();
    }
    if (const auto entered = core::parse_time(rows.text(0, "entered_at"))) {
        state.entered_at = TimePoint(*entered);
    }
    return state;
}

ActionResult TaskRepository::decide(const core::Principal& who,
                                    std::int64_t task_id,
                                    const Decision& decision,
                                    TimePoint now,
                                    const SignatureHook& sign) {
    const auto& [action, comment, return_target, changes] = decision;
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) -> ActionResult {
        const auto locked = lock_task(tx, who, task_id, true);
        if (locked.kind == "manual" && action != "approve") {
            throw DomainError::validation(
                json::object{{"action", "a manual task is confirmed (approve), not " + action}});
        }
        if (action == "return") {
            const auto earlier = tx.exec(
                "SELECT 1 FROM approval_node_visits WHERE tenant_id = $1 AND instance_id = $2 AND "
                "node_id = $3 AND (kind IN ('task', 'resubmit') OR node_id = (SELECT node_id FROM "
                "approval_node_visits WHERE tenant_id = $1 AND instance_id = $2 ORDER BY id LIMIT "
                "1)) "
                "AND status IN ('approved', 'completed') LIMIT 1",
                {who.tenant, locked.instance_id, return_target.value_or("")});
            if (!return_target || earlier.empty() || *return_target == locked.node_id) {
                throw DomainError::validation(json::object{
                    {"return_to", "an earlier approval step or the start of this instance"}});
            }
        }
        if (!changes.empty() && locked.task.kind != "resubmit") {
            check_editable(tx, who.tenant, locked.instance_id, locked.node_id, changes);
        }
        if (action == "approve") {
            const auto step =
                signature_step(tx, who.tenant, locked.instance_id, locked.node_id, locked.visit);
            if (step && !sign) {
                throw DomainError::validation(json::object{
                    {"signature",
                     "step " + locked.node_id +
                         " is approved by an electronic signature: {password, user_id, reason}"}});
            }
            if (!step && sign) {
                throw DomainError::validation(
                    json::object{{"signature", "step " + locked.node_id + " takes no signature"}});
            }
            if (step) {
                sign(tx, *step);
            }
        }
        const std::string status = action == "approve"  ? "approved"
                                   : action == "reject" ? "rejected"
                                                        : "returned";
        tx.exec(
            "UPDATE approval_tasks SET status = $3, decided_by = $4, comment = $5, decided_at = "
            "$6::timestamptz WHERE tenant_id = $1 AND id = $2",
            {who.tenant, task_id, status, who.user_id, comment, core::format_utc(now)});
        merge_variables(tx, who.tenant, locked.instance_id, changes, who.user_id,
                        "task:" + std::to_string(task_id));
        append_timeline(tx, who.tenant, locked.instance_id, who.user_id, status, locked.node_id,
                        json::object{{"task_id", task_id},
                                     {"comment", optional_text(comment)},
                                     {"return_to", optional_text(return_target)}});
        std::vector<TaskRef> work;
        std::string visit_status;
        if (action == "return") {
            tx.exec(
                "UPDATE approval_node_visits SET status = 'returned', return_target = $2, left_at "
                "= "
                "$3::timestamptz WHERE id = $1",
                {locked.visit_id, *return_target, core::format_utc(now)});
            leave_node(tx, who.tenant, locked.instance_id, locked.node_id);
            cancel_open_tasks(tx, locked.key(who.tenant));
            visit_status = "returned";
        } else {
            visit_status =
                settle(tx, who.tenant, locked,
                       action == "approve" ? std::optional(task_id) : std::nullopt, now, work);
        }
        return result_of(locked, visit_status, std::move(work));
    });
}

ActionResult TaskRepository::reassign(const core::Principal& who,
                                      std::int64_t task_id,
                                      const std::string& to,
                                      bool delegate,
                                      const std::optional<std::string>& comment) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_task(tx, who, task_id, true);
        if (to == who.user_id || to == locked.task.assignee) {
            throw DomainError::validation(json::object{{"to", "someone other than the assignee"}});
        }
        std::vector<TaskRef> work;
        if (delegate) {
            const auto updated = tx.exec(
                "UPDATE approval_tasks SET owner = $3, assignee = $4 WHERE tenant_id = $1 AND id = "
                "$2 "
                "AND NOT EXISTS (SELECT 1 FROM approval_tasks o WHERE o.instance_id = "
                "approval_tasks.instance_id AND o.node_id = approval_tasks.node_id AND o.visit = "
                "approval_tasks.visit AND o.assignee = $4)",
                {who.tenant, task_id, who.user_id, to});
            if (updated.affected() == 0) {
                throw DomainError::conflict(to + " already has a task on this step");
            }
            work.push_back({task_id, to, "pending"});
        } else {
            const auto id = hand_task_to(tx, locked.key(who.tenant), task_id, locked.task.kind, to,
                                         who.user_id, comment);
            work.push_back({id, to, "pending"});
        }
        append_timeline(
            tx, who.tenant, locked.instance_id, who.user_id, delegate ? "delegated" : "transferred",
            locked.node_id,
            json::object{{"task_id", task_id}, {"to", to}, {"comment", optional_text(comment)}});
        return result_of(locked, "active", std::move(work));
    });
}

ActionResult TaskRepository::reassign_stuck(const core::Principal& admin,
                                            std::int64_t task_id,
                                            const std::string& to,
                                            const std::string& reason) {
    return core::db::transact(pool_, admin.tenant, [&](Transaction& tx) {
        const auto locked = lock_task(tx, admin, task_id, false, true);
        if (to == locked.task.assignee) {
            throw DomainError::validation(json::object{{"to", "someone other than the assignee"}});
        }
        const auto id = hand_task_to(tx, locked.key(admin.tenant), task_id, locked.task.kind, to,
                                     admin.user_id, reason);
        append_timeline(tx, admin.tenant, locked.instance_id, admin.user_id, "reassigned",
                        locked.node_id,
                        json::object{{"task_id", task_id},
                                     {"from", locked.task.assignee},
                                     {"to", to},
                                     {"reason", reason}});
        return result_of(locked, "active", {{id, to, "pending"}});
    });
}

ActionResult TaskRepository::resolve(const core::Principal& who,
                                     std::int64_t task_id,
                                     const std::optional<std::string>& comment) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_task(tx, who, task_id, false);
        if (!locked.task.owner) {
            throw DomainError::conflict("this task is not delegated");
        }
        tx.exec(
            "UPDATE approval_tasks SET assignee = owner, owner = NULL WHERE tenant_id = $1 AND id "
            "= $2",
            {who.tenant, task_id});
        append_timeline(tx, who.tenant, locked.instance_id, who.user_id, "resolved", locked.node_id,
                        json::object{{"task_id", task_id},
                                     {"back_to", *locked.task.owner},
                                     {"comment", optional_text(comment)}});
        return result_of(locked, "active", {{task_id, *locked.task.owner, "pending"}});
    });
}

ActionResult TaskRepository::add_signer(const core::Principal& who,
                                        std::int64_t task_id,
                                        const std::string& user,
                                        bool before,
                                        const std::optional<std::string>& comment) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_task(tx, who, task_id, true);
        std::vector<TaskRef> work;
        if (before) {
            const auto id =
                insert_task(tx, locked.key(who.tenant), user, "pending", "added", 0, std::nullopt);
            tx.exec(
                "UPDATE approval_tasks SET status = 'queued', blocked_by = $3 WHERE tenant_id = $1 "
                "AND id = $2",
                {who.tenant, task_id, id});
            work.push_back({id, user, "pending"});
        } else {
            insert_task(tx, locked.key(who.tenant), user, "queued", "added", 0, task_id);
        }
        append_timeline(tx, who.tenant, locked.instance_id, who.user_id, "signer_added",
                        locked.node_id,
                        json::object{{"task_id", task_id},
                                     {"user", user},
                                     {"position", before ? "before" : "after"},
                                     {"comment", optional_text(comment)}});
        return result_of(locked, "active", std::move(work));
    });
}

ActionResult TaskRepository::claim(const core::Principal& who, std::int64_t task_id) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_task(tx, who, task_id, true);
        if (!group_role(locked.task.assignee)) {
            throw DomainError::conflict("only a group task can be claimed");
        }
        const auto updated = tx.exec(
            "UPDATE approval_tasks SET assignee = $3, claimed_by = $3 WHERE tenant_id = $1 AND id "
            "= $2 "
            "AND NOT EXISTS (SELECT 1 FROM approval_tasks o WHERE o.instance_id = "
            "approval_tasks.instance_id AND o.node_id = approval_tasks.node_id AND o.visit = "
            "approval_tasks.visit AND o.assignee = $3)",
            {who.tenant, task_id, who.user_id});
        if (updated.affected() == 0) {
            throw DomainError::conflict(who.user_id + " already has a task on this step");
        }
        append_timeline(tx, who.tenant, locked.instance_id, who.user_id, "claimed", locked.node_id,
                        json::object{{"task_id", task_id}, {"group", locked.task.assignee}});
        return result_of(locked, "active", {});
    });
}

ActionResult TaskRepository::comment(const core::Principal& who,
                                     std::int64_t task_id,
                                     const std::string& text) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_task(tx, who, task_id, false);
        append_timeline(tx, who.tenant, locked.instance_id, who.user_id, "commented",
                        locked.node_id, json::object{{"task_id", task_id}, {"comment", text}});
        return result_of(locked, "active", {});
    });
}

bool TaskRepository::settle_by_system(const VisitKey& at,
                                      const std::string& outcome,
                                      const std::string& reason,
                                      TimePoint now) {
    return core::db::transact(pool_, at.tenant, [&](Transaction& tx) -> bool {
        // In a decision's lock order: one under way is waited for, and wins.
        if (!lock_active_visit(tx, at) || !close_active_visit(tx, at, outcome, now)) {
            return false;
        }
        leave_node(tx, at.tenant, at.instance_id, at.node_id);
        cancel_open_tasks(tx, at);
        append_timeline(tx, at.tenant, at.instance_id, "system", "auto_" + outcome, at.node_id,
                        json::object{{"visit", at.visit}, {"reason", reason}},
                        "auto:" + at.node_id + "#" + std::to_string(at.visit));
        return true;
    });
}

std::vector<TaskRef> TaskRepository::reassign_pending(
    const VisitKey& at,
    const std::function<std::optional<std::string>(const std::string&)>& assignee_for,
    const std::string& reason) {
    return core::db::transact(pool_, at.tenant, [&](Transaction& tx) -> std::vector<TaskRef> {
        std::vector<TaskRef> moved;
        // As a decision does (instance, then visit): one that started after the caller read the
        // visit is waited for, and if it settled the visit nothing moves.
        if (!lock_active_visit(tx, at)) {
            return moved;
        }
        // Once per deadline: the move's timeline entries commit with it. A retried step that
        // finds them moves nothing (the tasks it would move now are the ones moved before, which
        // would go a level higher) and answers the tasks its earlier attempt moved, for their
        // notices. The due time stays set until the caller has sent them, so a step that died in
        // between comes back here.
        const bool moved_before =
            !tx.exec(
                   "SELECT 1 FROM approval_timeline WHERE tenant_id = $1 AND instance_id = $2 "
                   "AND node_id = $3 AND action = $5 AND (detail ->> 'visit')::int = $4::int "
                   "LIMIT 1",
                   visit_params(at, {reason}))
                 .empty();
        if (moved_before) {
            return core::db::rows_as<TaskRef>(tx.exec(
                "SELECT t.id, t.assignee, t.status FROM approval_tasks t WHERE t.tenant_id = $1 "
                "AND "
                "t.instance_id = $2 AND t.node_id = $3 AND t.visit = $4::int AND t.status = "
                "'pending' AND EXISTS (SELECT 1 FROM approval_timeline l WHERE l.tenant_id = $1 "
                "AND l.instance_id = $2 AND l.node_id = $3 AND l.action = $5 AND "
                "(l.detail ->> 'visit')::int = $4::int AND l.detail ->> 'to' = t.assignee) ORDER "
                "BY t.id",
                visit_params(at, {reason})));
        }
        const auto tasks = visit_tasks(tx, at);
        // A visit holds one task per assignee: one who has (or had) a task of this step keeps
        // theirs, and the task that would go to them stays where it is (moving it would break
        // that rule on every retry of the step).
        std::set<std::string> holders;
        for (const auto& t : tasks) {
            holders.insert(t.assignee);
        }
        for (const auto& t : tasks) {
            if (t.status != "pending") {
                continue;
            }
            const auto to = assignee_for(t.assignee);
            if (!to || *to == t.assignee || !holders.insert(*to).second) {
                continue;
            }
            const auto id = hand_task_to(tx, at, t.id, t.kind, *to);
            append_timeline(
                tx, at.tenant, at.instance_id, "system", reason, at.node_id,
                json::object{
                    {"task_id", t.id}, {"from", t.assignee}, {"to", *to}, {"visit", at.visit}});
            moved.push_back({id, *to, "pending"});
        }
        return moved;
    });
}

void TaskRepository::postpone(const core::TenantId& tenant,
                              std::int64_t visit_id,
                              std::optional<TimePoint> due_at,
                              bool reminded) {
    core::db::exec_once(
        pool_, tenant,
        "UPDATE approval_node_visits SET due_at = $3::timestamptz, reminders = reminders + "
        "$4::int WHERE tenant_id = $1 AND id = $2",
        {tenant, visit_id, due_at ? core::db::Param(core::format_utc(*due_at)) : std::nullopt,
         reminded ? "1" : "0"});
}

std::vector<TaskRef> TaskRepository::pending_tasks(const VisitKey& at) {
    return core::db::transact(pool_, at.tenant, [&](Transaction& tx) {
        std::vector<TaskRef> out;
        for (const auto& t : visit_tasks(tx, at)) {
            if (t.status == "pending") {
                out.push_back({t.id, t.assignee, t.status});
            }
        }
        return out;
    });
}

core::db::Page<TaskView> TaskRepository::tasks_for(const core::Principal& who,
                                                   const std::string& box,
                                                   const core::db::ListRequest& page) {
    json::array roles;
    for (const auto& role : who.roles) {
        roles.emplace_back(group_assignee(role));
    }
    const auto found = core::db::select_page(
        pool_, who.tenant, kTaskColumns,
        "FROM approval_tasks t WHERE t.tenant_id = $1 AND CASE WHEN $2 = 'todo' THEN t.status = "
        "'pending' AND (t.assignee = $3 OR t.assignee IN (SELECT jsonb_array_elements_text("
        "$4::jsonb))) AND EXISTS (SELECT 1 FROM approval_instances i WHERE i.tenant_id = "
        "t.tenant_id AND i.id = t.instance_id AND i.status = 'running') ELSE t.decided_by = $3 AND "
        "t.status IN ('approved', 'rejected', "
        "'returned', 'transferred') END",
        {who.tenant, box, who.user_id, roles}, page);
    return core::db::page_as<TaskView>(found);
}

boost::json::array TaskRepository::tasks_of(const core::TenantId& tenant,
                                            std::int64_t instance_id) {
    const auto rows = core::db::exec_once(pool_, tenant,
                                          std::string("SELECT ") + kTaskColumns +
                                              " FROM approval_tasks t WHERE t.tenant_id = $1 AND "
                                              "t.instance_id = $2 ORDER BY t.id",
                                          {tenant, instance_id});
    return core::db::rows_json<TaskView>(rows);
}

std::vector<NodeVisit> TaskRepository::visits_of(const core::TenantId& tenant,
                                                 std::int64_t instance_id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT node_id, visit, kind, status, " SQL_UTC_TIME("entered_at") " AS entered_at, "
        SQL_UTC_TIME("left_at") " AS left_at, " SQL_UTC_TIME("due_at") " AS due_at FROM "
        "approval_node_visits WHERE tenant_id = $1 AND instance_id = $2 ORDER BY id",
        {tenant, instance_id});
    return core::db::rows_as<NodeVisit>(rows);
}

}  // namespace riveredge::approvals
