#pragma once

// Business rules of scheduled tasks. The database holds the truth; each fire is an Inngest event
// with a future `ts` and a deduplicating id, the fire function re-checks the row before it acts,
// and a once-a-minute reconciler re-arms what an outage or a restart lost (see README.md).

#include "core/auth/principal.hpp"
#include "core/http/outbound_policy.hpp"
#include "core/module.hpp"
#include "modules/schedules/repository.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <functional>

namespace inngest {
class Client;
}

namespace riveredge::schedules {

/// The event each fire is: data {tenant_id, schedule_id, scheduled_for (ms), version, kind}.
inline constexpr const char* kFireDue = "schedules/fire.due";

struct Collaborators {
    core::Notifier& notifier;
    core::StoredScripts& scripts;
    inngest::Client& inngest;
    std::function<std::chrono::system_clock::time_point()> now;
    /// Where HTTP actions may go (the deployment's policy).
    const core::OutboundPolicy& outbound;
};

/// The most overlap checks a queued fire's run makes (two steps each, well under a run's limit).
constexpr int kOverlapChecks = 400;
/// How often a queued fire looks again: every 5 s, or less often when the schedule's timeout is
/// long, so that the checks outlast it.
std::chrono::milliseconds overlap_check_every(const ScheduleDefinition& definition);

class Service {
public:
    Service(Repository& repository, Collaborators collaborators)
        : repository_(repository), with_(std::move(collaborators)) {}

    Schedule create(const core::Principal& author, const boost::json::object& request);
    /// Replaces the definition: a new version, re-armed; fires armed before become no-ops.
    Schedule update(const core::Principal& author,
                    std::int64_t id,
                    const boost::json::object& request);
    void remove(const core::Principal& who, std::int64_t id);
    Schedule get(const core::TenantId& tenant, std::int64_t id);
    Schedule pause(const core::Principal& who, std::int64_t id, const boost::json::object& request);
    Schedule resume(const core::Principal& who, std::int64_t id);
    /// A manual fire now, beside the schedule's own timing.
    boost::json::object run_now(const core::Principal& who, std::int64_t id);
    /// The next `count` fire times of a stored schedule, or of a trigger not saved yet.
    boost::json::object preview(const core::TenantId& tenant, std::int64_t id, int count);
    boost::json::object preview_trigger(const boost::json::object& request, int count);

    // The fire function's steps.
    /// Decides whether a delivered fire runs: {decision: run|wait|skip, fire_id, reason, and
    /// for a wait check_every_ms}. The fire is claimed for `run_id`: the same run claiming it
    /// again (its answer was lost) gets the same decision.
    boost::json::object claim(const core::TenantId& tenant,
                              std::int64_t schedule_id,
                              std::int64_t scheduled_for_ms,
                              int version,
                              const std::string& kind,
                              const std::string& run_id);
    /// For a queued fire: {decision: run|wait|skip}. The `last` check skips the fire when it
    /// still cannot run, so no fire stays waiting after its run gave up.
    boost::json::object retry_waiting(const core::TenantId& tenant,
                                      std::int64_t fire_id,
                                      const std::string& run_id,
                                      bool last);
    /// Runs the action; throws to have Inngest retry while attempts remain (the next attempt's
    /// number saved first). Its end is returned, not saved, for the step to memoize:
    /// {fire_id, outcome: succeeded|failed, output, error, attempt}, which record_outcome saves
    /// in a step of its own, whose retries never run the action again. A fire no longer running
    /// is not acted on: {fire_id, status}, nothing to save.
    boost::json::object perform(const core::TenantId& tenant,
                                std::int64_t fire_id,
                                int attempt,
                                int max_attempts);
    /// Saves the end `perform` returned, when the fire is still running (a save that committed
    /// before its answer was lost is not made twice). {fire_id, status}.
    boost::json::object record_outcome(const core::TenantId& tenant,
                                       const boost::json::object& outcome);
    /// The fire function's on_failure: the fire of this delivery (schedule, time, kind) that run
    /// `run_id` claimed ends failed with `why` when it is still running or waiting, which a step
    /// that died through its retries (the database gone, say) left it. {fire_id, failed}.
    boost::json::object fail_unfinished(const core::TenantId& tenant,
                                        std::int64_t schedule_id,
                                        std::int64_t scheduled_for_ms,
                                        const std::string& kind,
                                        const std::string& run_id,
                                        const std::string& why);

    /// Re-arms overdue schedules per their misfire policy (and, on its first call in a process,
    /// re-sends every armed fire, which restores what an executor restart lost).
    boost::json::object reconcile();
    /// Deletes finished fires older than `keep`.
    boost::json::object prune(std::chrono::hours keep);

    Repository& repository() noexcept { return repository_; }

private:
    ScheduleDefinition definition_from(const core::TenantId& tenant,
                                       const boost::json::object& request) const;
    /// The schedule, locked for update when `lock`; 404 when the tenant has none with this id.
    Schedule must_find(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       std::int64_t id,
                       bool lock);
    /// {time_zone, fires: [{utc, local}]}: the trigger's next `count` fire times.
    boost::json::object fires_of(const Trigger& trigger, int count);
    TimePoint now() const;
    /// Arms a fire: its event, delayed to `when`, goes into the outbox inside `tx`, so it is
    /// sent once the schedule's row commits, and only then.
    void arm_fire(core::db::Transaction& tx,
                  const core::TenantId& tenant,
                  std::int64_t schedule_id,
                  TimePoint when,
                  int version,
                  const std::string& kind,
                  const std::string& id_suffix = {});
    /// Sets the schedule's next fire time (none: disarmed) and arms that fire.
    void rearm(core::db::Transaction& tx,
               const core::TenantId& tenant,
               std::int64_t schedule_id,
               const std::optional<TimePoint>& next,
               int version);
    /// Sends an armed fire's event again, straight to Inngest (the reconciler's repair for an
    /// Inngest that lost it); false (logged) when Inngest is unreachable.
    bool resend_fire(const core::TenantId& tenant,
                     std::int64_t schedule_id,
                     TimePoint when,
                     int version);
    boost::json::object run_action(const core::TenantId& tenant,
                                   std::int64_t schedule_id,
                                   std::int64_t fire_id,
                                   int attempt,
                                   const ScheduleDefinition& definition);

    Repository& repository_;
    Collaborators with_;
    std::atomic<bool> rearmed_after_start_{false};
};

}  // namespace riveredge::schedules
