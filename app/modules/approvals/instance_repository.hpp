#pragma once

// Running approval instances: the instance rows, their stored interpreter state, variables,
// signals and CC (tasks are in task_repository; the timeline writes in history).

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"
#include "core/outbox/outbox.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::approvals {

/// An instance: where it runs, on what, and the interpreter's stored state (its own, never
/// shown to callers).
struct InstanceRow {
    std::int64_t id = 0;
    std::int64_t definition_id = 0;
    int version = 0;
    std::optional<std::string> business_key;
    std::string status;
    boost::json::object variables;
    std::string initiator;
    boost::json::array current_nodes;
    std::int64_t generation = 0;
    std::optional<boost::json::value> engine_state;
    std::optional<std::string> status_reason;
    std::optional<double> duration_seconds;
    std::string started_at;
    std::optional<std::string> ended_at;
    /// The instance whose call activity started this one.
    std::optional<std::int64_t> parent_id;

    /// As the API shows it: without the interpreter's state.
    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(InstanceRow,
                      (),
                      (id,
                       definition_id,
                       version,
                       business_key,
                       status,
                       variables,
                       initiator,
                       current_nodes,
                       generation,
                       engine_state,
                       status_reason,
                       duration_seconds,
                       started_at,
                       ended_at,
                       parent_id))

/// The instance list's sort fields and filters.
extern const core::db::ListSpec kInstanceList;

/// What an administrator does to a running or held instance.
enum class HoldChange { kSuspend, kResume, kRetry };

/// Messages are kept with signals (approval_signals), named with this prefix; a signal's name
/// may not start with it (only administrators send messages).
inline constexpr const char* kMessagePrefix = "message:";

/// Statuses in which an instance is alive: its run goes on (running) or holds (suspended;
/// failed at a task, waiting for a retry). SQL list, for the statements that accept them.
inline constexpr const char* kAliveStatuses = "('running', 'suspended', 'failed')";

class InstanceRepository {
public:
    explicit InstanceRepository(core::db::Pool& pool) : pool_(pool) {}

    /// Where a child instance comes from: its parent and the call activity's step.
    struct Parent {
        std::int64_t id = 0;
        std::string step;
    };
    /// An instance to start: a published version of a definition, with its variables.
    struct NewInstance {
        std::int64_t definition_id = 0;
        int version = 0;
        std::optional<std::string> business_key;
        boost::json::object variables;
        std::string initiator;
        std::optional<Parent> parent;
    };
    /// Creates the instance, its timeline's first entry and `announce`'s event (the outbox)
    /// together. nullopt when the business key is taken for this definition, or (for a child)
    /// when the parent's step started its child already.
    std::optional<std::int64_t> create(const core::TenantId& tenant,
                                       const NewInstance& instance,
                                       const core::outbox::Announcement& announce);
    /// The child instance a parent's step started, if any.
    std::optional<InstanceRow> child_of(const core::TenantId& tenant,
                                        std::int64_t parent_id,
                                        const std::string& step);

    std::optional<InstanceRow> find(const core::TenantId& tenant, std::int64_t id);
    /// True when `who` initiated, was assigned, decided, delegated or was CC'd on instance `id`.
    bool participates(const core::Principal& who, std::int64_t id);
    /// What the caller may see (null: any); the declared filters (`kInstanceList`) come in the
    /// request.
    struct InstanceFilter {
        core::db::Param initiator;
        /// Only instances this user takes part in (non-administrators); all when null.
        std::optional<core::Principal> participant;
        /// Only instances copied (CC) to this user.
        core::db::Param copied_to;
    };
    core::db::Page<InstanceRow> list(const core::TenantId& tenant,
                                     const InstanceFilter& filter,
                                     const core::db::ListRequest& page);
    /// Copies the instance to `users` at `node_id` (once each); returns those added now, or
    /// those the step `step_key` added before when it runs again.
    std::vector<std::string> add_cc(const core::TenantId& tenant,
                                    std::int64_t id,
                                    const std::string& node_id,
                                    const std::vector<std::string>& users,
                                    const std::string& step_key);
    /// What finish did.
    struct Ending {
        /// This call ended the instance, or an earlier attempt of the step whose key it carries
        /// did; false when it had ended otherwise (an administrator terminated it, say).
        bool ended = false;
        /// The descendants it cancelled, whose runs are to be woken (on a retry of the step,
        /// those its earlier attempt cancelled).
        std::vector<std::int64_t> cancelled;
    };
    /// Ends a running instance (its open tasks and visits close, and any child instances its
    /// call activities started) with a reason; with `step_key`, records it on the timeline
    /// once, when it ended it. `held_too` ends a suspended or failed one as well (a child whose
    /// caller's sub-process was interrupted).
    Ending finish(const core::TenantId& tenant,
                  std::int64_t id,
                  const std::string& status,
                  const std::optional<std::string>& node_id,
                  const std::optional<std::string>& step_key,
                  const std::optional<std::string>& reason = std::nullopt,
                  bool held_too = false);
    /// The run of `generation` failed for good (its on_failure): an instance that run still
    /// owns and that is alive (running, or held) ends `failed` with `reason`, as finish ends
    /// it, and leaves no run's state behind (a retry is refused: no run holds its token). The
    /// timeline records it once under `step_key`; `ended` also when an earlier call did.
    Ending fail_run(const core::TenantId& tenant,
                    std::int64_t id,
                    int generation,
                    const std::string& step_key,
                    const std::string& reason);
    /// The initiator withdraws while nobody has acted. Throws DomainError 404/403/409.
    std::vector<std::int64_t> withdraw(const core::Principal& who, std::int64_t id);
    /// An administrator ends a running, suspended or failed instance: cancelled, its open tasks
    /// and steps with it, the reason in the timeline. Throws DomainError 404/409.
    std::vector<std::int64_t> terminate(const core::Principal& who,
                                        std::int64_t id,
                                        const std::string& reason);
    /// An administrator's hold on an instance, with the reason in the timeline: suspend
    /// (running → suspended), resume (suspended → running), retry (failed at a service or
    /// script task whose token is held → running). Throws DomainError 404/409.
    /// `wake` (with its `echoes`) goes into the outbox in the same transaction, so a resumed
    /// or retried instance is always woken.
    void change_hold(const core::Principal& who,
                     std::int64_t id,
                     HoldChange change,
                     const std::string& reason,
                     const std::optional<inngest::Event>& wake = std::nullopt,
                     const std::vector<std::chrono::milliseconds>& echoes = {});
    /// A service or script task failed for good: the instance turns `failed` with the reason,
    /// its open tasks stay (frozen) so a retry can go on; the timeline records it once under
    /// `step_key`. False when the instance was not running.
    bool mark_failed(const core::TenantId& tenant,
                     std::int64_t id,
                     const std::string& node_id,
                     const std::string& step_key,
                     const std::string& reason);
    /// The reason in the timeline's `failed` entry of `step_key` (mark_failed's, or a failed
    /// finish's); nullopt when that step recorded no failure.
    std::optional<std::string> failure_reason(const core::TenantId& tenant,
                                              std::int64_t id,
                                              const std::string& step_key);

    /// Stores the interpreter's state at a wait (what a resume continues from) if `generation`
    /// still owns the instance; false when it does not or the instance has ended. A held
    /// instance (suspended, or failed at a task) still stores its state.
    bool save_state(const core::TenantId& tenant,
                    std::int64_t id,
                    int generation,
                    const boost::json::object& state,
                    const boost::json::array& current_nodes);
    /// Moves the instance from generation `from` to the next (a hand-over), storing `state` and
    /// announcing the next generation in the same transaction; nullopt when it is not running or
    /// `from` no longer owns it.
    std::optional<int> next_generation(const core::TenantId& tenant,
                                       std::int64_t id,
                                       int from,
                                       const boost::json::object& state,
                                       const core::outbox::Announcement& announce);

    boost::json::object variables(const core::TenantId& tenant, std::int64_t id);
    /// Merges an engine step's `changes` into the variables, each change in the history under
    /// `source` (one per node visit). Once per source: when the history holds a change from it
    /// already (the step ran again), nothing is merged.
    void merge(const core::TenantId& tenant,
               std::int64_t id,
               const boost::json::object& changes,
               const std::string& actor,
               const std::string& source);
    boost::json::array variable_history(const core::TenantId& tenant, std::int64_t id);

    /// Records a signal for a running instance; 404 when there is none.
    void signal(const core::Principal& who,
                std::int64_t id,
                const std::string& name,
                const boost::json::object& data);
    /// Delivers message `name` to every running instance of the tenant with `business_key`
    /// (each keeps it until one of its message catch events or receive tasks takes it); with
    /// `source_key`, a repeat delivers nothing again.
    struct Delivery {
        /// Running instances with the business key.
        int matched = 0;
        /// Those that got the message now (a repeated source key reaches none), and with
        /// `again` those that got it under the same source key before.
        std::vector<std::int64_t> reached;
    };
    Delivery deliver_message(const core::TenantId& tenant,
                             const std::string& name,
                             const std::string& business_key,
                             const boost::json::object& data,
                             const std::string& sent_by,
                             const std::optional<std::string>& source_key,
                             bool again = false);
    /// Broadcasts signal `name` to the tenant's running instances waiting for it now (at their
    /// last stored wait); once per `source_key`. Answers the instances reached, now or by an
    /// earlier call with the same `source_key` (a retried step wakes them again).
    std::vector<std::int64_t> broadcast_signal(const core::TenantId& tenant,
                                               const std::string& name,
                                               const boost::json::object& data,
                                               const std::string& sent_by,
                                               const std::string& source_key);
    /// Catches the oldest uncaught signal `name` for the node visit `by` ("node#visit"): its
    /// data, merged into the variables; nullopt when none arrived.
    std::optional<boost::json::object> catch_signal(const core::TenantId& tenant,
                                                    std::int64_t id,
                                                    const std::string& name,
                                                    const std::string& by);

    /// Sends `event` through the outbox and records it in the instance's event log, in one
    /// transaction; sends it again (unlogged, each with an id of its own) after each of `echoes`.
    /// `once` keys the log entry as in `log` (a retried step sends again, logs once).
    void announce(const core::TenantId& tenant,
                  std::int64_t id,
                  const inngest::Event& event,
                  const std::vector<std::chrono::milliseconds>& echoes = {},
                  const std::optional<std::string>& once = std::nullopt);
    /// One entry of the instance's event log, written by an engine step. `once` names what the
    /// entry is about (a node visit, an attempt): a retried step writes no second entry.
    void log(const core::TenantId& tenant,
             std::int64_t id,
             const std::string& name,
             const boost::json::object& data,
             const std::string& once);
    /// True when the instance's event log has the entry keyed `once` (by `log` or `announce`).
    bool logged(const core::TenantId& tenant, std::int64_t id, const std::string& once);
    boost::json::array events(const core::TenantId& tenant, std::int64_t id);
    boost::json::array timeline(const core::TenantId& tenant, std::int64_t instance_id);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::approvals
