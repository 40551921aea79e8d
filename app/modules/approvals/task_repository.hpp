#pragma once

// Node visits and the tasks of user-task visits. A visit is what one decision settles: every
// action on a task locks its instance, then its visit, so two people acting at the same moment
// produce exactly one outcome.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"
#include "modules/approvals/history.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::approvals {

/// One visit of one node of an instance: how the visit and task tables key it.
struct VisitKey {
    core::TenantId tenant;
    std::int64_t instance_id = 0;
    std::string node_id;
    int visit = 0;
};

/// What a signing step signs: the record its instance names, the step's meaning, and a key
/// unique to this visit (a signature is made once per version, signer, meaning and step).
struct SignatureStep {
    std::int64_t record_id = 0;
    std::string meaning;
    std::string step_key;
};
using SignatureHook = std::function<void(core::db::Transaction&, const SignatureStep&)>;

/// How a user task's approvers decide.
struct ApprovalRule {
    /// any (或签), all (会签), sequential (依次) or ratio.
    std::string mode = "any";
    /// For ratio: the share of approvals that carries the node.
    double ratio = 1.0;
    /// Users whose single rejection rejects the node in ratio mode ("*": anyone).
    std::vector<std::string> veto;
};

/// What opening a visit records.
struct VisitOpening {
    std::string node_id;
    int visit = 0;
    /// task, resubmit, timer, signal, service, script, gateway or event.
    std::string kind;
    ApprovalRule rule;
    /// For task and resubmit visits: who acts, in order.
    std::vector<std::string> assignees;
    std::optional<TimePoint> due_at;
    /// The user task's deadline settings ({duration, action, ...}).
    std::optional<boost::json::object> deadline;
};

/// A decision on a task: approve, reject or return (to `return_target`), with an opinion and
/// form fields to merge into the process variables.
struct Decision {
    std::string action;
    std::optional<std::string> comment;
    std::optional<std::string> return_target;
    boost::json::object changes;
};

struct TaskRef {
    std::int64_t id = 0;
    std::string assignee;
    std::string status;
};
BOOST_DESCRIBE_STRUCT(TaskRef, (), (id, assignee, status))

/// Where an action applied, and who should hear of it.
struct ActionResult {
    std::int64_t instance_id = 0;
    std::string node_id;
    /// The visit's status after the action (active while it is still open).
    std::string visit_status;
    /// Tasks that became pending for someone through this action.
    std::vector<TaskRef> new_work;
};

struct VisitState {
    std::int64_t id = 0;
    std::string status;
    std::optional<std::string> return_target;
    std::optional<TimePoint> due_at;
    std::optional<boost::json::object> deadline;
    int reminders = 0;
    /// When the token entered the node (a boundary timer counts from it).
    std::optional<TimePoint> entered_at;
};

/// The task boxes' sort fields and filters.
extern const core::db::ListSpec kTaskList;

/// A task as its lists and its instance show it.
struct TaskView {
    std::int64_t id = 0;
    std::int64_t instance_id = 0;
    std::string node_id;
    int visit = 0;
    std::string kind;
    std::string assignee;
    std::optional<std::string> owner;
    std::string status;
    int seq = 0;
    std::optional<std::string> decided_by;
    std::optional<std::string> comment;
    std::string created_at;
    std::optional<std::string> decided_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(TaskView,
                      (),
                      (id,
                       instance_id,
                       node_id,
                       visit,
                       kind,
                       assignee,
                       owner,
                       status,
                       seq,
                       decided_by,
                       comment,
                       created_at,
                       decided_at))

/// A visit of a node: when the token entered and left it, and how it ended.
struct NodeVisit {
    std::string node_id;
    int visit = 0;
    std::string kind;
    std::string status;
    std::string entered_at;
    std::optional<std::string> left_at;
    std::optional<std::string> due_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(NodeVisit, (), (node_id, visit, kind, status, entered_at, left_at, due_at))

class TaskRepository {
public:
    explicit TaskRepository(core::db::Pool& pool) : pool_(pool) {}

    /// Opens a visit once (a retried step adds nothing) with its tasks: sequential visits queue
    /// every approver behind the one before. Returns the visit's tasks.
    std::vector<TaskRef> open_visit(const core::TenantId& tenant,
                                    std::int64_t instance_id,
                                    const VisitOpening& opening,
                                    TimePoint now,
                                    const std::string& step_key);
    /// Records a visit that opens and closes at once (start, gateways, service and script
    /// tasks, events) with `status` (completed or failed).
    void record_visit(const VisitKey& at,
                      const std::string& kind,
                      const std::string& status,
                      TimePoint now);
    /// Closes an open visit (a timer fired, a signal caught).
    void close_visit(const VisitKey& at, const std::string& status, TimePoint now);
    std::optional<VisitState> visit_state(const VisitKey& at);

    /// Decides a pending task of `who`'s; the decision's `changes` are merged into the
    /// process variables in the same transaction. At a step
    /// whose approval is an electronic signature (`signature` in its config), `sign` seals it
    /// inside the decision's transaction: both commit, or neither. Throws DomainError: 404 no
    /// such task, 403 not `who`'s, 409 already settled, 422 bad return target or signature.
    ActionResult decide(const core::Principal& who,
                        std::int64_t task_id,
                        const Decision& decision,
                        TimePoint now,
                        const SignatureHook& sign = {});
    /// Hands the task to `to` for good (transfer) or until they resolve it (delegate).
    ActionResult reassign(const core::Principal& who,
                          std::int64_t task_id,
                          const std::string& to,
                          bool delegate,
                          const std::optional<std::string>& comment);
    /// An administrator hands a pending task to `to` (whoever holds it, delegated or not),
    /// with the reason in the timeline.
    ActionResult reassign_stuck(const core::Principal& admin,
                                std::int64_t task_id,
                                const std::string& to,
                                const std::string& reason);
    /// The delegate gives a delegated task back to its owner, with their opinion.
    ActionResult resolve(const core::Principal& who,
                         std::int64_t task_id,
                         const std::optional<std::string>& comment);
    /// Adds a signer before (they act first) or after (they act once this task is approved).
    ActionResult add_signer(const core::Principal& who,
                            std::int64_t task_id,
                            const std::string& user,
                            bool before,
                            const std::optional<std::string>& comment);
    /// A member of the task's role takes the group task.
    ActionResult claim(const core::Principal& who, std::int64_t task_id);
    /// A comment on the task's node, on the timeline.
    ActionResult comment(const core::Principal& who, std::int64_t task_id, const std::string& text);

    /// Settles an active visit for the system (a deadline's auto-approve or auto-reject, an
    /// interrupting boundary's cancel); false when it was no longer active (a decision under
    /// way, which it waits for, settled it first).
    bool settle_by_system(const VisitKey& at,
                          const std::string& outcome,
                          const std::string& reason,
                          TimePoint now);
    /// Moves a visit's pending tasks to new assignees (a deadline's escalation or transfer);
    /// `assignee_for` answers nullopt to leave a task where it is. Once per deadline: when the
    /// visit's timeline holds the move already (a retried step), it moves nothing and answers
    /// the tasks moved before. It waits for a decision under way on the visit (it locks the
    /// instance, then the visit) and moves nothing once the visit is no longer active.
    std::vector<TaskRef> reassign_pending(
        const VisitKey& at,
        const std::function<std::optional<std::string>(const std::string&)>& assignee_for,
        const std::string& reason);
    /// After a deadline action: the next due time (none to stop) and one more reminder.
    void postpone(const core::TenantId& tenant,
                  std::int64_t visit_id,
                  std::optional<TimePoint> due_at,
                  bool reminded);
    std::vector<TaskRef> pending_tasks(const VisitKey& at);

    /// A user's boxes: todo (pending for them or their roles), done (decided by them).
    core::db::Page<TaskView> tasks_for(const core::Principal& who,
                                       const std::string& box,
                                       const core::db::ListRequest& page);
    boost::json::array tasks_of(const core::TenantId& tenant, std::int64_t instance_id);
    /// Every visit of the instance, oldest first.
    std::vector<NodeVisit> visits_of(const core::TenantId& tenant, std::int64_t instance_id);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::approvals
