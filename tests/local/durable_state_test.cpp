// The local executor with its state in a real PostgreSQL: an executor replaced by a new one on
// the same database (what a crash and a restart do) resumes every run exactly where it was.

#include "support/child_process.hpp"
#include "support/temp_postgres.hpp"
#include "transport/http_client.hpp"

#include <inngest/inngest.hpp>
#include <inngest/local/executor.hpp>
#include <inngest/local/postgres_state_store.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
using inngest::local::Executor;
using inngest::local::ManualClock;
using inngest::local::RunStatus;

namespace {

// An app served over loopback, and executors that come and go on one database.
struct Durable {
    Durable()
        : database(inngest_test::shared_postgres().fresh_database()),
          port(static_cast<unsigned short>(inngest_test::free_port())),
          clock(std::make_shared<ManualClock>()),
          client(inngest::ClientOptions{.app_id = "d",
                                        .dev = true,
                                        .base_url = "http://127.0.0.1:" + std::to_string(port),
                                        .log_sink =
                                            [](auto, auto) {
                                            }},
                 inngest::Environment::none()),
          handler(client),
          server(handler, {.host = "127.0.0.1", .port = 0}) {}

    // A new executor on the database, as a restarted process would make.
    std::unique_ptr<Executor> start_executor(
        std::chrono::milliseconds stop_grace = std::chrono::seconds(15)) {
        inngest::local::ExecutorOptions options;
        options.stop_grace = stop_grace;
        options.port = port;  // the app registers with the executor at this address
        options.clock = clock;
        options.retry_backoff = [](int) {
            return 10ms;
        };
        options.state = inngest::local::make_postgres_state_store({.url = database});
        auto executor = std::make_unique<Executor>(std::move(options));
        executor->start();
        if (!server_started) {
            server.start();
            server_started = true;
        }
        REQUIRE(
            executor->sync_app("http://127.0.0.1:" + std::to_string(server.port()) + "/api/inngest")
                .has_value());
        return executor;
    }

    std::string database;
    unsigned short port;
    std::shared_ptr<ManualClock> clock;
    inngest::Client client;
    inngest::ServeHandler handler;
    inngest::HttpServer server;
    bool server_started = false;
};

json::value event(const char* name, const char* id, json::object data = {}) {
    return json::object{{"name", name}, {"id", id}, {"data", std::move(data)}};
}

}  // namespace

TEST_CASE("a replaced executor resumes a sleeping run: no step runs twice, the sleep fires once",
          "[local][postgres]") {
    Durable d;
    std::atomic<int> before{0};
    std::atomic<int> after{0};
    d.client.create_function({.id = "nap", .triggers = {inngest::EventTrigger{"nap"}}},
                             [&](inngest::Context& ctx) {
                                 const int n = ctx.step.run("before", [&] { return ++before; });
                                 ctx.step.sleep("rest", 1h);
                                 ctx.step.run("after", [&] { return ++after; });
                                 return n;
                             });
    std::string run_id;
    {
        auto first = d.start_executor();
        REQUIRE(first->send(event("nap", "evt-1")).has_value());
        REQUIRE(first->wait_idle(10s));
        const auto runs = first->runs("d-nap");
        REQUIRE(runs.size() == 1);
        run_id = runs[0].run_id;
        CHECK(runs[0].status == RunStatus::kRunning);
        CHECK(before == 1);
    }  // gone, with everything it held in memory

    auto second = d.start_executor();
    // The stored run is back, still sleeping; the same event id starts nothing new.
    REQUIRE(second->run(run_id).has_value());
    REQUIRE(second->send(event("nap", "evt-1")).has_value());
    REQUIRE(second->wait_idle(10s));
    CHECK(second->runs("d-nap").size() == 1);
    CHECK(after == 0);
    d.clock->advance(61min);
    const auto done = second->wait_for_run(run_id, 10s);
    REQUIRE(done.has_value());
    CHECK(done->status == RunStatus::kCompleted);
    CHECK(done->output == 1);
    CHECK(before == 1);
    CHECK(after == 1);
}

TEST_CASE("stop gives up a call still running past its grace, and the next executor calls again",
          "[local][postgres]") {
    Durable d;
    std::atomic<int> attempts{0};
    std::atomic<bool> first_ended{false};
    std::promise<void> release;
    const std::shared_future<void> released = release.get_future().share();
    d.client.create_function({.id = "hung", .triggers = {inngest::EventTrigger{"hung"}}},
                             [&](inngest::Context& ctx) {
                                 return ctx.step.run("call out", [&] {
                                     const int attempt = ++attempts;
                                     if (attempt == 1) {
                                         released.wait_for(60s);  // an outbound call that hangs
                                         first_ended = true;
                                     }
                                     return attempt;
                                 });
                             });
    std::string run_id;
    {
        auto first = d.start_executor(500ms);
        REQUIRE(first->send(event("hung", "evt-hung")).has_value());
        for (int i = 0; i < 400 && attempts == 0; ++i) {
            std::this_thread::sleep_for(25ms);
        }
        REQUIRE(attempts == 1);
        const auto runs = first->runs("d-hung");
        REQUIRE(runs.size() == 1);
        run_id = runs[0].run_id;
        const auto began = std::chrono::steady_clock::now();
        first->stop();
        const auto took = std::chrono::steady_clock::now() - began;
        CHECK(took < 5s);  // the grace (0.5 s) and the writer's last batch, not the step
        CHECK_FALSE(first_ended);
    }
    release.set_value();  // the abandoned body ends; its answer has no one to go to
    for (int i = 0; i < 400 && !first_ended; ++i) {
        std::this_thread::sleep_for(25ms);
    }

    // The call's job was stored: the next executor on the database calls the step again.
    auto second = d.start_executor();
    const auto done = second->wait_for_run(run_id, 10s);
    REQUIRE(done.has_value());
    CHECK(done->status == RunStatus::kCompleted);
    CHECK(done->output == 2);
    CHECK(attempts == 2);
    CHECK(second->runs("d-hung").size() == 1);
}

TEST_CASE("a run whose step returned as deep as a step may is restored by the next executor",
          "[local][postgres]") {
    Durable d;
    // Arrays `depth` deep around a number.
    const auto nested = [](int depth) {
        json::value value = depth;
        for (int level = 0; level < depth; ++level) {
            value = json::array{std::move(value)};
        }
        return value;
    };
    std::atomic<int> bodies{0};
    d.client.create_function({.id = "deep", .triggers = {inngest::EventTrigger{"deep"}}},
                             [&](inngest::Context& ctx) {
                                 const json::value value = ctx.step.run("nest", [&] {
                                     ++bodies;
                                     return nested(inngest::kMaxStepResultDepth);
                                 });
                                 ctx.step.sleep("rest", 1h);
                                 return value == nested(inngest::kMaxStepResultDepth);
                             });
    std::string run_id;
    {
        auto first = d.start_executor();
        REQUIRE(first->send(event("deep", "evt-deep")).has_value());
        REQUIRE(first->wait_idle(10s));
        const auto runs = first->runs("d-deep");
        REQUIRE(runs.size() == 1);
        run_id = runs[0].run_id;
        CHECK(runs[0].status == RunStatus::kRunning);
    }
    // The stored run, its step state 64 levels deep, is read back and goes on.
    auto second = d.start_executor();
    REQUIRE(second->run(run_id).has_value());
    d.clock->advance(61min);
    const auto done = second->wait_for_run(run_id, 10s);
    REQUIRE(done.has_value());
    CHECK(done->status == RunStatus::kCompleted);
    CHECK(done->output == true);
    CHECK(bodies == 1);
}

TEST_CASE("a wait stored by one executor is matched by an event sent to the next",
          "[local][postgres]") {
    Durable d;
    d.client.create_function(
        {.id = "approve", .triggers = {inngest::EventTrigger{"order"}}}, [](inngest::Context& ctx) {
            const auto got = ctx.step.wait_for_event(
                "decision", {.event = "decided",
                             .timeout = std::chrono::hours(24),
                             .if_expression = "async.data.order == event.data.order"});
            return got ? std::string(got->data.at("verdict").as_string()) : std::string("none");
        });
    std::string run_id;
    {
        auto first = d.start_executor();
        REQUIRE(first->send(event("order", "o-7", {{"order", 7}})).has_value());
        REQUIRE(first->wait_idle(10s));
        run_id = first->runs("d-approve").at(0).run_id;
    }
    auto second = d.start_executor();
    REQUIRE(second->send(event("decided", "d-8", {{"order", 8}, {"verdict", "no"}})).has_value());
    REQUIRE(second->send(event("decided", "d-7", {{"order", 7}, {"verdict", "yes"}})).has_value());
    const auto done = second->wait_for_run(run_id, 10s);
    REQUIRE(done.has_value());
    CHECK(done->status == RunStatus::kCompleted);
    CHECK(done->output == "yes");
}

TEST_CASE("one executor per database: a second one is refused until the first is gone",
          "[local][postgres]") {
    const auto database = inngest_test::shared_postgres().fresh_database();
    auto first = inngest::local::make_postgres_state_store({.url = database});
    CHECK_THROWS_WITH(inngest::local::make_postgres_state_store({.url = database}),
                      Catch::Contains("another executor is active"));
    first.reset();
    CHECK_NOTHROW(inngest::local::make_postgres_state_store({.url = database}));
    CHECK_THROWS_AS(
        inngest::local::make_postgres_state_store({.url = database, .table_prefix = "x; DROP"}),
        std::invalid_argument);
}

TEST_CASE("a cron function synced again keeps one armed tick", "[local][postgres]") {
    Durable d;
    std::atomic<int> ticks{0};
    d.client.create_function({.id = "tick", .triggers = {inngest::CronTrigger{"*/5 * * * *"}}},
                             [&](inngest::Context&) { return ++ticks; });
    auto executor = d.start_executor();
    for (int i = 0; i < 3; ++i) {
        REQUIRE(
            executor
                ->sync_app("http://127.0.0.1:" + std::to_string(d.server.port()) + "/api/inngest")
                .has_value());
    }
    d.clock->advance(5min);
    REQUIRE(executor->wait_idle(10s));
    CHECK(ticks == 1);
    executor.reset();
    // The armed tick survives a restart too: after the next five minutes, one more.
    auto again = d.start_executor();
    d.clock->advance(5min);
    REQUIRE(again->wait_idle(10s));
    CHECK(ticks == 2);
}

namespace {

constexpr const char* kStandbyKey =
    "signkey-test-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// A signed app (so any executor with the key syncs it in band, whatever its port) and
// executors that open the store themselves: a second one stands by.
struct Standby {
    Standby()
        : database(inngest_test::shared_postgres().fresh_database()),
          clock(std::make_shared<ManualClock>()),
          client(inngest::ClientOptions{.app_id = "s",
                                        .signing_key = kStandbyKey,
                                        .dev = false,
                                        .base_url = "http://127.0.0.1:1",
                                        .log_sink =
                                            [](auto, auto) {
                                            }},
                 inngest::Environment::none()),
          handler(client),
          server(handler, {.host = "127.0.0.1", .port = 0}) {}

    std::unique_ptr<Executor> make_executor(std::atomic<bool>* active = nullptr,
                                            std::atomic<bool>* replaced = nullptr) {
        inngest::local::ExecutorOptions options;
        options.port = 0;
        options.clock = clock;
        options.signing_key = kStandbyKey;
        options.standby_retry = 100ms;
        options.open_state = [url = database] {
            return inngest::local::make_postgres_state_store({.url = url});
        };
        options.on_active = [active] {
            if (active != nullptr) {
                *active = true;
            }
        };
        options.on_replaced = [replaced](const std::string&) {
            if (replaced != nullptr) {
                *replaced = true;
            }
        };
        return std::make_unique<Executor>(std::move(options));
    }
    std::string serve_url() const {
        return "http://127.0.0.1:" + std::to_string(server.port()) + "/api/inngest";
    }

    std::string database;
    std::shared_ptr<ManualClock> clock;
    inngest::Client client;
    inngest::ServeHandler handler;
    inngest::HttpServer server;
};

bool eventually(const std::atomic<bool>& flag, std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!flag && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(20ms);
    }
    return flag;
}

}  // namespace

TEST_CASE("a standby executor answers 503, then takes over and resumes the runs once",
          "[local][postgres]") {
    Standby s;
    std::atomic<int> before{0};
    std::atomic<int> after{0};
    s.client.create_function({.id = "nap", .triggers = {inngest::EventTrigger{"nap"}}},
                             [&](inngest::Context& ctx) {
                                 const int n = ctx.step.run("before", [&] { return ++before; });
                                 ctx.step.sleep("rest", 1h);
                                 ctx.step.run("after", [&] { return ++after; });
                                 return n;
                             });
    s.server.start();
    std::atomic<bool> first_active{false};
    auto first = s.make_executor(&first_active);
    first->start();
    REQUIRE(first->active());
    CHECK(first_active);
    REQUIRE(first->sync_app(s.serve_url()).has_value());
    REQUIRE(first->send(event("nap", "evt-1")).has_value());
    REQUIRE(first->wait_idle(10s));
    const std::string run_id = first->runs("s-nap").at(0).run_id;

    std::atomic<bool> second_active{false};
    auto second = s.make_executor(&second_active);
    second->start();
    CHECK_FALSE(second->active());
    // Standing by, it runs nothing and says so.
    inngest::detail::OutboundRequest request{"POST",      second->url() + "/e/any", {}, "{}", 5s,
                                             std::nullopt};
    const auto refused = inngest::detail::send_http(request);
    REQUIRE(refused.has_value());
    CHECK(refused->status == 503);
    CHECK(refused->body.find("stands by") != std::string::npos);
    CHECK_FALSE(second->send(event("nap", "evt-2")).has_value());
    CHECK_FALSE(second->sync_app(s.serve_url()).has_value());
    std::this_thread::sleep_for(300ms);  // three retries, all refused while the first lives
    CHECK_FALSE(second_active);

    first.reset();  // the active one goes away, and its lock with it
    REQUIRE(eventually(second_active));
    CHECK(second->active());
    REQUIRE(second->sync_app(s.serve_url()).has_value());
    REQUIRE(second->run(run_id).has_value());
    s.clock->advance(61min);
    const auto done = second->wait_for_run(run_id, 10s);
    REQUIRE(done.has_value());
    CHECK(done->status == RunStatus::kCompleted);
    CHECK(before == 1);
    CHECK(after == 1);
}

TEST_CASE("an executor that lost its database session to a standby stops acting",
          "[local][postgres]") {
    Standby s;
    std::atomic<int> calls{0};
    s.client.create_function({.id = "count", .triggers = {inngest::EventTrigger{"count"}}},
                             [&](inngest::Context&) { return ++calls; });
    s.server.start();
    std::atomic<bool> replaced{false};
    auto first = s.make_executor(nullptr, &replaced);
    first->start();
    REQUIRE(first->sync_app(s.serve_url()).has_value());
    std::atomic<bool> second_active{false};
    auto second = s.make_executor(&second_active);
    second->start();
    REQUIRE_FALSE(second->active());

    // Cut the first executor's session (what a network partition or a failover does): its
    // advisory lock goes with it, and the standby takes the database.
    PGconn* admin = PQconnectdb(s.database.c_str());
    REQUIRE(PQstatus(admin) == CONNECTION_OK);
    PGresult* cut = PQexec(admin,
                           "SELECT pg_terminate_backend(pid) FROM pg_locks "
                           "WHERE locktype = 'advisory' AND granted");
    CHECK(PQresultStatus(cut) == PGRES_TUPLES_OK);
    CHECK(PQntuples(cut) == 1);
    PQclear(cut);
    PQfinish(admin);
    REQUIRE(eventually(second_active));

    // The first learns it was replaced (at its next write or idle check) and stops acting.
    REQUIRE(eventually(replaced));
    CHECK_FALSE(first->active());
    CHECK_FALSE(first->send(event("count", "c-1")).has_value());
    REQUIRE(second->sync_app(s.serve_url()).has_value());
    REQUIRE(second->send(event("count", "c-2")).has_value());
    REQUIRE(second->wait_idle(10s));
    CHECK(calls == 1);
}

TEST_CASE("an event id older than the in-memory window is still deduplicated, by the store",
          "[local][postgres]") {
    Durable d;
    std::atomic<int> calls{0};
    d.client.create_function({.id = "once", .triggers = {inngest::EventTrigger{"once"}}},
                             [&](inngest::Context&) { return ++calls; });
    auto executor = d.start_executor();
    REQUIRE(executor->send(event("once", "evt-old")).has_value());
    REQUIRE(executor->wait_idle(10s));
    // Minutes later the key has left memory (the executor prunes once a minute)...
    for (int i = 0; i < 3; ++i) {
        d.clock->advance(std::chrono::minutes(1));
        executor->poke();
        REQUIRE(executor->wait_idle(10s));
    }
    REQUIRE(executor->send(event("once", "evt-old")).has_value());
    REQUIRE(executor->wait_idle(10s));
    CHECK(calls == 1);
    // ...and after a restart too.
    executor.reset();
    executor = d.start_executor();
    REQUIRE(executor->send(event("once", "evt-old")).has_value());
    REQUIRE(executor->wait_idle(10s));
    CHECK(calls == 1);
    // A day later the id is new again.
    d.clock->advance(std::chrono::hours(24));
    executor->poke();
    REQUIRE(executor->wait_idle(10s));
    REQUIRE(executor->send(event("once", "evt-old")).has_value());
    REQUIRE(executor->wait_idle(10s));
    CHECK(calls == 2);
}

TEST_CASE("debounce, batch, throttle and rate-limit state survives a replaced executor",
          "[local][postgres]") {
    Durable d;
    std::mutex mutex;
    std::map<std::string, std::vector<json::value>> seen;  // function -> what each run got
    const auto record = [&](const char* name) {
        return [&, name](inngest::Context& ctx) -> json::value {
            json::array ns;
            for (const auto& e : ctx.events) {
                ns.push_back(e.data.at("n"));
            }
            const std::lock_guard lock(mutex);
            seen[name].push_back(ns);
            return ns;
        };
    };
    d.client.create_function({.id = "debounced",
                              .triggers = {inngest::EventTrigger{"debounced"}},
                              .debounce = inngest::Debounce{.period = 10s}},
                             record("debounced"));
    d.client.create_function({.id = "batched",
                              .triggers = {inngest::EventTrigger{"batched"}},
                              .batch_events = inngest::BatchEvents{.max_size = 5, .timeout = 10s}},
                             record("batched"));
    d.client.create_function({.id = "throttled",
                              .triggers = {inngest::EventTrigger{"throttled"}},
                              .throttle = inngest::Throttle{.limit = 1, .period = 60s}},
                             record("throttled"));
    d.client.create_function({.id = "limited",
                              .triggers = {inngest::EventTrigger{"limited"}},
                              .rate_limit = inngest::RateLimit{.limit = 1, .period = 60s}},
                             record("limited"));
    const auto count = [&](const char* name) {
        const std::lock_guard lock(mutex);
        return seen[name].size();
    };
    {
        auto first = d.start_executor();
        REQUIRE(first
                    ->send(json::array{
                        event("debounced", "d1", {{"n", 1}}), event("debounced", "d2", {{"n", 2}}),
                        event("batched", "b1", {{"n", 1}}), event("batched", "b2", {{"n", 2}}),
                        event("throttled", "t1", {{"n", 1}}), event("throttled", "t2", {{"n", 2}}),
                        event("limited", "l1", {{"n", 1}})})
                    .has_value());
        REQUIRE(first->wait_idle(10s));
        CHECK(count("debounced") == 0);
        CHECK(count("batched") == 0);
        CHECK(count("throttled") == 1);  // the second waits for its slot
        CHECK(count("limited") == 1);
    }
    auto second = d.start_executor();
    REQUIRE(second
                ->send(json::array{event("limited", "l2", {{"n", 2}}),
                                   event("batched", "b3", {{"n", 3}})})
                .has_value());
    REQUIRE(second->wait_idle(10s));
    CHECK(count("limited") == 1);  // the window the first executor opened still holds
    d.clock->advance(11s);
    second->poke();
    REQUIRE(second->wait_idle(10s));
    {
        const std::lock_guard lock(mutex);
        CHECK(seen["debounced"] == std::vector<json::value>{json::array{2}});
        CHECK(seen["batched"] == std::vector<json::value>{json::array{1, 2, 3}});
    }
    CHECK(count("throttled") == 1);
    d.clock->advance(50s);
    second->poke();
    REQUIRE(second->wait_idle(10s));
    CHECK(count("throttled") == 2);
    REQUIRE(second->send(event("limited", "l3", {{"n", 3}})).has_value());
    REQUIRE(second->wait_idle(10s));
    CHECK(count("limited") == 2);
}
