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

/// How an attempt carrying out a run keeps others from carrying it out too.
struct CarrierTimes {
    /// How long a durable step's attempt waits for another attempt carrying out the same run
    /// (one an executor gave up on after a call timeout set shorter than the embedded
    /// executor's 2 h default may still run the script): short, so the waiting attempt answers
    /// (retry after the run's limit) before it is given up on too.
    std::chrono::milliseconds fence_wait = std::chrono::seconds(20);
    /// The carrier's lease on its run, renewed every `heartbeat` while its worker runs: another
    /// attempt that takes the run's fence (its connection was lost) but finds the lease fresh
    /// does not run the script. A carrier killed stops renewing it: a later attempt carries out
    /// the run once it is stale. Shorter than `fence_wait`, so that attempt is the one.
    std::chrono::milliseconds lease = std::chrono::seconds(15);
    std::chrono::milliseconds heartbeat = std::chrono::seconds(3);
};

class Service {
public:
    /// `metrics`: where run outcomes are counted (none when null).
    Service(Repository& repository,
            const ScriptRunner& runner,
            const core::OutboundPolicy& outbound,
            inngest::Metrics* metrics = nullptr,
            CarrierTimes times = {})
        : repository_(repository),
          runner_(runner),
          outbound_(outbound),
          metrics_(metrics),
          times_(times) {}

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
    /// is answered as it is, and one left running by a process that died runs again; one that
    /// another attempt still runs is waited for 20 s, then inngest::RetryAfterError (after the
    /// run's time limit), which the step lets through so it is retried then and finds the run
    /// by its key. A run without a key (REST) is new: it never waits for another attempt.
    boost::json::object start_run(const core::Principal& who,
                                  std::int64_t script_id,
                                  const boost::json::object& request,
                                  const std::string& trigger = "api",
                                  const std::optional<std::string>& idempotency_key = {});

    /// Carries out a recorded run once (the Inngest function's step). A run already finished
    /// is returned as it is, so a retried step never runs the script twice after it finished;
    /// nor while another attempt still runs it (it holds the run's fence, or a fresh lease on the
    /// run): that one is waited for 20 s, then the step is retried after the run's time limit
    /// (inngest::RetryAfterError).
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
    /// The run's fence (Repository::try_fence) taken on `session` and the run started under it
    /// (Repository::start_run), waited for up to `wait` while another attempt holds the fence or
    /// a fresh lease on the run (at most until that attempt's run is over by its time limit);
    /// still so then, inngest::RetryAfterError for that time. Answers the session holding the
    /// fence, or null when the run had finished.
    std::unique_ptr<core::db::Connection> fence(std::unique_ptr<core::db::Connection> session,
                                                const core::TenantId& tenant,
                                                std::int64_t run_id,
                                                const ScriptVersion& version,
                                                std::chrono::milliseconds wait);
    /// Runs the started run's script, its lease renewed and its fence looked at meanwhile, and
    /// records how it ended.
    boost::json::object run_now(core::db::Connection& fence,
                                const core::TenantId& tenant,
                                std::int64_t run_id,
                                const ScriptVersion& version,
                                const boost::json::value& arguments);

    Repository& repository_;
    const ScriptRunner& runner_;
    const core::OutboundPolicy& outbound_;
    inngest::Metrics* metrics_;
    CarrierTimes times_;
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
