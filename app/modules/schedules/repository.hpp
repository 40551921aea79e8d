#pragma once

// The schedules module's tables. Functions that take a Transaction compose into one unit of work
// (the service decides, in one transaction, what a fire or an edit changes).

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "modules/schedules/schedule_math.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::schedules {

/// A schedule's definition, as stored and as the API gives it.
struct ScheduleDefinition {
    std::string name;
    std::string code;
    Trigger trigger;
    std::string overlap_policy = "skip";
    std::string misfire_policy = "skip";
    int misfire_window_seconds = 3600;
    int timeout_seconds = 300;
    int retries = 0;
    boost::json::object action;
};

struct Schedule {
    std::int64_t id = 0;
    ScheduleDefinition definition;
    bool enabled = true;
    std::optional<std::string> paused_reason;
    int version = 1;
    std::optional<TimePoint> next_fire_at;
    bool deleted = false;
    std::string created_by;
    std::string created_at;
    std::string updated_at;

    /// The API's view.
    boost::json::object to_json() const;
};

struct Fire {
    std::int64_t id = 0;
    std::int64_t schedule_id = 0;
    TimePoint scheduled_for{};
    std::string kind;
    int schedule_version = 0;
    std::string status;
    int attempt = 0;
    std::optional<TimePoint> started_at;
    /// The run that claimed it (to run or to wait).
    std::optional<std::string> claimed_by;
};

/// How an attempt of a fire ended: its status (`running` while another attempt follows), the
/// action's output and error, and the fire's attempt from now on (the one that runs next while
/// it is running).
struct FireOutcome {
    std::string status;
    boost::json::value output;
    std::optional<std::string> error;
    int attempt = 0;
};

/// A schedule the reconciler looks at: overdue (its armed fire should have started) or armed.
struct DueSchedule {
    std::string tenant_id;
    std::int64_t schedule_id = 0;
    TimePoint next_fire_at{};
    int version = 0;
};

/// The schedule list and a schedule's fire history: their sort fields and filters.
extern const core::db::ListSpec kScheduleList;
extern const core::db::ListSpec kFireList;

class Repository {
public:
    explicit Repository(core::db::Pool& pool) : pool_(pool) {}

    core::db::Pool& pool() noexcept { return pool_; }

    /// Inserts; nullopt when the code is taken by a live schedule of the tenant.
    std::optional<std::int64_t> insert(core::db::Transaction& tx,
                                       const core::TenantId& tenant,
                                       const ScheduleDefinition& definition,
                                       bool enabled,
                                       const std::string& author);
    /// Replaces the definition and bumps the version; false when missing or deleted.
    bool replace(core::db::Transaction& tx,
                 const core::TenantId& tenant,
                 std::int64_t id,
                 const ScheduleDefinition& definition);
    /// Sets enabled/paused_reason and bumps the version.
    void set_enabled(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t id,
                     bool enabled,
                     const std::optional<std::string>& reason);
    void mark_deleted(core::db::Transaction& tx, const core::TenantId& tenant, std::int64_t id);

    /// The live schedule (FOR UPDATE when `lock`); deleted ones only with `include_deleted`.
    std::optional<Schedule> find(core::db::Transaction& tx,
                                 const core::TenantId& tenant,
                                 std::int64_t id,
                                 bool lock,
                                 bool include_deleted = false);
    /// The page asked for, its filters applied (`kScheduleList`).
    core::db::Page<Schedule> list(const core::TenantId& tenant, const core::db::ListRequest& page);

    /// Sets next_fire_at and, when there is one, upserts its armed fire row for the current
    /// version (an edit that keeps the time re-owns the row). Cancels other armed fires.
    void arm(core::db::Transaction& tx,
             const core::TenantId& tenant,
             std::int64_t id,
             const std::optional<TimePoint>& next,
             int version);

    std::optional<Fire> fire(core::db::Transaction& tx,
                             const core::TenantId& tenant,
                             std::int64_t schedule_id,
                             TimePoint scheduled_for,
                             const std::string& kind,
                             bool lock);
    std::optional<Fire> fire_by_id(core::db::Transaction& tx,
                                   const core::TenantId& tenant,
                                   std::int64_t fire_id,
                                   bool lock);
    /// A manual fire (run now), running at once.
    std::int64_t insert_manual_fire(core::db::Transaction& tx,
                                    const core::TenantId& tenant,
                                    std::int64_t schedule_id,
                                    TimePoint at,
                                    int version);
    void set_fire_status(core::db::Transaction& tx,
                         const core::TenantId& tenant,
                         std::int64_t fire_id,
                         const std::string& status,
                         const std::optional<std::string>& reason,
                         const std::optional<TimePoint>& now);
    void start_fire(core::db::Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t fire_id,
                    TimePoint now);
    /// Records the run that claimed the fire.
    void claim_fire(core::db::Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t fire_id,
                    const std::string& run_id);
    /// Records how an attempt ended (finished_at `now`).
    void finish_fire(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t fire_id,
                     const FireOutcome& outcome,
                     TimePoint now);
    /// Fires of the schedule that hold the overlap lease: running and started within timeout.
    int running_fires(core::db::Transaction& tx,
                      const core::TenantId& tenant,
                      std::int64_t schedule_id,
                      std::int64_t except_fire,
                      TimePoint now,
                      int timeout_seconds);
    int waiting_fires(core::db::Transaction& tx,
                      const core::TenantId& tenant,
                      std::int64_t schedule_id,
                      std::int64_t except_fire);
    core::db::JsonPage fires(const core::TenantId& tenant,
                             std::int64_t schedule_id,
                             const core::db::ListRequest& page);

    /// Across tenants (scheduler scope): live, enabled schedules whose next fire is before
    /// `before`.
    std::vector<DueSchedule> due_before(TimePoint before);
    /// Across tenants: every live, enabled schedule whose armed next fire is at or after `from`.
    std::vector<DueSchedule> armed_from(TimePoint from);
    /// Across tenants: deletes finished fires older than `before`; returns how many.
    std::int64_t prune_fires(TimePoint before);

private:
    core::db::Pool& pool_;
};

/// Milliseconds since the epoch as a timestamptz parameter.

}  // namespace riveredge::schedules
