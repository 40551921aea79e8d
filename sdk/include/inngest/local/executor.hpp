#pragma once

/// @file
/// @brief `inngest::local::Executor`: plays the Inngest server's side of the protocol over real
/// HTTP (event API, registration, the call loop, timers, waits, invokes, retries, cron), against
/// any SDK's serve endpoint. For tests, offline development and embedding; use the real Inngest
/// dev server or Cloud at scale.

#include <inngest/errors.hpp>
#include <inngest/local/state_store.hpp>
#include <inngest/logger.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace inngest::local {

using TimePoint = std::chrono::system_clock::time_point;

/// Where the executor reads time. Tests use `ManualClock` to fast-forward sleeps and cron.
class Clock {
public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
};

/// The real clock.
class SystemClock final : public Clock {
public:
    TimePoint now() const override { return std::chrono::system_clock::now(); }
};

/// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
public:
    explicit ManualClock(TimePoint start = std::chrono::system_clock::now());
    TimePoint now() const override;
    void advance(std::chrono::milliseconds by);

private:
    mutable std::mutex mutex_;
    TimePoint now_;
};

enum class RunStatus { kRunning, kCompleted, kFailed, kCancelled };

/// `Running`, `Completed`, `Failed` or `Cancelled`.
const char* run_status_name(RunStatus status) noexcept;

/// One entry of a run's step history.
struct StepRecord {
    std::string hashed_id{};
    std::string name{};
    /// The op as reported (`StepRun`, `Sleep`, ...), or `Resumed`/`TimedOut` for waits.
    std::string op{};
    boost::json::value data{};
    boost::json::value error{};
    int attempt = 0;
    /// When the step began (the call that ran it, or the sleep/wait/invoke's start) and when it
    /// resolved, in ms since the epoch on the executor's clock; 0 when unknown (older records).
    std::int64_t started_ms = 0;
    std::int64_t ended_ms = 0;
};

/// A step the run waits on now: a sleep, a wait for an event or an invoke.
struct PendingStep {
    std::string hashed_id{};
    std::string name{};
    /// `Sleep`, `WaitForEvent` or `InvokeFunction`.
    std::string op{};
    std::int64_t started_ms = 0;
    /// The sleep's end or the wait's/invoke's timeout; 0 when none.
    std::int64_t until_ms = 0;
    /// For a wait: the event name and its `if` expression.
    std::string event{};
    std::string condition{};
};

/// An event the executor received (`send`, `POST /e/{key}`) and the runs it started.
struct EventRecord {
    boost::json::object event{};
    std::int64_t received_ms = 0;
    std::vector<std::string> run_ids{};
};

/// A run as the inspection API shows it.
struct RunSnapshot {
    std::string run_id{};
    std::string function_id{};
    RunStatus status = RunStatus::kRunning;
    boost::json::object event{};
    boost::json::array events{};
    boost::json::value output{};
    boost::json::value error{};
    std::vector<StepRecord> history{};
    /// Calls made to the SDK so far.
    int calls = 0;
    /// Event names the run waits for now (`step.wait_for_event`), in step order.
    std::vector<std::string> waiting_for{};
    /// When the run started and ended (ms since the epoch on the executor's clock; 0 while
    /// running).
    std::int64_t started_ms = 0;
    std::int64_t ended_ms = 0;
    /// Sleeps, waits and invokes not resolved yet.
    std::vector<PendingStep> pending{};
    /// Calls that failed as a whole and were retried (the function threw outside a step, or
    /// the app could not be reached): op `CallError`, the call's attempt, its error and times.
    std::vector<StepRecord> retried_calls{};
};

/// Stores runs. In memory by default; an application may keep them elsewhere.
class RunStore {
public:
    virtual ~RunStore() = default;
    virtual void save(const RunSnapshot& run) = 0;
    virtual std::optional<RunSnapshot> find(const std::string& run_id) const = 0;
    /// Runs of one function (all when empty), oldest first.
    virtual std::vector<RunSnapshot> list(const std::string& function_id) const = 0;
};

/// The default `RunStore`: every running run and the latest `keep_finished` finished ones.
std::unique_ptr<RunStore> make_memory_run_store(std::size_t keep_finished = 10000);

struct ExecutorOptions {
    std::string host = "127.0.0.1";
    /// 0 picks a free port.
    unsigned short port = 8288;
    /// When set, every call is signed and the API routes require the (hashed) key as bearer.
    std::optional<std::string> signing_key{};
    /// Accepted event keys; empty accepts any key (like `inngest dev`).
    std::vector<std::string> event_keys{};
    /// Defaults to the system clock.
    std::shared_ptr<Clock> clock{};
    /// Defaults to memory.
    std::shared_ptr<RunStore> store{};
    /// Where runs, queued work, functions and dedupe keys are kept so that a restarted executor
    /// resumes them (see `StateStore`); none keeps them in memory only.
    std::shared_ptr<StateStore> state{};
    /// Opens the state store when `state` is not set. When it throws `StateStoreBusy` (another
    /// executor holds the database) this executor stands by: its API answers 503, it runs
    /// nothing, and every `standby_retry` it tries again; once it gets the store it resumes what
    /// was stored, becomes active and calls `on_active`.
    std::function<std::shared_ptr<StateStore>()> open_state{};
    std::chrono::milliseconds standby_retry{1000};
    /// Called once the executor is active: from `start()`, or from the standby thread when it
    /// takes over.
    std::function<void()> on_active{};
    /// Called (from the writer thread) when the store reports that another executor took the
    /// database over, for example after this process lost its database session. The executor
    /// has stopped running work by then and never acts again; the process should restart.
    std::function<void(const std::string& why)> on_replaced{};
    /// How long finished runs stay in the state store.
    std::chrono::hours finished_run_retention{24 * 7};
    /// Threads making calls to SDKs.
    int workers = 4;
    /// Delay before retry `attempt` (1-based); default 1s, 2s, 4s ... capped at 1 min.
    std::function<std::chrono::milliseconds(int attempt)> retry_backoff{};
    /// Timeout of one call to an SDK: by default the protocol's longest call, 2 h, as Inngest
    /// allows. A call still running when it passes counts as a failed attempt and its step is
    /// called again while the first body may still run, so keep it above the longest step.
    /// `stop` waits for the calls in flight up to `stop_grace`.
    std::chrono::milliseconds call_timeout{std::chrono::hours(2)};
    /// How long `stop` waits for the calls in flight. Past it they are abandoned: their jobs
    /// stay stored (with a `state` store), so the executor that opens the database next calls
    /// those steps again; without a store they are lost with the rest of the memory.
    std::chrono::milliseconds stop_grace{std::chrono::seconds(15)};
    /// Call bodies larger than this send `use_api` and serve the state from the API instead.
    std::size_t max_inline_state_bytes = std::size_t{4} * 1024 * 1024;
    /// Serves the run dashboard at `/_dashboard` (behind `signing_key` when one is set: a login
    /// form takes the key and sets a session cookie; open like the API otherwise).
    bool dashboard = true;
    /// Received events kept in memory for the dashboard's events page (the newest ones).
    std::size_t keep_events = 1000;
    LogSink log_sink{};
};

/// The executor. Start it, sync apps (`sync_app`), send events (`send` or `POST /e/{key}`),
/// then inspect runs.
///
/// @par Thread safety
/// Every member function is thread-safe.
class Executor {
public:
    explicit Executor(ExecutorOptions options = {});
    ~Executor();
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    /// Binds and starts the HTTP API and the workers.
    void start();
    void stop();
    unsigned short port() const noexcept;
    /// True once the executor runs work: at start, or after a standby took over (see
    /// `ExecutorOptions::open_state`); false again once it was replaced.
    bool active() const noexcept;
    /// `http://<host>:<port>`: the base URL SDKs in this process use (`INNGEST_BASE_URL`). The
    /// bound address (IPv6 bracketed); for 0.0.0.0 or :: the loopback of that family.
    std::string url() const;

    /// Registers the app served at `serve_url`, like `inngest dev -u URL`: a signed in-band
    /// sync when the SDK supports it, else the SDK registers itself at `/fn/register`.
    /// Returns the number of functions registered.
    Result<std::size_t> sync_app(const std::string& serve_url);

    /// Ingests events (an object or an array of objects) as `POST /e/{key}` does; returns ids.
    Result<std::vector<std::string>> send(const boost::json::value& events);

    std::optional<RunSnapshot> run(const std::string& run_id) const;
    /// Runs of a function (its synced id); all runs when empty.
    std::vector<RunSnapshot> runs(const std::string& function_id = {}) const;
    /// Waits (real time) until the run ends; returns its final snapshot, or nullopt on timeout.
    std::optional<RunSnapshot> wait_for_run(const std::string& run_id,
                                            std::chrono::milliseconds timeout) const;
    /// Waits (real time) until `function_id` has at least `count` runs; returns their ids.
    std::vector<std::string> wait_for_runs(const std::string& function_id,
                                           std::size_t count,
                                           std::chrono::milliseconds timeout) const;
    /// Waits (real time) until nothing is due now: no call in flight, no queued work before the
    /// clock's current time. With a `ManualClock`, call after `advance`.
    bool wait_idle(std::chrono::milliseconds timeout) const;
    /// When the earliest queued work is due (timers, retries, cron), if any.
    std::optional<TimePoint> next_due() const;
    /// Wakes the scheduler (after a `ManualClock` moved).
    void poke();

    /// The synced function configs.
    boost::json::array functions() const;

    /// The latest received events (at most `ExecutorOptions::keep_events`), oldest first, each
    /// with the runs it started.
    std::vector<EventRecord> events() const;
    /// Cancels a running run. An error when it is unknown or no longer running.
    Result<void> cancel(const std::string& run_id);
    /// Starts a new run of the run's function with the same event(s), from the first step;
    /// returns its id.
    Result<std::string> rerun(const std::string& run_id);

    class Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace inngest::local
