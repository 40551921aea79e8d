#pragma once

// Business rules of the scripts module: validation of scripts and arguments, versions, runs in
// the sandbox (now, or durably through Inngest), tenant limits.

#include "core/auth/principal.hpp"
#include "core/http/outbound_policy.hpp"
#include "modules/scripts/repository.hpp"
#include "modules/scripts/script_runner.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace inngest {
class Client;
class Metrics;
}  // namespace inngest

namespace riveredge::scripts {

/// The Inngest event that asks for a recorded (async) run to be carried out.
inline constexpr const char* kRunRequested = "scripts/run.requested";

class Service {
public:
    /// `metrics`: where run outcomes are counted (none when null).
    Service(Repository& repository,
            const ScriptRunner& runner,
            const core::OutboundPolicy& outbound,
            inngest::Metrics* metrics = nullptr)
        : repository_(repository), runner_(runner), outbound_(outbound), metrics_(metrics) {}

    Script create(const core::Principal& author, const boost::json::object& request);
    /// Metadata changes in place; code, parameters or limits make a new version.
    Script update(const core::Principal& author,
                  std::int64_t script_id,
                  const boost::json::object& request);
    Script get(const core::TenantId& tenant, std::int64_t script_id);

    /// {valid, error: {message, line, column}}; column is null (Duktape reports lines only).
    boost::json::object validate(const boost::json::object& request) const;

    /// `mode`: "sync" runs now and answers with the finished run; "async" records the run,
    /// emits `scripts/run.requested` and answers with the queued run. With an
    /// `idempotency_key` (core::StoredScripts), a queued or succeeded run of `who` with that key
    /// is answered as it is, and one left running by a process that died runs again (one that
    /// another attempt still runs is waited for).
    boost::json::object start_run(const core::Principal& who,
                                  std::int64_t script_id,
                                  const boost::json::object& request,
                                  const std::string& trigger = "api",
                                  const std::optional<std::string>& idempotency_key = {});

    /// Carries out a recorded run once (the Inngest function's step). A run already finished
    /// is returned as it is, so a retried step never runs the script twice after it finished;
    /// nor while another attempt still runs it: that one is waited for 20 s, then the step is
    /// retried after the run's time limit (inngest::RetryAfterError).
    boost::json::object execute_run(const core::TenantId& tenant, std::int64_t run_id);

    boost::json::object settings(const core::TenantId& tenant);
    /// Admins only: the ctx.http allow-list and the maxima for per-script limits.
    boost::json::object save_settings(const core::Principal& who,
                                      const boost::json::object& request);

    Repository& repository() noexcept { return repository_; }

private:
    ScriptVersion version_from(const core::TenantId& tenant,
                               const boost::json::object& request,
                               const std::optional<ScriptVersion>& base,
                               boost::json::object& problems) const;
    /// The run's fence (Repository::try_fence) taken on `session`, waited for up to `wait` when
    /// another attempt holds it (at most until that attempt's run is over by its time limit);
    /// still held then, inngest::RetryAfterError for that time. Answers the session holding it.
    std::unique_ptr<core::db::Connection> fence(std::unique_ptr<core::db::Connection> session,
                                                const core::TenantId& tenant,
                                                std::int64_t run_id,
                                                const ScriptVersion& version,
                                                std::chrono::seconds wait);
    boost::json::object run_now(const core::TenantId& tenant,
                                std::int64_t run_id,
                                const ScriptVersion& version,
                                const boost::json::value& arguments);

    Repository& repository_;
    const ScriptRunner& runner_;
    const core::OutboundPolicy& outbound_;
    inngest::Metrics* metrics_;
    /// Synchronous runs hold a request thread each: bounded, so a burst cannot take them all.
    std::mutex sync_mutex_;
    int sync_runs_ = 0;
    std::map<std::string, int> sync_runs_by_tenant_;
};

/// Checks `arguments` against declared `parameters` ([{name, type, required, default}]) and
/// fills defaults. Problems are keyed by argument name.
boost::json::object bind_arguments(const boost::json::array& parameters,
                                   const boost::json::value& arguments,
                                   boost::json::object& problems);

}  // namespace riveredge::scripts
