// The local executor with its state in a real PostgreSQL: an executor replaced by a new one on
// the same database (what a crash and a restart do) resumes every run exactly where it was.

#include "support/child_process.hpp"
#include "support/temp_postgres.hpp"

#include <inngest/inngest.hpp>
#include <inngest/local/executor.hpp>
#include <inngest/local/postgres_state_store.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>

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
    std::unique_ptr<Executor> start_executor() {
        inngest::local::ExecutorOptions options;
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
