#pragma once

// Runs approval instances: what the generic Inngest function `approvals-instance` does at each
// node visit, and the decisions users make. Every node visit is a memoized step with an id
// built from the node id and its visit count, so replays and retries repeat no side effect.
//
// Supported so far: startEvent, endEvent, userTask (any one approver decides: 或签),
// exclusiveGateway. Other elements fail the instance with a clear reason.

#include "core/auth/principal.hpp"
#include "modules/approvals/definition.hpp"
#include "modules/approvals/instance_repository.hpp"
#include "modules/approvals/repository.hpp"

#include <boost/json/object.hpp>

namespace inngest {
class Client;
}

namespace riveredge::approvals {

inline constexpr const char* kInstanceStarted = "approvals/instance.started";
inline constexpr const char* kTaskDecided = "approvals/task.decided";

class Engine {
public:
    Engine(Repository& definitions, InstanceRepository& instances, inngest::Client& inngest)
        : definitions_(definitions), instances_(instances), inngest_(inngest) {}

    /// Starts an instance of the latest published version (or `version`) with form data.
    boost::json::object start(const core::Principal& initiator, const boost::json::object& request);
    boost::json::object get(const core::TenantId& tenant, std::int64_t id);
    /// A user's decision on a task; wakes the instance.
    boost::json::object decide(const core::Principal& who,
                               std::int64_t task_id,
                               bool approve,
                               const boost::json::object& request);

    // Steps of the instance function.
    /// {definition (compiled), variables, initiator}.
    boost::json::object load(const core::TenantId& tenant, std::int64_t id);
    /// Creates the node visit's tasks for its resolved approvers.
    boost::json::object enter_user_task(const core::TenantId& tenant,
                                        std::int64_t id,
                                        const FlowNode& node,
                                        int visit,
                                        const boost::json::object& variables,
                                        const std::string& initiator);
    std::string outcome(const core::TenantId& tenant,
                        std::int64_t id,
                        const std::string& node_id,
                        int visit);
    /// The flow an exclusive gateway takes: the first true condition by priority, else the
    /// default. Conditions run on the shared expression engine, without side effects.
    std::string choose(const ProcessDefinition& definition,
                       const FlowNode& gateway,
                       const boost::json::object& variables) const;
    boost::json::object finish(const core::TenantId& tenant,
                               std::int64_t id,
                               const std::string& status,
                               const std::string& node_id,
                               const std::string& step_key);

    InstanceRepository& instances() noexcept { return instances_; }

private:
    Repository& definitions_;
    InstanceRepository& instances_;
    inngest::Client& inngest_;
};

/// Who a user task is for: user ids, and `role:<name>` for group tasks.
std::vector<std::string> resolve_assignees(const FlowNode& node,
                                           const boost::json::object& variables,
                                           const std::string& initiator);

}  // namespace riveredge::approvals
