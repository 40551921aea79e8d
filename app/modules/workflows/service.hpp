#pragma once

// Workflows: definitions imported from YAML or JSON, validated and published as versions;
// executions started, driven by events, paused, resumed and cancelled over REST; and the
// steps the interpreter (functions.cpp) runs, each of which records a node run.

#include "core/http/outbound_policy.hpp"
#include "core/module.hpp"
#include "modules/workflows/repository.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <string>

namespace riveredge::workflows {

/// Starts an execution's run (data: tenant_id, execution_id, priority).
inline constexpr const char* kExecutionStarted = "workflows/execution.started";
/// Wakes an execution's run that waits for an event, a resume or a cancel (data: tenant_id,
/// execution_id).
inline constexpr const char* kExecutionWake = "workflows/execution.wake";

struct Collaborators {
    core::Notifier& notifier;
    core::StoredScripts& scripts;
    const core::OutboundPolicy& outbound;
};

/// One step of the interpreter: the actions of a node, a state's entry or exit, a transition,
/// the error handler or a compensation, at one attempt.
struct StepCall {
    std::string key{};
    std::string node{};
    std::string phase{};
    boost::json::array actions{};
    int attempt = 1;
    int max_attempts = 1;
    /// The event the step runs for ({name, data}), or null.
    boost::json::value event{};
    /// Sets `current_state` to `node` once the actions succeed (a state's entry).
    bool enters_state = false;
    /// Keeps the output as `context.nodes.<node>` (a DAG node).
    bool keeps_output = false;
};

class Service {
public:
    Service(Repository& repository, Collaborators collaborators)
        : repository_(repository), c_(collaborators) {}

    Repository& repository() noexcept { return repository_; }

    // Definitions
    /// Reads a YAML or JSON source (by content type) and validates it; 400 for a source that
    /// cannot be read, 422 naming every element with a problem.
    struct Read {
        boost::json::object model;
        std::string format;
    };
    static Read read_source(const std::string& content_type, const std::string& body);
    /// What validation finds of a valid model: kind, parallel groups or states and events.
    static boost::json::object summary(const boost::json::object& model);
    boost::json::object import(const core::Principal& who,
                               const std::string& content_type,
                               const std::string& body);
    DefinitionRow get(const core::TenantId& tenant, std::int64_t id);
    boost::json::object publish(const core::Principal& who, std::int64_t id, int version);

    // Executions
    boost::json::object start(const core::Principal& who, const boost::json::object& body);
    boost::json::object execution(const core::TenantId& tenant, std::int64_t id);
    boost::json::object send_event(const core::Principal& who,
                                   std::int64_t id,
                                   const boost::json::object& body);
    boost::json::object pause(const core::Principal& who, std::int64_t id);
    boost::json::object resume(const core::Principal& who, std::int64_t id);
    boost::json::object cancel(const core::Principal& who,
                               std::int64_t id,
                               const boost::json::object& body);
    /// 404 unless the tenant has the execution.
    void require_execution(const core::TenantId& tenant, std::int64_t id);

    // The interpreter's steps
    /// Moves a queued execution to running: {status, kind, model, current_state}, and for a
    /// state machine already in a state, `visits`: how often each state was entered so far.
    boost::json::object begin(const core::TenantId& tenant, std::int64_t id);
    /// The execution's status now (running, paused, cancelled ...).
    std::string gate(const core::TenantId& tenant, std::int64_t id);
    /// Runs the actions of `call` and records them: {ok, output} or {ok: false, error}.
    boost::json::object run_step(const core::TenantId& tenant,
                                 std::int64_t id,
                                 const StepCall& call);
    /// {status} and, when running with an accepted event waiting, {event}.
    boost::json::object next_event(const core::TenantId& tenant, std::int64_t id);
    boost::json::object apply_event(const core::TenantId& tenant,
                                    std::int64_t id,
                                    std::int64_t event_id);
    /// What compensation runs, newest completion first: [{key, node, actions}].
    boost::json::array compensation_plan(const core::TenantId& tenant, std::int64_t id);
    boost::json::object finish(const core::TenantId& tenant,
                               std::int64_t id,
                               const std::string& status,
                               const std::optional<std::string>& error,
                               bool compensated);

private:
    boost::json::value run_action(const core::TenantId& tenant,
                                  std::int64_t id,
                                  const StepCall& call,
                                  const boost::json::object& action,
                                  std::size_t index,
                                  const boost::json::object& scope,
                                  boost::json::object& context_changes);
    boost::json::object model_of(const core::TenantId& tenant, const ExecutionRow& execution);
    /// The execution, read in `in` (locked when `for_update`); 404 "workflow execution <id> not
    /// found" when the tenant has none.
    ExecutionRow execution_or_404(const core::db::ReadIn& in,
                                  const core::TenantId& tenant,
                                  std::int64_t id,
                                  bool for_update = false);
    /// A pause, resume or cancel: the execution moves to `to` from one of `from` (with `error`),
    /// its run woken when `wake`; else 409 "execution <id> is <status><refused>".
    struct StatusChange {
        std::string to;
        std::vector<std::string> from;
        std::string refused;
        bool wake = false;
        std::optional<std::string> error = std::nullopt;
    };
    boost::json::object change_status(const core::Principal& who,
                                      std::int64_t id,
                                      const StatusChange& change);
    void wake(Transaction& tx, const core::TenantId& tenant, std::int64_t id);

    Repository& repository_;
    Collaborators c_;
};

}  // namespace riveredge::workflows
