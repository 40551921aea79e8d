#pragma once

// The scripts module's tables: scripts, their immutable versions, runs and tenant settings.
// Every call takes the tenant and runs in a transaction bound to it (row-level security).

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"
#include "core/outbox/outbox.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::scripts {

/// What a saved version holds: the code and how it may run.
struct ScriptVersion {
    std::string code;
    boost::json::array parameters;
    int timeout_ms = 5000;
    int memory_limit_mb = 32;
};

/// A script's row, without its code.
struct ScriptRow {
    std::int64_t id = 0;
    std::string name;
    std::string description;
    std::string language;
    bool enabled = true;
    int latest_version = 1;
    std::string created_by;
    std::string created_at;
    std::string updated_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(
    ScriptRow,
    (),
    (id, name, description, language, enabled, latest_version, created_by, created_at, updated_at))

/// A saved, immutable version.
struct ScriptVersionRow {
    int version = 0;
    std::string code;
    boost::json::array parameters;
    int timeout_ms = 0;
    int memory_limit_mb = 0;
    std::string created_by;
    std::string created_at;

    ScriptVersion runnable() const { return {code, parameters, timeout_ms, memory_limit_mb}; }
    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(
    ScriptVersionRow,
    (),
    (version, code, parameters, timeout_ms, memory_limit_mb, created_by, created_at))

/// A script with its latest version, as the API shows it (the version's fields over the
/// script's).
struct Script {
    ScriptRow row;
    ScriptVersionRow latest;

    boost::json::object to_json() const;
};

/// A run: what ran, with what, and how it ended.
struct RunRow {
    std::int64_t id = 0;
    std::int64_t script_id = 0;
    int version = 0;
    std::string mode;
    std::string trigger;
    std::string status;
    boost::json::value arguments;
    std::optional<boost::json::value> result;
    std::optional<boost::json::value> console;
    std::optional<bool> console_truncated;
    std::optional<boost::json::value> error;
    std::optional<std::int64_t> duration_ms;
    std::optional<std::int64_t> memory_bytes;
    std::string run_by;
    std::string created_at;
    std::optional<std::string> started_at;
    std::optional<std::string> finished_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(RunRow,
                      (),
                      (id,
                       script_id,
                       version,
                       mode,
                       trigger,
                       status,
                       arguments,
                       result,
                       console,
                       console_truncated,
                       error,
                       duration_ms,
                       memory_bytes,
                       run_by,
                       created_at,
                       started_at,
                       finished_at))

struct TenantScriptSettings {
    std::vector<std::string> http_allow_list;
    int max_timeout_ms = 30000;
    int max_memory_mb = 64;
};
BOOST_DESCRIBE_STRUCT(TenantScriptSettings, (), (http_allow_list, max_timeout_ms, max_memory_mb))

/// A run as it starts: which version, with what.
struct NewRun {
    std::int64_t script_id = 0;
    int version = 0;
    std::string mode;
    std::string trigger;
    boost::json::value arguments;
    std::string run_by;
    std::optional<std::string> idempotency_key{};
};

/// A recorded run: its id, and whether this call recorded it (false: an earlier run with the
/// same idempotency key).
struct RecordedRun {
    std::int64_t id = 0;
    bool fresh = true;
};

/// What start_run found: the run started by this attempt, finished before, or still carried out
/// by another attempt (its lease is fresh).
enum class Start { kStarted, kFinished, kCarried };

/// The application_name of a run's fence connection (pg_stat_activity).
inline constexpr const char* kFenceApplication = "riveredge-script-fence";

/// What the executor needs to carry out a recorded run.
struct RunPlan {
    RunRow run;
    ScriptVersion version;
};

/// The script list and a script's run history: their sort fields and filters.
extern const core::db::ListSpec kScriptList;
extern const core::db::ListSpec kRunList;

class Repository {
public:
    explicit Repository(core::db::Pool& pool) : pool_(pool) {}

    /// Inserts the script and its version 1; nullopt when the name is taken.
    std::optional<std::int64_t> create(const core::TenantId& tenant,
                                       const std::string& name,
                                       const std::string& description,
                                       bool enabled,
                                       const ScriptVersion& version,
                                       const std::string& author);
    /// Updates name/description/enabled (when given) and, with `version`, saves a new version.
    /// Returns false when the script does not exist; throws DbError 23505 for a taken name.
    bool update(const core::TenantId& tenant,
                std::int64_t script_id,
                const std::optional<std::string>& name,
                const std::optional<std::string>& description,
                const std::optional<bool>& enabled,
                const std::optional<ScriptVersion>& version,
                const std::string& author);

    /// The script with its latest version's code, parameters and limits.
    std::optional<Script> find(const core::TenantId& tenant, std::int64_t script_id);
    /// The page asked for, its filters applied (`kScriptList`).
    core::db::Page<ScriptRow> list(const core::TenantId& tenant, const core::db::ListRequest& page);
    boost::json::array versions(const core::TenantId& tenant, std::int64_t script_id);
    std::optional<ScriptVersionRow> version(const core::TenantId& tenant,
                                            std::int64_t script_id,
                                            int version);
    std::optional<ScriptVersion> runnable_version(const core::TenantId& tenant,
                                                  std::int64_t script_id,
                                                  int version);

    /// Records a run in state `status` (queued or running), with the event `announce` makes of
    /// its id when given, in one transaction; or finds the run holding its idempotency key.
    RecordedRun create_run(const core::TenantId& tenant,
                           const NewRun& run,
                           const std::string& status,
                           const core::outbox::Announcement& announce = {});
    /// The run and the version it names.
    std::optional<RunPlan> run_plan(const core::TenantId& tenant, std::int64_t run_id);
    /// A connection of its own, for a run's fence (`try_fence`): the server's idle timeouts off
    /// for it, keepalives on, named `kFenceApplication`.
    std::unique_ptr<core::db::Connection> fence_session();
    /// Takes the run's fence on `session` when no other attempt holds it: a session lock, held
    /// while the connection lives, so a process that dies lets go of it at once. Only its holder
    /// carries out the run (start_run, the script, finish_run). The connection may also be lost
    /// while its holder still runs the script: the run's lease (start_run) covers that.
    bool try_fence(core::db::Connection& session,
                   const core::TenantId& tenant,
                   std::int64_t run_id);
    /// Whether `session` is alive and still holds its fence.
    bool fence_held(core::db::Connection& session);
    /// Under the run's fence: queued -> running with a lease of `lease` from now (kStarted);
    /// a run found running then was left by an attempt that is gone, unless its lease is still
    /// fresh: its carrier may still run the script, though its fence was lost (kCarried). A run
    /// already finished: kFinished.
    Start start_run(const core::TenantId& tenant,
                    std::int64_t run_id,
                    std::chrono::milliseconds lease);
    /// The carrier's lease on its running run, renewed to `lease` from now; false when the run
    /// is no longer running.
    bool renew_lease(const core::TenantId& tenant,
                     std::int64_t run_id,
                     std::chrono::milliseconds lease);
    /// Ends the run with `outcome` (its lease with it).
    void finish_run(const core::TenantId& tenant,
                    std::int64_t run_id,
                    const boost::json::object& outcome);
    std::optional<RunRow> run(const core::TenantId& tenant, std::int64_t run_id);
    /// The queued, running or succeeded run of the script `run_by` started with `key`.
    std::optional<RunRow> run_with_key(const core::TenantId& tenant,
                                       const std::string& run_by,
                                       std::int64_t script_id,
                                       const std::string& key);
    core::db::Page<RunRow> runs(const core::TenantId& tenant,
                                std::int64_t script_id,
                                const core::db::ListRequest& page);

    TenantScriptSettings settings(const core::TenantId& tenant);
    void save_settings(const core::TenantId& tenant, const TenantScriptSettings& settings);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::scripts
