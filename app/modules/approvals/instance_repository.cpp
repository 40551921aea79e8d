#include "modules/approvals/instance_repository.hpp"

#include "core/db/sql_time.hpp"
#include "core/errors.hpp"
#include "core/json/depth.hpp"
#include "modules/approvals/history.hpp"

#include <inngest/event.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <algorithm>
#include <initializer_list>
#include <string_view>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;
using core::db::Transaction;

constexpr const char* kInstanceColumns =
    "i.id, i.definition_id, i.version, i.business_key, i.status, i.variables::text AS variables, "
    "i.initiator, i.current_nodes::text AS current_nodes, i.generation, i.engine_state::text AS "
    "engine_state, i.status_reason, round(extract(epoch FROM i.ended_at - i.started_at)::numeric, "
    "3) AS duration_seconds, " SQL_UTC_TIME("i.started_at") " AS started_at, " SQL_UTC_TIME(
        "i.ended_at") " AS ended_at, i.parent_id";

// Whether the user $<user> (holding the token roles $<roles>, a JSON array) takes part in
// instance i: its initiator, a task's assignee (directly or through a role), owner, decider
// or claimer, a delegate, or a CC recipient.
std::string participates_sql(int user, int roles) {
    const std::string u = "$" + std::to_string(user);
    const std::string r = "$" + std::to_string(roles);
    return "(i.initiator = " + u +
           " OR EXISTS (SELECT 1 FROM approval_tasks t WHERE t.tenant_id = i.tenant_id AND "
           "t.instance_id = i.id AND (" +
           u +
           " IN (t.assignee, t.owner, t.decided_by, t.claimed_by) OR t.assignee IN (SELECT "
           "'role:' || role FROM jsonb_array_elements_text(" +
           r +
           "::jsonb) role))) OR EXISTS (SELECT 1 FROM approval_cc c WHERE c.tenant_id = "
           "i.tenant_id AND c.instance_id = i.id AND c.user_id = " +
           u +
           ") OR EXISTS (SELECT 1 FROM approval_timeline l WHERE l.tenant_id = i.tenant_id AND "
           "l.instance_id = i.id AND l.action = 'delegated' AND l.detail->>'to' = " +
           u + "))";
}

std::string roles_json(const core::Principal& who) {
    return json::serialize(json::value_from(who.roles));
}

// A variable's change, as the history shows it.
struct VariableChange {
    std::string name;
    std::optional<json::value> old_value;
    std::optional<json::value> new_value;
    std::string actor;
    std::string source;
    std::string at;
};
BOOST_DESCRIBE_STRUCT(VariableChange, (), (name, old_value, new_value, actor, source, at))

// An event the instance sent or received.
struct LoggedEvent {
    std::string name;
    json::value data;
    std::string at;
};
BOOST_DESCRIBE_STRUCT(LoggedEvent, (), (name, data, at))

// One line of the timeline: who did what, where.
struct TimelineEntry {
    std::string at;
    std::string actor;
    std::string action;
    std::optional<std::string> node_id;
    json::value detail;
};
BOOST_DESCRIBE_STRUCT(TimelineEntry, (), (at, actor, action, node_id, detail))

// `event` through the outbox inside `tx`, again after each of `echoes` (an id of its own each),
// and in the instance's event log (once under `once`).
void announce_in(Transaction& tx,
                 const core::TenantId& tenant,
                 std::int64_t id,
                 const inngest::Event& event,
                 const std::vector<std::chrono::milliseconds>& echoes,
                 const std::optional<std::string>& once = std::nullopt) {
    core::outbox::add(tx, tenant, event);
    for (const auto after : echoes) {
        auto echo = event;
        echo.id.reset();
        core::outbox::add(tx, tenant, echo, after);
    }
    log_event(tx, tenant, id, event.name, event.data, once);
}

}  // namespace

bool InstanceRepository::participates(const core::Principal& who, std::int64_t id) {
    const auto rows =
        core::db::exec_once(pool_, who.tenant,
                            "SELECT 1 FROM approval_instances i WHERE i.tenant_id = $1 AND "
                            "i.id = $2 AND " +
                                participates_sql(3, 4),
                            {who.tenant, id, who.user_id, roles_json(who)});
    return !rows.empty();
}

std::optional<std::int64_t> InstanceRepository::create(const core::TenantId& tenant,
                                                       const NewInstance& instance,
                                                       const core::outbox::Announcement& announce) {
    const auto& [definition_id, version, business_key, variables, initiator, parent] = instance;
    return core::db::transact(pool_, tenant, [&](Transaction& tx) -> std::optional<std::int64_t> {
        const auto rows = tx.exec(
            "INSERT INTO approval_instances (tenant_id, definition_id, version, business_key, "
            "variables, initiator, parent_id, parent_step) VALUES ($1, $2, $3::int, $4, $5::jsonb, "
            "$6, $7::bigint, $8) ON CONFLICT DO NOTHING RETURNING id",
            {tenant, definition_id, version, business_key, variables, initiator,
             parent ? core::db::Param(parent->id) : std::nullopt,
             parent ? core::db::Param(parent->step) : std::nullopt});
        if (rows.empty()) {
            return std::nullopt;
        }
        const auto id = rows.integer(0, "id");
        append_timeline(tx, tenant, id, initiator, "started", std::nullopt,
                        json::object{{"version", version}}, std::nullopt);
        announce_in(tx, tenant, id, announce(id), {});
        return id;
    });
}

std::optional<InstanceRow> InstanceRepository::child_of(const core::TenantId& tenant,
                                                        std::int64_t parent_id,
                                                        const std::string& step) {
    return core::db::select_first<InstanceRow>(
        {pool_, tenant}, kInstanceColumns,
        "FROM approval_instances i WHERE i.tenant_id = $1 AND i.parent_id = $2 AND "
        "i.parent_step = $3",
        {tenant, parent_id, step});
}

json::object InstanceRow::to_json() const {
    auto out = core::db::row_json(*this);
    out.erase("engine_state");
    return out;
}

std::optional<InstanceRow> InstanceRepository::find(const core::TenantId& tenant, std::int64_t id) {
    return core::db::select_first<InstanceRow>(
        {pool_, tenant}, kInstanceColumns,
        "FROM approval_instances i WHERE i.tenant_id = $1 AND i.id = $2", {tenant, id});
}

const core::db::ListSpec kInstanceList{
    .sort_fields = core::db::sort_fields("i", {"started_at", "ended_at", "status", "business_key"}),
    .default_sort = "-started_at",
    .tiebreak_sql = "i.id",
    .filters = {{"status", "the instance's status",
                 R"({"enum":["running","suspended","completed","rejected","failed","withdrawn",)"
                 R"("cancelled"]})",
                 "i.status = $?"},
                {"definition_id", "instances of this definition", R"({"type":"integer"})",
                 "i.definition_id = $?::bigint"},
                {"business_key", "instances with this business key", "", "i.business_key = $?"},
                {"started_by", "me: instances I started", R"({"enum":["me"]})"},
                {"box", "started (as started_by=me) or cc (copied to me)",
                 R"({"enum":["started","cc"]})"}}};

core::db::Page<InstanceRow> InstanceRepository::list(const core::TenantId& tenant,
                                                     const InstanceFilter& filter,
                                                     const core::db::ListRequest& page) {
    const auto found = core::db::select_page(
        pool_, tenant, kInstanceColumns,
        "FROM approval_instances i WHERE i.tenant_id = $1 AND ($2::text IS NULL OR i.initiator = "
        "$2) AND ($5::text IS NULL OR i.id IN (SELECT instance_id FROM approval_cc WHERE "
        "tenant_id = $1 AND user_id = $5)) AND ($3::text IS NULL OR " +
            participates_sql(3, 4) + ")",
        {tenant, filter.initiator,
         filter.participant ? core::db::Param(filter.participant->user_id) : std::nullopt,
         filter.participant ? core::db::Param(roles_json(*filter.participant))
                            : core::db::Param("[]"),
         filter.copied_to},
        page);
    return core::db::page_as<InstanceRow>(found);
}

namespace {

// An instance that ends leaves no task open and no step active.
void cancel_open_work(Transaction& tx, const core::TenantId& tenant, std::int64_t id) {
    tx.exec(
        "UPDATE approval_tasks SET status = 'cancelled' WHERE tenant_id = $1 AND instance_id = $2 "
        "AND status IN ('pending', 'queued')",
        {tenant, id});
    tx.exec(
        "UPDATE approval_node_visits SET status = 'cancelled', left_at = now() WHERE tenant_id = "
        "$1 AND instance_id = $2 AND status = 'active'",
        {tenant, id});
}

// The descendants of instance $2 (child instances of its call activities, and theirs).
constexpr const char* kDescendants =
    "WITH RECURSIVE tree(id) AS (SELECT id FROM approval_instances WHERE tenant_id = $1 AND "
    "parent_id = $2 UNION ALL SELECT i.id FROM approval_instances i JOIN tree t ON i.parent_id = "
    "t.id WHERE i.tenant_id = $1) ";
// Why a descendant was cancelled with its caller.
constexpr const char* kCallerEnded = "the calling instance ended";

// Ends the alive descendants of `id`: cancelled, their open work closed. Answers their ids, for
// their runs to be woken.
std::vector<std::int64_t> cancel_descendants(Transaction& tx,
                                             const core::TenantId& tenant,
                                             std::int64_t id) {
    const auto rows = tx.exec(
        kDescendants +
            std::string("UPDATE approval_instances SET status = 'cancelled', status_reason = $3, "
                        "current_nodes = '[]', ended_at = now() WHERE tenant_id = $1 AND id IN "
                        "(SELECT id FROM tree) AND status IN ") +
            kAliveStatuses + " RETURNING id",
        {tenant, id, kCallerEnded});
    std::vector<std::int64_t> ended;
    for (int i = 0; i < rows.size(); ++i) {
        ended.push_back(rows.integer(i, "id"));
        cancel_open_work(tx, tenant, ended.back());
    }
    return ended;
}

// The descendants of `id` cancelled with a caller, now or by an earlier call.
std::vector<std::int64_t> cancelled_descendants(Transaction& tx,
                                                const core::TenantId& tenant,
                                                std::int64_t id) {
    const auto rows = tx.exec(kDescendants + std::string("SELECT i.id FROM approval_instances i "
                                                         "WHERE i.tenant_id = $1 AND i.id IN "
                                                         "(SELECT id FROM tree) AND i.status = "
                                                         "'cancelled' AND i.status_reason = $3 "
                                                         "ORDER BY i.id"),
                              {tenant, id, kCallerEnded});
    std::vector<std::int64_t> ids;
    for (int i = 0; i < rows.size(); ++i) {
        ids.push_back(rows.integer(i, "id"));
    }
    return ids;
}

// A person ends a running instance as `status` (withdrawn, or cancelled with a reason).
std::vector<std::int64_t> close_by_hand(Transaction& tx,
                                        const core::TenantId& tenant,
                                        std::int64_t id,
                                        const std::string& status,
                                        const std::optional<std::string>& reason) {
    tx.exec(
        "UPDATE approval_instances SET status = $3, status_reason = $4, current_nodes = '[]', "
        "ended_at = now() WHERE tenant_id = $1 AND id = $2",
        {tenant, id, status, reason});
    cancel_open_work(tx, tenant, id);
    return cancel_descendants(tx, tenant, id);
}

}  // namespace

InstanceRepository::Ending InstanceRepository::finish(const core::TenantId& tenant,
                                                      std::int64_t id,
                                                      const std::string& status,
                                                      const std::optional<std::string>& node_id,
                                                      const std::optional<std::string>& step_key,
                                                      const std::optional<std::string>& reason,
                                                      bool held_too) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        const auto updated =
            tx.exec(std::string("UPDATE approval_instances SET status = $3, status_reason = $4, "
                                "current_nodes = '[]', ended_at = coalesce(ended_at, now()) WHERE "
                                "tenant_id = $1 AND id = $2 AND status IN ") +
                        (held_too ? kAliveStatuses : "('running')"),
                    {tenant, id, status, reason});
        // Ended by this call, or by an earlier attempt of the same step (its timeline entry,
        // written with the status, is there). Else it had ended otherwise, say terminated by
        // an administrator: a 'rejected' after their 'terminated' would tell a false story.
        const bool ended =
            updated.affected() > 0 ||
            (step_key && !tx.exec("SELECT 1 FROM approval_timeline WHERE tenant_id = $1 AND "
                                  "instance_id = $2 AND step_key = $3",
                                  {tenant, id, *step_key})
                              .empty());
        cancel_open_work(tx, tenant, id);
        Ending ending{ended, cancel_descendants(tx, tenant, id)};
        if (ended && updated.affected() == 0) {
            // The earlier attempt cancelled the descendants, and may have died before it woke
            // them: they are woken again (a spare wake costs a run one park).
            ending.cancelled = cancelled_descendants(tx, tenant, id);
        }
        if (ended && step_key) {
            json::object detail;
            if (reason) {
                detail["reason"] = *reason;
            }
            append_timeline(tx, tenant, id, "system", status, node_id, detail, step_key);
        }
        return ending;
    });
}

InstanceRepository::Ending InstanceRepository::fail_run(const core::TenantId& tenant,
                                                        std::int64_t id,
                                                        int generation,
                                                        const std::string& step_key,
                                                        const std::string& reason) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // The next generation, owned by no run: a late event of the failed one stops at its load.
        const auto updated = tx.exec(
            std::string("UPDATE approval_instances SET status = 'failed', status_reason = $4, "
                        "current_nodes = '[]', ended_at = coalesce(ended_at, now()), engine_state "
                        "= NULL, generation = generation + 1 WHERE tenant_id = $1 AND id = $2 AND "
                        "generation = $3::int AND status IN ") +
                kAliveStatuses,
            {tenant, id, generation, reason});
        if (updated.affected() == 0) {
            const bool before = !tx.exec(
                                       "SELECT 1 FROM approval_timeline WHERE tenant_id = $1 AND "
                                       "instance_id = $2 AND step_key = $3",
                                       {tenant, id, step_key})
                                     .empty();
            return Ending{before, before ? cancelled_descendants(tx, tenant, id)
                                         : std::vector<std::int64_t>{}};
        }
        cancel_open_work(tx, tenant, id);
        Ending ending{true, cancel_descendants(tx, tenant, id)};
        append_timeline(tx, tenant, id, "system", "failed", std::nullopt,
                        json::object{{"reason", reason}}, step_key);
        return ending;
    });
}

namespace {

// An instance locked for an action by hand (withdraw, terminate, a signal).
struct LockedInstance {
    std::string status;
    std::string initiator;
    // Its token is held at a failed task, waiting for a retry.
    bool held_failure = false;
    // The instance whose call activity started it (0: none).
    std::int64_t parent_id = 0;

    // 409 unless the instance is in one of `allowed`.
    void require_status(std::initializer_list<std::string_view> allowed) const {
        if (std::find(allowed.begin(), allowed.end(), status) == allowed.end()) {
            throw core::DomainError::conflict("the instance is " + status);
        }
    }
};

// Locks the instance until `tx` ends; 404 when the tenant has none with this id.
LockedInstance lock_for_hand_action(Transaction& tx,
                                    const core::TenantId& tenant,
                                    std::int64_t id) {
    const auto rows = tx.exec(
        "SELECT status, initiator, coalesce(engine_state -> 'waiting' @> '[{\"kind\": "
        "\"failed\"}]' OR engine_state -> 'waiting' @> '[{\"kind\": \"held\"}]', false) AS "
        "held_failure, coalesce(parent_id, 0) AS parent_id FROM approval_instances WHERE "
        "tenant_id = $1 AND id = $2 FOR UPDATE",
        {tenant, id});
    if (rows.empty()) {
        throw core::DomainError::not_found("instance " + std::to_string(id));
    }
    return {rows.text(0, "status"), rows.text(0, "initiator"), rows.text(0, "held_failure") == "t",
            rows.integer(0, "parent_id")};
}

}  // namespace

std::vector<std::int64_t> InstanceRepository::withdraw(const core::Principal& who,
                                                       std::int64_t id) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_for_hand_action(tx, who.tenant, id);
        if (locked.initiator != who.user_id) {
            throw core::DomainError::forbidden("only the initiator withdraws an instance");
        }
        locked.require_status({"running"});
        if (locked.parent_id != 0) {
            // It has its caller's initiator, and ending it would fail the caller's call
            // activity: it goes with its caller (withdrawn or terminated there).
            throw core::DomainError::conflict("this instance was started by instance " +
                                              std::to_string(locked.parent_id) +
                                              "'s call activity: withdraw that one");
        }
        const bool acted =
            !tx.exec(
                   "SELECT 1 FROM approval_timeline WHERE tenant_id = $1 AND instance_id = $2 AND "
                   "actor NOT IN ('system', $3) LIMIT 1",
                   {who.tenant, id, who.user_id})
                 .empty() ||
            !tx.exec(
                   "SELECT 1 FROM approval_tasks WHERE tenant_id = $1 AND instance_id = $2 AND "
                   "decided_by IS NOT NULL AND decided_by <> $3 LIMIT 1",
                   {who.tenant, id, who.user_id})
                 .empty();
        if (acted) {
            throw core::DomainError::conflict(
                "an approver has acted already: it can no longer be withdrawn");
        }
        auto cancelled = close_by_hand(tx, who.tenant, id, "withdrawn", std::nullopt);
        append_timeline(tx, who.tenant, id, who.user_id, "withdrawn", std::nullopt, json::object{});
        return cancelled;
    });
}

std::vector<std::int64_t> InstanceRepository::terminate(const core::Principal& who,
                                                        std::int64_t id,
                                                        const std::string& reason) {
    return core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        lock_for_hand_action(tx, who.tenant, id).require_status({"running", "suspended", "failed"});
        auto cancelled = close_by_hand(tx, who.tenant, id, "cancelled", "terminated: " + reason);
        append_timeline(tx, who.tenant, id, who.user_id, "terminated", std::nullopt,
                        json::object{{"reason", reason}});
        return cancelled;
    });
}

void InstanceRepository::change_hold(const core::Principal& who,
                                     std::int64_t id,
                                     HoldChange change,
                                     const std::string& reason,
                                     const std::optional<inngest::Event>& wake,
                                     const std::vector<std::chrono::milliseconds>& echoes) {
    core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_for_hand_action(tx, who.tenant, id);
        const char* from = change == HoldChange::kSuspend  ? "running"
                           : change == HoldChange::kResume ? "suspended"
                                                           : "failed";
        if (locked.status != from) {
            throw core::DomainError::conflict("the instance is " + locked.status + ", not " + from);
        }
        if (change == HoldChange::kRetry && !locked.held_failure) {
            // Failed before its token was stored at the task (a moment after the failure), or
            // failed in a way no task retry mends (a broken definition, a run that gave up).
            throw core::DomainError::conflict(
                "no failed service or script task is held for a retry (if it failed just now, try "
                "again in a few seconds)");
        }
        const bool suspend = change == HoldChange::kSuspend;
        tx.exec(
            "UPDATE approval_instances SET status = $3, status_reason = $4, ended_at = NULL WHERE "
            "tenant_id = $1 AND id = $2",
            {who.tenant, id, suspend ? "suspended" : "running",
             suspend ? core::db::Param("suspended: " + reason) : std::nullopt});
        const char* action = suspend                         ? "suspended"
                             : change == HoldChange::kResume ? "resumed"
                                                             : "retried";
        append_timeline(tx, who.tenant, id, who.user_id, action, std::nullopt,
                        json::object{{"reason", reason}});
        if (wake) {
            announce_in(tx, who.tenant, id, *wake, echoes);
        }
    });
}

bool InstanceRepository::mark_failed(const core::TenantId& tenant,
                                     std::int64_t id,
                                     const std::string& node_id,
                                     const std::string& step_key,
                                     const std::string& reason) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        const auto updated = tx.exec(
            "UPDATE approval_instances SET status = 'failed', status_reason = $3, ended_at = "
            "coalesce(ended_at, now()) WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
            {tenant, id, reason});
        append_timeline(tx, tenant, id, "system", "failed", node_id,
                        json::object{{"reason", reason}}, step_key);
        return updated.affected() > 0;
    });
}

std::optional<std::string> InstanceRepository::failure_reason(const core::TenantId& tenant,
                                                              std::int64_t id,
                                                              const std::string& step_key) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT coalesce(detail ->> 'reason', '') AS reason FROM approval_timeline WHERE "
        "tenant_id = $1 AND instance_id = $2 AND step_key = $3 AND action = 'failed'",
        {tenant, id, step_key});
    return rows.empty() ? std::nullopt : std::optional(rows.text(0, "reason"));
}

bool InstanceRepository::save_state(const core::TenantId& tenant,
                                    std::int64_t id,
                                    int generation,
                                    const boost::json::object& state,
                                    const boost::json::array& current_nodes) {
    const auto updated = core::db::exec_once(
        pool_, tenant,
        "UPDATE approval_instances SET engine_state = $4::jsonb, current_nodes = $5::jsonb WHERE "
        "tenant_id = $1 AND id = $2 AND generation = $3::int AND status IN " +
            std::string(kAliveStatuses),
        {tenant, id, generation, state, current_nodes});
    return updated.affected() > 0;
}

std::optional<int> InstanceRepository::next_generation(const core::TenantId& tenant,
                                                       std::int64_t id,
                                                       int from,
                                                       const boost::json::object& state,
                                                       const core::outbox::Announcement& announce) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) -> std::optional<int> {
        const auto rows = tx.exec(
            "UPDATE approval_instances SET generation = generation + 1, engine_state = $4::jsonb "
            "WHERE tenant_id = $1 AND id = $2 AND status IN " +
                std::string(kAliveStatuses) + " AND generation = $3::int RETURNING generation",
            {tenant, id, from, state});
        if (rows.empty()) {
            return std::nullopt;
        }
        const auto generation = static_cast<int>(rows.integer(0, "generation"));
        announce_in(tx, tenant, id, announce(generation), {});
        return generation;
    });
}

boost::json::object InstanceRepository::variables(const core::TenantId& tenant, std::int64_t id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT variables::text AS v FROM approval_instances WHERE tenant_id = $1 AND id = $2",
        {tenant, id});
    return rows.empty() ? json::object{} : core::parse_stored_json(rows.text(0, "v")).as_object();
}

void InstanceRepository::merge(const core::TenantId& tenant,
                               std::int64_t id,
                               const boost::json::object& changes,
                               const std::string& actor,
                               const std::string& source) {
    core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // Under the instance's lock, which every merge takes: a source whose changes are in the
        // history already (a step that merged, then died before its answer was stored) merges
        // nothing again, or mappings over the variables it changed would apply twice.
        tx.exec("SELECT 1 FROM approval_instances WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                {tenant, id});
        if (!tx.exec("SELECT 1 FROM approval_variable_changes WHERE tenant_id = $1 AND "
                     "instance_id = $2 AND source = $3 LIMIT 1",
                     {tenant, id, source})
                 .empty()) {
            return;
        }
        merge_variables(tx, tenant, id, changes, actor, source);
    });
}

boost::json::array InstanceRepository::variable_history(const core::TenantId& tenant,
                                                        std::int64_t id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT name, old_value::text AS old_value, new_value::text AS new_value, actor, source, "
        SQL_UTC_TIME("at") " AS at FROM approval_variable_changes WHERE tenant_id = $1 AND "
        "instance_id = $2 ORDER BY id",
        {tenant, id});
    return core::db::rows_json<VariableChange>(rows);
}

void InstanceRepository::signal(const core::Principal& who,
                                std::int64_t id,
                                const std::string& name,
                                const boost::json::object& data) {
    core::db::transact(pool_, who.tenant, [&](Transaction& tx) {
        const auto locked = lock_for_hand_action(tx, who.tenant, id);
        if (locked.initiator != who.user_id && !who.has_role(core::kAdminRole)) {
            throw core::DomainError::forbidden(
                "signals come from the instance's initiator or a tenant administrator");
        }
        locked.require_status({"running"});
        tx.exec(
            "INSERT INTO approval_signals (tenant_id, instance_id, name, data, sent_by) VALUES "
            "($1, "
            "$2, $3, $4::jsonb, $5)",
            {who.tenant, id, name, data, who.user_id});
        log_event(tx, who.tenant, id, "signal:" + name,
                  json::object{{"by", who.user_id}, {"data", data}});
    });
}

namespace {

// Stores `name` for each of `targets` (the instance rows of the query that found them) and logs
// it on each; a repeat of `source_key` stores nothing. Answers the instances that got it now,
// and with `again` those that hold it from an earlier call with this `source_key` too: a step
// retried after its delivery committed must still wake them.
std::vector<std::int64_t> store_for_each(Transaction& tx,
                                         const core::TenantId& tenant,
                                         const core::db::Rows& targets,
                                         const std::string& name,
                                         const boost::json::object& data,
                                         const std::string& sent_by,
                                         const std::optional<std::string>& source_key,
                                         bool again) {
    std::vector<std::int64_t> reached;
    for (int i = 0; i < targets.size(); ++i) {
        const auto id = targets.integer(i, "id");
        const auto stored = tx.exec(
            "INSERT INTO approval_signals (tenant_id, instance_id, name, data, sent_by, "
            "source_key) VALUES ($1, $2, $3, $4::jsonb, $5, $6) ON CONFLICT DO NOTHING RETURNING "
            "id",
            {tenant, id, name, data, sent_by, source_key});
        if (!stored.empty()) {
            log_event(tx, tenant, id, "signal:" + name,
                      json::object{{"by", sent_by}, {"data", data}});
            reached.push_back(id);
        } else if (again && source_key) {
            reached.push_back(id);  // the only conflict there is: this source key, stored before
        }
    }
    return reached;
}

}  // namespace

InstanceRepository::Delivery InstanceRepository::deliver_message(
    const core::TenantId& tenant,
    const std::string& name,
    const std::string& business_key,
    const boost::json::object& data,
    const std::string& sent_by,
    const std::optional<std::string>& source_key,
    bool again) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        const auto targets = tx.exec(
            std::string("SELECT id FROM approval_instances WHERE tenant_id = $1 AND business_key = "
                        "$2 AND status IN ") +
                kAliveStatuses + " ORDER BY id FOR UPDATE",
            {tenant, business_key});
        Delivery delivery{targets.size(), store_for_each(tx, tenant, targets, kMessagePrefix + name,
                                                         data, sent_by, source_key, again)};
        return delivery;
    });
}

std::vector<std::int64_t> InstanceRepository::broadcast_signal(const core::TenantId& tenant,
                                                               const std::string& name,
                                                               const boost::json::object& data,
                                                               const std::string& sent_by,
                                                               const std::string& source_key) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // Waiting now: the wait the run stored at its last park names the signal.
        const auto targets = tx.exec(
            std::string("SELECT id FROM approval_instances WHERE tenant_id = $1 AND status IN ") +
                kAliveStatuses +
                " AND engine_state -> 'waiting' @> jsonb_build_array(jsonb_build_object('signal', "
                "$2::text)) ORDER BY id FOR UPDATE",
            {tenant, name});
        auto reached = store_for_each(tx, tenant, targets, name, data, sent_by, source_key, true);
        return reached;
    });
}

std::optional<boost::json::object> InstanceRepository::catch_signal(const core::TenantId& tenant,
                                                                    std::int64_t id,
                                                                    const std::string& name,
                                                                    const std::string& by) {
    return core::db::transact(
        pool_, tenant, [&](Transaction& tx) -> std::optional<boost::json::object> {
            // A retried step finds the signal it caught before; otherwise the oldest uncaught one.
            auto earlier = tx.exec(
                "SELECT data::text AS data FROM approval_signals WHERE tenant_id = $1 AND "
                "instance_id = "
                "$2 AND consumed_by = $3",
                {tenant, id, by});
            const auto rows =
                !earlier.empty()
                    ? std::move(earlier)
                    : tx.exec(
                          "UPDATE approval_signals SET consumed_by = $4 WHERE id = (SELECT id FROM "
                          "approval_signals WHERE tenant_id = $1 AND instance_id = $2 AND name = "
                          "$3 "
                          "AND consumed_by IS NULL ORDER BY id LIMIT 1 FOR UPDATE) RETURNING "
                          "data::text AS data",
                          {tenant, id, name, by});
            if (rows.empty()) {
                return std::nullopt;
            }
            auto data = core::parse_stored_json(rows.text(0, "data")).as_object();
            merge_variables(tx, tenant, id, data, "system", "signal:" + name);
            return data;
        });
}

std::vector<std::string> InstanceRepository::add_cc(const core::TenantId& tenant,
                                                    std::int64_t id,
                                                    const std::string& node_id,
                                                    const std::vector<std::string>& users,
                                                    const std::string& step_key) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        std::vector<std::string> added;
        // The step copied them before (its attempt died before their notice): the same ones.
        const auto earlier = tx.exec(
            "SELECT u FROM approval_timeline, jsonb_array_elements_text(detail -> 'users') AS u "
            "WHERE tenant_id = $1 AND instance_id = $2 AND step_key = $3",
            {tenant, id, step_key});
        for (int i = 0; i < earlier.size(); ++i) {
            added.push_back(earlier.text(i, "u"));
        }
        if (!added.empty()) {
            return added;
        }
        for (const auto& user : users) {
            if (!tx.exec(
                       "INSERT INTO approval_cc (tenant_id, instance_id, node_id, user_id) VALUES "
                       "($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
                       {tenant, id, node_id, user})
                     .empty()) {
                added.push_back(user);
            }
        }
        if (!added.empty()) {
            append_timeline(tx, tenant, id, "system", "copied", node_id,
                            json::object{{"users", json::value_from(added)}}, step_key);
        }
        return added;
    });
}

void InstanceRepository::announce(const core::TenantId& tenant,
                                  std::int64_t id,
                                  const inngest::Event& event,
                                  const std::vector<std::chrono::milliseconds>& echoes,
                                  const std::optional<std::string>& once) {
    core::db::transact(pool_, tenant,
                       [&](Transaction& tx) { announce_in(tx, tenant, id, event, echoes, once); });
}

void InstanceRepository::log(const core::TenantId& tenant,
                             std::int64_t id,
                             const std::string& name,
                             const boost::json::object& data,
                             const std::string& once) {
    core::db::transact(pool_, tenant,
                       [&](Transaction& tx) { log_event(tx, tenant, id, name, data, once); });
}

bool InstanceRepository::logged(const core::TenantId& tenant,
                                std::int64_t id,
                                const std::string& once) {
    return !core::db::exec_once(pool_, tenant,
                                "SELECT 1 FROM approval_events WHERE tenant_id = $1 AND "
                                "instance_id = $2 AND step_key = $3",
                                {tenant, id, once})
                .empty();
}

boost::json::array InstanceRepository::events(const core::TenantId& tenant, std::int64_t id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT name, data::text AS data, " SQL_UTC_TIME("at") " AS at FROM approval_events "
        "WHERE tenant_id = $1 AND instance_id = $2 ORDER BY id",
        {tenant, id});
    return core::db::rows_json<LoggedEvent>(rows);
}

boost::json::array InstanceRepository::timeline(const core::TenantId& tenant,
                                                std::int64_t instance_id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT " SQL_UTC_TIME("l.at") " AS at, l.actor, l.action, l.node_id, l.detail::text AS "
        "detail FROM approval_timeline l WHERE l.tenant_id = $1 AND l.instance_id = $2 ORDER BY "
        "l.id",
        {tenant, instance_id});
    return core::db::rows_json<TimelineEntry>(rows);
}

}  // namespace riveredge::approvals
