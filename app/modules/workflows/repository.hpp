#pragma once

// The workflow tables: definitions and their versions, executions, node runs (history) and
// state-machine events. Every call takes the tenant; row-level security holds besides.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace riveredge::workflows {

struct DefinitionRow {
    std::int64_t id = 0;
    std::string key;
    std::string name;
    std::string kind;
    int latest_version = 0;
    std::optional<int> published_version;
    std::string created_by;
    std::string created_at;
    std::string updated_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(
    DefinitionRow,
    (),
    (id, key, name, kind, latest_version, published_version, created_by, created_at, updated_at))

struct VersionRow {
    int version = 0;
    std::string format;
    std::string source;
    boost::json::value model;
    std::optional<boost::json::value> groups;
    std::string created_by;
    std::string created_at;
    std::optional<std::string> published_at;

    boost::json::object to_json() const {
        auto out = core::db::row_json(*this);
        out["parallel_groups"] = groups ? *groups : boost::json::value();
        out.erase("groups");
        return out;
    }
};
BOOST_DESCRIBE_STRUCT(
    VersionRow, (), (version, format, source, model, groups, created_by, created_at, published_at))

struct VersionSummary {
    int version = 0;
    std::string format;
    std::string created_by;
    std::string created_at;
    std::optional<std::string> published_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(VersionSummary, (), (version, format, created_by, created_at, published_at))

struct ExecutionRow {
    std::int64_t id = 0;
    std::int64_t definition_id = 0;
    std::string definition_key;
    int version = 0;
    std::string kind;
    std::string status;
    std::optional<std::string> current_state;
    std::optional<std::string> target_state;
    boost::json::value input;
    boost::json::value context;
    std::optional<boost::json::value> output;
    std::optional<std::string> error;
    bool compensated = false;
    int priority = 0;
    std::string started_by;
    std::string created_at;
    std::optional<std::string> started_at;
    std::optional<std::string> ended_at;
    std::string updated_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(ExecutionRow,
                      (),
                      (id,
                       definition_id,
                       definition_key,
                       version,
                       kind,
                       status,
                       current_state,
                       target_state,
                       input,
                       context,
                       output,
                       error,
                       compensated,
                       priority,
                       started_by,
                       created_at,
                       started_at,
                       ended_at,
                       updated_at))

/// One node or action run: the history's row.
struct NodeRunRow {
    std::int64_t id = 0;
    std::string step_key;
    std::string node;
    std::string phase;
    std::string action_kind;
    std::string status;
    boost::json::value input;
    std::optional<boost::json::value> output;
    int attempts = 0;
    std::optional<std::string> error;
    std::string started_at;
    std::optional<std::string> ended_at;
    std::optional<std::int64_t> duration_ms;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(NodeRunRow,
                      (),
                      (id,
                       step_key,
                       node,
                       phase,
                       action_kind,
                       status,
                       input,
                       output,
                       attempts,
                       error,
                       started_at,
                       ended_at,
                       duration_ms))

struct EventRow {
    std::int64_t id = 0;
    std::string name;
    boost::json::value data;
    std::string from_state;
    std::string to_state;
    int transition = 0;
    std::string status;
    std::string sent_by;
    std::string created_at;
    std::optional<std::string> applied_at;

    boost::json::object to_json() const { return core::db::row_json(*this); }
};
BOOST_DESCRIBE_STRUCT(
    EventRow,
    (),
    (id, name, data, from_state, to_state, transition, status, sent_by, created_at, applied_at))

extern const core::db::ListSpec kDefinitionList;
extern const core::db::ListSpec kExecutionList;
extern const core::db::ListSpec kHistoryList;

using core::db::Param;
using core::db::Transaction;

class Repository {
public:
    explicit Repository(core::db::Pool& pool) : pool_(pool) {}
    core::db::Pool& pool() noexcept { return pool_; }

    // Definitions
    /// Adds a version (a new definition at version 1, or the next version of the key's); the
    /// definition's id and the version's number. 409 when the key exists with another kind.
    std::pair<std::int64_t, int> add_version(const core::Principal& who,
                                             const std::string& key,
                                             const std::string& name,
                                             const std::string& kind,
                                             const std::string& format,
                                             const std::string& source,
                                             const boost::json::object& model,
                                             const std::optional<boost::json::array>& groups);
    std::optional<DefinitionRow> definition(const core::TenantId& tenant, std::int64_t id);
    std::optional<DefinitionRow> definition_by_key(const core::TenantId& tenant,
                                                   const std::string& key);
    /// The page asked for, its filters applied (`kDefinitionList`).
    core::db::Page<DefinitionRow> definitions(const core::TenantId& tenant,
                                              const core::db::ListRequest& page);
    boost::json::array versions(const core::TenantId& tenant, std::int64_t id);
    std::optional<VersionRow> version(const core::TenantId& tenant, std::int64_t id, int number);
    /// Marks the version published and the definition's current one; false when no such version.
    bool publish(const core::TenantId& tenant, std::int64_t id, int number);

    // Executions
    /// In the caller's transaction (`for_update` locks the row there) or in one of its own.
    std::optional<ExecutionRow> execution(const core::db::ReadIn& in,
                                          const core::TenantId& tenant,
                                          std::int64_t id,
                                          bool for_update = false);
    core::db::Page<ExecutionRow> executions(const core::TenantId& tenant,
                                            const core::db::ListRequest& page);
    std::int64_t insert_execution(Transaction& tx,
                                  const core::Principal& who,
                                  const DefinitionRow& definition,
                                  int version,
                                  const boost::json::object& input,
                                  const boost::json::object& context,
                                  const std::optional<std::string>& initial_state,
                                  int priority);
    /// Sets the status (and ended_at for an end); `only_from` limits the statuses it replaces.
    bool set_status(Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t id,
                    const std::string& status,
                    const std::vector<std::string>& only_from,
                    const std::optional<std::string>& error = std::nullopt,
                    const std::optional<boost::json::value>& output = std::nullopt);
    void merge_context(Transaction& tx,
                       const core::TenantId& tenant,
                       std::int64_t id,
                       const boost::json::object& values);
    void set_node_output(Transaction& tx,
                         const core::TenantId& tenant,
                         std::int64_t id,
                         const std::string& node,
                         const boost::json::value& output);
    void set_current_state(Transaction& tx,
                           const core::TenantId& tenant,
                           std::int64_t id,
                           const std::string& state);
    void mark_compensated(const core::TenantId& tenant, std::int64_t id);

    // Node runs
    /// The run of `step_key`, if begun.
    std::optional<NodeRunRow> node_run(const core::TenantId& tenant,
                                       std::int64_t execution_id,
                                       const std::string& step_key);
    /// The run of `step_key` begun for `attempt` (created on the first); its row.
    void begin_node_run(const core::TenantId& tenant,
                        std::int64_t execution_id,
                        const std::string& step_key,
                        const std::string& node,
                        const std::string& phase,
                        const std::string& action_kind,
                        const boost::json::value& input,
                        int attempt);
    void end_node_run(Transaction& tx,
                      const core::TenantId& tenant,
                      std::int64_t execution_id,
                      const std::string& step_key,
                      const std::string& status,
                      const std::optional<boost::json::value>& output,
                      const std::optional<std::string>& error);
    core::db::JsonPage history(const core::TenantId& tenant,
                               std::int64_t execution_id,
                               const core::db::ListRequest& page);
    /// How many times each state of a state machine was entered so far, as its entry steps'
    /// keys (`entry:<state>#<visit>`) count them.
    std::map<std::string, int> entry_visits(const core::TenantId& tenant,
                                            std::int64_t execution_id);
    /// Succeeded runs of `phase`, newest completion first: what compensation walks back.
    std::vector<NodeRunRow> completed_runs(const core::TenantId& tenant,
                                           std::int64_t execution_id,
                                           const std::string& phase);

    // Events
    std::int64_t insert_event(Transaction& tx,
                              const core::TenantId& tenant,
                              std::int64_t execution_id,
                              const std::string& name,
                              const boost::json::object& data,
                              const std::string& from_state,
                              const std::string& to_state,
                              int transition,
                              const std::string& sent_by);
    void set_target_state(Transaction& tx,
                          const core::TenantId& tenant,
                          std::int64_t id,
                          const std::string& state);
    /// The oldest accepted event not applied yet.
    std::optional<EventRow> next_event(const core::TenantId& tenant, std::int64_t execution_id);
    void mark_applied(Transaction& tx,
                      const core::TenantId& tenant,
                      std::int64_t event_id,
                      std::int64_t execution_id);
    boost::json::array events(const core::TenantId& tenant, std::int64_t execution_id);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::workflows
