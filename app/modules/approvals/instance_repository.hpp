#pragma once

// Running approval instances: the instance rows, their tasks and the append-only timeline.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::approvals {

/// Where a decision applies: the node visit it settled.
struct Decision {
    std::int64_t instance_id = 0;
    std::string node_id;
    int visit = 0;
};

class InstanceRepository {
public:
    explicit InstanceRepository(core::db::Pool& pool) : pool_(pool) {}

    /// nullopt when the business key is taken for this definition.
    std::optional<std::int64_t> create(const core::TenantId& tenant,
                                       std::int64_t definition_id,
                                       int version,
                                       const std::optional<std::string>& business_key,
                                       const boost::json::object& variables,
                                       const std::string& initiator);
    std::optional<boost::json::object> find(const core::TenantId& tenant, std::int64_t id);
    boost::json::array list(const core::TenantId& tenant,
                            const core::db::Param& status,
                            const core::db::Param& initiator,
                            int limit,
                            int offset);
    /// Ends a running instance (open tasks close); with `step_key`, records it on the timeline.
    void finish(const core::TenantId& tenant,
                std::int64_t id,
                const std::string& status,
                const std::optional<std::string>& node_id,
                const std::optional<std::string>& step_key);

    /// Enters a user task's visit in one transaction: its pending tasks, the current node and
    /// the timeline entry, each once (a retried step adds nothing).
    void open_node(const core::TenantId& tenant,
                   std::int64_t instance_id,
                   const std::string& node_id,
                   int visit,
                   const std::vector<std::string>& assignees,
                   const std::string& step_key);
    /// pending, approved or rejected: the node visit's outcome so far.
    std::string node_outcome(const core::TenantId& tenant,
                             std::int64_t instance_id,
                             const std::string& node_id,
                             int visit);
    /// Records `who`'s decision on a pending task in one transaction that locks the node visit's
    /// tasks, so two approvers deciding at once produce one outcome. Throws ApiError: 404 for
    /// a task that is not there (or not this tenant's), 403 for someone not assigned, 409 for a
    /// task already decided.
    Decision decide(const core::Principal& who,
                    std::int64_t task_id,
                    bool approve,
                    const std::optional<std::string>& comment);
    /// Tasks for the user (assigned to them or to one of their roles), by status.
    boost::json::array tasks_for(const core::Principal& who, const std::string& status);
    boost::json::array tasks_of(const core::TenantId& tenant, std::int64_t instance_id);

    boost::json::array timeline(const core::TenantId& tenant, std::int64_t instance_id);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::approvals
