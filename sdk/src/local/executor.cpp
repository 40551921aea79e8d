#include "crypto/crypto.hpp"
#include "crypto/signing_key.hpp"
#include "local/dashboard.hpp"
#include "local/flow_control.hpp"
#include "local/seen_keys.hpp"
#include "protocol/json_scan.hpp"
#include "protocol/json_writer.hpp"
#include "time_format.hpp"
#include "transport/http_client.hpp"
#include "transport/url.hpp"

#include <inngest/http_server.hpp>
#include <inngest/local/cron.hpp>
#include <inngest/local/executor.hpp>
#include <inngest/local/expression.hpp>
#include <inngest/local/state_store.hpp>
#include <inngest/metrics.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace inngest::local {

ManualClock::ManualClock(TimePoint start) : now_(start) {}

TimePoint ManualClock::now() const {
    const std::lock_guard lock(mutex_);
    return now_;
}

void ManualClock::advance(std::chrono::milliseconds by) {
    const std::lock_guard lock(mutex_);
    now_ += by;
}

const char* run_status_name(RunStatus status) noexcept {
    switch (status) {
        case RunStatus::kRunning:
            return "Running";
        case RunStatus::kCompleted:
            return "Completed";
        case RunStatus::kFailed:
            return "Failed";
        case RunStatus::kCancelled:
            return "Cancelled";
    }
    return "Running";
}

namespace {

// Dedupe keys stay exactly in memory this long; after it the store answers for them (see
// SeenKeys), so memory follows the event rate of a minute, not of a day.
constexpr std::chrono::minutes kRecentDedupe{1};

namespace json = boost::json;
using std::chrono::milliseconds;

// Keeps every running run and the latest `keep_finished` finished ones.
class MemoryRunStore final : public RunStore {
public:
    explicit MemoryRunStore(std::size_t keep_finished) : keep_finished_(keep_finished) {}

    void save(const RunSnapshot& run) override {
        const std::lock_guard lock(mutex_);
        auto [it, inserted] = runs_.try_emplace(run.run_id, Entry{next_++, run});
        if (inserted) {
            order_.emplace(it->second.order, run.run_id);
        } else {
            const bool was_running = it->second.run.status == RunStatus::kRunning;
            it->second.run = run;
            if (was_running && run.status != RunStatus::kRunning) {
                finished_.push_back(run.run_id);
            }
        }
        while (finished_.size() > keep_finished_) {
            const auto oldest = runs_.find(finished_.front());
            if (oldest != runs_.end()) {
                order_.erase(oldest->second.order);
                runs_.erase(oldest);
            }
            finished_.pop_front();
        }
    }
    std::optional<RunSnapshot> find(const std::string& run_id) const override {
        const std::lock_guard lock(mutex_);
        const auto it = runs_.find(run_id);
        if (it == runs_.end()) {
            return std::nullopt;
        }
        return it->second.run;
    }
    std::vector<RunSnapshot> list(const std::string& function_id) const override {
        const std::lock_guard lock(mutex_);
        std::vector<RunSnapshot> out;
        for (const auto& [order, id] : order_) {
            const auto& run = runs_.at(id).run;
            if (function_id.empty() || run.function_id == function_id) {
                out.push_back(run);
            }
        }
        return out;
    }

private:
    struct Entry {
        std::uint64_t order;
        RunSnapshot run;
    };
    std::size_t keep_finished_;
    mutable std::mutex mutex_;
    std::uint64_t next_ = 0;
    std::map<std::string, Entry> runs_;
    std::map<std::uint64_t, std::string> order_;
    std::deque<std::string> finished_;
};

std::int64_t to_millis(TimePoint t) {
    return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

std::optional<milliseconds> parse_time_string(std::string_view text) {
    return detail::parse_time_string(text);
}

// A time string or an RFC 3339 instant, relative to `now`.
std::optional<TimePoint> parse_deadline(const json::value& value, TimePoint now) {
    if (!value.is_string()) {
        return std::nullopt;
    }
    const std::string_view text = value.get_string();
    if (text.size() >= 10) {
        if (const auto instant = detail::parse_rfc3339(text)) {
            return std::chrono::time_point_cast<TimePoint::duration>(*instant);
        }
    }
    if (const auto duration = parse_time_string(text)) {
        return now + *duration;
    }
    return std::nullopt;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string header_of(const detail::InboundResponse& response, std::string_view name) {
    for (const auto& [key, value] : response.headers) {
        if (lower(key) == lower(name)) {
            return value;
        }
    }
    return {};
}

class IdGenerator {
public:
    // ULID-shaped ids: 10 characters of milliseconds, 16 of randomness (Crockford base32).
    std::string next(TimePoint now) {
        static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        std::string id(26, '0');
        auto ms = static_cast<std::uint64_t>(to_millis(now));
        for (int i = 9; i >= 0; --i) {
            id[static_cast<std::size_t>(i)] = kAlphabet[ms % 32];
            ms /= 32;
        }
        const std::lock_guard lock(mutex_);
        for (std::size_t i = 10; i < 26; ++i) {
            id[i] = kAlphabet[random_() % 32];
        }
        return id;
    }

private:
    std::mutex mutex_;
    std::mt19937_64 random_{std::random_device{}()};
};

std::string query_value(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name && eq != std::string_view::npos) {
            return std::string(pair.substr(eq + 1));
        }
    }
    return {};
}

bool event_name_matches(std::string_view pattern, std::string_view name) {
    if (pattern == name) {
        return true;
    }
    // Wildcards as Inngest allows them: a trailing `*` segment, `prefix/*` or `prefix.*`.
    if (pattern.ends_with("*")) {
        const std::string_view prefix = pattern.substr(0, pattern.size() - 1);
        return name.starts_with(prefix) && name.size() > prefix.size();
    }
    return false;
}

}  // namespace

class Executor::Impl {
public:
    explicit Impl(ExecutorOptions options) : options_(std::move(options)) {
        describe_metrics();
        if (!options_.clock) {
            options_.clock = std::make_shared<SystemClock>();
        }
        if (!options_.store) {
            options_.store = make_memory_run_store();
        }
        if (!options_.retry_backoff) {
            options_.retry_backoff = [](int attempt) {
                return std::min(milliseconds(1000LL << std::min(attempt - 1, 6)),
                                milliseconds(60000));
            };
        }
        if (options_.signing_key) {
            key_ = detail::SigningKey::parse(*options_.signing_key);
            std::string normalized = *options_.signing_key;
            if (const auto dash = normalized.rfind('-');
                normalized.starts_with("signkey-") && dash != std::string::npos) {
                normalized = normalized.substr(dash + 1);
            }
            raw_key_ = normalized;
        }
        if (options_.dashboard) {
            dashboard_ = std::make_unique<internal::Dashboard>(dashboard_hooks());
        }
    }

    ~Impl() { stop(); }

    void start() {
        server_ = std::make_unique<HttpServer>(HttpServerOptions{
            .host = options_.host,
            .port = options_.port,
            .worker_threads = 2,
            .routes = [this](const HttpRequest& request) -> std::optional<HttpResponse> {
                return route(request);
            }});
        bool standing_by = false;
        if (!options_.state && options_.open_state) {
            try {
                options_.state = options_.open_state();
            } catch (const StateStoreBusy& busy) {
                standing_by = true;
                log(LogLevel::kInfo, std::string("standing by: ") + busy.what());
            }
        }
        if (standing_by) {
            server_->start();  // answers 503 until this executor takes over
            standby_ = std::thread([this] { stand_by(); });
            log(LogLevel::kInfo, "local executor standing by on " + url());
            return;
        }
        if (options_.state) {
            // Before the API answers and the workers run: resume exactly what was stored.
            restore(options_.state->load());
        }
        server_->start();
        begin_work();
        log(LogLevel::kInfo, "local executor listening on " + url());
        if (options_.on_active) {
            options_.on_active();
        }
    }

    // The store's writer and the workers; from then on the executor is active.
    void begin_work() {
        if (options_.state) {
            writer_ = std::thread([this] { write_loop(); });
        }
        for (int i = 0; i < std::max(1, options_.workers); ++i) {
            workers_.emplace_back([this] { work(); });
        }
        active_ = true;
    }

    // Tries to open the store until the active executor is gone (its lock freed), then resumes
    // what it stored. Nothing runs here meanwhile: the API answers 503.
    void stand_by() {
        while (true) {
            std::shared_ptr<StateStore> store;
            {
                std::unique_lock lock(mutex_);
                while (!store) {
                    if (changed_.wait_for(lock, options_.standby_retry,
                                          [&] { return stopping_; })) {
                        return;
                    }
                    lock.unlock();
                    try {
                        store = options_.open_state();
                    } catch (const StateStoreBusy&) {
                        // still held: keep standing by
                    } catch (const std::exception& error) {
                        log(LogLevel::kWarn,
                            std::string("standby: the store cannot be opened: ") + error.what());
                    }
                    lock.lock();
                    if (store && stopping_) {
                        return;
                    }
                }
                options_.state = store;
            }
            try {
                restore(options_.state->load());
                break;
            } catch (const std::exception& error) {
                // Taking over half-loaded would lose work: drop what was loaded, give the
                // store (and its lock) up, and stand by again.
                log(LogLevel::kError,
                    std::string("standby: loading the store failed: ") + error.what());
                const std::lock_guard lock(mutex_);
                functions_.clear();
                runs_.clear();
                jobs_.clear();
                flow_due_.clear();
                seen_ = internal::SeenKeys();
                dirty_runs_.clear();
                seen_dirty_.clear();
                job_writes_.clear();
                job_removals_.clear();
                options_.state.reset();
            }
        }
        {
            const std::lock_guard lock(mutex_);
            if (stopping_) {
                return;
            }
            begin_work();
        }
        log(LogLevel::kInfo, "local executor took over on " + url());
        if (options_.on_active) {
            options_.on_active();
        }
    }

    void stop() {
        {
            const std::lock_guard lock(mutex_);
            if (stopping_) {
                return;
            }
            stopping_ = true;
        }
        changed_.notify_all();
        if (standby_.joinable()) {
            standby_.join();
        }
        {
            // A step body may run as long as call_timeout: past the grace its calls are
            // abandoned. Their jobs are not retired, so the stored rows bring them back.
            std::unique_lock lock(mutex_);
            if (!calls_done_.wait_for(lock, options_.stop_grace,
                                      [this] { return calls_out_ == 0; })) {
                log(LogLevel::kWarn, "stop: abandoning " + std::to_string(calls_out_) +
                                         " call(s) still running after the grace; a stored "
                                         "step is called again by the next executor");
                abandon_ = true;
            }
        }
        for (auto& worker : workers_) {
            if (worker.joinable()) {
                worker.join();
            }
        }
        {
            // The writer stores what is queued, then stops.
            const std::lock_guard lock(mutex_);
            writer_stopping_ = true;
        }
        writer_wake_.notify_all();
        if (writer_.joinable()) {
            writer_.join();
        }
        if (server_) {
            server_->stop(milliseconds(1000));
        }
    }

    unsigned short port() const noexcept { return server_ ? server_->port() : 0; }
    bool active() const noexcept { return active_ && !replaced_; }
    // Where this process reaches its own server: the bound address, or loopback of the same
    // family when bound to every address (a client posting to 127.0.0.1 would be refused by a
    // server bound to ::1 or one interface only).
    std::string url() const {
        boost::system::error_code ec;
        const auto address = boost::asio::ip::make_address(options_.host, ec);
        std::string host;
        if (ec) {
            host = options_.host;  // a name; the server itself only binds addresses
        } else if (address.is_unspecified()) {
            host = address.is_v6() ? "[::1]" : "127.0.0.1";
        } else if (address.is_v6()) {
            host = "[" + options_.host + "]";
        } else {
            host = options_.host;
        }
        return "http://" + host + ":" + std::to_string(port());
    }

    // ---- public API --------------------------------------------------------------------

    Result<std::size_t> sync_app(const std::string& serve_url) {
        if (!active()) {
            return Error{ErrorCode::kSyncFailed, "this executor is not active (standing by)"};
        }
        const std::string body = detail::to_json(json::object{{"url", serve_url}});
        detail::OutboundRequest request{"PUT", serve_url,           {},
                                        body,  milliseconds(30000), std::nullopt};
        request.headers = {{"Content-Type", "application/json"},
                           {"X-Inngest-Server-Kind", options_.signing_key ? "cloud" : "dev"},
                           {"X-Inngest-Sync-Kind", "in_band"}};
        if (key_) {
            request.headers.emplace_back("X-Inngest-Signature",
                                         detail::sign_body(*key_, body, real_now_seconds()));
        }
        const std::size_t before = registrations_;
        auto response = detail::send_http(request);
        if (!response) {
            return response.error();
        }
        if (response->status != 200) {
            return Error{ErrorCode::kSyncFailed, "sync of " + serve_url + " answered " +
                                                     std::to_string(response->status) + ": " +
                                                     response->body.substr(0, 300)};
        }
        if (lower(header_of(*response, "X-Inngest-Sync-Kind")) == "in_band") {
            boost::system::error_code ec;
            const json::value reply = json::parse(response->body, ec);
            if (ec || !reply.is_object() || !reply.at("functions").is_array()) {
                return Error{ErrorCode::kSyncFailed, "in-band sync answered without functions"};
            }
            auto registered = register_functions(reply.at("functions").get_array(),
                                                 std::string(reply.at("app_id").as_string()));
            if (!registered) {
                return registered.error();
            }
            return *registered;
        }
        // Out of band: the SDK has called /fn/register before answering the PUT.
        const std::lock_guard lock(mutex_);
        if (registrations_ == before) {
            return Error{ErrorCode::kSyncFailed,
                         "the app answered the sync but never registered at " + url() +
                             "/fn/register (is its INNGEST_BASE_URL pointing here?)"};
        }
        return last_registered_count_;
    }

    Result<std::vector<std::string>> send(const json::value& events) {
        if (!active()) {
            return Error{ErrorCode::kRemoteRejected, "this executor is not active (standing by)"};
        }
        std::vector<std::string> ids;
        const auto ingest_one = [&](const json::value& event) -> std::optional<Error> {
            auto id = ingest(event);
            if (!id) {
                return id.error();
            }
            ids.push_back(*id);
            return std::nullopt;
        };
        if (events.is_array()) {
            for (const auto& event : events.get_array()) {
                if (auto error = ingest_one(event)) {
                    return *error;
                }
            }
        } else if (auto error = ingest_one(events)) {
            return *error;
        }
        return ids;
    }

    std::optional<RunSnapshot> run(const std::string& run_id) const {
        return options_.store->find(run_id);
    }

    std::vector<RunSnapshot> runs(const std::string& function_id) const {
        return options_.store->list(function_id);
    }

    std::optional<RunSnapshot> wait_for_run(const std::string& run_id, milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        std::optional<RunSnapshot> found;
        const bool done = changed_.wait_for(lock, timeout, [&] {
            found = options_.store->find(run_id);
            return found && found->status != RunStatus::kRunning;
        });
        if (!done) {
            return std::nullopt;
        }
        return found;
    }

    std::vector<std::string> wait_for_runs(const std::string& function_id,
                                           std::size_t count,
                                           milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        std::vector<std::string> ids;
        changed_.wait_for(lock, timeout, [&] {
            ids.clear();
            for (const auto& run : options_.store->list(function_id)) {
                ids.push_back(run.run_id);
            }
            return ids.size() >= count;
        });
        return ids;
    }

    bool wait_idle(milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            if (in_flight_ > 0) {
                return false;
            }
            const TimePoint now = options_.clock->now();
            return jobs_.empty() || jobs_.begin()->first > now;
        });
    }

    void poke() { changed_.notify_all(); }

    std::optional<TimePoint> next_due() const {
        const std::lock_guard lock(mutex_);
        if (jobs_.empty()) {
            return std::nullopt;
        }
        return jobs_.begin()->first;
    }

    json::array functions() const {
        const std::lock_guard lock(mutex_);
        json::array out;
        for (const auto& [slug, fn] : functions_) {
            out.push_back(fn->config);
        }
        return out;
    }

    std::vector<EventRecord> events() const {
        const std::lock_guard lock(mutex_);
        return {events_.begin(), events_.end()};
    }

    Result<void> cancel_run(const std::string& run_id) {
        std::unique_lock lock(mutex_);
        const auto it = runs_.find(run_id);
        if (!active() || it == runs_.end() || it->second.snapshot.status != RunStatus::kRunning) {
            return Error{ErrorCode::kInvalidArgument, "the run is not running"};
        }
        cancel(it->second, options_.clock->now());
        if (!persist(lock)) {
            return Error{ErrorCode::kInternal, "the executor could not store the cancellation"};
        }
        changed_.notify_all();
        return {};
    }

    Result<std::string> rerun(const std::string& run_id) {
        const auto original = options_.store->find(run_id);
        if (!original) {
            return Error{ErrorCode::kInvalidArgument, "run not found"};
        }
        std::unique_lock lock(mutex_);
        const auto fn = functions_.find(original->function_id);
        if (!active() || fn == functions_.end()) {
            return Error{ErrorCode::kInvalidArgument, "the run's function is not registered"};
        }
        const std::string id =
            start_run(*fn->second, original->event, original->events, options_.clock->now());
        log(LogLevel::kInfo, "run " + id + " reruns " + run_id);
        if (!persist(lock)) {
            return Error{ErrorCode::kInternal, "the executor could not store the new run"};
        }
        changed_.notify_all();
        return id;
    }

private:
    internal::DashboardHooks dashboard_hooks() {
        internal::DashboardHooks hooks;
        hooks.key_required = key_.has_value();
        hooks.key_accepted = [this](std::string_view key) {
            return key_accepted(key);
        };
        hooks.functions = [this] {
            return functions();
        };
        hooks.runs = [this] {
            return runs({});
        };
        hooks.run = [this](const std::string& id) {
            return run(id);
        };
        hooks.events = [this] {
            return events();
        };
        hooks.send = [this](const json::value& events) {
            return send(events);
        };
        hooks.cancel = [this](const std::string& id) {
            return cancel_run(id);
        };
        hooks.rerun = [this](const std::string& id) {
            return rerun(id);
        };
        hooks.now_ms = [this] {
            return to_millis(options_.clock->now());
        };
        return hooks;
    }

    struct Trigger {
        std::string event;
        std::optional<Expression> expression;
        std::optional<CronSchedule> cron;
    };

    struct CancelRule {
        std::string event;
        std::optional<Expression> condition;
        /// How long after the run's start the rule listens (a time string or an instant).
        json::value timeout;
    };

    struct FunctionEntry {
        std::string slug;
        std::string app_id;
        std::string url;
        json::object config;
        std::vector<Trigger> triggers;
        std::vector<CancelRule> cancels;
        std::optional<Expression> idempotency;
        int max_attempts = 5;
        internal::FlowControl flow;
        /// Loaded from the state store and not synced since: its URL may be stale.
        bool restored = false;
    };

    struct Wait {
        std::string event;
        std::optional<Expression> condition;
        std::string name;
    };

    struct Run {
        RunSnapshot snapshot;
        json::object steps;
        std::vector<std::string> stack;
        std::set<std::string>
            pending;  // hashes awaiting resolution (planned, timers, waits, invokes)
        std::map<std::string, Wait> waits;
        std::set<std::string> invokes;  // hashes waiting for a child run
        /// Sleeps, waits and invokes in progress, with their start and deadline (for display).
        std::map<std::string, PendingStep> waiting;
        bool disable_immediate_execution = false;
        int version = -1;
        TimePoint started;
        std::string parent_run;
        std::string parent_hash;
        /// The concurrency buckets the run's calls count in (see concurrency_bucket).
        std::vector<std::string> concurrency_buckets;
        /// Seconds ahead of its arrival the run goes when calls wait for a slot.
        std::int64_t priority = 0;
        /// Set for a function with a singleton rule: the bucket the run holds.
        std::optional<std::string> singleton;
        int calls_in_flight = 0;
        /// Start order (kept across restarts).
        std::int64_t sequence = 0;
    };

    // Flow-control jobs (debounce, batch, throttle, rate_window) hold a bucket's state: `slug`
    // the function, `hash` the bucket, `event` the state, `attempt` a revision (so each update
    // is a row of its own); they are due when the bucket acts or its state expires.
    enum class JobKind {
        kCall,
        kTimer,
        kWaitTimeout,
        kInvokeTimeout,
        kCron,
        kDelayedEvent,
        kDebounce,
        kBatch,
        kThrottle,
        kRateWindow
    };

    struct Job {
        JobKind kind = JobKind::kCall;
        std::string run_id;
        std::string step_id = "step";
        int attempt = 0;
        std::string hash;
        std::string slug;
        json::value event;
        TimePoint scheduled;
        /// Its row in the state store (see enqueue).
        std::string key;
    };

    // ---- HTTP API ----------------------------------------------------------------------

    static HttpResponse reply(int status, const json::value& body) {
        return HttpResponse{status, {{"Content-Type", "application/json"}}, detail::to_json(body)};
    }

    bool authorized(const HttpRequest& request) const {
        if (!key_) {
            return true;
        }
        std::string bearer(request.header("Authorization"));
        if (!bearer.starts_with("Bearer ")) {
            return false;
        }
        return key_accepted(bearer.substr(7));
    }

    // Accept the hashed key (what SDKs send) or the plain key, prefix optional (§5.4).
    bool key_accepted(std::string_view bearer) const {
        if (!key_) {
            return true;
        }
        const auto strip = [](std::string value) {
            if (value.starts_with("signkey-")) {
                const auto dash = value.find('-', 8);
                if (dash != std::string::npos) {
                    value = value.substr(dash + 1);
                }
            }
            return value;
        };
        const std::string given = strip(std::string(bearer));
        return detail::crypto::constant_time_equal(given, strip(key_->hashed())) ||
               detail::crypto::constant_time_equal(given, raw_key_);
    }

    // Without a key the API trusts whoever reaches it, and a browser reaches loopback too: any
    // page may post an event (text/plain needs no preflight), and one whose own name was
    // rebound to 127.0.0.1 may read runs. Browsers send an Origin on such posts and their own
    // name as Host; SDKs and the Inngest CLI send neither.
    std::optional<HttpResponse> refuse_browser(const HttpRequest& request) const {
        if (key_) {
            return std::nullopt;
        }
        if (request.method == "POST" && request.path.starts_with("/e/") &&
            !options_.event_keys.empty()) {
            return std::nullopt;  // an event key is asked for: no page knows it
        }
        const std::string_view host = request.header("Host");
        if (!request.header("Origin").empty()) {
            return reply(403, json::object{{"error",
                                            "an executor without a key refuses requests "
                                            "from web pages (an Origin header)"},
                                           {"status", 403}});
        }
        if (!host.empty() && !detail::loopback_host_header(host)) {
            return reply(403, json::object{{"error",
                                            "an executor without a key answers on "
                                            "loopback names only"},
                                           {"status", 403}});
        }
        return std::nullopt;
    }

    std::optional<HttpResponse> route(const HttpRequest& request) {
        const std::string& path = request.path;
        if (request.method == "GET" && path == "/health") {
            return reply(200, json::object{{"ok", true}, {"active", active()}});
        }
        if (!active()) {
            return reply(503,
                         json::object{{"error", replaced_ ? "this executor was replaced by another"
                                                          : "this executor stands by; another "
                                                            "one is active on its database"},
                                      {"status", 503}});
        }
        if (dashboard_ && (path == "/_dashboard" || path.starts_with("/_dashboard/"))) {
            return dashboard_->handle(request);
        }
        if (const auto refused = refuse_browser(request)) {
            return refused;
        }
        if (request.method == "POST" && path.starts_with("/e/")) {
            const std::string key = path.substr(3);
            // Every key is compared, each in constant time, like the signing key.
            bool known = options_.event_keys.empty();
            for (const auto& event_key : options_.event_keys) {
                known = detail::crypto::constant_time_equal(key, event_key) || known;
            }
            if (!known) {
                return reply(401, json::object{{"error", "unknown event key"}, {"status", 401}});
            }
            boost::system::error_code ec;
            const json::value body = json::parse(request.body, ec);
            if (ec) {
                return reply(400,
                             json::object{{"error", "request body is not JSON"}, {"status", 400}});
            }
            auto ids = send(body);
            if (!ids) {
                const int status = error_code_status(ids.error().code);
                return reply(status,
                             json::object{{"error", ids.error().message}, {"status", status}});
            }
            json::array out;
            for (const auto& id : *ids) {
                out.emplace_back(id);
            }
            return reply(200, json::object{{"ids", out}, {"status", 200}});
        }
        if (request.method == "GET" && path == "/metrics") {
            // Function names and volumes are the operator's: the API key is required.
            if (!authorized(request)) {
                return reply(401, json::object{{"error", "unauthorized"}, {"status", 401}});
            }
            return HttpResponse{200,
                                {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
                                metrics_text()};
        }
        const bool api_route =
            path == "/fn/register" || path.starts_with("/v0/") || path.starts_with("/v1/");
        if (api_route && !authorized(request)) {
            return reply(401, json::object{{"error", "unauthorized"}, {"status", 401}});
        }
        if (request.method == "POST" && path == "/fn/register") {
            boost::system::error_code ec;
            const json::value body = json::parse(request.body, ec);
            if (ec || !body.is_object() || !body.as_object().contains("functions") ||
                !body.at("functions").is_array()) {
                return reply(
                    400, json::object{{"error", "invalid registration payload"}, {"status", 400}});
            }
            const auto* app = body.as_object().if_contains("appName");
            auto registered = register_functions(
                body.at("functions").get_array(),
                app != nullptr && app->is_string() ? std::string(app->get_string()) : "app");
            if (!registered) {
                return reply(400,
                             json::object{{"error", registered.error().message}, {"status", 400}});
            }
            return reply(200, json::object{{"ok", true}, {"modified", true}});
        }
        if (request.method == "POST" && path == "/v1/apps") {
            // Re-sync an app on demand, like the dev server's "sync" button.
            boost::system::error_code ec;
            const json::value body = json::parse(request.body, ec);
            const json::value* url =
                !ec && body.is_object() ? body.as_object().if_contains("url") : nullptr;
            if (url == nullptr || !url->is_string()) {
                return reply(400,
                             json::object{{"error", "body must be {\"url\": \"<serve url>\"}"}});
            }
            auto synced = sync_app(std::string(url->get_string()));
            if (!synced) {
                return reply(502, json::object{{"error", synced.error().message}});
            }
            return reply(200, json::object{{"ok", true}, {"functions", *synced}});
        }
        if (request.method == "GET" && path == "/v1/runs") {
            // Oldest first; `offset` and `limit` (1..1000, default 1000) page through the
            // matches, whose count is in X-Total-Count.
            const auto number = [&request](const char* name, long fallback, long high) {
                const std::string text = query_value(request.query, name);
                char* end = nullptr;
                const long value = text.empty() ? fallback : std::strtol(text.c_str(), &end, 10);
                return (text.empty() || (end != nullptr && *end == '\0')) && value >= 0 &&
                               value <= high
                           ? std::optional<long>(value)
                           : std::nullopt;
            };
            const auto limit = number("limit", 1000, 1000);
            const auto offset = number("offset", 0, 1L << 40);
            if (!limit || *limit == 0 || !offset) {
                return reply(400, json::object{{"error", "limit is 1 to 1000, offset 0 or more"},
                                               {"status", 400}});
            }
            const std::string status = query_value(request.query, "status");
            json::array out;
            long matched = 0;
            for (const auto& run : runs(query_value(request.query, "function_id"))) {
                if (!status.empty() && status != run_status_name(run.status)) {
                    continue;
                }
                if (matched >= *offset && matched - *offset < *limit) {
                    out.push_back(snapshot_json(run));
                }
                ++matched;
            }
            auto response = reply(200, out);
            response.headers.emplace_back("X-Total-Count", std::to_string(matched));
            return response;
        }
        if (request.method == "GET" && path.starts_with("/v0/runs/")) {
            return run_state(path.substr(9));
        }
        if (request.method == "POST" && path.starts_with("/v1/checkpoint/")) {
            return checkpoint(path.substr(15), request.body);
        }
        if (request.method == "GET" && path.starts_with("/v1/runs/")) {
            const auto found = run(path.substr(9));
            if (!found) {
                return reply(404, json::object{{"error", "run not found"}});
            }
            return reply(200, snapshot_json(*found));
        }
        return std::nullopt;
    }

    HttpResponse run_state(const std::string& rest) {
        const auto slash = rest.find('/');
        const std::string run_id = rest.substr(0, slash);
        const std::string what = slash == std::string::npos ? "" : rest.substr(slash + 1);
        const std::lock_guard lock(mutex_);
        const auto it = runs_.find(run_id);
        if (it == runs_.end()) {
            return reply(410, json::object{{"error", "runtime state is no longer available"},
                                           {"status", 410}});
        }
        if (what == "batch") {
            return reply(200, it->second.snapshot.events);
        }
        if (what == "actions") {
            return reply(200, it->second.steps);
        }
        return reply(404, json::object{{"error", "not found"}});
    }

    // Checkpointing SDKs report finished steps here while they keep running (protocol §17).
    HttpResponse checkpoint(const std::string& rest, const std::string& body_text) {
        const std::string run_id = rest.substr(0, rest.find('/'));
        boost::system::error_code ec;
        const json::value body = detail::parse_json(body_text, ec);
        if (ec || !body.is_object()) {
            return reply(400, json::object{{"error", "invalid checkpoint body"}});
        }
        const std::lock_guard lock(mutex_);
        const auto it = runs_.find(run_id);
        if (it == runs_.end() || it->second.snapshot.status != RunStatus::kRunning) {
            return reply(404, json::object{{"error", "run not found"}});
        }
        Run& run = it->second;
        log(LogLevel::kDebug, "checkpoint: run " + run_id + " reported steps while running");
        if (const auto* steps = body.as_object().if_contains("steps");
            steps != nullptr && steps->is_array()) {
            for (const auto& op : steps->get_array()) {
                if (!op.is_object()) {
                    continue;
                }
                const std::string kind = lower(
                    op.as_object().contains("op") ? std::string(op.at("op").as_string()) : "");
                const std::string hash(op.at("id").as_string());
                if (kind == "steprun") {
                    memoize(run, hash,
                            json::object{{"data", op.as_object().contains("data") ? op.at("data")
                                                                                  : json::value()}},
                            op_name(op.as_object()), "StepRun", json::value());
                } else if (kind == "runcomplete") {
                    complete(run, op.as_object().contains("data") ? op.at("data") : json::value());
                }
            }
        }
        save(run);
        return reply(200, json::object{});
    }

    static std::string op_name(const json::object& op) {
        for (const char* key : {"displayName", "name"}) {
            if (const auto* v = op.if_contains(key); v != nullptr && v->is_string()) {
                return std::string(v->get_string());
            }
        }
        return {};
    }

    static json::value snapshot_json(const RunSnapshot& run) {
        json::array history;
        for (const auto& step : run.history) {
            history.push_back(json::object{{"id", step.hashed_id},
                                           {"name", step.name},
                                           {"op", step.op},
                                           {"data", step.data},
                                           {"error", step.error},
                                           {"attempt", step.attempt},
                                           {"started_at", step.started_ms},
                                           {"ended_at", step.ended_ms}});
        }
        json::array pending;
        for (const auto& step : run.pending) {
            pending.push_back(pending_json(step));
        }
        return json::object{{"run_id", run.run_id},
                            {"function_id", run.function_id},
                            {"status", run_status_name(run.status)},
                            {"event", run.event},
                            {"output", run.output},
                            {"error", run.error},
                            {"history", history},
                            {"calls", run.calls},
                            {"waiting_for", string_array(run.waiting_for)},
                            {"started_at", run.started_ms},
                            {"ended_at", run.ended_ms},
                            {"pending", std::move(pending)}};
    }

    // ---- registration ------------------------------------------------------------------

    // `source` compiled, or the error naming the function it belongs to.
    static Result<Expression> compile_for(const std::string& slug, std::string_view source) {
        auto compiled = Expression::compile(source);
        if (!compiled) {
            return Error{ErrorCode::kInvalidArgument, slug + ": " + compiled.error().message};
        }
        return compiled;
    }

    // A function config as synced, compiled: triggers, cancellation, flow control.
    static Result<FunctionEntry> compile_function(const json::object& config,
                                                  const std::string& app_id) {
        FunctionEntry fn;
        fn.config = config;
        fn.app_id = app_id;
        const auto* id = config.if_contains("id");
        const auto* name = config.if_contains("name");
        if (id == nullptr || !id->is_string() || id->get_string().empty()) {
            return Error{ErrorCode::kInvalidArgument, "a function needs an id"};
        }
        fn.slug = id->get_string();
        if (name == nullptr || !name->is_string() || name->get_string().empty()) {
            return Error{ErrorCode::kInvalidArgument,
                         "A function name is required (" + fn.slug + ")"};
        }
        const json::value* step_url = nullptr;
        if (const auto* steps = config.if_contains("steps");
            steps != nullptr && steps->is_object() && steps->get_object().size() == 1) {
            const auto& step = steps->get_object().begin()->value();
            if (step.is_object()) {
                if (const auto* runtime = step.get_object().if_contains("runtime");
                    runtime != nullptr && runtime->is_object()) {
                    step_url = runtime->get_object().if_contains("url");
                }
                if (const auto* retries = step.get_object().if_contains("retries");
                    retries != nullptr && retries->is_object()) {
                    if (const auto* attempts = retries->get_object().if_contains("attempts");
                        attempts != nullptr && attempts->is_int64()) {
                        fn.max_attempts = static_cast<int>(std::clamp<std::int64_t>(
                                              attempts->get_int64(), 0, 20)) +
                                          1;
                    }
                }
            }
        }
        if (step_url == nullptr || !step_url->is_string() ||
            !(step_url->get_string().starts_with("http://") ||
              step_url->get_string().starts_with("https://"))) {
            return Error{ErrorCode::kInvalidArgument,
                         fn.slug + ": exactly one step with an http(s) runtime url is required"};
        }
        fn.url = step_url->get_string();
        if (const auto* triggers = config.if_contains("triggers");
            triggers != nullptr && triggers->is_array()) {
            for (const auto& t : triggers->get_array()) {
                Trigger trigger;
                const auto& object = t.as_object();
                if (const auto* event = object.if_contains("event");
                    event != nullptr && event->is_string()) {
                    trigger.event = event->get_string();
                    if (const auto* expr = object.if_contains("expression");
                        expr != nullptr && expr->is_string()) {
                        auto compiled = compile_for(fn.slug, expr->get_string());
                        if (!compiled) {
                            return compiled.error();
                        }
                        trigger.expression = std::move(*compiled);
                    }
                } else if (const auto* cron = object.if_contains("cron");
                           cron != nullptr && cron->is_string()) {
                    auto schedule = CronSchedule::parse(cron->get_string());
                    if (!schedule) {
                        return Error{ErrorCode::kInvalidArgument,
                                     fn.slug + ": " + schedule.error().message};
                    }
                    trigger.cron = std::move(*schedule);
                } else {
                    return Error{ErrorCode::kInvalidArgument,
                                 fn.slug + ": a trigger needs an event or a cron"};
                }
                fn.triggers.push_back(std::move(trigger));
            }
        }
        if (const auto* cancels = config.if_contains("cancel");
            cancels != nullptr && cancels->is_array()) {
            for (const auto& c : cancels->get_array()) {
                CancelRule rule;
                rule.event = c.at("event").as_string();
                if (const auto* cond = c.as_object().if_contains("if");
                    cond != nullptr && cond->is_string()) {
                    auto compiled = compile_for(fn.slug, cond->get_string());
                    if (!compiled) {
                        return compiled.error();
                    }
                    rule.condition = std::move(*compiled);
                }
                if (const auto* timeout = c.as_object().if_contains("timeout")) {
                    rule.timeout = *timeout;
                }
                fn.cancels.push_back(std::move(rule));
            }
        }
        if (const auto* key = config.if_contains("idempotency");
            key != nullptr && key->is_string()) {
            auto compiled = compile_for(fn.slug, key->get_string());
            if (!compiled) {
                return compiled.error();
            }
            fn.idempotency = std::move(*compiled);
        }
        auto flow = internal::compile_flow_control(fn.slug, config);
        if (!flow) {
            return flow.error();
        }
        fn.flow = std::move(*flow);
        return fn;
    }

    Result<std::size_t> register_functions(const json::array& configs, const std::string& app_id) {
        std::vector<FunctionEntry> entries;
        for (const auto& value : configs) {
            if (!value.is_object()) {
                return Error{ErrorCode::kInvalidArgument, "a function config must be an object"};
            }
            auto fn = compile_function(value.get_object(), app_id);
            if (!fn) {
                return fn.error();
            }
            entries.push_back(std::move(*fn));
        }
        std::unique_lock lock(mutex_);
        // A sync replaces the app's previous functions.
        std::set<std::string> slugs;
        for (auto it = functions_.begin(); it != functions_.end();) {
            if (it->second->app_id == app_id) {
                slugs.insert(it->first);
                it = functions_.erase(it);
            } else {
                ++it;
            }
        }
        // An armed cron tick of a trigger that still exists stays (a restored tick that is
        // already due fires once); ticks of removed triggers go.
        std::set<std::pair<std::string, std::string>> armed;
        for (const auto& fn : entries) {
            slugs.insert(fn.slug);
        }
        for (auto it = jobs_.begin(); it != jobs_.end();) {
            const Job& job = it->second;
            if (job.kind != JobKind::kCron || slugs.count(job.slug) == 0) {
                ++it;
                continue;
            }
            const std::string expression(job.event.as_string());
            const bool kept = std::any_of(entries.begin(), entries.end(), [&](const auto& fn) {
                return fn.slug == job.slug &&
                       std::any_of(fn.triggers.begin(), fn.triggers.end(), [&](const Trigger& t) {
                           return t.cron && t.cron->expression() == expression;
                       });
            });
            if (kept && armed.emplace(job.slug, expression).second) {
                ++it;
            } else {
                retire(it->second);
                it = jobs_.erase(it);
            }
        }
        const TimePoint now = options_.clock->now();
        for (auto& fn : entries) {
            for (const auto& trigger : fn.triggers) {
                if (trigger.cron && armed.count({fn.slug, trigger.cron->expression()}) == 0) {
                    if (const auto next = trigger.cron->next_after(now)) {
                        Job job;
                        job.kind = JobKind::kCron;
                        job.slug = fn.slug;
                        job.scheduled = *next;
                        job.event = json::value(trigger.cron->expression());
                        enqueue(*next, std::move(job));
                    }
                }
            }
            const std::string slug = fn.slug;
            functions_[slug] = std::make_shared<const FunctionEntry>(std::move(fn));
        }
        ++registrations_;
        last_registered_count_ = entries.size();
        release_awaiting_sync();
        functions_dirty_ = true;
        if (!persist(lock)) {
            return Error{ErrorCode::kInternal, "the executor could not store the functions"};
        }
        changed_.notify_all();
        log(LogLevel::kInfo,
            "registered " + std::to_string(entries.size()) + " functions of " + app_id);
        return entries.size();
    }

    // ---- events ------------------------------------------------------------------------

    Result<std::string> ingest(const json::value& raw) {
        if (!raw.is_object()) {
            return Error{ErrorCode::kInvalidArgument, "an event must be an object"};
        }
        json::object event = raw.get_object();
        const auto* name = event.if_contains("name");
        if (name == nullptr || !name->is_string() || name->get_string().empty()) {
            return Error{ErrorCode::kInvalidArgument, "an event needs a name"};
        }
        if (const auto* data = event.if_contains("data"); data == nullptr || data->is_null()) {
            event["data"] = json::object{};
        } else if (!data->is_object()) {
            return Error{ErrorCode::kInvalidArgument, "event data must be an object"};
        }
        if (!event.contains("user") || !event.at("user").is_object()) {
            event["user"] = json::object{};
        }
        const TimePoint now = options_.clock->now();
        const std::string internal_id = ids_.next(now);
        if (!event.contains("id") || !event.at("id").is_string() ||
            event.at("id").get_string().empty()) {
            event["id"] = internal_id;
        }
        std::int64_t ts = to_millis(now);
        if (const auto* given = event.if_contains("ts");
            given != nullptr && given->is_number() && given->to_number<double>() > 0) {
            ts = static_cast<std::int64_t>(given->to_number<double>());
        }
        event["ts"] = ts;
        std::unique_lock lock(mutex_);
        if (options_.keep_events > 0) {
            events_.push_back(EventRecord{event, to_millis(now), {}});
            while (events_.size() > options_.keep_events) {
                events_.pop_front();
            }
        }
        if (ts > to_millis(now)) {
            // A future ts starts its runs at that time.
            Job job;
            job.kind = JobKind::kDelayedEvent;
            job.event = std::move(event);
            enqueue(TimePoint(milliseconds(ts)), std::move(job));
        } else {
            dispatch(event, now);
        }
        // Stored before the id is returned: an acknowledged event is never lost.
        if (!persist(lock)) {
            return Error{ErrorCode::kInternal, "the executor could not store the event"};
        }
        changed_.notify_all();
        return internal_id;
    }

    // With mutex_ held.
    void dispatch(const json::object& event, TimePoint now) {
        const std::string name(event.at("name").as_string());
        // Resume waits and cancel runs first: only runs that existed before this event count.
        std::vector<std::string> to_cancel;
        for (auto& [run_id, run] : runs_) {
            if (run.snapshot.status != RunStatus::kRunning) {
                continue;
            }
            const json::object vars{{"event", run.snapshot.event}, {"async", event}};
            for (auto it = run.waits.begin(); it != run.waits.end();) {
                const Wait& wait = it->second;
                if (wait.event == name && (!wait.condition || wait.condition->matches(vars))) {
                    const std::string hash = it->first;
                    const std::string step_name = wait.name;
                    it = run.waits.erase(it);
                    memoize(run, hash, event, step_name, "Resumed", json::value());
                    resolve(run, hash, now);
                } else {
                    ++it;
                }
            }
            const auto fn = functions_.find(run.snapshot.function_id);
            if (fn != functions_.end()) {
                for (const auto& rule : fn->second->cancels) {
                    const auto until = parse_deadline(rule.timeout, run.started);
                    if (event_name_matches(rule.event, name) && (!until || now <= *until) &&
                        (!rule.condition || rule.condition->matches(vars))) {
                        to_cancel.push_back(run_id);
                        break;
                    }
                }
            }
        }
        for (const auto& run_id : to_cancel) {
            cancel(runs_.at(run_id), now);
        }

        if (name == "inngest/function.invoked") {
            const auto* meta = event.at("data").as_object().if_contains("_inngest");
            if (meta != nullptr && meta->is_object()) {
                const auto* target = meta->get_object().if_contains("fn_id");
                if (target != nullptr && target->is_string()) {
                    const auto fn = functions_.find(std::string(target->get_string()));
                    if (fn != functions_.end()) {
                        start_run(*fn->second, event, json::array{event}, now);
                    }
                }
            }
            return;
        }
        for (const auto& [slug, entry] : functions_) {
            const FunctionEntry& fn = *entry;
            const json::object vars{{"event", event}};
            const bool triggered =
                std::any_of(fn.triggers.begin(), fn.triggers.end(), [&](const Trigger& t) {
                    return !t.cron && event_name_matches(t.event, name) &&
                           (!t.expression || t.expression->matches(vars));
                });
            if (!triggered) {
                continue;
            }
            // An event id already seen by this function within 24 h starts no second run.
            const std::string dedupe = slug + "\n" + std::string(event.at("id").as_string());
            if (!remember(dedupe, now)) {
                continue;
            }
            if (fn.idempotency) {
                const auto key = fn.idempotency->evaluate(vars);
                if (key && !remember(slug + "\nidempotency\n" + detail::to_json(*key), now)) {
                    continue;
                }
            }
            admit(fn, event, now);
        }
    }

    // ---- metrics -------------------------------------------------------------------------

    void describe_metrics() {
        metrics_.describe("inngest_executor_runs_started_total", "Runs started, by function",
                          MetricType::kCounter);
        metrics_.describe("inngest_executor_runs_finished_total",
                          "Runs ended, by function and status (Completed, Failed, Cancelled)",
                          MetricType::kCounter);
        metrics_.describe("inngest_executor_call_duration_seconds",
                          "Calls to a function's serve endpoint (each runs one step or more)",
                          MetricType::kHistogram, Metrics::duration_buckets());
        metrics_.describe("inngest_executor_events_skipped_total",
                          "Triggering events that started no run (rate limit, singleton skip)",
                          MetricType::kCounter);
        metrics_.describe("inngest_executor_runs_running", "Runs not yet ended",
                          MetricType::kGauge);
        metrics_.describe("inngest_executor_queue_depth",
                          "Queued work: calls, timers, timeouts, cron ticks, flow-control state",
                          MetricType::kGauge);
        metrics_.describe("inngest_executor_calls_waiting",
                          "Calls held back by a full concurrency bucket", MetricType::kGauge);
    }

    std::string metrics_text() {
        {
            const std::lock_guard lock(mutex_);
            const auto running = std::count_if(runs_.begin(), runs_.end(), [](const auto& entry) {
                return entry.second.snapshot.status == RunStatus::kRunning;
            });
            metrics_.set("inngest_executor_runs_running", {}, static_cast<double>(running));
            metrics_.set("inngest_executor_queue_depth", {}, static_cast<double>(jobs_.size()));
            metrics_.set("inngest_executor_calls_waiting", {},
                         static_cast<double>(blocked_.size()));
        }
        return metrics_.text();
    }

    // ---- flow control --------------------------------------------------------------------

    static bool is_flow(JobKind kind) {
        return kind == JobKind::kDebounce || kind == JobKind::kBatch ||
               kind == JobKind::kThrottle || kind == JobKind::kRateWindow;
    }

    static std::string flow_index(JobKind kind,
                                  const std::string& slug,
                                  const std::string& bucket) {
        return std::string(job_kind_name(kind)) + "\n" + slug + "\n" + bucket;
    }

    // Removes and returns the flow-control job of `kind` for bucket `bucket` of `slug`, if one
    // is queued.
    std::optional<Job> take_flow_job(JobKind kind,
                                     const std::string& slug,
                                     const std::string& bucket) {
        const auto indexed = flow_due_.find(flow_index(kind, slug, bucket));
        if (indexed == flow_due_.end()) {
            return std::nullopt;
        }
        const auto [first, last] = jobs_.equal_range(indexed->second);
        flow_due_.erase(indexed);
        for (auto it = first; it != last; ++it) {
            const Job& job = it->second;
            if (job.kind == kind && job.slug == slug && job.hash == bucket) {
                Job found = job;
                retire(found);
                jobs_.erase(it);
                return found;
            }
        }
        return std::nullopt;
    }

    void put_flow_job(JobKind kind,
                      const std::string& slug,
                      const std::string& bucket,
                      int revision,
                      json::value state,
                      TimePoint due) {
        Job job;
        job.kind = kind;
        job.slug = slug;
        job.hash = bucket;
        job.attempt = revision;
        job.event = std::move(state);
        job.scheduled = due;
        flow_due_[flow_index(kind, slug, bucket)] = due;
        enqueue(due, std::move(job));
        changed_.notify_all();
    }

    // A triggering event, past dedupe: rate limit (drops), then batching or debounce (hold),
    // else a run now.
    void admit(const FunctionEntry& fn, const json::object& event, TimePoint now) {
        const auto& flow = fn.flow;
        if (flow.rate_limit) {
            const std::string bucket = internal::key_of(flow.rate_limit->key, event);
            auto window = take_flow_job(JobKind::kRateWindow, fn.slug, bucket);
            if (window && window->scheduled <= now) {
                window.reset();  // expired, its job not run yet
            }
            const std::int64_t used =
                window ? window->event.at("count").to_number<std::int64_t>() : 0;
            const TimePoint ends = window ? window->scheduled : now + flow.rate_limit->period;
            if (used >= flow.rate_limit->limit) {  // a full window: it stays as it is
                put_flow_job(JobKind::kRateWindow, fn.slug, bucket, window->attempt, window->event,
                             ends);
                log(LogLevel::kInfo, fn.slug + ": event " +
                                         std::string(event.at("id").as_string()) +
                                         " skipped by the rate limit");
                metrics_.add("inngest_executor_events_skipped_total",
                             {{"function", fn.slug}, {"reason", "rate_limit"}});
                return;
            }
            put_flow_job(JobKind::kRateWindow, fn.slug, bucket, static_cast<int>(used + 1),
                         json::object{{"count", used + 1}}, ends);
        }
        if (flow.batch && (!flow.batch->condition ||
                           flow.batch->condition->matches(json::object{{"event", event}}))) {
            const std::string bucket = internal::key_of(flow.batch->key, event);
            auto held = take_flow_job(JobKind::kBatch, fn.slug, bucket);
            json::array events = held ? held->event.at("events").as_array() : json::array{};
            events.push_back(event);
            if (static_cast<int>(events.size()) >= flow.batch->max_size) {
                const json::object first = events.front().as_object();
                begin_run(fn, first, std::move(events), now);
                return;
            }
            const TimePoint due = held ? held->scheduled : now + flow.batch->timeout;
            const int revision = static_cast<int>(events.size());
            put_flow_job(JobKind::kBatch, fn.slug, bucket, revision,
                         json::object{{"events", std::move(events)}}, due);
            return;
        }
        if (flow.debounce) {
            const std::string bucket = internal::key_of(flow.debounce->key, event);
            auto held = take_flow_job(JobKind::kDebounce, fn.slug, bucket);
            const TimePoint first =
                held ? TimePoint(milliseconds(held->event.at("first").to_number<std::int64_t>()))
                     : now;
            TimePoint due = now + flow.debounce->period;
            if (flow.debounce->timeout) {
                due = std::min(due, first + *flow.debounce->timeout);
            }
            put_flow_job(JobKind::kDebounce, fn.slug, bucket, held ? held->attempt + 1 : 0,
                         json::object{{"event", event}, {"first", to_millis(first)}}, due);
            return;
        }
        begin_run(fn, event, json::array{event}, now);
    }

    // A run about to start: singleton (skip, or cancel the one running), then throttle (the
    // first call waits for its slot).
    void begin_run(const FunctionEntry& fn,
                   const json::object& event,
                   json::array events,
                   TimePoint now) {
        const auto& flow = fn.flow;
        std::optional<std::string> singleton;
        if (flow.singleton) {
            singleton = internal::key_of(flow.singleton->key, event);
            std::vector<std::string> running;
            for (const auto& [id, other] : runs_) {
                if (other.snapshot.function_id == fn.slug &&
                    other.snapshot.status == RunStatus::kRunning && other.singleton == singleton) {
                    running.push_back(id);
                }
            }
            if (!running.empty() && !flow.singleton->cancel) {
                log(LogLevel::kInfo,
                    fn.slug + ": run skipped, singleton " + running.front() + " is running");
                metrics_.add("inngest_executor_events_skipped_total",
                             {{"function", fn.slug}, {"reason", "singleton"}});
                return;
            }
            for (const auto& id : running) {
                cancel(runs_.at(id), now);
            }
        }
        TimePoint start = now;
        if (flow.throttle) {
            const std::string bucket = internal::key_of(flow.throttle->key, event);
            auto held = take_flow_job(JobKind::kThrottle, fn.slug, bucket);
            std::optional<TimePoint> arrival;
            if (held && held->scheduled > now) {
                arrival = held->scheduled;
            }
            const auto slot = internal::throttle_slot(*flow.throttle, arrival, now);
            start = slot.start;
            put_flow_job(JobKind::kThrottle, fn.slug, bucket, held ? held->attempt + 1 : 0,
                         json::object{}, slot.next_arrival);
        }
        const auto id = start_run(fn, event, std::move(events), now, {}, {}, start);
        if (singleton) {
            runs_.at(id).singleton = std::move(singleton);
            save(runs_.at(id));
        }
    }

    // A flow-control job came due.
    void flow_job_due(const Job& job, TimePoint now) {
        const auto fn = functions_.find(job.slug);
        if (fn == functions_.end()) {
            return;
        }
        if (job.kind == JobKind::kDebounce) {
            begin_run(*fn->second, job.event.at("event").as_object(),
                      json::array{job.event.at("event")}, now);
        } else if (job.kind == JobKind::kBatch) {
            const auto& events = job.event.at("events").as_array();
            begin_run(*fn->second, events.front().as_object(), events, now);
        }
        // A throttle or rate window that expires leaves its bucket fresh: nothing to do.
    }

    bool remember(const std::string& key, TimePoint now) {
        const auto lookup = [this](const std::string& old_key, std::int64_t since_ms) {
            try {
                return options_.state && options_.state->seen_since(old_key, since_ms);
            } catch (const std::exception& error) {
                // Unconfirmed, it counts as new: refusing it could lose an event; the store's
                // writes fail too then, and the caller hears of that.
                log(LogLevel::kWarn, std::string("dedupe lookup failed: ") + error.what());
                return false;
            }
        };
        if (seen_.seen(key, now, lookup)) {
            return false;
        }
        seen_.insert(key, now);
        seen_dirty_.insert(key);
        return true;
    }

    // ---- runs --------------------------------------------------------------------------

    std::string start_run(const FunctionEntry& fn,
                          const json::object& event,
                          json::array events,
                          TimePoint now,
                          std::string parent_run = {},
                          std::string parent_hash = {},
                          std::optional<TimePoint> first_call = std::nullopt) {
        Run run;
        run.snapshot.run_id = ids_.next(now);
        run.snapshot.function_id = fn.slug;
        run.snapshot.event = event;
        run.snapshot.events = std::move(events);
        run.snapshot.started_ms = to_millis(now);
        run.started = now;
        note_started(run.snapshot);
        run.parent_run = std::move(parent_run);
        run.parent_hash = std::move(parent_hash);
        for (const auto& limit : fn.flow.concurrency) {
            run.concurrency_buckets.push_back(internal::concurrency_bucket(fn.slug, limit, event));
        }
        run.priority = internal::priority_of(fn.flow.priority, event);
        if (event.at("name") == "inngest/function.invoked") {
            if (const auto* meta = event.at("data").as_object().if_contains("_inngest")) {
                if (const auto* correlation = meta->as_object().if_contains("correlation_id");
                    correlation != nullptr && correlation->is_string()) {
                    const std::string text(correlation->get_string());
                    const auto dot = text.find('.');
                    run.parent_run = text.substr(0, dot);
                    run.parent_hash = dot == std::string::npos ? "" : text.substr(dot + 1);
                }
            }
        }
        const std::string id = run.snapshot.run_id;
        run.sequence = next_sequence_++;
        auto& stored = runs_.emplace(id, std::move(run)).first->second;
        save(stored);
        schedule_call(id, "step", 0, first_call.value_or(now));
        metrics_.add("inngest_executor_runs_started_total", {{"function", fn.slug}});
        log(LogLevel::kDebug, "run " + id + " of " + fn.slug + " started");
        return id;
    }

    // Links a new run to the received events it came from (the dashboard's events page).
    void note_started(const RunSnapshot& run) {
        for (const auto& value : run.events) {
            const auto* object = value.if_object();
            const auto* id = object != nullptr ? object->if_contains("id") : nullptr;
            if (id == nullptr || !id->is_string()) {
                continue;
            }
            for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
                if (it->event.at("id") == *id) {
                    it->run_ids.push_back(run.run_id);
                    break;
                }
            }
        }
    }

    void schedule_call(const std::string& run_id,
                       const std::string& step_id,
                       int attempt,
                       TimePoint at) {
        Job job;
        job.kind = JobKind::kCall;
        job.run_id = run_id;
        job.step_id = step_id;
        job.attempt = attempt;
        enqueue(at, std::move(job));
        changed_.notify_all();
    }

    void save(Run& run) {
        run.snapshot.waiting_for.clear();
        for (const auto& [hash, wait] : run.waits) {
            run.snapshot.waiting_for.push_back(wait.event);
        }
        run.snapshot.pending.clear();
        for (const auto& [hash, step] : run.waiting) {
            run.snapshot.pending.push_back(step);
        }
        options_.store->save(run.snapshot);
        dirty_runs_.insert(run.snapshot.run_id);
    }

    void memoize(Run& run,
                 const std::string& hash,
                 json::value value,
                 const std::string& name,
                 const std::string& op,
                 json::value error,
                 int attempt = 0,
                 std::optional<TimePoint> began = std::nullopt) {
        if (run.steps.contains(hash)) {
            return;
        }
        const std::int64_t ended = to_millis(options_.clock->now());
        std::int64_t started = began ? to_millis(*began) : ended;
        if (const auto it = run.waiting.find(hash); it != run.waiting.end()) {
            started = began ? started : it->second.started_ms;
            run.waiting.erase(it);
        }
        StepRecord record{hash, name, op, json::value(), std::move(error), attempt, started, ended};
        if (const auto* object = value.if_object();
            object != nullptr && object->contains("data") && object->size() == 1) {
            record.data = object->at("data");
        } else if (op != "StepFailed") {
            record.data = value;
        }
        run.steps[hash] = std::move(value);
        run.stack.push_back(hash);
        dirty_runs_.insert(run.snapshot.run_id);
        run.snapshot.history.push_back(std::move(record));
    }

    // A pending step got its result: when nothing else is pending, rediscover.
    void resolve(Run& run, const std::string& hash, TimePoint now) {
        run.pending.erase(hash);
        if (run.pending.empty() && run.snapshot.status == RunStatus::kRunning) {
            if (run.version >= 2) {
                run.disable_immediate_execution = false;
            }
            schedule_call(run.snapshot.run_id, "step", 0, now);
        }
        save(run);
    }

    void finish(Run& run, RunStatus status, TimePoint now) {
        run.snapshot.status = status;
        run.snapshot.ended_ms = to_millis(now);
        run.waiting.clear();
        metrics_.add("inngest_executor_runs_finished_total",
                     {{"function", run.snapshot.function_id}, {"status", run_status_name(status)}});
        finished_.push_back(run.snapshot.run_id);
        run.waits.clear();
        run.pending.clear();
        save(run);
        const std::string& slug = run.snapshot.function_id;
        json::object data{{"function_id", slug},
                          {"run_id", run.snapshot.run_id},
                          {"event", run.snapshot.event},
                          {"events", run.snapshot.events}};
        if (status == RunStatus::kCompleted) {
            data["result"] = run.snapshot.output;
        } else {
            data["error"] = run.snapshot.error;
        }
        if (!run.parent_run.empty()) {
            data["correlation_id"] = run.parent_run + "." + run.parent_hash;
        }
        data["_inngest"] = json::object{{"status", run_status_name(status)}};
        std::vector<json::object> emitted;
        emitted.push_back(json::object{{"name", "inngest/function.finished"},
                                       {"data", data},
                                       {"id", ids_.next(now)},
                                       {"ts", to_millis(now)},
                                       {"user", json::object{}}});
        if (status == RunStatus::kFailed) {
            emitted.push_back(json::object{{"name", "inngest/function.failed"},
                                           {"data", data},
                                           {"id", run.snapshot.run_id},
                                           {"ts", to_millis(now)},
                                           {"user", json::object{}}});
        } else if (status == RunStatus::kCancelled) {
            emitted.push_back(json::object{{"name", "inngest/function.cancelled"},
                                           {"data", data},
                                           {"id", ids_.next(now)},
                                           {"ts", to_millis(now)},
                                           {"user", json::object{}}});
        }
        // Resume an invoking parent.
        if (!run.parent_run.empty()) {
            const auto parent = runs_.find(run.parent_run);
            if (parent != runs_.end() && parent->second.invokes.erase(run.parent_hash) == 1 &&
                parent->second.snapshot.status == RunStatus::kRunning) {
                json::value result = status == RunStatus::kCompleted
                                         ? json::value(json::object{{"data", run.snapshot.output}})
                                         : json::value(json::object{{"error", run.snapshot.error}});
                memoize(parent->second, run.parent_hash, std::move(result), "invoke",
                        "InvokeResult", json::value());
                resolve(parent->second, run.parent_hash, now);
            }
        }
        for (auto& event : emitted) {
            dispatch(event, now);
        }
        changed_.notify_all();
    }

    void complete(Run& run, json::value output) {
        if (run.snapshot.status != RunStatus::kRunning) {
            return;
        }
        run.snapshot.output = std::move(output);
        finish(run, RunStatus::kCompleted, options_.clock->now());
    }

    void fail(Run& run, const json::value& error) {
        if (run.snapshot.status != RunStatus::kRunning) {
            return;
        }
        json::object standard{
            {"error", "Error"}, {"name", "Error"}, {"message", ""}, {"stack", ""}};
        if (const auto* object = error.if_object()) {
            for (const char* key : {"name", "message", "stack"}) {
                if (const auto* v = object->if_contains(key); v != nullptr && v->is_string()) {
                    standard[key] = *v;
                }
            }
            standard["error"] = object->contains("error") ? object->at("error") : standard["name"];
        } else if (error.is_string()) {
            standard["message"] = error;
        }
        run.snapshot.error = std::move(standard);
        finish(run, RunStatus::kFailed, options_.clock->now());
    }

    void cancel(Run& run, TimePoint now) {
        if (run.snapshot.status != RunStatus::kRunning) {
            return;
        }
        log(LogLevel::kInfo, "run " + run.snapshot.run_id + " cancelled");
        finish(run, RunStatus::kCancelled, now);
    }

    // ---- the call loop -----------------------------------------------------------------

    void work() {
        std::unique_lock lock(mutex_);
        while (!stopping_ && !replaced_) {
            const TimePoint now = options_.clock->now();
            if (!awaiting_sync_.empty() &&
                std::chrono::steady_clock::now() >= wait_for_sync_until_) {
                release_awaiting_sync();  // no sync came: try the stored URLs
            }
            auto due = jobs_.begin();
            if (due == jobs_.end() || due->first > now) {
                changed_.wait_for(lock, milliseconds(20));
                continue;
            }
            Job job = std::move(due->second);
            jobs_.erase(due);
            if (is_flow(job.kind)) {
                flow_due_.erase(flow_index(job.kind, job.slug, job.hash));
            }
            ++in_flight_;
            const bool left = execute(job, lock);
            --in_flight_;
            if (left) {
                // Abandoned by stop: nothing of this job is stored, its row stays for the next
                // executor.
                changed_.notify_all();
                break;
            }
            // The job's row goes in the same write as its effects: a crash before it redoes it.
            const auto held_back = [&job](const Job& held) {
                return held.key == job.key;
            };
            if (std::none_of(blocked_.begin(), blocked_.end(), held_back) &&
                std::none_of(awaiting_sync_.begin(), awaiting_sync_.end(), held_back)) {
                retire(job);
            }
            if (!job.run_id.empty()) {
                dirty_runs_.insert(job.run_id);
            }
            persist(lock, false);  // queued; the next act waits for it
            evict_finished();
            maybe_prune(now, lock);
            changed_.notify_all();
        }
    }

    // Does the job; true when it was left to the next executor (see call).
    bool execute(Job& job, std::unique_lock<std::mutex>& lock) {
        const TimePoint now = options_.clock->now();
        switch (job.kind) {
            case JobKind::kCall:
                return call(job, lock);
            case JobKind::kDelayedEvent:
                dispatch(job.event.as_object(), now);
                return false;
            case JobKind::kDebounce:
            case JobKind::kBatch:
            case JobKind::kThrottle:
            case JobKind::kRateWindow:
                flow_job_due(job, now);
                return false;
            case JobKind::kCron: {
                const auto fn = functions_.find(job.slug);
                if (fn == functions_.end()) {
                    return false;
                }
                const std::string expression(job.event.as_string());
                const std::string scheduled = detail::format_rfc3339(job.scheduled);
                json::object event{
                    {"name", "inngest/scheduled.timer"},
                    {"data",
                     {{"cron", expression}, {"scheduledAt", scheduled}, {"fireAt", scheduled}}},
                    {"id", fn->first + ":" + scheduled},
                    {"ts", to_millis(now)},
                    {"user", json::object{}}};
                begin_run(*fn->second, event, json::array{event}, now);
                for (const auto& trigger : fn->second->triggers) {
                    if (trigger.cron && trigger.cron->expression() == expression) {
                        // Missed ticks (the clock jumped, or the process was down) fire once,
                        // as on Inngest: the next tick is the first after now.
                        if (const auto next =
                                trigger.cron->next_after(std::max(job.scheduled, now))) {
                            Job again = job;
                            again.scheduled = *next;
                            enqueue(*next, std::move(again));
                        }
                    }
                }
                return false;
            }
            default:
                break;
        }
        const auto it = runs_.find(job.run_id);
        if (it == runs_.end() || it->second.snapshot.status != RunStatus::kRunning) {
            return false;
        }
        Run& run = it->second;
        if (job.kind == JobKind::kTimer) {
            if (run.pending.count(job.hash) != 0) {
                memoize(run, job.hash, json::value(nullptr), job.slug, "Sleep", json::value());
                resolve(run, job.hash, now);
            }
        } else if (job.kind == JobKind::kWaitTimeout) {
            if (run.waits.erase(job.hash) == 1) {
                memoize(run, job.hash, json::value(nullptr), job.slug, "TimedOut", json::value());
                resolve(run, job.hash, now);
            }
        } else if (job.kind == JobKind::kInvokeTimeout) {
            if (run.invokes.erase(job.hash) == 1) {
                json::object error{
                    {"name", "InngestInvokeTimeoutError"},
                    {"message", "Timed out waiting for invoked function to complete"}};
                memoize(run, job.hash, json::object{{"error", error}}, job.slug, "InvokeTimedOut",
                        error);
                resolve(run, job.hash, now);
            }
        }
        return false;
    }

    std::string call_url(const FunctionEntry& fn, const std::string& step_id) const {
        std::string url = fn.url;
        const auto pos = url.find("stepId=");
        if (pos != std::string::npos) {
            const auto end = url.find('&', pos);
            url.replace(pos, end == std::string::npos ? std::string::npos : end - pos,
                        "stepId=" + detail::percent_encode(step_id));
        } else {
            url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("stepId=") +
                   detail::percent_encode(step_id);
        }
        return url;
    }

    std::string call_body(const Run& run,
                          const FunctionEntry& fn,
                          const std::string& step_id,
                          int attempt,
                          bool use_api) const {
        json::array stack;
        for (const auto& id : run.stack) {
            stack.emplace_back(id);
        }
        const json::object ctx{
            {"attempt", attempt},
            {"disable_immediate_execution", run.disable_immediate_execution},
            {"env", ""},
            {"fn_id", fn.slug},
            {"max_attempts", fn.max_attempts},
            {"qi_id", run.snapshot.run_id + ":" + step_id},
            {"request_id", run.snapshot.run_id + ":" + std::to_string(run.snapshot.calls)},
            {"run_id", run.snapshot.run_id},
            {"stack", {{"current", run.stack.size()}, {"stack", stack}}},
            {"step_id", "step"},
            {"use_api", use_api}};
        const json::object body{{"ctx", ctx},
                                {"event", run.snapshot.event},
                                {"events", use_api ? json::array{} : run.snapshot.events},
                                {"steps", use_api ? json::object{} : run.steps},
                                {"use_api", use_api},
                                {"version", run.version}};
        return detail::to_canonical_json(body);
    }

    // Calls the SDK for the job's step. True when the call was left to the next executor (the
    // executor stopping): then nothing of it is applied and the job's row must stay.
    bool call(const Job& job, std::unique_lock<std::mutex>& lock) {
        const auto it = runs_.find(job.run_id);
        if (it == runs_.end() || it->second.snapshot.status != RunStatus::kRunning) {
            return false;
        }
        Run& run = it->second;
        const auto fn_it = functions_.find(run.snapshot.function_id);
        if (fn_it == functions_.end()) {
            fail(run,
                 json::object{{"name", "Error"}, {"message", "function is no longer registered"}});
            return false;
        }
        // Shared, not copied: a re-sync may replace the entry while the call is in flight.
        const std::shared_ptr<const FunctionEntry> entry = fn_it->second;
        const FunctionEntry& fn = *entry;
        if (fn.restored && std::chrono::steady_clock::now() < wait_for_sync_until_) {
            // The stored URL may name a dead process's port: held until the app syncs.
            awaiting_sync_.push_back(job);
            return false;
        }
        if (at_concurrency_limit(fn, run)) {
            // Held back until a call in one of its buckets finishes.
            blocked_.push_back(job);
            return false;
        }
        std::string body = call_body(run, fn, job.step_id, job.attempt, false);
        if (body.size() > options_.max_inline_state_bytes) {
            body = call_body(run, fn, job.step_id, job.attempt, true);
        }
        detail::OutboundRequest request{"POST",          call_url(fn, job.step_id), {},
                                        std::move(body), options_.call_timeout,     std::nullopt};
        request.headers = {{"Content-Type", "application/json"},
                           {"X-Run-ID", run.snapshot.run_id},
                           {"X-Inngest-Step-ID", job.step_id},
                           {"x-inngest-req-version", std::to_string(run.version)}};
        if (key_) {
            request.headers.emplace_back(
                "X-Inngest-Signature", detail::sign_body(*key_, request.body, real_now_seconds()));
        }
        ++run.snapshot.calls;
        ++run.calls_in_flight;  // a slot in each of the run's buckets until the call ends
        dirty_runs_.insert(run.snapshot.run_id);
        const std::string run_id = run.snapshot.run_id;
        // Write before act: the SDK is only called on stored state. Runs are never erased, so
        // the reference survives the wait.
        const bool stored = persist(lock);
        if (!stored || run.snapshot.status != RunStatus::kRunning) {
            --run.calls_in_flight;
            if (!stored) {
                enqueue(options_.clock->now() + milliseconds(1000), job);
            }
            return false;
        }
        const TimePoint call_began = options_.clock->now();
        if (stopping_) {
            --run.calls_in_flight;  // stop began after this job was taken: not called now
            return true;
        }
        ++calls_out_;
        lock.unlock();
        const auto call_started = std::chrono::steady_clock::now();
        const auto response = detail::send_http(request, &abandon_);
        metrics_.observe(
            "inngest_executor_call_duration_seconds", {{"function", fn.slug}},
            std::chrono::duration<double>(std::chrono::steady_clock::now() - call_started).count());
        lock.lock();
        --calls_out_;
        calls_done_.notify_all();
        const auto again = runs_.find(run_id);
        if (again == runs_.end()) {
            return false;
        }
        Run& current = again->second;
        --current.calls_in_flight;
        if (abandon_ && !response) {
            return true;  // given up by stop: the job stays stored, the step is called again
        }
        release_blocked();
        if (current.snapshot.status != RunStatus::kRunning) {
            return false;  // cancelled meanwhile: discard what the call did
        }
        handle_response(current, fn, job, response, call_began);
        save(current);
        return false;
    }

    // True when a bucket of the run's is full: its limit reached by the calls in flight of the
    // runs (of any function) that share the bucket. As in Inngest each call takes a slot, so a
    // run's parallel steps count one each.
    bool at_concurrency_limit(const FunctionEntry& fn, const Run& run) const {
        for (std::size_t i = 0;
             i < fn.flow.concurrency.size() && i < run.concurrency_buckets.size(); ++i) {
            const std::string& bucket = run.concurrency_buckets[i];
            int busy = 0;
            for (const auto& [id, other] : runs_) {
                if (other.calls_in_flight > 0 &&
                    std::find(other.concurrency_buckets.begin(), other.concurrency_buckets.end(),
                              bucket) != other.concurrency_buckets.end()) {
                    busy += other.calls_in_flight;
                }
            }
            if (busy >= fn.flow.concurrency[i].limit) {
                return true;
            }
        }
        return false;
    }

    // Calls waiting for a slot go again, higher priority first, then in the order their runs
    // started (so a priority of N seconds beats runs up to N seconds older).
    void release_blocked() {
        const auto rank = [this](const Job& job) {
            const auto it = runs_.find(job.run_id);
            if (it == runs_.end()) {
                return std::int64_t{0};
            }
            return to_millis(it->second.started) - it->second.priority * 1000;
        };
        std::stable_sort(blocked_.begin(), blocked_.end(),
                         [&](const Job& a, const Job& b) { return rank(a) < rank(b); });
        for (auto& held : blocked_) {
            retire(held);
            enqueue(options_.clock->now(), std::move(held));
        }
        blocked_.clear();
    }

    void retry_or_fail(Run& run,
                       const FunctionEntry& fn,
                       const Job& job,
                       const json::value& error,
                       bool no_retry,
                       const std::string& retry_after,
                       std::optional<TimePoint> call_began = std::nullopt) {
        const TimePoint now = options_.clock->now();
        if (!no_retry && job.attempt + 1 < fn.max_attempts) {
            if (call_began) {  // a whole call failed (not a step): shown with the run's steps
                run.snapshot.retried_calls.push_back(
                    StepRecord{job.step_id, fn.slug, "CallError", json::value(), error, job.attempt,
                               to_millis(*call_began), to_millis(now)});
            }
            TimePoint at = now + options_.retry_backoff(job.attempt + 1);
            if (!retry_after.empty()) {
                if (const auto seconds = parse_time_string(retry_after + "s")) {
                    at = now + std::clamp(*seconds, milliseconds(1000), milliseconds(86400000));
                } else if (const auto instant = detail::parse_rfc3339(retry_after)) {
                    at = std::chrono::time_point_cast<TimePoint::duration>(*instant);
                }
            }
            schedule_call(run.snapshot.run_id, job.step_id, job.attempt + 1, at);
            return;
        }
        fail(run, error);
    }

    void handle_response(Run& run,
                         const FunctionEntry& fn,
                         const Job& job,
                         const Result<detail::InboundResponse>& response,
                         TimePoint call_began) {
        const TimePoint now = options_.clock->now();
        if (!response) {
            log(LogLevel::kWarn, "call to " + fn.slug + " failed: " + response.error().message);
            retry_or_fail(run, fn, job,
                          json::object{{"name", "Error"}, {"message", response.error().message}},
                          false, {}, call_began);
            return;
        }
        boost::system::error_code ec;
        json::value body = detail::parse_json(response->body, ec);
        if (ec) {
            body = json::value(response->body);
        }
        const std::string no_retry = lower(header_of(*response, "X-Inngest-No-Retry"));
        const std::string retry_after = header_of(*response, "Retry-After");
        const bool from_sdk = !header_of(*response, "X-Inngest-SDK").empty();
        if (const std::string version = header_of(*response, "X-Inngest-Req-Version");
            !version.empty() && run.version < 0) {
            run.version = std::atoi(version.c_str());
        }
        const int status = response->status;
        if ((status == 200 || status == 206) && !from_sdk) {
            retry_or_fail(
                run, fn, job,
                json::object{{"name", "Error"}, {"message", "response did not come from an SDK"}},
                false, {}, call_began);
            return;
        }
        if (status == 200) {
            complete(run, std::move(body));
            return;
        }
        if (status == 206) {
            json::array ops;
            if (body.is_array()) {
                ops = body.get_array();
            } else if (body.is_object()) {
                ops.push_back(body);
            }
            handle_ops(run, fn, job, ops, no_retry == "true", retry_after, now, call_began);
            return;
        }
        retry_or_fail(run, fn, job, body, no_retry == "true", retry_after, call_began);
    }

    // True when an op of the 206 moves the run on: any op object but a StepPlanned of a step
    // that is memoized already.
    static bool actionable(const Run& run, const json::array& ops) {
        for (const auto& value : ops) {
            const auto* op = value.if_object();
            if (op == nullptr) {
                continue;
            }
            const auto* kind = op->if_contains("op");
            const auto* id = op->if_contains("id");
            const bool planned =
                kind != nullptr && kind->is_string() && lower(kind->get_string()) == "stepplanned";
            if (!planned || id == nullptr || !id->is_string() ||
                !run.steps.contains(id->get_string())) {
                return true;
            }
        }
        return false;
    }

    void handle_ops(Run& run,
                    const FunctionEntry& fn,
                    const Job& job,
                    const json::array& ops,
                    bool no_retry,
                    const std::string& retry_after,
                    TimePoint now,
                    TimePoint call_began) {
        if (!actionable(run, ops)) {
            // Unparseable, empty, or only ops that change nothing (non-objects, steps planned
            // that are memoized already): a failed attempt, retried with backoff (protocol §9.2)
            // rather than called again at once for ever or left with nothing scheduled.
            log(LogLevel::kWarn, "call to " + fn.slug + " answered 206 without an op to act on");
            retry_or_fail(run, fn, job,
                          json::object{{"name", "Error"},
                                       {"message",
                                        "the SDK answered 206 without an op the "
                                        "executor could act on"}},
                          false, retry_after, call_began);
            return;
        }
        if (ops.size() > 1) {
            run.disable_immediate_execution = true;
        }
        const bool targeted = job.step_id != "step";
        bool progressed = false;
        for (const auto& value : ops) {
            if (!value.is_object()) {
                continue;
            }
            const auto& op = value.get_object();
            const std::string kind =
                op.contains("op") && op.at("op").is_string() ? lower(op.at("op").get_string()) : "";
            const std::string hash = op.contains("id") && op.at("id").is_string()
                                         ? std::string(op.at("id").get_string())
                                         : "";
            const std::string name = op_name(op);
            const json::object* opts = op.contains("opts") ? op.at("opts").if_object() : nullptr;
            const auto opt = [&](const char* key) -> json::value {
                if (opts != nullptr) {
                    if (const auto* v = opts->if_contains(key)) {
                        return *v;
                    }
                }
                return nullptr;
            };
            if (kind == "steprun") {
                memoize(run, hash,
                        json::object{{"data", op.contains("data") ? op.at("data") : json::value()}},
                        name, "StepRun", json::value(), job.attempt, call_began);
                progressed = true;
                if (targeted) {
                    run.pending.erase(hash);
                }
            } else if (kind == "steperror" || kind == "stepfailed") {
                const json::value error = op.contains("error") ? op.at("error") : json::value();
                if (kind == "steperror" && !no_retry && job.attempt + 1 < fn.max_attempts) {
                    run.snapshot.history.push_back(
                        StepRecord{hash, name, "StepError", json::value(), error, job.attempt,
                                   to_millis(call_began), to_millis(now)});
                    retry_or_fail(run, fn, job, error, false, retry_after);
                    return;
                }
                memoize(run, hash, json::object{{"error", error}}, name, "StepFailed", error,
                        job.attempt, call_began);
                progressed = true;
                if (targeted) {
                    run.pending.erase(hash);
                }
            } else if (kind == "stepplanned") {
                if (!run.steps.contains(hash) && run.pending.insert(hash).second) {
                    schedule_call(run.snapshot.run_id, hash, 0, now);
                }
            } else if (kind == "sleep") {
                json::value duration = opt("duration");
                if (duration.is_null()) {
                    duration = op.contains("name") ? op.at("name") : json::value();
                }
                const auto until = parse_deadline(duration, now);
                if (!until) {
                    fail(run,
                         json::object{{"name", "Error"}, {"message", "invalid sleep duration"}});
                    return;
                }
                run.pending.insert(hash);
                run.waiting[hash] =
                    PendingStep{hash, name, "Sleep", to_millis(now), to_millis(*until), {}, {}};
                Job timer;
                timer.kind = JobKind::kTimer;
                timer.run_id = run.snapshot.run_id;
                timer.hash = hash;
                timer.slug = name;
                enqueue(*until, std::move(timer));
            } else if (kind == "waitforevent") {
                Wait wait;
                json::value event_name = opt("event");
                if (event_name.is_null()) {
                    event_name = op.contains("name") ? op.at("name") : json::value();
                }
                if (!event_name.is_string()) {
                    fail(run, json::object{{"name", "Error"},
                                           {"message", "WaitForEvent without an event name"}});
                    return;
                }
                wait.event = event_name.get_string();
                wait.name = op.contains("displayName") && op.at("displayName").is_string()
                                ? std::string(op.at("displayName").get_string())
                                : wait.event;
                if (const json::value condition = opt("if");
                    condition.is_string() && !condition.get_string().empty()) {
                    auto compiled = Expression::compile(condition.get_string());
                    if (!compiled) {
                        fail(run, json::object{{"name", "Error"},
                                               {"message", compiled.error().message}});
                        return;
                    }
                    wait.condition = std::move(*compiled);
                }
                const auto expires = parse_deadline(opt("timeout"), now).value_or(now);
                run.waiting[hash] = PendingStep{
                    hash,
                    wait.name,
                    "WaitForEvent",
                    to_millis(now),
                    to_millis(expires),
                    wait.event,
                    wait.condition ? std::string(wait.condition->source()) : std::string()};
                run.pending.insert(hash);
                run.waits[hash] = std::move(wait);
                Job timeout;
                timeout.kind = JobKind::kWaitTimeout;
                timeout.run_id = run.snapshot.run_id;
                timeout.hash = hash;
                timeout.slug = name;
                enqueue(expires, std::move(timeout));
            } else if (kind == "invokefunction") {
                const json::value target = opt("function_id");
                const auto target_fn = target.is_string()
                                           ? functions_.find(std::string(target.get_string()))
                                           : functions_.end();
                run.pending.insert(hash);
                if (target_fn == functions_.end()) {
                    json::object error{{"name", "Error"},
                                       {"message", "invoked function not found"}};
                    memoize(run, hash, json::object{{"error", error}}, name, "InvokeFunction",
                            error);
                    progressed = true;
                    run.pending.erase(hash);
                    continue;
                }
                json::object data;
                const json::value payload = opt("payload");
                if (payload.is_object()) {
                    if (const auto* d = payload.get_object().if_contains("data");
                        d != nullptr && d->is_object()) {
                        data = d->get_object();
                    }
                }
                data["_inngest"] =
                    json::object{{"fn_id", target_fn->first},
                                 {"correlation_id", run.snapshot.run_id + "." + hash},
                                 {"name", name},
                                 {"source_fn_id", fn.slug}};
                const json::object event{{"name", "inngest/function.invoked"},
                                         {"data", data},
                                         {"id", ids_.next(now)},
                                         {"ts", to_millis(now)},
                                         {"user", json::object{}}};
                run.invokes.insert(hash);
                const auto deadline = parse_deadline(opt("timeout"), now);
                run.waiting[hash] = PendingStep{hash,
                                                name,
                                                "InvokeFunction",
                                                to_millis(now),
                                                deadline ? to_millis(*deadline) : 0,
                                                target_fn->first,
                                                {}};
                if (deadline) {
                    Job timeout;
                    timeout.kind = JobKind::kInvokeTimeout;
                    timeout.run_id = run.snapshot.run_id;
                    timeout.hash = hash;
                    timeout.slug = name;
                    enqueue(*deadline, std::move(timeout));
                }
                start_run(*target_fn->second, event, json::array{event}, now, run.snapshot.run_id,
                          hash);
            } else if (kind == "runcomplete") {
                complete(run, op.contains("data") ? op.at("data") : json::value());
                return;
            } else if (kind == "discoveryrequest") {
                progressed = true;
            } else {
                fail(run,
                     json::object{{"name", "Error"}, {"message", "unknown op '" + kind + "'"}});
                return;
            }
        }
        if (progressed && run.pending.empty()) {
            if (run.version >= 2 && ops.size() == 1) {
                run.disable_immediate_execution = false;
            }
            schedule_call(run.snapshot.run_id, "step", 0, now);
        }
        changed_.notify_all();
    }

    // ---- durability ---------------------------------------------------------------------
    // With a StateStore, every transition is written before anything acts on it: before an
    // event is acknowledged, before an SDK is called, after each job's effects. Memory stays the
    // scheduler; the store is what a restarted executor resumes from.

    static const char* job_kind_name(JobKind kind) {
        switch (kind) {
            case JobKind::kCall:
                return "call";
            case JobKind::kTimer:
                return "timer";
            case JobKind::kWaitTimeout:
                return "wait_timeout";
            case JobKind::kInvokeTimeout:
                return "invoke_timeout";
            case JobKind::kCron:
                return "cron";
            case JobKind::kDelayedEvent:
                return "delayed_event";
            case JobKind::kDebounce:
                return "debounce";
            case JobKind::kBatch:
                return "batch";
            case JobKind::kThrottle:
                return "throttle";
            case JobKind::kRateWindow:
                return "rate_window";
        }
        return "call";
    }

    static std::optional<JobKind> job_kind_of(std::string_view name) {
        for (const JobKind kind :
             {JobKind::kCall, JobKind::kTimer, JobKind::kWaitTimeout, JobKind::kInvokeTimeout,
              JobKind::kCron, JobKind::kDelayedEvent, JobKind::kDebounce, JobKind::kBatch,
              JobKind::kThrottle, JobKind::kRateWindow}) {
            if (name == job_kind_name(kind)) {
                return kind;
            }
        }
        return std::nullopt;
    }

    // The same job (kind, target, attempt, due time) always has the same key.
    static std::string job_key(const Job& job, TimePoint due) {
        std::string key = std::string(job_kind_name(job.kind)) + "|" + job.run_id + "|" +
                          job.step_id + "|" + std::to_string(job.attempt) + "|" + job.hash + "|" +
                          job.slug + "|" + std::to_string(to_millis(due));
        if (job.kind == JobKind::kCron && job.event.is_string()) {
            key += "|" + std::string(job.event.get_string());
        } else if (job.kind == JobKind::kDelayedEvent && job.event.is_object()) {
            if (const auto* id = job.event.get_object().if_contains("id"); id && id->is_string()) {
                key += "|" + std::string(id->get_string());
            }
        }
        return key;
    }

    static json::object job_document(const Job& job) {
        return json::object{{"kind", job_kind_name(job.kind)},
                            {"run_id", job.run_id},
                            {"step_id", job.step_id},
                            {"attempt", job.attempt},
                            {"hash", job.hash},
                            {"slug", job.slug},
                            {"event", job.event},
                            {"scheduled", to_millis(job.scheduled)}};
    }

    static std::optional<Job> job_from(const json::object& doc) {
        const auto kind = job_kind_of(doc.at("kind").as_string());
        if (!kind) {
            return std::nullopt;
        }
        Job job;
        job.kind = *kind;
        job.run_id = doc.at("run_id").as_string();
        job.step_id = doc.at("step_id").as_string();
        job.attempt = static_cast<int>(doc.at("attempt").to_number<std::int64_t>());
        job.hash = doc.at("hash").as_string();
        job.slug = doc.at("slug").as_string();
        job.event = doc.at("event");
        job.scheduled = TimePoint(milliseconds(doc.at("scheduled").to_number<std::int64_t>()));
        return job;
    }

    static json::array string_array(const auto& strings) {
        json::array out;
        for (const auto& text : strings) {
            out.emplace_back(text);
        }
        return out;
    }

    static json::object run_document(const Run& run) {
        json::array history;
        for (const auto& step : run.snapshot.history) {
            history.push_back(json::object{{"id", step.hashed_id},
                                           {"name", step.name},
                                           {"op", step.op},
                                           {"data", step.data},
                                           {"error", step.error},
                                           {"attempt", step.attempt},
                                           {"started", step.started_ms},
                                           {"ended", step.ended_ms}});
        }
        json::array waiting;
        for (const auto& [hash, step] : run.waiting) {
            waiting.push_back(pending_json(step));
        }
        json::array retried;
        for (const auto& call : run.snapshot.retried_calls) {
            retried.push_back(json::object{{"id", call.hashed_id},
                                           {"name", call.name},
                                           {"error", call.error},
                                           {"attempt", call.attempt},
                                           {"started", call.started_ms},
                                           {"ended", call.ended_ms}});
        }
        json::object waits;
        for (const auto& [hash, wait] : run.waits) {
            waits[hash] = json::object{
                {"event", wait.event},
                {"if", wait.condition ? json::value(wait.condition->source()) : json::value()},
                {"name", wait.name}};
        }
        return json::object{
            {"run_id", run.snapshot.run_id},
            {"function_id", run.snapshot.function_id},
            {"status", run_status_name(run.snapshot.status)},
            {"event", run.snapshot.event},
            {"events", run.snapshot.events},
            {"output", run.snapshot.output},
            {"error", run.snapshot.error},
            {"history", std::move(history)},
            {"calls", run.snapshot.calls},
            {"steps", run.steps},
            {"stack", string_array(run.stack)},
            {"pending", string_array(run.pending)},
            {"waits", std::move(waits)},
            {"invokes", string_array(run.invokes)},
            {"no_immediate", run.disable_immediate_execution},
            {"version", run.version},
            {"started", to_millis(run.started)},
            {"ended", run.snapshot.ended_ms},
            {"waiting", std::move(waiting)},
            {"retried_calls", std::move(retried)},
            {"parent_run", run.parent_run},
            {"parent_hash", run.parent_hash},
            {"concurrency_buckets", string_array(run.concurrency_buckets)},
            {"priority", run.priority},
            {"singleton", run.singleton ? json::value(*run.singleton) : json::value()},
            {"sequence", run.sequence}};
    }

    static std::int64_t optional_ms(const json::object& doc, const char* key) {
        const auto* value = doc.if_contains(key);
        return value != nullptr && value->is_number() ? value->to_number<std::int64_t>() : 0;
    }

    static json::object pending_json(const PendingStep& step) {
        return json::object{{"id", step.hashed_id},   {"name", step.name},
                            {"op", step.op},          {"started", step.started_ms},
                            {"until", step.until_ms}, {"event", step.event},
                            {"if", step.condition}};
    }

    static Run run_from(const json::object& doc) {
        const auto text = [&doc](const char* key) {
            return std::string(doc.at(key).as_string());
        };
        const auto integer = [&doc](const char* key) {
            return doc.at(key).to_number<std::int64_t>();
        };
        Run run;
        run.snapshot.run_id = text("run_id");
        run.snapshot.function_id = text("function_id");
        const std::string status = text("status");
        run.snapshot.status = status == "Completed"   ? RunStatus::kCompleted
                              : status == "Failed"    ? RunStatus::kFailed
                              : status == "Cancelled" ? RunStatus::kCancelled
                                                      : RunStatus::kRunning;
        run.snapshot.event = doc.at("event").as_object();
        run.snapshot.events = doc.at("events").as_array();
        run.snapshot.output = doc.at("output");
        run.snapshot.error = doc.at("error");
        for (const auto& value : doc.at("history").as_array()) {
            const auto& step = value.as_object();
            run.snapshot.history.push_back(StepRecord{
                std::string(step.at("id").as_string()), std::string(step.at("name").as_string()),
                std::string(step.at("op").as_string()), step.at("data"), step.at("error"),
                static_cast<int>(step.at("attempt").to_number<std::int64_t>()),
                optional_ms(step, "started"), optional_ms(step, "ended")});
        }
        run.snapshot.calls = static_cast<int>(integer("calls"));
        run.steps = doc.at("steps").as_object();
        for (const auto& id : doc.at("stack").as_array()) {
            run.stack.emplace_back(id.as_string());
        }
        for (const auto& hash : doc.at("pending").as_array()) {
            run.pending.emplace(hash.as_string());
        }
        for (const auto& [hash, value] : doc.at("waits").as_object()) {
            Wait wait;
            wait.event = value.at("event").as_string();
            wait.name = value.at("name").as_string();
            if (const auto& condition = value.at("if"); condition.is_string()) {
                if (auto compiled = Expression::compile(condition.get_string())) {
                    wait.condition = std::move(*compiled);
                }
            }
            run.waits.emplace(std::string(hash), std::move(wait));
        }
        for (const auto& hash : doc.at("invokes").as_array()) {
            run.invokes.emplace(hash.as_string());
        }
        run.disable_immediate_execution = doc.at("no_immediate").as_bool();
        run.version = static_cast<int>(integer("version"));
        run.started = TimePoint(milliseconds(integer("started")));
        run.snapshot.started_ms = integer("started");
        run.snapshot.ended_ms = optional_ms(doc, "ended");
        if (const auto* retried = doc.if_contains("retried_calls");
            retried && retried->is_array()) {
            for (const auto& value : retried->get_array()) {
                const auto& call = value.as_object();
                run.snapshot.retried_calls.push_back(
                    StepRecord{std::string(call.at("id").as_string()),
                               std::string(call.at("name").as_string()), "CallError", json::value(),
                               call.at("error"),
                               static_cast<int>(call.at("attempt").to_number<std::int64_t>()),
                               optional_ms(call, "started"), optional_ms(call, "ended")});
            }
        }
        if (const auto* waiting = doc.if_contains("waiting"); waiting && waiting->is_array()) {
            for (const auto& value : waiting->get_array()) {
                const auto& step = value.as_object();
                const auto field = [&step](const char* key) {
                    const auto* v = step.if_contains(key);
                    return v != nullptr && v->is_string() ? std::string(v->get_string())
                                                          : std::string();
                };
                run.waiting[field("id")] = PendingStep{field("id"),
                                                       field("name"),
                                                       field("op"),
                                                       optional_ms(step, "started"),
                                                       optional_ms(step, "until"),
                                                       field("event"),
                                                       field("if")};
            }
        }
        run.parent_run = text("parent_run");
        run.parent_hash = text("parent_hash");
        if (const auto* buckets = doc.if_contains("concurrency_buckets");
            buckets && buckets->is_array()) {
            for (const auto& bucket : buckets->get_array()) {
                run.concurrency_buckets.emplace_back(bucket.as_string());
            }
        }
        if (const auto* priority = doc.if_contains("priority"); priority && priority->is_number()) {
            run.priority = priority->to_number<std::int64_t>();
        }
        if (const auto* singleton = doc.if_contains("singleton");
            singleton && singleton->is_string()) {
            run.singleton = std::string(singleton->get_string());
        }
        run.sequence = integer("sequence");
        return run;
    }

    // With mutex_ held, after a persist: finished runs leave memory (the inspection store and
    // the state store keep them), so a long-lived executor does not grow with every run.
    void evict_finished() {
        std::vector<std::string> kept;
        for (const auto& id : finished_) {
            const auto it = runs_.find(id);
            if (it == runs_.end()) {
                continue;
            }
            if (it->second.calls_in_flight > 0 || dirty_runs_.count(id) != 0) {
                kept.push_back(
                    id);  // a call still returns into it, or its last write is not queued
                continue;
            }
            runs_.erase(it);
        }
        finished_ = std::move(kept);
    }

    // With mutex_ held: calls held for a sync go back to the queue, due now.
    void release_awaiting_sync() {
        const TimePoint now = options_.clock->now();
        for (auto& held : awaiting_sync_) {
            retire(held);
            enqueue(now, std::move(held));
        }
        awaiting_sync_.clear();
        changed_.notify_all();
    }

    // With mutex_ held: queues `job` at `at` and notes its row for the next write.
    void enqueue(TimePoint at, Job job) {
        job.key = job_key(job, at);
        if (options_.state) {
            job_removals_.erase(job.key);
            job_writes_[job.key] = {to_millis(at), detail::to_json(job_document(job))};
        }
        jobs_.emplace(at, std::move(job));
    }

    // With mutex_ held: `job` is done (or replaced); its row goes at the next write.
    void retire(const Job& job) {
        if (!options_.state || job.key.empty()) {
            return;
        }
        // A row that may be stored or queued for writing is deleted; deleting none is harmless.
        job_writes_.erase(job.key);
        job_removals_.insert(job.key);
    }

    // With mutex_ held: what changed since the last call, as one batch (and the marks cleared).
    StateChanges collect() {
        StateChanges changes;
        if (functions_dirty_) {
            changes.replace_functions = true;
            for (const auto& [slug, fn] : functions_) {
                changes.functions.push_back(
                    {slug, detail::to_json(
                               json::object{{"app_id", fn->app_id}, {"config", fn->config}})});
            }
        }
        for (const auto& id : dirty_runs_) {
            const auto it = runs_.find(id);
            if (it != runs_.end()) {
                const Run& run = it->second;
                changes.runs.push_back({id, run.snapshot.function_id,
                                        run_status_name(run.snapshot.status), run.sequence,
                                        detail::to_json(run_document(run))});
            }
        }
        for (auto& [key, write] : job_writes_) {
            changes.jobs.push_back({key, write.first, std::move(write.second)});
        }
        changes.removed_jobs.assign(job_removals_.begin(), job_removals_.end());
        for (const auto& key : seen_dirty_) {
            if (const auto at = seen_.recent_time(key)) {
                changes.seen.push_back({key, to_millis(*at)});
            } else {
                changes.forgotten.push_back(key);
            }
        }
        job_writes_.clear();
        job_removals_.clear();
        functions_dirty_ = false;
        dirty_runs_.clear();
        seen_dirty_.clear();
        return changes;
    }

    // With `lock` on mutex_: queues what changed for the writer and, with `wait`, waits (the
    // lock released meanwhile) until it and everything queued before it is stored. False when
    // the store failed: the caller must not act on it (the batch stays queued and is retried).
    bool persist(std::unique_lock<std::mutex>& lock, bool wait = true) {
        if (replaced_) {
            return false;  // another executor owns the store: nothing here may act any more
        }
        if (!options_.state) {
            dirty_runs_.clear();
            seen_dirty_.clear();
            return true;
        }
        StateChanges changes = collect();
        if (!writer_.joinable() || writer_stopped_) {
            // Before start() or after stop(): no writer, so write here (nothing else runs).
            if (changes.empty() && write_queue_.empty()) {
                return true;
            }
            write_queue_.push_back(std::move(changes));
            StateChanges merged = merge(std::move(write_queue_));
            write_queue_.clear();
            try {
                options_.state->apply(merged);
            } catch (const std::exception& error) {
                log(LogLevel::kError, std::string("state store write failed: ") + error.what());
                write_queue_.push_front(std::move(merged));  // kept for the next write
                return false;
            }
            durable_seq_ = queued_seq_;
            return true;
        }
        if (!changes.empty()) {
            write_queue_.push_back(std::move(changes));
            ++queued_seq_;
            batch_times_.emplace_back(queued_seq_, options_.clock->now());
            writer_wake_.notify_one();
        }
        if (!wait || durable_seq_ >= queued_seq_) {
            return true;
        }
        const std::uint64_t mine = queued_seq_;
        durable_.wait(
            lock, [&] { return durable_seq_ >= mine || failed_seq_ >= mine || writer_stopped_; });
        return durable_seq_ >= mine;
    }

    // Group commit: the writer takes every queued batch, merges them (a later document of the
    // same run or job wins) and writes them in one store call, then wakes whoever waits.
    void write_loop() {
        std::unique_lock lock(mutex_);
        while (true) {
            const bool woken = writer_wake_.wait_for(lock, milliseconds(1000), [&] {
                return !write_queue_.empty() || prune_before_ms_ || writer_stopping_;
            });
            if (!woken) {
                // Idle: make sure the store is still ours, so a replaced executor stops even
                // when it has nothing to write.
                lock.unlock();
                std::string replaced_by;
                try {
                    options_.state->check();
                } catch (const StateStoreBusy& busy) {
                    replaced_by = busy.what();
                } catch (const std::exception& error) {
                    log(LogLevel::kWarn, std::string("state store unreachable: ") + error.what());
                }
                lock.lock();
                if (!replaced_by.empty()) {
                    on_replaced(lock, replaced_by);
                    break;
                }
                continue;
            }
            if (prune_before_ms_) {
                // Pruning is the writer's too: its I/O never holds the executor's lock.
                const std::int64_t before = *prune_before_ms_;
                const auto seen_before = prune_seen_before_ms_;
                prune_before_ms_.reset();
                prune_seen_before_ms_.reset();
                lock.unlock();
                try {
                    options_.state->prune_finished(before);
                    // In slices of the store's size, so that deletions keep up with the key rate.
                    for (int slice = 0; seen_before && slice < 50 &&
                                        options_.state->prune_seen(*seen_before) >= 5000;
                         ++slice) {
                    }
                } catch (const std::exception& error) {
                    log(LogLevel::kWarn,
                        std::string("pruning finished runs failed: ") + error.what());
                }
                lock.lock();
                continue;
            }
            if (write_queue_.empty()) {
                break;
            }
            const std::uint64_t upto = queued_seq_;
            StateChanges merged = merge(std::move(write_queue_));
            write_queue_.clear();
            lock.unlock();
            bool stored = true;
            std::string replaced_by;
            try {
                options_.state->apply(merged);
            } catch (const StateStoreBusy& busy) {
                stored = false;
                replaced_by = busy.what();
            } catch (const std::exception& error) {
                stored = false;
                log(LogLevel::kError, std::string("state store write failed: ") + error.what());
            }
            lock.lock();
            if (!replaced_by.empty()) {
                on_replaced(lock, replaced_by);
                break;
            }
            if (stored) {
                durable_seq_ = upto;
                while (!batch_times_.empty() && batch_times_.front().first <= upto) {
                    batch_times_.pop_front();
                }
            } else {
                failed_seq_ = upto;
                write_queue_.push_front(std::move(merged));  // retried, before anything newer
            }
            durable_.notify_all();
            if (!stored && !writer_stopping_) {
                writer_wake_.wait_for(lock, milliseconds(500), [&] { return writer_stopping_; });
            } else if (!stored) {
                break;  // stopping with the store down: what is not stored is lost with us
            }
        }
        writer_stopped_ = true;
        durable_.notify_all();
    }

    // With `lock` held, on the writer thread: another executor owns the store now. Nothing
    // queued can be stored, so nothing more may be acted on: the workers stop, waiters learn
    // their batch failed, the API answers 503.
    void on_replaced(std::unique_lock<std::mutex>& lock, const std::string& why) {
        replaced_ = true;
        write_queue_.clear();
        changed_.notify_all();
        log(LogLevel::kError, "replaced by another executor; this one stops acting: " + why);
        if (options_.on_replaced) {
            lock.unlock();
            options_.on_replaced(why);
            lock.lock();
        }
    }

    static StateChanges merge(std::deque<StateChanges> batches) {
        if (batches.size() == 1) {
            return std::move(batches.front());
        }
        StateChanges out;
        std::map<std::string, StateChanges::Run> runs;
        std::map<std::string, StateChanges::Job> jobs;
        std::set<std::string> removed;
        std::map<std::string, std::int64_t> seen;
        std::set<std::string> forgotten;
        for (auto& batch : batches) {
            if (batch.replace_functions) {
                out.replace_functions = true;
                out.functions = std::move(batch.functions);
            }
            for (auto& run : batch.runs) {
                runs[run.run_id] = std::move(run);
            }
            for (auto& key : batch.removed_jobs) {
                jobs.erase(key);
                removed.insert(std::move(key));
            }
            for (auto& job : batch.jobs) {
                removed.erase(job.key);
                jobs[job.key] = std::move(job);
            }
            for (auto& key : batch.forgotten) {
                seen.erase(key);
                forgotten.insert(std::move(key));
            }
            for (auto& key : batch.seen) {
                forgotten.erase(key.key);
                seen[key.key] = key.seen_ms;
            }
        }
        for (auto& [id, run] : runs) {
            out.runs.push_back(std::move(run));
        }
        for (auto& [key, job] : jobs) {
            out.jobs.push_back(std::move(job));
        }
        out.removed_jobs.assign(removed.begin(), removed.end());
        for (const auto& [key, ms] : seen) {
            out.seen.push_back({key, ms});
        }
        out.forgotten.assign(forgotten.begin(), forgotten.end());
        return out;
    }

    void restore(const StoredState& state) {
        const std::lock_guard lock(mutex_);
        for (const auto& stored : state.functions) {
            boost::system::error_code ec;
            const json::value doc = detail::parse_json(stored.document, ec);
            if (ec || !doc.is_object()) {
                continue;
            }
            auto fn = compile_function(doc.at("config").as_object(),
                                       std::string(doc.at("app_id").as_string()));
            if (!fn) {
                log(LogLevel::kWarn,
                    "stored function " + stored.slug + " skipped: " + fn.error().message);
                continue;
            }
            fn->restored = true;
            functions_[stored.slug] = std::make_shared<const FunctionEntry>(std::move(*fn));
        }
        for (const auto& stored : state.runs) {
            boost::system::error_code ec;
            const json::value doc = detail::parse_json(stored.document, ec);
            if (ec || !doc.is_object()) {
                log(LogLevel::kError, "stored run " + stored.run_id + " is unreadable");
                continue;
            }
            Run run = run_from(doc.get_object());
            next_sequence_ = std::max(next_sequence_, run.sequence + 1);
            const std::string id = run.snapshot.run_id;
            save(runs_.emplace(id, std::move(run)).first->second);
        }
        for (const auto& stored : state.jobs) {
            boost::system::error_code ec;
            const json::value doc = detail::parse_json(stored.document, ec);
            if (ec || !doc.is_object()) {
                continue;
            }
            if (auto job = job_from(doc.get_object())) {
                job->key = stored.key;
                const TimePoint due(milliseconds(stored.due_ms));
                if (is_flow(job->kind)) {
                    flow_due_[flow_index(job->kind, job->slug, job->hash)] = due;
                }
                jobs_.emplace(due, std::move(*job));
            }
        }
        // Oldest first, so that the recent window and the filters see them in time order.
        auto seen = state.seen;
        std::sort(seen.begin(), seen.end(),
                  [](const auto& a, const auto& b) { return a.seen_ms < b.seen_ms; });
        for (const auto& key : seen) {
            seen_.insert(key.key, TimePoint(milliseconds(key.seen_ms)));
        }
        const TimePoint now = options_.clock->now();
        seen_.move_to_filters(now - kRecentDedupe, now);
        wait_for_sync_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        log(LogLevel::kInfo, "resumed " + std::to_string(state.runs.size()) + " runs and " +
                                 std::to_string(state.jobs.size()) + " queued jobs from the store");
    }

    // With mutex_ held, at most once a minute: forget expired dedupe keys, prune old runs.
    void maybe_prune(TimePoint now, std::unique_lock<std::mutex>& lock) {
        if (now < next_prune_) {
            return;
        }
        next_prune_ = now + std::chrono::minutes(1);
        if (!options_.state) {
            for (auto& key : seen_.expire(now)) {
                seen_dirty_.insert(std::move(key));
            }
        } else if (seen_dirty_.empty()) {
            // Only keys whose writes are stored leave memory (the store then answers for them):
            // a key is collected into a batch right when it is added, so keys older than the
            // oldest unstored batch by the window are stored.
            TimePoint cutoff = now - kRecentDedupe;
            if (!batch_times_.empty()) {
                cutoff = std::min(cutoff, batch_times_.front().second - kRecentDedupe);
            }
            seen_.move_to_filters(cutoff, now);
        }
        if (options_.state && writer_.joinable()) {
            prune_before_ms_ = to_millis(now - options_.finished_run_retention);
            prune_seen_before_ms_ = to_millis(now - internal::SeenKeys::kWindow);
            writer_wake_.notify_one();
        }
        persist(lock, false);
    }

    // ---- helpers -----------------------------------------------------------------------

    static std::int64_t real_now_seconds() {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    void log(LogLevel level, const std::string& message) const {
        if (options_.log_sink) {
            options_.log_sink(level, message);
        }
    }

    ExecutorOptions options_;
    std::optional<detail::SigningKey> key_;
    std::string raw_key_;
    std::unique_ptr<HttpServer> server_;
    std::unique_ptr<internal::Dashboard> dashboard_;
    /// The latest received events, oldest first (at most options_.keep_events; memory only).
    std::deque<EventRecord> events_;
    std::vector<std::thread> workers_;
    std::thread standby_;
    /// Set once work runs (see begin_work); `replaced_` once the store went to another executor.
    std::atomic<bool> active_{false};
    std::atomic<bool> replaced_{false};
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    bool stopping_ = false;
    int in_flight_ = 0;
    // Calls to SDKs under way (stop waits for them up to its grace), and stop's word to give
    // them up.
    int calls_out_ = 0;
    std::condition_variable calls_done_;
    std::atomic<bool> abandon_{false};
    std::multimap<TimePoint, Job> jobs_;
    // When each flow-control job is due (see take_flow_job): found without a scan of jobs_.
    std::map<std::string, TimePoint> flow_due_;
    Metrics metrics_;
    std::vector<Job> blocked_;        // calls waiting for a concurrency slot
    std::vector<Job> awaiting_sync_;  // calls of restored functions, until the app syncs
    std::map<std::string, std::shared_ptr<const FunctionEntry>> functions_;
    std::map<std::string, Run> runs_;
    /// Finished runs still in `runs_`; dropped once their last write is queued (see work()).
    std::vector<std::string> finished_;
    internal::SeenKeys seen_;
    std::size_t registrations_ = 0;
    std::size_t last_registered_count_ = 0;
    IdGenerator ids_;
    // Durability (see persist()).
    std::int64_t next_sequence_ = 1;
    bool functions_dirty_ = false;
    std::set<std::string> dirty_runs_;
    std::set<std::string> seen_dirty_;
    // The writer (see write_loop): batches queued, and how far they are stored.
    std::deque<StateChanges> write_queue_;
    std::uint64_t queued_seq_ = 0;
    std::uint64_t durable_seq_ = 0;
    /// When each unstored batch was queued (seq, clock time), oldest first.
    std::deque<std::pair<std::uint64_t, TimePoint>> batch_times_;
    std::uint64_t failed_seq_ = 0;
    bool writer_stopping_ = false;
    /// Set once a minute: the writer deletes finished runs that ended before it.
    std::optional<std::int64_t> prune_before_ms_;
    std::optional<std::int64_t> prune_seen_before_ms_;
    bool writer_stopped_ = false;
    std::condition_variable writer_wake_;
    std::condition_variable durable_;
    std::thread writer_;
    /// Job rows to write and to delete at the next persist (key -> due ms, document).
    std::map<std::string, std::pair<std::int64_t, std::string>> job_writes_;
    std::set<std::string> job_removals_;
    std::chrono::steady_clock::time_point wait_for_sync_until_{};
    TimePoint next_prune_{};
};

std::unique_ptr<RunStore> make_memory_run_store(std::size_t keep_finished) {
    return std::make_unique<MemoryRunStore>(keep_finished);
}

Executor::Executor(ExecutorOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Executor::~Executor() = default;
void Executor::start() {
    impl_->start();
}
void Executor::stop() {
    impl_->stop();
}
unsigned short Executor::port() const noexcept {
    return impl_->port();
}
bool Executor::active() const noexcept {
    return impl_->active();
}
std::string Executor::url() const {
    return impl_->url();
}
Result<std::size_t> Executor::sync_app(const std::string& serve_url) {
    return impl_->sync_app(serve_url);
}
Result<std::vector<std::string>> Executor::send(const boost::json::value& events) {
    return impl_->send(events);
}
std::optional<RunSnapshot> Executor::run(const std::string& run_id) const {
    return impl_->run(run_id);
}
std::vector<RunSnapshot> Executor::runs(const std::string& function_id) const {
    return impl_->runs(function_id);
}
std::optional<RunSnapshot> Executor::wait_for_run(const std::string& run_id,
                                                  std::chrono::milliseconds timeout) const {
    return impl_->wait_for_run(run_id, timeout);
}
std::vector<std::string> Executor::wait_for_runs(const std::string& function_id,
                                                 std::size_t count,
                                                 std::chrono::milliseconds timeout) const {
    return impl_->wait_for_runs(function_id, count, timeout);
}
bool Executor::wait_idle(std::chrono::milliseconds timeout) const {
    return impl_->wait_idle(timeout);
}
void Executor::poke() {
    impl_->poke();
}

std::optional<TimePoint> Executor::next_due() const {
    return impl_->next_due();
}
std::vector<EventRecord> Executor::events() const {
    return impl_->events();
}
Result<void> Executor::cancel(const std::string& run_id) {
    return impl_->cancel_run(run_id);
}
Result<std::string> Executor::rerun(const std::string& run_id) {
    return impl_->rerun(run_id);
}
boost::json::array Executor::functions() const {
    return impl_->functions();
}

}  // namespace inngest::local
