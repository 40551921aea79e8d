// The conformance scenario suite: drives a fixture app (conformance-fixture.md) through the local
// executor over real HTTP and checks each run's outcome and step history. Every scenario runs
// against our C++ fixture and against the TypeScript fixture written with the official SDK, in
// dev (unsigned) and signed mode: the official SDK passing is what keeps the executor honest.

#include "crypto/signing_key.hpp"
#include "support/child_process.hpp"
#include "transport/http_client.hpp"

#include <inngest/local/executor.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
using inngest::local::Executor;
using inngest::local::ManualClock;
using inngest::local::RunSnapshot;
using inngest::local::RunStatus;

namespace {

// Counts failed checks so each scenario can print PASS or FAIL; the check itself is Catch's.
int g_failed_checks = 0;
#define SCHECK(...)                            \
    do {                                       \
        if (!static_cast<bool>(__VA_ARGS__)) { \
            ++g_failed_checks;                 \
        }                                      \
        CHECK(__VA_ARGS__);                    \
    } while (false)

constexpr const char* kSigningKey = "signkey-test-7468697320697320612074657374206b6579";
constexpr const char* kKeyHex = "7468697320697320612074657374206b6579";
constexpr const char* kEventKey = "conformance-test-event-key";
constexpr const char* kCanary = "conformance-canary-Zq83Xv0Lr5";
constexpr const char* kApp = "conformance-fixture-";

enum class Sdk { kCpp, kTypeScript, kTypeScriptCheckpointing };

std::chrono::system_clock::time_point start_time() {
    // Ten minutes before a new year, so the cron scenario's yearly tick is near.
    std::tm tm{};
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 11;
    tm.tm_mday = 31;
    tm.tm_hour = 23;
    tm.tm_min = 50;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

class World {
public:
    World(Sdk sdk, bool signed_mode)
        : sdk_(sdk), signed_(signed_mode), clock_(std::make_shared<ManualClock>(start_time())) {
        inngest::local::ExecutorOptions options;
        options.port = 0;
        options.clock = clock_;
        options.workers = 4;
        options.max_inline_state_bytes = 50000;  // large-state goes through the API
        options.retry_backoff = [](int attempt) {
            return std::chrono::milliseconds(1000 * attempt);
        };
        options.log_sink = [this](inngest::LogLevel, std::string_view line) {
            const std::lock_guard lock(log_mutex_);
            executor_log_ += std::string(line) + "\n";
        };
        if (signed_) {
            options.signing_key = kSigningKey;
        }
        executor_ = std::make_unique<Executor>(options);
        executor_->start();

        port_ = inngest_test::free_port();
        std::vector<std::string> env{"PORT=" + std::to_string(port_),
                                     "INNGEST_BASE_URL=" + executor_->url(),
                                     std::string("INNGEST_EVENT_KEY=") + kEventKey,
                                     std::string("CONFORMANCE_CANARY=") + kCanary};
        if (signed_) {
            env.push_back(std::string("INNGEST_SIGNING_KEY=") + kSigningKey);
        } else {
            env.emplace_back("INNGEST_DEV=1");
        }
        const std::string log = "/tmp/inngest-conformance-" + std::string(name()) + "-" +
                                std::to_string(getpid()) + ".log";
        if (sdk_ == Sdk::kCpp) {
            app_ = std::make_unique<inngest_test::ChildProcess>(
                std::vector<std::string>{CPP_FIXTURE_BINARY}, env, log);
        } else {
            if (sdk_ == Sdk::kTypeScriptCheckpointing) {
                env.emplace_back("FIXTURE_CHECKPOINTING=1");
            }
            app_ = std::make_unique<inngest_test::ChildProcess>(
                std::vector<std::string>{"node", "fixture-app.mjs"}, env, log, TS_FIXTURE_DIR);
        }
        REQUIRE(app_->wait_healthy("http://127.0.0.1:" + std::to_string(port_) + "/health", 30s));
    }

    ~World() { executor_->stop(); }

    std::string name() const {
        const char* sdk = sdk_ == Sdk::kCpp          ? "cpp"
                          : sdk_ == Sdk::kTypeScript ? "typescript"
                                                     : "typescript-checkpointing";
        return std::string(sdk) + (signed_ ? "-signed" : "-dev");
    }
    std::string serve_url() const {
        return "http://127.0.0.1:" + std::to_string(port_) + "/api/inngest";
    }
    bool signed_mode() const { return signed_; }
    Sdk sdk() const { return sdk_; }
    Executor& executor() { return *executor_; }
    ManualClock& clock() { return *clock_; }
    inngest_test::ChildProcess& app() { return *app_; }

    std::vector<std::string> send(const json::value& event) {
        auto ids = executor_->send(event);
        REQUIRE(ids.has_value());
        return *ids;
    }

    // The newest run of a function started after `known` runs existed.
    std::string run_of(const std::string& function, std::size_t known) {
        const auto ids = executor_->wait_for_runs(kApp + function, known + 1, 10s);
        REQUIRE(ids.size() > known);
        return ids.back();
    }

    std::size_t count(const std::string& function) const {
        return executor_->runs(kApp + function).size();
    }

    // Lets the run go as far as it can; with `move_time`, fast-forwards the clock to each due
    // timer (up to `horizon`) until the run ends.
    RunSnapshot settle(const std::string& run_id,
                       bool move_time = true,
                       std::chrono::hours horizon = std::chrono::hours(4)) {
        const auto limit = clock_->now() + horizon;
        for (int round = 0; round < 200; ++round) {
            REQUIRE(executor_->wait_idle(30s));
            const auto run = executor_->run(run_id);
            REQUIRE(run.has_value());
            if (run->status != RunStatus::kRunning || !move_time) {
                return *run;
            }
            const auto next = executor_->next_due();
            if (!next || *next > limit) {
                return *run;
            }
            if (*next > clock_->now()) {
                clock_->advance(
                    std::chrono::duration_cast<std::chrono::milliseconds>(*next - clock_->now()));
            }
            executor_->poke();
        }
        return *executor_->run(run_id);
    }

    std::string executor_log() const {
        const std::lock_guard lock(log_mutex_);
        return executor_log_;
    }

private:
    Sdk sdk_;
    bool signed_;
    std::shared_ptr<ManualClock> clock_;
    std::unique_ptr<Executor> executor_;
    std::unique_ptr<inngest_test::ChildProcess> app_;
    int port_ = 0;
    mutable std::mutex log_mutex_;
    std::string executor_log_;
};

std::vector<std::string> ops_of(const RunSnapshot& run) {
    std::vector<std::string> ops;
    for (const auto& step : run.history) {
        ops.push_back(step.op);
    }
    return ops;
}

json::value ev(const char* name, json::object data = {}) {
    return json::object{{"name", name}, {"data", std::move(data)}};
}

inngest::detail::InboundResponse post_to_app(World& world,
                                             const std::string& query,
                                             const std::string& body,
                                             bool sign) {
    inngest::detail::OutboundRequest request{
        "POST", world.serve_url() + "?" + query, {}, body, 10s, std::nullopt};
    request.headers = {{"Content-Type", "application/json"}};
    if (sign) {
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        request.headers.emplace_back(
            "X-Inngest-Signature",
            inngest::detail::sign_body(inngest::detail::SigningKey::parse(kSigningKey), body, now));
    }
    auto response = inngest::detail::send_http(request);
    REQUIRE(response.has_value());
    return *response;
}

using Scenario = std::pair<const char*, std::function<void(World&)>>;

// Moves the manual clock and lets the executor act on what came due.
void move_clock(World& w, std::chrono::milliseconds by) {
    w.clock().advance(by);
    w.executor().poke();
    REQUIRE(w.executor().wait_idle(30s));
}

json::value output_of(World& w, const std::string& run_id) {
    const auto run = w.settle(run_id, false);
    return run.status == RunStatus::kCompleted ? run.output : json::value();
}

// The runs of `function` after the first `known`, in start order.
std::vector<RunSnapshot> runs_after(World& w, const std::string& function, std::size_t known) {
    REQUIRE(w.executor().wait_idle(30s));
    const auto runs = w.executor().runs(kApp + function);
    return {runs.begin() + static_cast<long>(std::min(known, runs.size())), runs.end()};
}

std::vector<Scenario> flow_control_scenarios() {
    return {
        {"debounce",
         [](World& w) {
             const auto known = w.count("debounce-fn");
             w.send(ev("conformance/debounce.test", {{"user", "u"}, {"n", 1}}));
             move_clock(w, 3s);
             w.send(ev("conformance/debounce.test", {{"user", "u"}, {"n", 2}}));
             w.send(ev("conformance/debounce.test", {{"user", "v"}, {"n", 9}}));
             move_clock(w, 3s);  // 6 s after the first event: the second one restarted the period
             SCHECK(w.count("debounce-fn") == known);
             move_clock(w, 3s);  // 5 s after the last event of each key: one run per key
             auto runs = runs_after(w, "debounce-fn", known);
             REQUIRE(runs.size() == 2);
             std::set<std::int64_t> ns;
             for (const auto& run : runs) {
                 const auto output = output_of(w, run.run_id);
                 REQUIRE(output.is_object());
                 SCHECK(output.at("count") == 1);
                 ns.insert(output.at("n").to_number<std::int64_t>());
             }
             SCHECK(ns == std::set<std::int64_t>{2, 9});
             // Events every 4 s never leave 5 s of quiet; the 20 s timeout starts the run.
             for (int n = 10; n <= 14; ++n) {
                 w.send(ev("conformance/debounce.test", {{"user", "u"}, {"n", n}}));
                 if (n < 14) {
                     move_clock(w, 4s);
                 }
             }
             move_clock(w, 3s);  // 19 s after the first
             SCHECK(w.count("debounce-fn") == known + 2);
             move_clock(w, 1s);
             runs = runs_after(w, "debounce-fn", known + 2);
             REQUIRE(runs.size() == 1);
             SCHECK(output_of(w, runs[0].run_id) == json::parse(R"({"n":14,"count":1})"));
         }},
        {"throttle",
         [](World& w) {
             const auto known = w.count("throttle-fn");
             for (int n = 1; n <= 3; ++n) {
                 w.send(ev("conformance/throttle.test", {{"user", "u"}, {"n", n}}));
             }
             w.send(ev("conformance/throttle.test", {{"user", "v"}, {"n", 4}}));
             auto runs = runs_after(w, "throttle-fn", known);
             REQUIRE(runs.size() == 4);  // queued, not dropped
             const auto completed = [&] {
                 std::vector<std::int64_t> ns;
                 for (const auto& run : runs_after(w, "throttle-fn", known)) {
                     if (run.status == RunStatus::kCompleted) {
                         ns.push_back(run.output.at("n").to_number<std::int64_t>());
                     }
                 }
                 std::sort(ns.begin(), ns.end());
                 return ns;
             };
             SCHECK(completed() == std::vector<std::int64_t>{1, 4});  // one per key at once
             move_clock(w, 9s);
             SCHECK(completed() == std::vector<std::int64_t>{1, 4});
             move_clock(w, 1s);
             SCHECK(completed() == std::vector<std::int64_t>{1, 2, 4});
             move_clock(w, 10s);
             SCHECK(completed() == std::vector<std::int64_t>{1, 2, 3, 4});
         }},
        {"rate-limit",
         [](World& w) {
             const auto known = w.count("ratelimit-fn");
             for (int n = 1; n <= 3; ++n) {
                 w.send(ev("conformance/ratelimit.test", {{"user", "u"}, {"n", n}}));
             }
             w.send(ev("conformance/ratelimit.test", {{"user", "v"}, {"n", 4}}));
             SCHECK(runs_after(w, "ratelimit-fn", known).size() == 3);  // u's third dropped
             move_clock(w, 30s);
             w.send(ev("conformance/ratelimit.test", {{"user", "u"}, {"n", 5}}));
             SCHECK(runs_after(w, "ratelimit-fn", known).size() == 3);
             move_clock(w, 31s);  // the period, begun by u's first event, is over
             w.send(ev("conformance/ratelimit.test", {{"user", "u"}, {"n", 6}}));
             const auto runs = runs_after(w, "ratelimit-fn", known);
             REQUIRE(runs.size() == 4);
             SCHECK(output_of(w, runs.back().run_id) == json::parse(R"({"n":6})"));
         }},
        {"batch",
         [](World& w) {
             const auto known = w.count("batch-fn");
             for (int n = 1; n <= 4; ++n) {
                 w.send(ev("conformance/batch.test", {{"n", n}}));
             }
             auto runs = runs_after(w, "batch-fn", known);
             REQUIRE(runs.size() == 1);  // full at three
             SCHECK(output_of(w, runs[0].run_id) == json::parse(R"({"count":3,"ns":[1,2,3]})"));
             move_clock(w, 4s);
             SCHECK(w.count("batch-fn") == known + 1);
             move_clock(w, 1s);  // the fourth event's batch times out
             runs = runs_after(w, "batch-fn", known + 1);
             REQUIRE(runs.size() == 1);
             SCHECK(output_of(w, runs[0].run_id) == json::parse(R"({"count":1,"ns":[4]})"));

             const auto keyed = w.count("batch-keyed-fn");
             w.send(ev("conformance/batchkeyed.test", {{"user", "u"}, {"n", 1}}));
             w.send(ev("conformance/batchkeyed.test", {{"user", "v"}, {"n", 2}}));
             w.send(ev("conformance/batchkeyed.test", {{"user", "u"}, {"n", 3}}));
             runs = runs_after(w, "batch-keyed-fn", keyed);
             REQUIRE(runs.size() == 1);
             SCHECK(output_of(w, runs[0].run_id) == json::parse(R"({"ns":[1,3]})"));
             move_clock(w, 5s);
             runs = runs_after(w, "batch-keyed-fn", keyed + 1);
             REQUIRE(runs.size() == 1);
             SCHECK(output_of(w, runs[0].run_id) == json::parse(R"({"ns":[2]})"));
         }},
        {"priority",
         [](World& w) {
             const auto known = w.count("priority-fn");
             // Three runs at once: the first call takes the one slot, the other two wait for
             // it, and the later, higher-priority one goes next.
             w.send(json::array{ev("conformance/priority.test", {{"n", 0}}),
                                ev("conformance/priority.test", {{"n", 1}}),
                                ev("conformance/priority.test", {{"n", 2}, {"vip", true}})});
             const auto runs = runs_after(w, "priority-fn", known);
             REQUIRE(runs.size() == 3);
             std::map<std::int64_t, std::int64_t> started;
             for (const auto& run : runs) {
                 const auto output = output_of(w, run.run_id);
                 REQUIRE(output.is_object());
                 started[output.at("n").to_number<std::int64_t>()] =
                     output.at("at").to_number<std::int64_t>();
             }
             SCHECK(started.at(0) < started.at(2));
             SCHECK(started.at(2) < started.at(1));
         }},
        {"concurrency-env-scope",
         [](World& w) {
             const auto a = w.count("concurrency-env-a");
             const auto b = w.count("concurrency-env-b");
             w.send(ev("conformance/envlimit.test", {{"group", "g"}}));
             const auto first = output_of(w, w.run_of("concurrency-env-a", a));
             const auto second = output_of(w, w.run_of("concurrency-env-b", b));
             REQUIRE(first.is_object());
             REQUIRE(second.is_object());
             const auto span = [](const json::value& v, const char* k) {
                 return v.at(k).to_number<std::int64_t>();
             };
             // Two functions, one environment-wide slot for the key: their steps never overlap.
             SCHECK((span(first, "end") <= span(second, "start") ||
                     span(second, "end") <= span(first, "start")));
         }},
        {"singleton",
         [](World& w) {
             const auto known = w.count("singleton-skip-fn");
             w.send(ev("conformance/singleton.skip", {{"user", "u"}, {"n", 1}}));
             w.send(ev("conformance/singleton.skip", {{"user", "u"}, {"n", 2}}));
             w.send(ev("conformance/singleton.skip", {{"user", "v"}, {"n", 3}}));
             auto runs = runs_after(w, "singleton-skip-fn", known);
             SCHECK(runs.size() == 2);  // u's second was skipped while the first ran
             w.send(ev("conformance/singleton.release", {{"user", "u"}}));
             w.send(ev("conformance/singleton.release", {{"user", "v"}}));
             std::set<std::int64_t> ns;
             for (const auto& run : runs_after(w, "singleton-skip-fn", known)) {
                 const auto output = output_of(w, run.run_id);
                 REQUIRE(output.is_object());
                 ns.insert(output.at("n").to_number<std::int64_t>());
             }
             SCHECK(ns == std::set<std::int64_t>{1, 3});

             const auto cancelled = w.count("singleton-cancel-fn");
             w.send(ev("conformance/singleton.cancel", {{"user", "u"}, {"n", 1}}));
             const auto first = w.run_of("singleton-cancel-fn", cancelled);
             w.settle(first, false);
             w.send(ev("conformance/singleton.cancel", {{"user", "u"}, {"n", 2}}));
             const auto second = w.run_of("singleton-cancel-fn", cancelled + 1);
             SCHECK(w.settle(first, false).status == RunStatus::kCancelled);
             w.settle(second, false);
             w.send(ev("conformance/singleton.release", {{"user", "u"}}));
             SCHECK(output_of(w, second) == json::parse(R"({"n":2})"));
         }},
        {"cancel-timeout",
         [](World& w) {
             const auto known = w.count("cancel-timeout-fn");
             w.send(ev("conformance/canceltimeout.test", {{"id", "late"}}));
             const auto late = w.run_of("cancel-timeout-fn", known);
             w.send(ev("conformance/canceltimeout.test", {{"id", "early"}}));
             const auto early = w.run_of("cancel-timeout-fn", known + 1);
             move_clock(w, 30s);
             w.send(ev("conformance/canceltimeout.stop", {{"id", "early"}}));
             SCHECK(w.settle(early, false).status == RunStatus::kCancelled);
             move_clock(w, 31s);  // past the rule's 60 s: the cancel event no longer counts
             w.send(ev("conformance/canceltimeout.stop", {{"id", "late"}}));
             const auto run = w.settle(late);
             SCHECK(run.status == RunStatus::kCompleted);
             SCHECK(run.output == json::parse(R"({"woke":true})"));
         }},
    };
}

std::vector<Scenario> scenarios() {
    return {
        {"serve-introspection",
         [](World& w) {
             const inngest::detail::OutboundRequest get{"GET", w.serve_url(), {}, {},
                                                        5s,    std::nullopt};
             auto response = inngest::detail::send_http(get);
             REQUIRE(response.has_value());
             if (w.signed_mode()) {
                 SCHECK(response->status == 401);  // cloud mode: no unsigned introspection
             } else {
                 REQUIRE(response->status == 200);
                 const auto body = json::parse(response->body);
                 SCHECK(body.at("schema_version") == "2024-05-24");
                 SCHECK(body.at("mode") == "dev");
             }
             const auto synced = w.executor().sync_app(w.serve_url());
             REQUIRE(synced.has_value());
             SCHECK(*synced == 37);  // 36 functions and one failure handler
             bool cron_seen = false;
             for (const auto& fn : w.executor().functions()) {
                 if (fn.at("id") == "conformance-fixture-cron-fn") {
                     cron_seen = fn.at("triggers") == json::parse(R"([{"cron":"0 0 1 1 *"}])");
                 }
             }
             SCHECK(cron_seen);
         }},
        {"basic-invoke",
         [](World& w) {
             const auto known = w.count("test-suite-simple-fn");
             w.send(ev("tests/function.test", {{"test", true}}));
             const auto run = w.settle(w.run_of("test-suite-simple-fn", known));
             SCHECK(run.status == RunStatus::kCompleted);
             SCHECK(run.output == json::parse(R"({"name":"tests/function.test","body":"ok"})"));
             SCHECK(run.calls == 1);
         }},
        {"steps-serial",
         [](World& w) {
             const auto known = w.count("test-suite-step-test");
             w.send(json::object{{"name", "tests/step.test"},
                                 {"data", json::object{}},
                                 {"user", {{"email", "test@example.com"}}}});
             const auto run = w.settle(w.run_of("test-suite-step-test", known));
             SCHECK(run.output == json::parse(R"({"name":"tests/step.test","body":"ok"})"));
             SCHECK(ops_of(run) == std::vector<std::string>{"StepRun", "Sleep", "StepRun"});
             REQUIRE(run.history.size() == 3);
             SCHECK(run.history[0].hashed_id == "98bf98df193bcce7c33e6bc50927cf2ac21206cb");
             SCHECK(run.history[0].data == "first step");
             SCHECK(run.history[1].hashed_id == "c3ca5f787365eae0dea86250e27d476406956478");
             SCHECK(run.history[2].data == json::parse(R"({"first":"first step","second":true})"));
         }},
        {"retry-basic",
         [](World& w) {
             const auto known = w.count("test-suite-retry-test");
             w.send(ev("tests/retry.test"));
             const auto run = w.settle(w.run_of("test-suite-retry-test", known));
             SCHECK(run.status == RunStatus::kCompleted);
             SCHECK(run.output == json::parse(R"({"name":"tests/retry.test","body":"ok"})"));
             SCHECK(ops_of(run) == std::vector<std::string>{"StepError", "StepRun"});
             SCHECK(run.history[1].data == "yes: 2");
             SCHECK(run.calls == 4);  // step error, step retry, function error, function retry
         }},
        {"cancel-basic",
         [](World& w) {
             const auto known = w.count("test-suite-cancel-test");
             w.send(ev("tests/cancel.test", {{"request_id", "123"}}));
             const auto id = w.run_of("test-suite-cancel-test", known);
             auto run = w.settle(id, false);
             SCHECK(ops_of(run) == std::vector<std::string>{});
             w.send(ev("cancel/please", {{"request_id", "999"}}));
             run = w.settle(id, false);
             SCHECK(run.status == RunStatus::kRunning);
             w.send(ev("cancel/please", {{"request_id", "123"}}));
             run = w.settle(id, false);
             SCHECK(run.status == RunStatus::kCancelled);
             const int calls = run.calls;
             w.clock().advance(11s);
             w.executor().poke();
             run = w.settle(id, false);
             SCHECK(run.calls == calls);  // no call after the sleep would have ended
         }},
        {"wait-for-event-basic",
         [](World& w) {
             const auto known = w.count("test-suite-wait-for-event");
             w.send(ev("tests/wait.test", {{"id", "123"}}));
             const auto id = w.run_of("test-suite-wait-for-event", known);
             w.settle(id, false);
             w.send(ev("test/resume", {{"id", "ignored"}, {"resume", true}}));
             SCHECK(w.settle(id, false).status == RunStatus::kRunning);
             w.send(json::object{{"name", "test/resume"},
                                 {"id", "resume"},
                                 {"data", {{"id", "123"}, {"resume", true}}}});
             const auto run = w.settle(id, false);
             SCHECK(run.status == RunStatus::kCompleted);
             SCHECK(run.output == json::parse(R"({"result":{"id":"123","resume":true}})"));
             REQUIRE_FALSE(run.history.empty());
             SCHECK(run.history[0].hashed_id == "daaad336276d15594d0e765f96c17cd746bf4971");
             SCHECK(run.history[0].data.at("name") == "test/resume");
         }},
        {"wait-for-event-timeout",
         [](World& w) {
             const auto known = w.count("wait-for-event-timeout");
             w.send(ev("conformance/waittimeout.test", {{"id", "w-1"}}));
             const auto id = w.run_of("wait-for-event-timeout", known);
             w.settle(id, false);
             w.send(ev("conformance/never.sent", {{"id", "other"}}));
             const auto run = w.settle(id);
             SCHECK(run.output == json::parse(R"({"timed_out":true})"));
             SCHECK(ops_of(run) == std::vector<std::string>{"TimedOut"});
         }},
        {"parallel-steps",
         [](World& w) {
             const auto known = w.count("parallel-steps");
             w.send(ev("conformance/parallel.test"));
             const auto run = w.settle(w.run_of("parallel-steps", known));
             SCHECK(run.output == json::parse(R"({"results":["a","b","c"],"joined":"a+b+c"})"));
             SCHECK(run.history.size() == 4);
         }},
        {"step-send-event",
         [](World& w) {
             const auto known = w.count("send-event");
             const auto receivers = w.count("send-event-receiver");
             w.send(ev("conformance/sendevent.test", {{"value", 42}}));
             const auto run = w.settle(w.run_of("send-event", known));
             REQUIRE(run.status == RunStatus::kCompleted);
             const auto& ids = run.output.at("sent_ids").as_array();
             SCHECK(ids.size() == 1);
             const auto receiver = w.settle(w.run_of("send-event-receiver", receivers));
             SCHECK(receiver.output == json::parse(R"({"received":42})"));
         }},
        {"step-invoke",
         [](World& w) {
             const auto known = w.count("invoke-parent");
             w.send(ev("conformance/invoke.test", {{"n", 21}}));
             const auto run = w.settle(w.run_of("invoke-parent", known));
             SCHECK(run.output == json::parse(R"({"child":{"doubled":42}})"));
         }},
        {"sleep-until",
         [](World& w) {
             const auto known = w.count("sleep-until");
             w.send(ev("conformance/sleepuntil.test", {{"until", "2027-01-01T01:50:00.000Z"}}));
             const auto run = w.settle(w.run_of("sleep-until", known));
             SCHECK(run.output == json::parse(R"({"after":"woke"})"));
             SCHECK(w.clock().now() >= std::chrono::system_clock::from_time_t(1798768200));
         }},
        {"non-retriable",
         [](World& w) {
             const auto known = w.count("non-retriable");
             w.send(ev("conformance/nonretriable.test"));
             const auto run = w.settle(w.run_of("non-retriable", known));
             SCHECK(run.status == RunStatus::kFailed);
             SCHECK(run.calls == 1);
             SCHECK(run.error.at("message") == "do not retry me");
         }},
        {"non-retriable-step",
         [](World& w) {
             const auto known = w.count("non-retriable-step");
             w.send(ev("conformance/nonretriable.step.test"));
             const auto run = w.settle(w.run_of("non-retriable-step", known));
             SCHECK(run.status == RunStatus::kFailed);
             SCHECK(ops_of(run) == std::vector<std::string>{"StepFailed"});
             SCHECK(run.error.at("message") == "step says do not retry");
         }},
        {"step-error-final-attempt",
         [](World& w) {
             const auto known = w.count("step-error-final");
             w.send(ev("conformance/steperror.test"));
             const auto run = w.settle(w.run_of("step-error-final", known));
             SCHECK(run.output.at("caught") == true);
             SCHECK(run.output.at("message") == "step always fails");
             SCHECK(ops_of(run) == std::vector<std::string>{"StepError", "StepFailed"});
         }},
        {"retry-after",
         [](World& w) {
             const auto known = w.count("retry-after");
             w.send(ev("conformance/retryafter.test"));
             const auto id = w.run_of("retry-after", known);
             const auto before = w.clock().now();
             const auto run = w.settle(id);
             SCHECK(run.output == json::parse(R"({"attempt":1})"));
             SCHECK(w.clock().now() - before >= 7s);
         }},
        {"on-failure-handler",
         [](World& w) {
             const auto known = w.count("on-failure-fn");
             const auto handlers = w.count("on-failure-fn-failure");
             w.send(ev("conformance/onfailure.test"));
             const auto run = w.settle(w.run_of("on-failure-fn", known));
             SCHECK(run.status == RunStatus::kFailed);
             const auto handler = w.settle(w.run_of("on-failure-fn-failure", handlers));
             SCHECK(handler.output == json::parse(R"({"handled":true,"message":"boom"})"));
         }},
        {"cron-trigger",
         [](World& w) {
             // The yearly tick at 2027-01-01T00:00Z; the clock starts ten minutes before it (an
             // earlier scenario's sleep may already have carried it past).
             const auto target = std::chrono::system_clock::from_time_t(1798761600);
             if (w.clock().now() < target) {
                 w.clock().advance(std::chrono::duration_cast<std::chrono::milliseconds>(
                     target - w.clock().now()));
             }
             w.executor().poke();
             const auto first = w.run_of("cron-fn", 0);
             const auto run =
                 w.settle(w.executor().runs(std::string(kApp) + "cron-fn").front().run_id);
             (void)first;
             SCHECK(run.output == json::parse(R"({"cron":true,"name":"inngest/scheduled.timer"})"));
             SCHECK(run.event.at("data").at("cron") == "0 0 1 1 *");
             SCHECK(run.event.at("data").at("scheduledAt") == "2027-01-01T00:00:00Z");
         }},
        {"repeated-steps",
         [](World& w) {
             const auto known = w.count("repeated-steps");
             w.send(ev("conformance/repeat.test"));
             const auto run = w.settle(w.run_of("repeated-steps", known));
             SCHECK(run.output == json::parse(R"({"items":[0,1,2]})"));
             REQUIRE(run.history.size() == 3);
             SCHECK(run.history[1].hashed_id == "c1606908a12ad4caef5f90e9fcfe3b4d1253a1a8");
         }},
        {"large-state-use-api",
         [](World& w) {
             const auto known = w.count("large-state");
             w.send(ev("conformance/largestate.test", {{"size", 20000}, {"marker", "m-7"}}));
             const auto run = w.settle(w.run_of("large-state", known));
             SCHECK(run.output ==
                    json::parse(
                        R"({"lengths":[20000,20000,20000],"heads":["1","2","3"],"marker":"m-7"})"));
         }},
        {"typed-result",
         [](World& w) {
             const auto known = w.count("typed-result");
             const json::object data{{"名字", "张三"}, {"quote", "say \"hi\"\\ \t\n"}, {"n", 3}};
             w.send(ev("conformance/typed.test", data));
             const auto run = w.settle(w.run_of("typed-result", known));
             const auto expected_step = json::parse(
                 R"({"名字":"张三","amount":1234.5,"count":3,"ok":true,"none":null,"list":[1,"二",2.5],"nested":{"k":[{"a":1}]}})");
             SCHECK(run.output.at("step") == expected_step);
             SCHECK(run.output.at("echo") == data);
         }},
        {"malformed-payload",
         [](World& w) {
             const std::string query =
                 std::string("fnId=") + kApp + "test-suite-simple-fn&stepId=step";
             std::vector<std::string> bodies{"[]", "{}", R"({"event":"x","steps":[]})",
                                             R"({"event":{"name":"x"},"ctx":[]})"};
             if (w.sdk() == Sdk::kCpp) {
                 // The TypeScript SDK 4.24.0 crashes its process on a body that is not JSON
                 // (proto-fixtures/README.md); ours must answer 400.
                 bodies.emplace_back("{not json");
             }
             const auto known = w.count("test-suite-simple-fn");
             for (const auto& body : bodies) {
                 CAPTURE(body);
                 const auto response = post_to_app(w, query, body, w.signed_mode());
                 SCHECK(response.status >= 400);
             }
             const auto unknown = post_to_app(w, "fnId=conformance-fixture-nope&stepId=step",
                                              R"({"event":{"name":"x"}})", w.signed_mode());
             SCHECK(unknown.status >= 400);
             SCHECK(w.count("test-suite-simple-fn") == known);
             SCHECK(w.app().wait_healthy(
                 w.serve_url().substr(0, w.serve_url().find("/api")) + "/health", 5s));
         }},
        {"invalid-auth",
         [](World& w) {
             const std::string query =
                 std::string("fnId=") + kApp + "test-suite-simple-fn&stepId=step";
             const std::string body =
                 R"({"ctx":{"attempt":0,"run_id":"01JAUTHTEST000000000000000"},"event":{"data":{},"name":"tests/function.test"},"events":[{"data":{},"name":"tests/function.test"}],"steps":{},"version":-1})";
             const auto unsigned_call = post_to_app(w, query, body, false);
             if (!w.signed_mode()) {
                 SCHECK(unsigned_call.status == 200);  // dev mode accepts unsigned calls
                 return;
             }
             SCHECK(unsigned_call.status == 401);
             const auto signed_call = post_to_app(w, query, body, true);
             SCHECK(signed_call.status == 200);
             inngest::detail::OutboundRequest tampered{
                 "POST", w.serve_url() + "?" + query, {}, body, 5s, std::nullopt};
             tampered.headers = {{"X-Inngest-Signature", "t=1700000000&s=deadbeef"}};
             const auto rejected = inngest::detail::send_http(tampered);
             REQUIRE(rejected.has_value());
             SCHECK(rejected->status == 401);
         }},
        {"checkpointing",
         [](World& w) {
             // A checkpointing SDK reports finished steps through the API while it runs on.
             const bool checkpointed = w.executor_log().find("checkpoint:") != std::string::npos;
             SCHECK(checkpointed == (w.sdk() == Sdk::kTypeScriptCheckpointing));
         }},
        {"secret-redaction",
         [](World& w) {
             // Everything the app wrote, and everything the executor logged, after all scenarios.
             const std::string everything = w.app().log() + w.executor_log();
             SCHECK(everything.find(kKeyHex) == std::string::npos);
             SCHECK(everything.find(kEventKey) == std::string::npos);
             SCHECK(everything.find(kCanary) == std::string::npos);
             for (const auto& run : w.executor().runs()) {
                 const std::string text = json::serialize(run.output) + json::serialize(run.error);
                 SCHECK(text.find(kKeyHex) == std::string::npos);
                 SCHECK(text.find(kCanary) == std::string::npos);
             }
         }},
    };
}

void run_suite(Sdk sdk, bool signed_mode) {
    World world(sdk, signed_mode);
    auto all = scenarios();
    // Flow control before the last two, which read what every scenario left behind.
    const auto flow = flow_control_scenarios();
    all.insert(all.end() - 2, flow.begin(), flow.end());
    for (const auto& [name, scenario] : all) {
        INFO("scenario " << name << " against " << world.name());
        const int failed_before = g_failed_checks;
        scenario(world);
        std::cout << (g_failed_checks == failed_before ? "PASS " : "FAIL ") << name << " ["
                  << world.name() << "]" << std::endl;
    }
}

}  // namespace

TEST_CASE("conformance scenarios: C++ fixture in dev mode", "[conformance]") {
    run_suite(Sdk::kCpp, false);
}
TEST_CASE("conformance scenarios: C++ fixture in signed mode", "[conformance]") {
    run_suite(Sdk::kCpp, true);
}
TEST_CASE("conformance scenarios: TypeScript fixture in dev mode", "[conformance]") {
    run_suite(Sdk::kTypeScript, false);
}
TEST_CASE("conformance scenarios: TypeScript fixture in signed mode", "[conformance]") {
    run_suite(Sdk::kTypeScript, true);
}
TEST_CASE("conformance scenarios: TypeScript fixture with checkpointing in dev mode",
          "[conformance]") {
    run_suite(Sdk::kTypeScriptCheckpointing, false);
}
