#include "modules/schedules/repository.hpp"

#include "core/db/row.hpp"
#include "core/db/sql_time.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::schedules {
namespace {

namespace json = boost::json;
using core::db::Param;
using core::db::Rows;
using core::db::Transaction;

#define MS(column) "(extract(epoch from " column ") * 1000)::bigint"
constexpr const char* kScheduleColumns =
    "s.id, s.name, s.code, s.trigger_kind, s.cron, s.time_zone, s.every_seconds, "
    MS("s.anchor_at") " AS anchor_ms, " MS("s.once_at") " AS once_ms, " MS("s.start_at")
    " AS start_ms, " MS("s.end_at") " AS end_ms, s.enabled, s.paused_reason, s.overlap_policy, "
    "s.misfire_policy, s.misfire_window_seconds, s.timeout_seconds, s.retries, s.action::text "
    "AS action, s.version, " MS("s.next_fire_at") " AS next_ms, s.deleted_at IS NOT NULL AS "
    "deleted, s.created_by, " SQL_UTC_TIME("s.created_at") " AS created_at, " SQL_UTC_TIME("s.updated_at")
    " AS updated_at ";
const std::string kScheduleSelect = std::string("SELECT ") + kScheduleColumns + "FROM schedules s ";

constexpr const char* kFireSelect =
    "SELECT f.id, f.schedule_id, " MS("f.scheduled_for") " AS scheduled_ms, f.kind, "
    "f.schedule_version, f.status, f.attempt, " MS("f.started_at") " AS started_ms, "
    "f.claimed_by FROM schedule_fires f ";

constexpr const char* kFireViewColumns =
    "f.id, f.schedule_id, " SQL_UTC_TIME("f.scheduled_for") " AS scheduled_for, f.kind, "
    "f.schedule_version, f.status, f.reason, f.attempt, " SQL_UTC_TIME("f.started_at") " AS "
    "started_at, " SQL_UTC_TIME("f.finished_at") " AS finished_at, (extract(epoch from "
    "(f.finished_at - f.started_at)) * 1000)::bigint AS duration_ms, f.output::text AS output, "
    "f.error";

// A fire as its history shows it.
struct FireView {
    std::int64_t id = 0;
    std::int64_t schedule_id = 0;
    std::string scheduled_for;
    std::string kind;
    int schedule_version = 0;
    std::string status;
    std::optional<std::string> reason;
    int attempt = 0;
    std::optional<std::string> started_at;
    std::optional<std::string> finished_at;
    std::optional<std::int64_t> duration_ms;
    std::optional<json::value> output;
    std::optional<std::string> error;
};
BOOST_DESCRIBE_STRUCT(FireView,
                      (),
                      (id,
                       schedule_id,
                       scheduled_for,
                       kind,
                       schedule_version,
                       status,
                       reason,
                       attempt,
                       started_at,
                       finished_at,
                       duration_ms,
                       output,
                       error))

#undef MS

std::optional<TimePoint> time_of(const Rows& rows, int i, const char* column) {
    if (rows.is_null(i, column)) {
        return std::nullopt;
    }
    return TimePoint{std::chrono::milliseconds(rows.integer(i, column))};
}

std::optional<std::string> text_of(const Rows& rows, int i, const char* column) {
    if (rows.is_null(i, column)) {
        return std::nullopt;
    }
    return rows.text(i, column);
}

json::value time_json(const std::optional<TimePoint>& time) {
    return time ? json::value(format_utc(*time)) : json::value(nullptr);
}

Schedule schedule_of(const Rows& rows, int i) {
    Schedule s;
    s.id = rows.integer(i, "id");
    auto& d = s.definition;
    d.name = rows.text(i, "name");
    d.code = rows.text(i, "code");
    const std::string kind = rows.text(i, "trigger_kind");
    d.trigger.kind = kind == "cron"       ? TriggerKind::kCron
                     : kind == "interval" ? TriggerKind::kInterval
                                          : TriggerKind::kOnce;
    d.trigger.cron = text_of(rows, i, "cron").value_or("");
    d.trigger.time_zone = rows.text(i, "time_zone");
    if (!rows.is_null(i, "every_seconds")) {
        d.trigger.every = std::chrono::seconds(rows.integer(i, "every_seconds"));
    }
    d.trigger.anchor = time_of(rows, i, "anchor_ms").value_or(TimePoint{});
    d.trigger.once_at = time_of(rows, i, "once_ms").value_or(TimePoint{});
    d.trigger.start_at = time_of(rows, i, "start_ms");
    d.trigger.end_at = time_of(rows, i, "end_ms");
    d.overlap_policy = rows.text(i, "overlap_policy");
    d.misfire_policy = rows.text(i, "misfire_policy");
    d.misfire_window_seconds = static_cast<int>(rows.integer(i, "misfire_window_seconds"));
    d.timeout_seconds = static_cast<int>(rows.integer(i, "timeout_seconds"));
    d.retries = static_cast<int>(rows.integer(i, "retries"));
    d.action = json::parse(rows.text(i, "action")).as_object();
    s.enabled = rows.boolean(i, "enabled");
    s.paused_reason = text_of(rows, i, "paused_reason");
    s.version = static_cast<int>(rows.integer(i, "version"));
    s.next_fire_at = time_of(rows, i, "next_ms");
    s.deleted = rows.boolean(i, "deleted");

    s.created_by = rows.text(i, "created_by");
    s.created_at = rows.text(i, "created_at");
    s.updated_at = rows.text(i, "updated_at");
    return s;
}

Fire fire_of(const Rows& rows, int i) {
    return Fire{
        rows.integer(i, "id"),
        rows.integer(i, "schedule_id"),
        *time_of(rows, i, "scheduled_ms"),
        rows.text(i, "kind"),
        static_cast<int>(rows.integer(i, "schedule_version")),
        rows.text(i, "status"),
        static_cast<int>(rows.integer(i, "attempt")),
        time_of(rows, i, "started_ms"),
        rows.is_null(i, "claimed_by") ? std::nullopt : std::optional(rows.text(i, "claimed_by"))};
}

Param optional_time(const std::optional<TimePoint>& time) {
    return time ? Param(format_utc(*time)) : std::nullopt;
}

std::vector<Param> definition_params(const ScheduleDefinition& d) {
    const auto& t = d.trigger;
    const char* kind = t.kind == TriggerKind::kCron       ? "cron"
                       : t.kind == TriggerKind::kInterval ? "interval"
                                                          : "once";
    return {d.name,
            d.code,
            std::string(kind),
            t.kind == TriggerKind::kCron ? Param(t.cron) : std::nullopt,
            t.time_zone,
            t.kind == TriggerKind::kInterval ? Param(t.every.count()) : std::nullopt,
            t.kind == TriggerKind::kInterval ? Param(format_utc(t.anchor)) : std::nullopt,
            t.kind == TriggerKind::kOnce ? Param(format_utc(t.once_at)) : std::nullopt,
            optional_time(t.start_at),
            optional_time(t.end_at),
            d.overlap_policy,
            d.misfire_policy,
            std::to_string(d.misfire_window_seconds),
            std::to_string(d.timeout_seconds),
            std::to_string(d.retries),
            json::serialize(d.action)};
}

// Runs `sql` across tenants, in the scheduler scope the RLS policies allow.
Rows scheduler_query(core::db::Pool& pool,
                     const std::string& sql,
                     const std::vector<Param>& params) {
    return core::db::exec_in_scope(pool, "scheduler", sql, params);
}

}  // namespace

std::optional<std::int64_t> Repository::insert(Transaction& tx,
                                               const core::TenantId& tenant,
                                               const ScheduleDefinition& definition,
                                               bool enabled,
                                               const std::string& author) {
    auto params = definition_params(definition);
    params.insert(params.begin(), tenant.value());
    params.push_back(enabled);
    params.push_back(author);
    const auto rows = tx.exec(
        "INSERT INTO schedules (tenant_id, name, code, trigger_kind, cron, time_zone, "
        "every_seconds, anchor_at, once_at, start_at, end_at, overlap_policy, misfire_policy, "
        "misfire_window_seconds, timeout_seconds, retries, action, enabled, created_by) VALUES "
        "($1, $2, $3, $4, $5, $6, $7::bigint, $8::timestamptz, $9::timestamptz, $10::timestamptz, "
        "$11::timestamptz, $12, $13, $14::int, $15::int, $16::int, $17::jsonb, $18::boolean, $19) "
        "ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO NOTHING RETURNING id",
        params);
    if (rows.empty()) {
        return std::nullopt;
    }
    return rows.integer(0, "id");
}

bool Repository::replace(Transaction& tx,
                         const core::TenantId& tenant,
                         std::int64_t id,
                         const ScheduleDefinition& definition) {
    auto params = definition_params(definition);
    params.insert(params.begin(), std::to_string(id));
    params.insert(params.begin(), tenant.value());
    const auto rows = tx.exec(
        "UPDATE schedules SET name = $3, code = $4, trigger_kind = $5, cron = $6, time_zone = $7, "
        "every_seconds = $8::bigint, anchor_at = $9::timestamptz, once_at = $10::timestamptz, "
        "start_at = $11::timestamptz, end_at = $12::timestamptz, overlap_policy = $13, "
        "misfire_policy = $14, misfire_window_seconds = $15::int, timeout_seconds = $16::int, "
        "retries = $17::int, action = $18::jsonb, version = version + 1, updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        params);
    return rows.affected() == 1;
}

void Repository::set_enabled(Transaction& tx,
                             const core::TenantId& tenant,
                             std::int64_t id,
                             bool enabled,
                             const std::optional<std::string>& reason) {
    tx.exec(
        "UPDATE schedules SET enabled = $3::boolean, paused_reason = $4, version = version + 1, "
        "updated_at = now() WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        {tenant, id, enabled, reason});
}

void Repository::mark_deleted(Transaction& tx, const core::TenantId& tenant, std::int64_t id) {
    tx.exec(
        "UPDATE schedules SET deleted_at = now(), next_fire_at = NULL, version = version + 1, "
        "updated_at = now() WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        {tenant, id});
    tx.exec(
        "UPDATE schedule_fires SET status = 'cancelled', reason = 'schedule deleted' "
        "WHERE tenant_id = $1 AND schedule_id = $2 AND status IN ('armed', 'waiting')",
        {tenant, id});
}

std::optional<Schedule> Repository::find(Transaction& tx,
                                         const core::TenantId& tenant,
                                         std::int64_t id,
                                         bool lock,
                                         bool include_deleted) {
    const auto rows = tx.exec(
        std::string(kScheduleSelect) + "WHERE s.tenant_id = $1 AND s.id = $2" +
            (include_deleted ? "" : " AND s.deleted_at IS NULL") + (lock ? " FOR UPDATE" : ""),
        {tenant, id});
    if (rows.empty()) {
        return std::nullopt;
    }
    return schedule_of(rows, 0);
}

core::db::Page<Schedule> Repository::list(const core::TenantId& tenant,
                                          const core::db::ListRequest& page) {
    const auto found = core::db::select_page(
        pool_, tenant, kScheduleColumns,
        "FROM schedules s WHERE s.tenant_id = $1 AND s.deleted_at IS NULL", {tenant}, page);
    core::db::Page<Schedule> out{{}, found.total};
    for (int i = 0; i < found.rows.size(); ++i) {
        out.items.push_back(schedule_of(found.rows, i));
    }
    return out;
}

void Repository::arm(Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t id,
                     const std::optional<TimePoint>& next,
                     int version) {
    tx.exec("UPDATE schedules SET next_fire_at = $3::timestamptz WHERE tenant_id = $1 AND id = $2",
            {tenant, id, optional_time(next)});
    // Armed fires at other times belong to an older timing: they will not run.
    tx.exec(
        "UPDATE schedule_fires SET status = 'cancelled', reason = 'rescheduled' WHERE tenant_id = "
        "$1 AND schedule_id = $2 AND kind = 'scheduled' AND status = 'armed' AND "
        "($3::timestamptz IS NULL OR scheduled_for <> $3::timestamptz)",
        {tenant, id, optional_time(next)});
    if (next) {
        tx.exec(
            "INSERT INTO schedule_fires (tenant_id, schedule_id, scheduled_for, kind, "
            "schedule_version) VALUES ($1, $2, $3::timestamptz, 'scheduled', $4::int) "
            "ON CONFLICT (schedule_id, scheduled_for, kind) DO UPDATE SET schedule_version = "
            "$4::int, status = CASE WHEN schedule_fires.status = 'cancelled' THEN 'armed' ELSE "
            "schedule_fires.status END, reason = NULL",
            {tenant, id, format_utc(*next), version});
    }
}

std::optional<Fire> Repository::fire(Transaction& tx,
                                     const core::TenantId& tenant,
                                     std::int64_t schedule_id,
                                     TimePoint scheduled_for,
                                     const std::string& kind,
                                     bool lock) {
    const auto rows = tx.exec(std::string(kFireSelect) +
                                  "WHERE f.tenant_id = $1 AND f.schedule_id = $2 AND "
                                  "f.scheduled_for = $3::timestamptz AND f.kind = $4" +
                                  (lock ? " FOR UPDATE" : ""),
                              {tenant, schedule_id, format_utc(scheduled_for), kind});
    if (rows.empty()) {
        return std::nullopt;
    }
    return fire_of(rows, 0);
}

std::optional<Fire> Repository::fire_by_id(Transaction& tx,
                                           const core::TenantId& tenant,
                                           std::int64_t fire_id,
                                           bool lock) {
    const auto rows = tx.exec(std::string(kFireSelect) + "WHERE f.tenant_id = $1 AND f.id = $2" +
                                  (lock ? " FOR UPDATE" : ""),
                              {tenant, fire_id});
    if (rows.empty()) {
        return std::nullopt;
    }
    return fire_of(rows, 0);
}

std::int64_t Repository::insert_manual_fire(Transaction& tx,
                                            const core::TenantId& tenant,
                                            std::int64_t schedule_id,
                                            TimePoint at,
                                            int version) {
    return tx
        .exec(
            "INSERT INTO schedule_fires (tenant_id, schedule_id, scheduled_for, kind, "
            "schedule_version, status) VALUES ($1, $2, $3::timestamptz, 'manual', $4::int, "
            "'armed') RETURNING id",
            {tenant, schedule_id, format_utc(at), version})
        .integer(0, "id");
}

void Repository::set_fire_status(Transaction& tx,
                                 const core::TenantId& tenant,
                                 std::int64_t fire_id,
                                 const std::string& status,
                                 const std::optional<std::string>& reason,
                                 const std::optional<TimePoint>& now) {
    tx.exec(
        "UPDATE schedule_fires SET status = $3, reason = $4, finished_at = "
        "coalesce($5::timestamptz, "
        "finished_at) WHERE tenant_id = $1 AND id = $2",
        {tenant, fire_id, status, reason, optional_time(now)});
}

void Repository::start_fire(Transaction& tx,
                            const core::TenantId& tenant,
                            std::int64_t fire_id,
                            TimePoint now) {
    tx.exec(
        "UPDATE schedule_fires SET status = 'running', started_at = $3::timestamptz, attempt = 1 "
        "WHERE tenant_id = $1 AND id = $2",
        {tenant, fire_id, format_utc(now)});
}

void Repository::claim_fire(Transaction& tx,
                            const core::TenantId& tenant,
                            std::int64_t fire_id,
                            const std::string& run_id) {
    tx.exec("UPDATE schedule_fires SET claimed_by = $3 WHERE tenant_id = $1 AND id = $2",
            {tenant, fire_id, run_id});
}

void Repository::finish_fire(Transaction& tx,
                             const core::TenantId& tenant,
                             std::int64_t fire_id,
                             const FireOutcome& outcome,
                             TimePoint now) {
    tx.exec(
        "UPDATE schedule_fires SET status = $3, output = $4::jsonb, error = $5, attempt = "
        "$6::int, finished_at = $7::timestamptz WHERE tenant_id = $1 AND id = $2",
        {tenant, fire_id, outcome.status, outcome.output, outcome.error, outcome.attempt,
         format_utc(now)});
}

int Repository::running_fires(Transaction& tx,
                              const core::TenantId& tenant,
                              std::int64_t schedule_id,
                              std::int64_t except_fire,
                              TimePoint now,
                              int timeout_seconds) {
    return static_cast<int>(
        tx.exec("SELECT count(*) AS n FROM schedule_fires WHERE tenant_id = $1 AND schedule_id = "
                "$2 AND id <> $3 AND status = 'running' AND started_at > $4::timestamptz - "
                "make_interval(secs => $5::int)",
                {tenant, schedule_id, except_fire, format_utc(now), timeout_seconds})
            .integer(0, "n"));
}

int Repository::waiting_fires(Transaction& tx,
                              const core::TenantId& tenant,
                              std::int64_t schedule_id,
                              std::int64_t except_fire) {
    return static_cast<int>(
        tx.exec("SELECT count(*) AS n FROM schedule_fires WHERE tenant_id = $1 AND schedule_id = "
                "$2 AND id <> $3 AND status = 'waiting'",
                {tenant, schedule_id, except_fire})
            .integer(0, "n"));
}

core::db::JsonPage Repository::fires(const core::TenantId& tenant,
                                     std::int64_t schedule_id,
                                     const core::db::ListRequest& page) {
    return core::db::json_page(core::db::page_of<FireView>(
        pool_, tenant, kFireViewColumns,
        "FROM schedule_fires f WHERE f.tenant_id = $1 AND f.schedule_id = $2",
        {tenant, schedule_id}, page));
}

const core::db::ListSpec kScheduleList{
    .sort_fields =
        core::db::sort_fields("s", {"code", "name", "next_fire_at", "created_at", "updated_at"}),
    .default_sort = "code",
    .tiebreak_sql = "s.id",
    .filters = {{"enabled", "true or false", R"({"type":"boolean"})", "s.enabled = $?::boolean"},
                {"q", "text contained in the name or the code (any case)", "",
                 "strpos(lower(s.name), lower($?)) > 0 OR strpos(lower(s.code), lower($?)) > 0"}}};

const core::db::ListSpec kFireList{
    .sort_fields = core::db::sort_fields("f", {"scheduled_for", "started_at", "status"}),
    .default_sort = "-scheduled_for",
    .tiebreak_sql = "f.id",
    .filters = {
        {"status", "the fire's status",
         R"({"enum":["armed","waiting","running","succeeded","failed","skipped","missed",)"
         R"("cancelled"]})",
         "f.status = $?"},
        {"since", "scheduled at or after this RFC 3339 time",
         R"({"type":"string","format":"date-time"})", "f.scheduled_for >= $?::timestamptz"},
        {"until", "scheduled before this RFC 3339 time",
         R"({"type":"string","format":"date-time"})", "f.scheduled_for < $?::timestamptz"}}};

namespace {

// Live, enabled schedules of every tenant (the scheduler scope) whose next fire meets `when`
// (a condition on next_fire_at against $1), soonest first.
std::vector<DueSchedule> live_schedules(core::db::Pool& pool, const char* when, TimePoint at) {
    const auto rows = scheduler_query(
        pool,
        std::string("SELECT tenant_id, id, (extract(epoch from next_fire_at) * 1000)::bigint AS "
                    "next_ms, version FROM schedules WHERE deleted_at IS NULL AND enabled AND ") +
            when,
        {format_utc(at)});
    std::vector<DueSchedule> out;
    for (int i = 0; i < rows.size(); ++i) {
        out.push_back({rows.text(i, "tenant_id"), rows.integer(i, "id"),
                       TimePoint{std::chrono::milliseconds(rows.integer(i, "next_ms"))},
                       static_cast<int>(rows.integer(i, "version"))});
    }
    return out;
}

}  // namespace

std::vector<DueSchedule> Repository::due_before(TimePoint before) {
    return live_schedules(pool_, "next_fire_at < $1::timestamptz ORDER BY next_fire_at LIMIT 1000",
                          before);
}

std::vector<DueSchedule> Repository::armed_from(TimePoint from) {
    return live_schedules(pool_, "next_fire_at >= $1::timestamptz ORDER BY next_fire_at", from);
}

std::int64_t Repository::prune_fires(TimePoint before) {
    return scheduler_query(pool_,
                           "DELETE FROM schedule_fires WHERE finished_at < $1::timestamptz AND "
                           "status IN ('succeeded', 'failed', 'skipped', 'missed', 'cancelled')",
                           {format_utc(before)})
        .affected();
}

json::object Schedule::to_json() const {
    const auto& d = definition;
    const char* kind = d.trigger.kind == TriggerKind::kCron       ? "cron"
                       : d.trigger.kind == TriggerKind::kInterval ? "interval"
                                                                  : "once";
    json::object trigger{{"kind", kind}, {"time_zone", d.trigger.time_zone}};
    if (d.trigger.kind == TriggerKind::kCron) {
        trigger["cron"] = d.trigger.cron;
    } else if (d.trigger.kind == TriggerKind::kInterval) {
        trigger["every_seconds"] = d.trigger.every.count();
        trigger["anchor_at"] = format_utc(d.trigger.anchor);
    } else {
        trigger["at"] = format_utc(d.trigger.once_at);
    }
    trigger["start_at"] = time_json(d.trigger.start_at);
    trigger["end_at"] = time_json(d.trigger.end_at);
    return json::object{
        {"id", id},
        {"name", d.name},
        {"code", d.code},
        {"trigger", std::move(trigger)},
        {"enabled", enabled},
        {"paused_reason", paused_reason ? json::value(*paused_reason) : json::value(nullptr)},
        {"overlap_policy", d.overlap_policy},
        {"misfire_policy", d.misfire_policy},
        {"misfire_window_seconds", d.misfire_window_seconds},
        {"timeout_seconds", d.timeout_seconds},
        {"retries", d.retries},
        {"action", d.action},
        {"version", version},
        {"next_fire_at", time_json(next_fire_at)},
        {"next_fire_local", next_fire_at
                                ? json::value(format_local(*next_fire_at, d.trigger.time_zone))
                                : json::value(nullptr)},
        {"created_by", created_by},
        {"created_at", created_at},
        {"updated_at", updated_at}};
}

}  // namespace riveredge::schedules
