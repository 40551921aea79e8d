#include "modules/scripts/repository.hpp"

#include "core/db/sql_time.hpp"
#include "core/errors.hpp"
#include "core/text/storable.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::scripts {
namespace {

namespace json = boost::json;
using core::db::Transaction;

constexpr const char* kScriptColumns =
    "s.id, s.name, s.description, s.language, s.enabled, s.latest_version, "
    "s.created_by, " SQL_UTC_TIME("s.created_at") " AS created_at, " SQL_UTC_TIME(
        "s.updated_at") " AS updated_at";

constexpr const char* kVersionColumns =
    "v.version, v.code, v.parameters::text AS parameters, v.timeout_ms, v.memory_limit_mb, "
    "v.created_by, " SQL_UTC_TIME("v.created_at") " AS created_at";

constexpr const char* kRunColumns =
    "r.id, r.script_id, r.version, r.mode, r.trigger, r.status, r.arguments::text AS arguments, "
    "r.result::text AS result, r.console::text AS console, r.console_truncated, r.error::text AS "
    "error, r.duration_ms, r.memory_bytes, r.run_by, " SQL_UTC_TIME("r.created_at") " AS "
    "created_at, " SQL_UTC_TIME("r.started_at") " AS started_at, " SQL_UTC_TIME("r.finished_at")
    " AS finished_at";

// A version as listed: who saved it and when.
struct VersionSummary {
    int version = 0;
    std::string created_by;
    std::string created_at;
};
BOOST_DESCRIBE_STRUCT(VersionSummary, (), (version, created_by, created_at))

}  // namespace

const core::db::ListSpec kScriptList{
    .sort_fields = core::db::sort_fields("s", {"name", "created_at", "updated_at"}),
    .default_sort = "name",
    .tiebreak_sql = "s.id",
    .filters = {{"enabled", "true or false", R"({"type":"boolean"})", "s.enabled = $?::boolean"},
                {"q", "text contained in the name (any case)", "",
                 "strpos(lower(s.name), lower($?)) > 0"}}};

const core::db::ListSpec kRunList{
    .sort_fields = core::db::sort_fields("r", {"created_at", "duration_ms", "status"}),
    .default_sort = "-created_at",
    .tiebreak_sql = "r.id",
    .filters = {{"status", "the run's status",
                 R"({"enum":["queued","running","succeeded","failed","syntax_error","timed_out",)"
                 R"("memory_exceeded","output_exceeded"]})",
                 "r.status = $?"}},
    .default_page_size = 20,
    .max_page_size = 200};

namespace {

void insert_version(Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t script_id,
                    int number,
                    const ScriptVersion& version,
                    const std::string& author) {
    tx.exec(
        "INSERT INTO script_versions (tenant_id, script_id, version, code, parameters, "
        "timeout_ms, memory_limit_mb, created_by) VALUES ($1, $2, $3::int, $4, $5::jsonb, "
        "$6::int, $7::int, $8)",
        {tenant, script_id, number, version.code, version.parameters, version.timeout_ms,
         version.memory_limit_mb, author});
}

}  // namespace

std::optional<std::int64_t> Repository::create(const core::TenantId& tenant,
                                               const std::string& name,
                                               const std::string& description,
                                               bool enabled,
                                               const ScriptVersion& version,
                                               const std::string& author) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) -> std::optional<std::int64_t> {
        const auto rows = tx.exec(
            "INSERT INTO scripts (tenant_id, name, description, enabled, created_by) "
            "VALUES ($1, $2, $3, $4::boolean, $5) ON CONFLICT (tenant_id, name) DO NOTHING "
            "RETURNING id",
            {tenant, name, description, enabled, author});
        if (rows.empty()) {
            return std::nullopt;
        }
        const std::int64_t id = rows.integer(0, "id");
        insert_version(tx, tenant, id, 1, version, author);
        return id;
    });
}

bool Repository::update(const core::TenantId& tenant,
                        std::int64_t script_id,
                        const std::optional<std::string>& name,
                        const std::optional<std::string>& description,
                        const std::optional<bool>& enabled,
                        const std::optional<ScriptVersion>& version,
                        const std::string& author) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) -> bool {
        // The row lock orders concurrent saves, so version numbers never collide.
        const auto rows = tx.exec(
            "UPDATE scripts SET name = coalesce($3, name), description = coalesce($4, "
            "description), "
            "enabled = coalesce($5::boolean, enabled), latest_version = latest_version + $6::int, "
            "updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING latest_version",
            {tenant, script_id, name, description, enabled, version ? "1" : "0"});
        if (rows.empty()) {
            return false;
        }
        if (version) {
            insert_version(tx, tenant, script_id,
                           static_cast<int>(rows.integer(0, "latest_version")), *version, author);
        }
        return true;
    });
}

json::object Script::to_json() const {
    auto out = row.to_json();
    for (auto& [key, value] : latest.to_json()) {
        out[key] = std::move(value);
    }
    return out;
}

std::optional<Script> Repository::find(const core::TenantId& tenant, std::int64_t script_id) {
    const auto rows =
        core::db::exec_once(pool_, tenant,
                            std::string("SELECT ") + kScriptColumns +
                                " FROM scripts s WHERE s.tenant_id = $1 AND s.id = $2",
                            {tenant, script_id});
    auto row = core::db::first_as<ScriptRow>(rows);
    if (!row) {
        return std::nullopt;
    }
    auto latest = version(tenant, script_id, row->latest_version);
    if (!latest) {
        return std::nullopt;
    }
    return Script{std::move(*row), std::move(*latest)};
}

core::db::Page<ScriptRow> Repository::list(const core::TenantId& tenant,
                                           const core::db::ListRequest& page) {
    return core::db::page_of<ScriptRow>(pool_, tenant, kScriptColumns,
                                        "FROM scripts s WHERE s.tenant_id = $1", {tenant}, page);
}

boost::json::array Repository::versions(const core::TenantId& tenant, std::int64_t script_id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT v.version, v.created_by, " SQL_UTC_TIME("v.created_at") " AS created_at FROM "
        "script_versions v WHERE v.tenant_id = $1 AND v.script_id = $2 ORDER BY v.version DESC",
        {tenant, script_id});
    return core::db::rows_json<VersionSummary>(rows);
}

std::optional<ScriptVersionRow> Repository::version(const core::TenantId& tenant,
                                                    std::int64_t script_id,
                                                    int version) {
    return core::db::select_first<ScriptVersionRow>(
        {pool_, tenant}, kVersionColumns,
        "FROM script_versions v WHERE v.tenant_id = $1 AND v.script_id = "
        "$2 AND v.version = $3::int",
        {tenant, script_id, version});
}

std::optional<ScriptVersion> Repository::runnable_version(const core::TenantId& tenant,
                                                          std::int64_t script_id,
                                                          int number) {
    const auto found = version(tenant, script_id, number);
    return found ? std::optional(found->runnable()) : std::nullopt;
}

RecordedRun Repository::create_run(const core::TenantId& tenant,
                                   const NewRun& run,
                                   const std::string& status,
                                   const core::outbox::Announcement& announce) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // The run holding the key may fail between the insert that met it and the look-up
        // (each statement sees what is committed when it starts): the key is free then, and the
        // insert is tried again. Bounded: each round means yet another run took it and failed.
        for (int round = 0; round < 3; ++round) {
            const auto rows = tx.exec(
                "INSERT INTO script_runs (tenant_id, script_id, version, mode, trigger, status, "
                "arguments, run_by, idempotency_key, started_at) VALUES ($1, $2, $3::int, $4, $5, "
                "$6, $7::jsonb, $8, $9, CASE WHEN $6 = 'running' THEN now() END) ON CONFLICT "
                "(tenant_id, run_by, script_id, idempotency_key) WHERE idempotency_key IS NOT "
                "NULL AND status IN ('queued', 'running', 'succeeded') DO NOTHING RETURNING id",
                {tenant, run.script_id, run.version, run.mode, run.trigger, status, run.arguments,
                 run.run_by, run.idempotency_key});
            if (!rows.empty()) {
                const std::int64_t id = rows.integer(0, "id");
                if (announce) {
                    core::outbox::add(tx, tenant, announce(id));
                }
                return RecordedRun{id, true};
            }
            const auto holder = tx.exec(
                "SELECT id FROM script_runs WHERE tenant_id = $1 AND run_by = $2 AND "
                "script_id = $3 AND idempotency_key = $4 AND status IN ('queued', "
                "'running', 'succeeded')",
                {tenant, run.run_by, run.script_id, run.idempotency_key});
            if (!holder.empty()) {
                return RecordedRun{holder.integer(0, "id"), false};
            }
        }
        throw core::DomainError::unavailable(
            "script " + std::to_string(run.script_id) + ": the run holding key '" +
            run.idempotency_key.value_or("") + "' kept changing; retry");
    });
}

std::optional<RunPlan> Repository::run_plan(const core::TenantId& tenant, std::int64_t run_id) {
    const auto stored = run(tenant, run_id);
    if (!stored) {
        return std::nullopt;
    }
    auto version = runnable_version(tenant, stored->script_id, stored->version);
    if (!version) {
        return std::nullopt;
    }
    return RunPlan{std::move(*stored), std::move(*version)};
}

std::unique_ptr<core::db::Connection> Repository::fence_session() {
    auto session = pool_.connect();
    // Held idle while the script runs: the server must not end it for that (the deployment may
    // set idle timeouts for every session; those this server knows are turned off for this one),
    // and its keepalives keep a quiet connection known alive. Named, so it can be found.
    session->exec(
        "SELECT set_config(wanted.name, wanted.value, false) FROM (VALUES "
        "('idle_session_timeout', '0'), ('idle_in_transaction_session_timeout', '0'), "
        "('tcp_keepalives_idle', '10'), ('tcp_keepalives_interval', '5'), "
        "('tcp_keepalives_count', '3'), ('application_name', $1)) AS wanted(name, value) "
        "WHERE wanted.name IN (SELECT name FROM pg_settings)",
        {kFenceApplication});
    return session;
}

bool Repository::try_fence(core::db::Connection& session,
                           const core::TenantId& tenant,
                           std::int64_t run_id) {
    return session
        .exec(
            "SELECT pg_try_advisory_lock(hashtextextended('riveredge.script_run.' || $1 || '.' "
            "|| $2, 0)) AS locked",
            {tenant, run_id})
        .boolean(0, "locked");
}

bool Repository::fence_held(core::db::Connection& session) {
    try {
        return session
                   .exec(
                       "SELECT count(*) AS held FROM pg_locks WHERE locktype = 'advisory' AND "
                       "pid = pg_backend_pid() AND granted")
                   .integer(0, "held") > 0;
    } catch (const core::db::DbError&) {
        return false;  // the connection is gone, and its lock with it
    }
}

Start Repository::start_run(const core::TenantId& tenant,
                            std::int64_t run_id,
                            std::chrono::milliseconds lease) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // Queued, or running with no carrier alive (no lease, or one not renewed in time).
        const auto started = tx.exec(
            "UPDATE script_runs SET status = 'running', started_at = now(), lease_until = "
            "clock_timestamp() + $3::int * interval '1 millisecond' WHERE tenant_id = $1 AND id = "
            "$2 AND (status = 'queued' OR (status = 'running' AND (lease_until IS NULL OR "
            "lease_until < clock_timestamp())))",
            {tenant, run_id, static_cast<std::int64_t>(lease.count())});
        if (started.affected() == 1) {
            return Start::kStarted;
        }
        const auto now = tx.exec("SELECT status FROM script_runs WHERE tenant_id = $1 AND id = $2",
                                 {tenant, run_id});
        const auto status = now.empty() ? std::string() : now.text(0, "status");
        return status == "queued" || status == "running" ? Start::kCarried : Start::kFinished;
    });
}

bool Repository::renew_lease(const core::TenantId& tenant,
                             std::int64_t run_id,
                             std::chrono::milliseconds lease) {
    return core::db::exec_once(pool_, tenant,
                               "UPDATE script_runs SET lease_until = clock_timestamp() + $3::int * "
                               "interval '1 millisecond' WHERE tenant_id = $1 AND id = $2 AND "
                               "status = 'running'",
                               {tenant, run_id, static_cast<std::int64_t>(lease.count())})
               .affected() == 1;
}

void Repository::finish_run(const core::TenantId& tenant,
                            std::int64_t run_id,
                            const boost::json::object& ran) {
    // What the script returned and logged is kept as it was, but for a NUL or bytes that are
    // not UTF-8, which jsonb cannot hold (U+FFFD instead): the run must end, whatever it wrote.
    const auto outcome = core::storable_json(ran).as_object();
    core::db::exec_once(
        pool_, tenant,
        "UPDATE script_runs SET status = $3, result = $4::jsonb, console = $5::jsonb, "
        "console_truncated = $6::boolean, error = $7::jsonb, duration_ms = $8::int, "
        "memory_bytes = $9::bigint, finished_at = now(), lease_until = NULL WHERE tenant_id = $1 "
        "AND id = $2",
        {tenant, run_id, std::string(outcome.at("status").as_string()), outcome.at("result"),
         outcome.at("console"), outcome.at("console_truncated").as_bool(), outcome.at("error"),
         outcome.at("duration_ms"), outcome.at("memory_bytes")});
}

std::optional<RunRow> Repository::run_with_key(const core::TenantId& tenant,
                                               const std::string& run_by,
                                               std::int64_t script_id,
                                               const std::string& key) {
    return core::db::select_first<RunRow>(
        {pool_, tenant}, kRunColumns,
        "FROM script_runs r WHERE r.tenant_id = $1 AND r.run_by = $2 AND r.script_id = $3 AND "
        "r.idempotency_key = $4 AND r.status IN ('queued', 'running', 'succeeded')",
        {tenant, run_by, script_id, key});
}

std::optional<RunRow> Repository::run(const core::TenantId& tenant, std::int64_t run_id) {
    return core::db::select_first<RunRow>({pool_, tenant}, kRunColumns,
                                          "FROM script_runs r WHERE r.tenant_id = $1 AND r.id = $2",
                                          {tenant, run_id});
}

core::db::Page<RunRow> Repository::runs(const core::TenantId& tenant,
                                        std::int64_t script_id,
                                        const core::db::ListRequest& page) {
    return core::db::page_of<RunRow>(
        pool_, tenant, kRunColumns,
        "FROM script_runs r WHERE r.tenant_id = $1 AND r.script_id = $2", {tenant, script_id},
        page);
}

TenantScriptSettings Repository::settings(const core::TenantId& tenant) {
    // No row yet: the defaults.
    return core::db::first_as<TenantScriptSettings>(
               core::db::exec_once(pool_, tenant,
                                   "SELECT array_to_json(http_allow_list)::text AS "
                                   "http_allow_list, max_timeout_ms, max_memory_mb FROM "
                                   "scripts_settings WHERE tenant_id = $1",
                                   {tenant}))
        .value_or(TenantScriptSettings{});
}

void Repository::save_settings(const core::TenantId& tenant, const TenantScriptSettings& settings) {
    const auto hosts = json::value_from(settings.http_allow_list);
    core::db::exec_once(
        pool_, tenant,
        "INSERT INTO scripts_settings (tenant_id, http_allow_list, max_timeout_ms, max_memory_mb) "
        "VALUES ($1, ARRAY(SELECT jsonb_array_elements_text($2::jsonb)), $3::int, $4::int) "
        "ON CONFLICT (tenant_id) DO UPDATE SET http_allow_list = EXCLUDED.http_allow_list, "
        "max_timeout_ms = EXCLUDED.max_timeout_ms, max_memory_mb = EXCLUDED.max_memory_mb, "
        "updated_at = now()",
        {tenant, hosts, settings.max_timeout_ms, settings.max_memory_mb});
}

}  // namespace riveredge::scripts
