#pragma once

// Runs approval instances. The generic Inngest function `approvals-instance` (functions.cpp)
// interprets a pinned definition as tokens moving through nodes; each node visit is one call
// here, made inside a memoized step whose id is the node id and visit count, so replays and
// retries repeat no side effect. The database holds the truth: decisions are transactions,
// and the function re-reads them whenever it wakes (`park`).

#include "core/auth/principal.hpp"
#include "core/http/outbound_policy.hpp"
#include "core/module.hpp"
#include "modules/approvals/definition.hpp"
#include "modules/approvals/definition_repository.hpp"
#include "modules/approvals/instance_repository.hpp"
#include "modules/approvals/task_repository.hpp"
#include "modules/approvals/tenant_setup.hpp"

#include <boost/json/object.hpp>

#include <functional>

namespace inngest {
class Client;
}

namespace riveredge::approvals {

inline constexpr const char* kInstanceStarted = "approvals/instance.started";
/// A hand-over to a fresh run (step budget) or a resume after a restart.
inline constexpr const char* kInstanceContinued = "approvals/instance.continued";
/// Something changed for a running instance (a decision, a signal, a withdrawal).
inline constexpr const char* kInstanceWake = "approvals/instance.wake";

struct EngineParts {
    DefinitionRepository& definitions;
    InstanceRepository& instances;
    TaskRepository& tasks;
    Directory& directory;
    ActivityBindings& activities;
    core::Notifier& notifier;
    core::StoredScripts& scripts;
    core::RecordSigner& signer;
    std::function<TimePoint()> now;
    /// Where service tasks may call (the deployment's policy).
    const core::OutboundPolicy& outbound;
};

/// One visit of one node of an instance: what the engine's work at a node acts on.
struct VisitRef {
    const core::TenantId& tenant;
    std::int64_t id;  ///< the instance
    const FlowNode& node;
    int visit;

    VisitKey key() const { return {tenant, id, node.id, visit}; }
};

/// Where the node's first outgoing flow leads; a node with none cannot go on (NonRetriableError,
/// naming it as `what`).
std::string first_target(const ProcessDefinition& definition,
                         const std::string& node,
                         std::string_view what = "node");

class Engine {
public:
    explicit Engine(EngineParts parts) : p_(std::move(parts)) {}

    // What the REST routes call.
    /// Starts an instance of the latest published version with form data and a business key.
    boost::json::object start(const core::Principal& initiator, const boost::json::object& request);
    boost::json::object get(const core::TenantId& tenant, std::int64_t id);
    /// approve, reject, return, transfer, delegate, resolve, add-signer, claim or comment.
    /// Approving a signing step takes `signature` {password, user_id, reason}.
    boost::json::object act(const core::Principal& who,
                            const core::RequestOrigin& from,
                            std::int64_t task_id,
                            const std::string& action,
                            const boost::json::object& request);
    void withdraw(const core::Principal& who, std::int64_t id);
    /// Administrator actions: end a running instance (cancelled), or hand a stuck task to
    /// someone else; each with a reason, in the timeline.
    void terminate(const core::Principal& admin,
                   std::int64_t id,
                   const boost::json::object& request);
    /// Administrator holds, each with a `reason` in the timeline: suspend a running instance
    /// (it stops at its next node and settles nothing), resume it, or retry the service or
    /// script task it failed at (from the task's first attempt).
    void change_hold(const core::Principal& admin,
                     std::int64_t id,
                     HoldChange change,
                     const boost::json::object& request);
    boost::json::object reassign(const core::Principal& admin,
                                 std::int64_t task_id,
                                 const boost::json::object& request);
    void signal(const core::Principal& who, std::int64_t id, const boost::json::object& request);
    /// A message {name, business_key, data?, message_id?} for the tenant's running instances
    /// with that business key (REST, or an event of the tenant's namespace). Answers
    /// {delivered: [instance ids]}; a repeated message_id delivers nothing again, and with
    /// `again` (a step's retry) answers and wakes again those it reached before.
    boost::json::object correlate(const core::TenantId& tenant,
                                  const std::string& sender,
                                  const boost::json::object& request,
                                  bool again = false);
    /// Per-node status for ProFlow's FlowView: every node of the pinned version with its
    /// status (pending, active, completed, approved, rejected, returned, cancelled, failed).
    boost::json::object diagram(const core::TenantId& tenant, std::int64_t id);

    // The steps of `approvals-instance`.
    /// {stop} when `generation` no longer owns the instance, else {definition, state}.
    boost::json::object load(const core::TenantId& tenant, std::int64_t id, int generation);
    /// One node visit. `token`: {node, visit, last (no other token is alive), attempt}. Answers
    /// {next: [node ids]}, {wait: task|timer|signal}, {retry_in_ms, attempt} or {end: status}.
    boost::json::object visit(const core::TenantId& tenant,
                              std::int64_t id,
                              const ProcessDefinition& definition,
                              const boost::json::object& token);
    /// Runs one compensation handler {handler, node, visit} (a compensation throw event's
    /// list, newest completed task first); best effort, logged `compensated` or
    /// `compensation_failed`, each completed visit once.
    boost::json::object compensate(const core::TenantId& tenant,
                                   std::int64_t id,
                                   const ProcessDefinition& definition,
                                   const boost::json::object& item);
    /// An embedded sub-process whose inner tokens have all ended: its visit completes and the
    /// token leaves by its outgoing flow ({next: [node]}), its end and take listeners run.
    boost::json::object complete_scope(const core::TenantId& tenant,
                                       std::int64_t id,
                                       const ProcessDefinition& definition,
                                       const std::string& node_id,
                                       int visit);
    /// A waiting node's token leaves it toward `target`: its end listeners and the taken
    /// flow's take listeners run (the step `leave:<node>#<visit>`).
    boost::json::object leave(const core::TenantId& tenant,
                              std::int64_t id,
                              const ProcessDefinition& definition,
                              const std::string& node_id,
                              int visit,
                              const std::string& target);
    /// Stores the state at a wait and settles what can be settled: deadlines, timers, signals,
    /// decisions. Answers {stop} or {resolved: [{index, outcome, target?}], sleep_ms}.
    boost::json::object park(const core::TenantId& tenant,
                             std::int64_t id,
                             int generation,
                             const ProcessDefinition& definition,
                             const boost::json::object& state);
    /// Hands the instance to a fresh run (before the platform's step limit).
    boost::json::object hand_over(const core::TenantId& tenant,
                                  std::int64_t id,
                                  int generation,
                                  const boost::json::object& state);
    boost::json::object finish(const core::TenantId& tenant,
                               std::int64_t id,
                               const std::string& status,
                               const std::string& node_id,
                               const std::string& step_key,
                               const std::optional<std::string>& reason = std::nullopt);

    /// The on_failure of `approvals-instance`: the run of `generation` failed for good with
    /// `error`. An instance it still owned ends failed with that error, once, its relatives are
    /// woken and its initiator told, as for any other failure that ends it.
    boost::json::object fail_run(const core::TenantId& tenant,
                                 std::int64_t id,
                                 int generation,
                                 const std::string& error);

    InstanceRepository& instances() noexcept { return p_.instances; }
    TaskRepository& tasks() noexcept { return p_.tasks; }
    Directory& directory() noexcept { return p_.directory; }
    ActivityBindings& activities() noexcept { return p_.activities; }

private:
    /// The exclusive gateway's flow: the first true condition by priority, else the default;
    /// nullopt when no condition holds and it has no default.
    std::optional<std::string> choose(const ProcessDefinition& definition,
                                      const FlowNode& gateway,
                                      const boost::json::object& variables) const;
    /// Who a user task is for: user ids, and `role:<name>` for group tasks.
    std::vector<std::string> resolve_assignees(const core::TenantId& tenant,
                                               const FlowNode& node,
                                               const boost::json::object& variables,
                                               const std::string& initiator);

    boost::json::object enter_user_task(const VisitRef& here,
                                        const boost::json::object& variables,
                                        const std::string& initiator,
                                        bool resubmit);
    boost::json::object run_service(const VisitRef& here,
                                    int attempt,
                                    const boost::json::object& scope,
                                    const FlowNode* on_error);
    /// One visit's own work (`visit` adds the listeners around it).
    boost::json::object visit_node(const core::TenantId& tenant,
                                   std::int64_t id,
                                   const ProcessDefinition& definition,
                                   const boost::json::object& token);
    /// Calls the `event` listeners of an element (a node's start or end, a flow's take) with
    /// their mapped input; best effort, each call's result or error in the event log.
    void run_listeners(const core::TenantId& tenant,
                       std::int64_t id,
                       const boost::json::array& listeners,
                       const std::string& event,
                       const std::string& element,
                       const boost::json::object& scope,
                       const std::string& tag);
    /// The token leaves a failed task through its error boundary: the error in a variable
    /// ({node_id, message, code when it has one}).
    void caught_error(const VisitRef& here,
                      const FlowNode& boundary,
                      const std::string& reason,
                      const std::string& code = {});
    /// An error or cancel end event: finds the nearest enclosing sub-process boundary that
    /// catches it, lists the compensations of the transactions it leaves, and cancels the
    /// caught sub-process's open work. Answers {thrown: {scope, boundary, reason}, compensate};
    /// an empty boundary means nothing caught it (the run fails the instance).
    boost::json::object throw_from(const VisitRef& here, const ProcessDefinition& definition);
    /// An error or cancel leaves `origin` for `catcher`, a boundary of an enclosing sub-process
    /// (nullptr: it leaves the process, and the run fails the instance). Answers {thrown:
    /// {scope, boundary, reason}, compensate}: the compensations of the transactions it leaves;
    /// the caught sub-process ends (`scope_ends`) with everything in it.
    boost::json::object escape(const core::TenantId& tenant,
                               std::int64_t id,
                               const ProcessDefinition& definition,
                               const FlowNode& origin,
                               const FlowNode* catcher,
                               const std::string& reason,
                               const std::string& scope_ends);
    /// Cancels every open visit inside a sub-process (tasks, waits, inner sub-processes, the
    /// children of call activities) when a boundary or an error interrupts it.
    void cancel_inside(const core::TenantId& tenant,
                       std::int64_t id,
                       const ProcessDefinition& definition,
                       const std::string& scope,
                       const std::string& reason);
    /// The compensations still owed for completed visits of nodes `within` accepts: each
    /// {handler, node, visit}, newest completion first, none already compensated.
    boost::json::array owed_compensations(const core::TenantId& tenant,
                                          std::int64_t id,
                                          const ProcessDefinition& definition,
                                          const std::function<bool(const std::string&)>& within);
    /// The instance fails at `node` (held for a retry) and its initiator is told.
    void failed_at(const VisitRef& here, const std::string& reason);
    /// Tells the initiator the instance is failed at `node_id`'s `visit`, once per visit (the
    /// notice is keyed): the step that failed it tells again when it runs again.
    void tell_failed(const core::TenantId& tenant,
                     std::int64_t id,
                     const std::string& node_id,
                     int visit,
                     const std::string& reason);
    /// A call activity: starts the called process's latest version as a child instance
    /// (input mapping, business key) once per visit, and waits for it to end.
    boost::json::object call_child(const VisitRef& here,
                                   const boost::json::object& scope,
                                   const InstanceRow& parent);
    /// The code of the error a failed child instance threw and did not catch itself (it
    /// carries it up to its call activity); nullopt when it threw none.
    std::optional<std::string> thrown_by(const core::TenantId& tenant,
                                         const std::optional<InstanceRow>& child);
    /// At a park of a failed instance: stores `state` again with each call activity whose
    /// child failed uncaught held there (kind 'failed'), as the attempt that failed it did, and
    /// tells of the failure that failed `instance` as that attempt did.
    void hold_failed_calls(const core::TenantId& tenant,
                           std::int64_t id,
                           int generation,
                           const ProcessDefinition& definition,
                           const boost::json::object& state,
                           const boost::json::array& current,
                           const InstanceRow& instance);
    /// Tells the initiator that instance `id` ended as `status` (once per instance).
    void tell_ended(const core::TenantId& tenant,
                    std::int64_t id,
                    const std::string& status,
                    const std::string& node_id,
                    const std::optional<std::string>& reason);
    /// After an instance ended: wakes the children that ended with it, and its parent.
    void wake_related(const core::TenantId& tenant,
                      std::int64_t id,
                      const std::vector<std::int64_t>& cancelled_children);
    /// Calls what a service task or listener names in `config`: `url` (HTTP, on the tenant's
    /// allow-list), or an activity (`activity_name`/`action`): built-in `set_variables` and
    /// `notify`, else the tenant's binding (HTTP or a script). A notification or script run is
    /// once per `call_key` (a retried step's call finds the first). Its result; throws
    /// (NonRetriableError when no retry could pass).
    boost::json::value call_activity(const core::TenantId& tenant,
                                     const boost::json::object& config,
                                     const boost::json::value& input,
                                     const std::string& call_key);
    /// A business rule task: the decision table's answer for the variables, as variables.
    boost::json::object run_rules(const VisitRef& here,
                                  const boost::json::object& scope,
                                  const FlowNode* on_error);
    /// `scope`: the process variables and `initiator`, for the mappings.
    boost::json::object run_script(const VisitRef& here,
                                   const boost::json::object& scope,
                                   const FlowNode* on_error);
    /// A service or script task failed for good. With an error boundary event (`on_error`)
    /// the token leaves through it ({next: [boundary]}); without, the instance turns `failed`
    /// and the token is held at the task ({wait: failed}) for an administrator's retry.
    boost::json::object fail_task(const VisitRef& here,
                                  const std::string& kind,
                                  const std::string& reason,
                                  const FlowNode* on_error);
    /// A signal or message throw event: broadcast or correlated, and the receivers woken.
    void throw_event(const VisitRef& here, const boost::json::object& scope);
    /// The event of an event-based gateway's race that happened (a signal or message caught
    /// now, else a timer due), or nullopt with `next_due` lowered to its first timer.
    std::optional<std::string> race_winner(const VisitKey& gateway,
                                           const ProcessDefinition& definition,
                                           const VisitState& state,
                                           TimePoint now,
                                           std::optional<TimePoint>& next_due);
    /// Whether a boundary event of a waiting task's visit has happened: its timer is due
    /// (else `next_due` is lowered to it), or its signal or message was caught now or before.
    bool boundary_happened(const VisitKey& task,
                           const FlowNode& boundary_node,
                           const VisitState& state,
                           TimePoint now,
                           std::optional<TimePoint>& next_due);
    /// A due deadline's action (after it, the visit may be settled or reassigned).
    void apply_deadline(const VisitKey& at, const VisitState& state);
    /// Copies the node's `cc` on this visit of it, and tells those newly copied.
    void copy_to(const VisitRef& here,
                 const boost::json::object& variables,
                 const std::string& initiator);
    /// Tells whoever each task is for of it; `from_step`: once per task and user however often
    /// the step runs (else each call notifies).
    void notify_tasks(const core::TenantId& tenant,
                      std::int64_t id,
                      const std::string& node_id,
                      const std::vector<TaskRef>& tasks,
                      const std::string& why,
                      bool from_step);
    /// Users to tell about work for `assignees`: a group (`role:<name>`) stands for the
    /// directory's members of that role. Each user once, in order.
    std::vector<std::string> recipients(const core::TenantId& tenant,
                                        const std::vector<std::string>& assignees);
    void notify(const core::TenantId& tenant,
                const std::vector<std::string>& users,
                const std::string& subject,
                const std::string& body,
                const std::optional<std::string>& key);
    /// Wakes instance `id`'s run. `once` names what the wake is about (a throwing visit, a
    /// message, a relative's end): a step that wakes again on a retry logs it once.
    void wake(const core::TenantId& tenant,
              std::int64_t id,
              const std::string& why,
              const std::optional<std::string>& once = std::nullopt);

    EngineParts p_;
};

}  // namespace riveredge::approvals
