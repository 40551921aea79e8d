#pragma once

// What a tenant sets up for its processes: the directory of managers (approver source
// `manager`, escalation) and the bindings of service-task activities to HTTP endpoints or
// scripts.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace riveredge::approvals {

class Directory {
public:
    explicit Directory(core::db::Pool& pool) : pool_(pool) {}

    void set(const core::TenantId& tenant,
             const std::string& user_id,
             const std::optional<std::string>& manager_id,
             const std::optional<std::string>& display_name,
             const std::vector<std::string>& roles);
    boost::json::array list(const core::TenantId& tenant);
    /// The manager `levels` up from `user_id` (1: the direct manager); nullopt past the top.
    std::optional<std::string> manager_of(const core::TenantId& tenant,
                                          const std::string& user_id,
                                          int levels = 1);
    /// The users listed with `role`: whom a group task of that role notifies.
    std::vector<std::string> members_of(const core::TenantId& tenant, const std::string& role);

private:
    core::db::Pool& pool_;
};

struct ActivityBinding {
    /// http or script.
    std::string kind;
    /// http: {url, method}; script: {script_id}.
    boost::json::object config;
};

class ActivityBindings {
public:
    explicit ActivityBindings(core::db::Pool& pool) : pool_(pool) {}

    void set(const core::Principal& who, const std::string& name, const ActivityBinding& binding);
    boost::json::array list(const core::TenantId& tenant);
    std::optional<ActivityBinding> find(const core::TenantId& tenant, const std::string& name);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::approvals
