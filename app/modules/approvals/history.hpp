#pragma once

// What every approvals write leaves behind, inside the caller's transaction: the append-only
// timeline, the history of process variables, and the event log.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/time/rfc3339.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace riveredge::approvals {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

/// A group task's assignee is `role:<name>`: anyone holding the role may claim it.
inline std::string group_assignee(const std::string& role) {
    return "role:" + role;
}
/// The role of a group task's assignee; nullopt for a user.
inline std::optional<std::string> group_role(const std::string& assignee) {
    constexpr std::string_view prefix = "role:";
    if (assignee.compare(0, prefix.size(), prefix) != 0) {
        return std::nullopt;
    }
    return assignee.substr(prefix.size());
}

/// One timeline entry; `step_key` makes an engine step's entry idempotent (a retried step
/// writes none).
void append_timeline(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t instance_id,
                     const std::string& actor,
                     const std::string& action,
                     const std::optional<std::string>& node_id,
                     const boost::json::object& detail,
                     const std::optional<std::string>& step_key = std::nullopt);

/// Merges `changes` into the instance's variables, recording each value that changed.
void merge_variables(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t instance_id,
                     const boost::json::object& changes,
                     const std::string& actor,
                     const std::string& source);

/// One entry of the instance's event log (events sent for it, signals received, what the
/// engine did); `step_key` makes an engine step's entry idempotent, as in the timeline.
void log_event(core::db::Transaction& tx,
               const core::TenantId& tenant,
               std::int64_t instance_id,
               const std::string& name,
               const boost::json::object& data,
               const std::optional<std::string>& step_key = std::nullopt);

}  // namespace riveredge::approvals
