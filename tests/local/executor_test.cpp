// The local executor's own rules (event ingest, matching, dedupe, limits, API auth), driven with
// an in-process C++ app over loopback HTTP.

#include "support/call_builder.hpp"
#include "transport/http_client.hpp"

#include <inngest/http_server.hpp>
#include <inngest/inngest.hpp>
#include <inngest/local/executor.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
using inngest::local::Executor;
using inngest::local::ManualClock;
using inngest::local::RunStatus;

namespace {

struct Harness {
    explicit Harness(std::optional<std::string> key = std::nullopt)
        : clock(std::make_shared<ManualClock>()),
          executor(make_executor(key)),
          client(make_client(key)),
          handler(*client),
          server(handler, {.host = "127.0.0.1", .port = 0}) {}

    Executor make_executor(const std::optional<std::string>& key) {
        inngest::local::ExecutorOptions options;
        options.port = 0;
        options.clock = clock;
        options.signing_key = key;
        options.event_keys = {"good-key"};
        options.retry_backoff = [](int) {
            return 10ms;
        };
        return Executor(std::move(options));
    }

    std::unique_ptr<inngest::Client> make_client(const std::optional<std::string>& key) {
        executor.start();
        inngest::ClientOptions options{.app_id = "t",
                                       .event_key = "good-key",
                                       .base_url = executor.url(),
                                       .log_sink = [](auto, auto) {
                                       }};
        if (key) {
            options.signing_key = *key;
        } else {
            options.dev = true;
        }
        return std::make_unique<inngest::Client>(options, inngest::Environment::none());
    }

    void sync() {
        server.start();
        const auto synced =
            executor.sync_app("http://127.0.0.1:" + std::to_string(server.port()) + "/api/inngest");
        REQUIRE(synced.has_value());
    }

    void settle() { REQUIRE(executor.wait_idle(10s)); }

    std::size_t runs(const std::string& id) { return executor.runs("t-" + id).size(); }

    std::shared_ptr<ManualClock> clock;
    Executor executor;
    std::unique_ptr<inngest::Client> client;
    inngest::ServeHandler handler;
    inngest::HttpServer server;
};

json::value ev(const char* name, json::object data = {}) {
    return json::object{{"name", name}, {"data", std::move(data)}};
}

}  // namespace

TEST_CASE("wildcard names and trigger expressions select the runs", "[unit]") {
    Harness h;
    h.client->create_function(
        {.id = "any-order", .triggers = {inngest::EventTrigger{"shop/order.*"}}},
        [](inngest::Context& ctx) { return ctx.event.name; });
    h.client->create_function(
        {.id = "big-order",
         .triggers = {inngest::EventTrigger{"shop/order.placed", "event.data.total > 100"}}},
        [](inngest::Context&) { return 1; });
    h.sync();
    h.executor.send(ev("shop/order.placed", {{"total", 50}}));
    h.executor.send(ev("shop/order.paid", {{"total", 500}}));
    h.executor.send(ev("shop/order.placed", {{"total", 500}}));
    h.executor.send(ev("shop/refund", {{"total", 500}}));
    h.settle();
    CHECK(h.runs("any-order") == 3);
    CHECK(h.runs("big-order") == 1);
}

TEST_CASE("an event id seen before starts no second run, and idempotency keys too", "[unit]") {
    Harness h;
    h.client->create_function({.id = "once", .triggers = {inngest::EventTrigger{"a"}}},
                              [](inngest::Context&) { return 1; });
    h.client->create_function(
        {.id = "idem", .triggers = {inngest::EventTrigger{"b"}}, .idempotency = "event.data.order"},
        [](inngest::Context&) { return 1; });
    h.sync();
    const json::value a = json::object{{"name", "a"}, {"id", "dup-1"}, {"data", json::object{}}};
    h.executor.send(a);
    h.executor.send(a);
    h.executor.send(ev("b", {{"order", 7}}));
    h.executor.send(ev("b", {{"order", 7}}));
    h.executor.send(ev("b", {{"order", 8}}));
    h.settle();
    CHECK(h.runs("once") == 1);
    CHECK(h.runs("idem") == 2);
    h.clock->advance(25h);  // the window is 24 hours
    h.executor.send(a);
    h.executor.poke();
    h.settle();
    CHECK(h.runs("once") == 2);
}

TEST_CASE("an event with a future ts starts its run at that time", "[unit]") {
    Harness h;
    h.client->create_function({.id = "later", .triggers = {inngest::EventTrigger{"later"}}},
                              [](inngest::Context&) { return 1; });
    h.sync();
    const auto at = std::chrono::duration_cast<std::chrono::milliseconds>(
                        (h.clock->now() + 1h).time_since_epoch())
                        .count();
    h.executor.send(json::object{{"name", "later"}, {"ts", at}, {"data", json::object{}}});
    h.settle();
    CHECK(h.runs("later") == 0);
    h.clock->advance(1h);
    h.executor.poke();
    h.settle();
    CHECK(h.runs("later") == 1);
}

TEST_CASE("the event API checks keys and answers ids, and bad bodies get 400", "[unit]") {
    Harness h;
    h.sync();
    inngest::detail::OutboundRequest send{"POST", h.executor.url() + "/e/good-key",
                                          {},     R"([{"name":"x"},{"name":"y","data":{}}])",
                                          5s,     std::nullopt};
    auto response = inngest::detail::send_http(send);
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(json::parse(response->body).at("ids").as_array().size() == 2);
    send.url = h.executor.url() + "/e/wrong-key";
    CHECK(inngest::detail::send_http(send)->status == 401);
    send.url = h.executor.url() + "/e/good-key";
    send.body = "{oops";
    CHECK(inngest::detail::send_http(send)->status == 400);
    send.body = R"({"data":{}})";
    CHECK(inngest::detail::send_http(send)->status == 400);
}

TEST_CASE("without a key the API refuses web pages: an Origin, or a Host not a loopback name",
          "[unit]") {
    inngest::local::ExecutorOptions options;
    options.port = 0;  // no signing key, no event keys: inngest-local's dev setup
    Executor executor(std::move(options));
    executor.start();
    const std::string port = std::to_string(executor.port());
    const auto status = [&](const std::string& method, const std::string& path,
                            std::vector<std::pair<std::string, std::string>> headers,
                            const std::string& body = {}) {
        const inngest::detail::OutboundRequest request{
            method, executor.url() + path, std::move(headers), body, 5s, std::nullopt};
        const auto response = inngest::detail::send_http(request);
        REQUIRE(response.has_value());
        return response->status;
    };
    // A page whose own name was rebound to 127.0.0.1 reads no runs; no page posts an event
    // (text/plain needs no preflight) or registers functions.
    CHECK(status("GET", "/v1/runs", {{"Host", "evil.example:" + port}}) == 403);
    CHECK(status("GET", "/v1/runs", {{"Host", "evil.example"}}) == 403);
    CHECK(status("POST", "/e/anything",
                 {{"Content-Type", "text/plain"}, {"Origin", "https://evil.example"}},
                 R"({"name":"x"})") == 403);
    CHECK(status("POST", "/fn/register", {{"Origin", "null"}}, R"({"functions":[]})") == 403);
    CHECK(executor.runs("").empty());
    // SDKs and the CLI send neither: by loopback address or name, as before.
    CHECK(status("GET", "/v1/runs", {}) == 200);
    CHECK(status("GET", "/v1/runs", {{"Host", "localhost:" + port}}) == 200);
    CHECK(status("POST", "/e/anything", {{"Content-Type", "application/json"}},
                 R"({"name":"x"})") == 200);
    CHECK(status("GET", "/health", {{"Host", "evil.example"}}) == 200);

    // Bound to ::1: its URL and an SDK's Host name it bracketed.
    inngest::local::ExecutorOptions v6;
    v6.host = "::1";
    v6.port = 0;
    Executor six(std::move(v6));
    six.start();
    CHECK(six.url() == "http://[::1]:" + std::to_string(six.port()));
    const inngest::detail::OutboundRequest list{"GET",       six.url() + "/v1/runs", {}, {}, 5s,
                                                std::nullopt};
    const auto listed = inngest::detail::send_http(list);
    REQUIRE(listed.has_value());
    CHECK(listed->status == 200);
}

TEST_CASE("in signed mode the API demands the hashed signing key", "[unit]") {
    Harness h("signkey-test-00112233");
    h.client->create_function({.id = "f", .triggers = {inngest::EventTrigger{"x"}}},
                              [](inngest::Context&) { return 1; });
    h.sync();  // in-band, signed
    inngest::detail::OutboundRequest reg{"POST", h.executor.url() + "/fn/register",
                                         {},     R"({"appName":"evil","functions":[]})",
                                         5s,     std::nullopt};
    CHECK(inngest::detail::send_http(reg)->status == 401);
    reg.headers = {{"Authorization", "Bearer signkey-test-wrong"}};
    CHECK(inngest::detail::send_http(reg)->status == 401);
    h.executor.send(ev("x"));
    h.settle();
    const auto runs = h.executor.runs("t-f");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].status == RunStatus::kCompleted);
    const inngest::detail::OutboundRequest inspect{
        "GET", h.executor.url() + "/v1/runs/" + runs[0].run_id, {}, {}, 5s, std::nullopt};
    CHECK(inngest::detail::send_http(inspect)->status == 401);
}

TEST_CASE("registration rejects invalid function configs with a reason", "[unit]") {
    Harness h;
    h.sync();
    const auto reject = [&](const char* functions) {
        inngest::detail::OutboundRequest reg{
            "POST", h.executor.url() + "/fn/register",
            {},     std::string(R"({"appName":"x","functions":)") + functions + "}",
            5s,     std::nullopt};
        const auto response = inngest::detail::send_http(reg);
        REQUIRE(response.has_value());
        CHECK(response->status == 400);
        CHECK_FALSE(json::parse(response->body).at("error").as_string().empty());
    };
    reject(
        R"([{"id":"a","triggers":[{"event":"x"}],"steps":{"step":{"runtime":{"url":"http://h/"}}}}])");
    reject(R"([{"id":"a","name":"A","triggers":[{"event":"x"}],"steps":{}}])");
    reject(
        R"([{"id":"a","name":"A","triggers":[{"cron":"@daily"}],"steps":{"step":{"runtime":{"url":"http://h/"}}}}])");
    reject(
        R"([{"id":"a","name":"A","triggers":[{"event":"x","expression":"event.data.x ==="}],"steps":{"step":{"runtime":{"url":"http://h/"}}}}])");
}

TEST_CASE("the inspection API shows a run's steps, output and status", "[unit]") {
    Harness h;
    h.client->create_function({.id = "two", .triggers = {inngest::EventTrigger{"go"}}},
                              [](inngest::Context& ctx) {
                                  const int a = ctx.step.run("a", [] { return 20; });
                                  const int b = ctx.step.run("b", [&] { return a + 22; });
                                  return b;
                              });
    h.sync();
    h.executor.send(ev("go"));
    h.settle();
    const auto runs = h.executor.runs("t-two");
    REQUIRE(runs.size() == 1);
    const inngest::detail::OutboundRequest inspect{
        "GET", h.executor.url() + "/v1/runs/" + runs[0].run_id, {}, {}, 5s, std::nullopt};
    const auto response = inngest::detail::send_http(inspect);
    REQUIRE(response.has_value());
    const auto body = json::parse(response->body);
    CHECK(body.at("status") == "Completed");
    CHECK(body.at("output") == 42);
    CHECK(body.at("history").as_array().size() == 2);
    CHECK(body.at("history").at(1).at("data") == 42);
    CHECK(body.at("calls") == 3);
}

TEST_CASE("a step result as deep as a step may return is stored and replayed by the executor",
          "[unit]") {
    // Arrays `depth` deep around a number.
    const auto nested = [](int depth) {
        json::value value = depth;
        for (int level = 0; level < depth; ++level) {
            value = json::array{std::move(value)};
        }
        return value;
    };
    Harness h;
    h.client->create_function(
        {.id = "deep", .triggers = {inngest::EventTrigger{"deep"}}},
        [&nested](inngest::Context& ctx) {
            const int depth = ctx.event.data.at("depth").to_number<int>();
            const json::value value = ctx.step.run("nest", [&] { return nested(depth); });
            const bool same = ctx.step.run("check", [&] { return value == nested(depth); });
            return json::value{{"depth", depth}, {"same", same}};
        });
    h.sync();
    h.executor.send(ev("deep", {{"depth", inngest::kMaxStepResultDepth}}));
    h.executor.send(ev("deep", {{"depth", inngest::kMaxStepResultDepth + 1}}));
    h.settle();
    const auto runs = h.executor.runs("t-deep");
    REQUIRE(runs.size() == 2);
    int completed = 0;
    int failed = 0;
    for (const auto& run : runs) {
        INFO(json::serialize(run.output) << " " << json::serialize(run.error));
        if (run.status == RunStatus::kCompleted) {
            ++completed;
            CHECK(run.output ==
                  json::value{{"depth", inngest::kMaxStepResultDepth}, {"same", true}});
        } else {
            ++failed;
            CHECK(run.status == RunStatus::kFailed);
            CHECK(json::serialize(run.error).find("nested deeper than 64") != std::string::npos);
        }
    }
    CHECK(completed == 1);
    CHECK(failed == 1);
}

TEST_CASE("a concurrency limit holds runs back until a slot frees", "[unit]") {
    Harness h;
    std::atomic<int> running{0};
    std::atomic<int> peak{0};
    h.client->create_function({.id = "limited",
                               .triggers = {inngest::EventTrigger{"work"}},
                               .concurrency = {{.limit = 1}}},
                              [&](inngest::Context&) {
                                  const int now = ++running;
                                  peak = std::max(peak.load(), now);
                                  std::this_thread::sleep_for(50ms);
                                  --running;
                                  return 1;
                              });
    h.sync();
    for (int i = 0; i < 4; ++i) {
        h.executor.send(ev("work"));
    }
    const auto ids = h.executor.wait_for_runs("t-limited", 4, 5s);
    for (const auto& id : ids) {
        REQUIRE(h.executor.wait_for_run(id, 10s).has_value());
    }
    CHECK(peak == 1);
}

TEST_CASE("a concurrency limit counts steps in flight: parallel steps of one run take a slot each",
          "[unit]") {
    Harness h;
    std::atomic<int> running{0};
    std::atomic<int> peak{0};
    const auto body = [&] {
        const int now = ++running;
        int seen = peak.load();
        while (seen < now && !peak.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(300ms);
        --running;
        return 1;
    };
    h.client->create_function({.id = "fan-out",
                               .triggers = {inngest::EventTrigger{"work"}},
                               .concurrency = {{.limit = 1}}},
                              [&](inngest::Context& ctx) {
                                  auto [a, b, c] =
                                      ctx.step.parallel([&] { return ctx.step.run("a", body); },
                                                        [&] { return ctx.step.run("b", body); },
                                                        [&] { return ctx.step.run("c", body); });
                                  return a + b + c;
                              });
    h.sync();
    h.executor.send(ev("work"));
    const auto ids = h.executor.wait_for_runs("t-fan-out", 1, 5s);
    REQUIRE(ids.size() == 1);
    const auto run = h.executor.wait_for_run(ids[0], 20s);
    REQUIRE(run.has_value());
    CHECK(run->status == RunStatus::kCompleted);
    CHECK(run->output == 3);
    CHECK(peak == 1);
}

TEST_CASE("the default call timeout is the protocol's longest call, 2 h", "[unit]") {
    CHECK(inngest::local::ExecutorOptions{}.call_timeout == std::chrono::hours(2));
    // A step of a few seconds, with call_timeout unset, is called once.
    Harness h;
    std::atomic<int> entered{0};
    h.client->create_function({.id = "slow", .triggers = {inngest::EventTrigger{"work"}}},
                              [&](inngest::Context& ctx) {
                                  return ctx.step.run("slow", [&] {
                                      ++entered;
                                      std::this_thread::sleep_for(2s);
                                      return 1;
                                  });
                              });
    h.sync();
    h.executor.send(ev("work"));
    const auto ids = h.executor.wait_for_runs("t-slow", 1, 5s);
    REQUIRE(ids.size() == 1);
    const auto run = h.executor.wait_for_run(ids[0], 20s);
    REQUIRE(run.has_value());
    CHECK(run->status == RunStatus::kCompleted);
    CHECK(entered == 1);
}

TEST_CASE("a 206 the executor cannot act on is a failed attempt: retried, then the run fails",
          "[unit]") {
    const auto body = GENERATE(std::string("oops"), std::string(""), std::string("[]"),
                               std::string(R"([1,"x",null])"));
    CAPTURE(body);
    Harness h;
    h.client->create_function(
        {.id = "stub", .triggers = {inngest::EventTrigger{"work"}}, .retries = 2},
        [](inngest::Context& ctx) { return ctx.step.run("a", [] { return 1; }); });
    // A stub SDK over real loopback HTTP: syncs through the real handler, answers every call 206
    // with `body`.
    std::atomic<int> posts{0};
    inngest::HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.routes =
        [&](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        if (request.method != "POST") {
            return h.handler.handle(request);
        }
        ++posts;
        return inngest::HttpResponse{
            206,
            {{"Content-Type", "application/json"}, {"X-Inngest-SDK", "inngest-cpp:v0.1.0"}},
            body};
    };
    inngest::HttpServer stub(options);
    stub.start();
    REQUIRE(h.executor.sync_app("http://127.0.0.1:" + std::to_string(stub.port()) + "/api/inngest")
                .has_value());
    h.executor.send(ev("work"));
    const auto ids = h.executor.wait_for_runs("t-stub", 1, 5s);
    REQUIRE(ids.size() == 1);
    // Retries wait on the manual clock: move it on until the run ends (or 10 s pass).
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    std::optional<inngest::local::RunSnapshot> run;
    while (std::chrono::steady_clock::now() < give_up) {
        h.clock->advance(1min);
        h.executor.poke();
        run = h.executor.wait_for_run(ids[0], 50ms);
        if (run) {
            break;
        }
    }
    REQUIRE(run.has_value());
    CHECK(run->status == RunStatus::kFailed);
    CHECK(posts == 3);  // the first attempt and 2 retries
    stub.stop();
}

TEST_CASE("a 206 planning only a step memoized already is a failed attempt, not a stuck run",
          "[unit]") {
    Harness h;
    h.client->create_function(
        {.id = "replan", .triggers = {inngest::EventTrigger{"work"}}, .retries = 2},
        [](inngest::Context& ctx) {
            ctx.step.run("a", [] { return 1; });
            return ctx.step.run("b", [] { return 2; });
        });
    // The first call goes to the real handler (step "a" runs and is memoized); every later one
    // is answered by a stub SDK that plans "a" again.
    std::atomic<int> posts{0};
    inngest::HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.routes =
        [&](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        if (request.method != "POST" || ++posts == 1) {
            return h.handler.handle(request);
        }
        const json::array ops{json::object{{"op", "StepPlanned"},
                                           {"id", inngest_test::step_hash("a")},
                                           {"name", "a"},
                                           {"displayName", "a"}}};
        return inngest::HttpResponse{
            206,
            {{"Content-Type", "application/json"}, {"X-Inngest-SDK", "inngest-cpp:v0.1.0"}},
            json::serialize(ops)};
    };
    inngest::HttpServer stub(options);
    stub.start();
    REQUIRE(h.executor.sync_app("http://127.0.0.1:" + std::to_string(stub.port()) + "/api/inngest")
                .has_value());
    h.executor.send(ev("work"));
    const auto ids = h.executor.wait_for_runs("t-replan", 1, 5s);
    REQUIRE(ids.size() == 1);
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    std::optional<inngest::local::RunSnapshot> run;
    while (std::chrono::steady_clock::now() < give_up) {
        h.clock->advance(1min);
        h.executor.poke();
        run = h.executor.wait_for_run(ids[0], 50ms);
        if (run) {
            break;
        }
    }
    REQUIRE(run.has_value());
    CHECK(run->status == RunStatus::kFailed);
    CHECK(posts == 4);  // the real call, then the stub's answer on 3 attempts
    stub.stop();
}

TEST_CASE("the memory run store keeps running runs and only the latest finished ones", "[unit]") {
    auto store = inngest::local::make_memory_run_store(3);
    for (int i = 0; i < 6; ++i) {
        store->save({.run_id = "r" + std::to_string(i), .function_id = "f"});
    }
    for (int i = 0; i < 5; ++i) {  // r0..r4 finish in order; r5 keeps running
        store->save({.run_id = "r" + std::to_string(i),
                     .function_id = "f",
                     .status = RunStatus::kCompleted});
    }
    std::vector<std::string> ids;
    for (const auto& run : store->list("f")) {
        ids.push_back(run.run_id);
    }
    CHECK(ids == std::vector<std::string>{"r2", "r3", "r4", "r5"});
    CHECK_FALSE(store->find("r0").has_value());
    CHECK(store->find("r5")->status == RunStatus::kRunning);
}

TEST_CASE("the run list pages with offset and limit and counts every match", "[unit]") {
    Harness h;
    h.client->create_function({.id = "many", .triggers = {inngest::EventTrigger{"go"}}},
                              [](inngest::Context&) { return 1; });
    h.sync();
    for (int i = 0; i < 5; ++i) {
        h.executor.send(ev("go", {{"i", i}}));
    }
    h.settle();
    const auto get = [&](const std::string& query) {
        const inngest::detail::OutboundRequest list{
            "GET", h.executor.url() + "/v1/runs?" + query, {}, {}, 5s, std::nullopt};
        auto response = inngest::detail::send_http(list);
        REQUIRE(response.has_value());
        return *response;
    };
    const auto all = h.executor.runs("t-many");
    REQUIRE(all.size() == 5);
    const auto page = get("function_id=t-many&offset=1&limit=2");
    REQUIRE(page.status == 200);
    const auto body = json::parse(page.body).as_array();
    REQUIRE(body.size() == 2);
    CHECK(body[0].at("run_id") == json::value(all[1].run_id));
    CHECK(body[1].at("run_id") == json::value(all[2].run_id));
    bool counted = false;
    for (const auto& [name, value] : page.headers) {
        if (name == "X-Total-Count" || name == "x-total-count") {
            counted = value == "5";
        }
    }
    CHECK(counted);
    CHECK(get("limit=0").status == 400);
    CHECK(get("limit=1001").status == 400);
    CHECK(get("offset=-1").status == 400);
    CHECK(get("limit=2x").status == 400);
    CHECK(json::parse(get("function_id=t-many&status=Failed").body).as_array().empty());
}
