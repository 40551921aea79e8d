// The executor's run dashboard (/_dashboard) over real loopback HTTP: who may see it, and what
// its JSON API answers. The pages themselves are driven in Chromium by
// tests/dashboard/dashboard_test.mjs.

#include "transport/http_client.hpp"

#include <inngest/inngest.hpp>
#include <inngest/local/executor.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace std::chrono_literals;
namespace json = boost::json;
using inngest::local::Executor;
using inngest::local::RunStatus;

namespace {

constexpr const char* kKey = "signkey-test-64617368626f617264207465737420736563726574";

struct App {
    explicit App(std::optional<std::string> key)
        : executor(make_executor(key)),
          client(make_client(key)),
          handler(*client),
          server(handler, {.host = "127.0.0.1", .port = 0}) {}

    static Executor make_executor(const std::optional<std::string>& key) {
        inngest::local::ExecutorOptions options;
        options.port = 0;
        options.signing_key = key;
        options.retry_backoff = [](int) {
            return 10ms;
        };
        return Executor(std::move(options));
    }

    std::unique_ptr<inngest::Client> make_client(const std::optional<std::string>& key) {
        executor.start();
        inngest::ClientOptions options{
            .app_id = "d", .base_url = executor.url(), .log_sink = [](auto, auto) {
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
        REQUIRE(
            executor.sync_app("http://127.0.0.1:" + std::to_string(server.port()) + "/api/inngest")
                .has_value());
    }

    inngest::detail::InboundResponse request(
        const std::string& method,
        const std::string& path,
        std::vector<std::pair<std::string, std::string>> headers = {},
        std::string body = {}) {
        inngest::detail::OutboundRequest out{
            method,  executor.url() + path, std::move(headers), std::move(body),
            10000ms, std::nullopt};
        auto response = inngest::detail::send_http(out);
        REQUIRE(response.has_value());
        bodies.push_back(response->body);
        return *response;
    }

    json::value get_json(const std::string& path,
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
        const auto response = request("GET", path, std::move(headers));
        REQUIRE(response.status == 200);
        return json::parse(response.body);
    }

    Executor executor;
    std::unique_ptr<inngest::Client> client;
    inngest::ServeHandler handler;
    inngest::HttpServer server;
    std::vector<std::string> bodies;
};

std::string header(const inngest::detail::InboundResponse& response, std::string_view name) {
    for (const auto& [key, value] : response.headers) {
        if (key.size() == name.size() &&
            std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            })) {
            return value;
        }
    }
    return {};
}

const std::pair<std::string, std::string> kCsrf{"X-Dashboard", "1"};

void define_functions(inngest::Client& client) {
    client.create_function({.id = "steps", .triggers = {inngest::EventTrigger{"d/steps"}}},
                           [](inngest::Context& ctx) {
                               const int n = ctx.step.run("first", [] { return 1; });
                               ctx.step.sleep("nap", 10ms);
                               return ctx.step.run("second", [&] { return n + 1; });
                           });
    client.create_function(
        {.id = "waits", .triggers = {inngest::EventTrigger{"d/waits"}}}, [](inngest::Context& ctx) {
            const auto got = ctx.step.wait_for_event("for-go", {.event = "d/go", .timeout = 1h});
            return got.has_value();
        });
}

}  // namespace

TEST_CASE("the dashboard needs the key: login form, session cookie, CSRF header", "[unit]") {
    App app{std::string(kKey)};
    define_functions(*app.client);
    app.sync();

    // The page itself is public (it holds no data) and locked down.
    const auto page = app.request("GET", "/_dashboard/");
    CHECK(page.status == 200);
    CHECK(header(page, "Content-Type").starts_with("text/html"));
    CHECK(header(page, "Content-Security-Policy").starts_with("default-src 'self'"));
    CHECK(header(page, "X-Content-Type-Options") == "nosniff");
    CHECK(app.request("GET", "/_dashboard").status == 302);
    const auto script = app.request("GET", "/_dashboard/app.js");
    CHECK(script.status == 200);
    CHECK(header(script, "Content-Type").starts_with("text/javascript"));
    CHECK(app.request("GET", "/_dashboard/nope.js").status == 404);

    // No cookie: the data is refused.
    CHECK(app.request("GET", "/_dashboard/api/runs").status == 401);
    CHECK(app.request("GET", "/_dashboard/api/functions").status == 401);
    CHECK(app.request("GET", "/_dashboard/api/runs/whatever").status == 401);
    const auto session = app.get_json("/_dashboard/api/session");
    CHECK(session.at("login_required").as_bool());
    CHECK_FALSE(session.at("signed_in").as_bool());

    // A wrong key: 401 and no cookie.
    const auto wrong =
        app.request("POST", "/_dashboard/api/login", {kCsrf, {"Content-Type", "application/json"}},
                    R"({"key":"signkey-test-00"})");
    CHECK(wrong.status == 401);
    CHECK(header(wrong, "Set-Cookie").empty());
    // The right key without the CSRF header: 403 and no cookie.
    const std::string good = json::serialize(json::object{{"key", kKey}});
    const auto no_header = app.request("POST", "/_dashboard/api/login", {}, good);
    CHECK(no_header.status == 403);
    CHECK(header(no_header, "Set-Cookie").empty());

    const auto login = app.request("POST", "/_dashboard/api/login", {kCsrf}, good);
    REQUIRE(login.status == 200);
    const std::string set_cookie = header(login, "Set-Cookie");
    CHECK(set_cookie.find("HttpOnly") != std::string::npos);
    CHECK(set_cookie.find("SameSite=Strict") != std::string::npos);
    CHECK(set_cookie.find("Path=/_dashboard") != std::string::npos);
    const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
    REQUIRE(cookie.starts_with("inngest_dashboard="));
    CHECK(cookie.size() > std::string("inngest_dashboard=").size() + 32);

    const auto runs = app.request("GET", "/_dashboard/api/runs", {{"Cookie", cookie}});
    CHECK(runs.status == 200);
    CHECK(header(runs, "Cache-Control") == "no-store");
    CHECK(app.get_json("/_dashboard/api/session", {{"Cookie", cookie}}).at("signed_in").as_bool());
    CHECK(app.request("GET", "/_dashboard/api/runs", {{"Cookie", "inngest_dashboard=forged"}})
              .status == 401);

    // A state-changing POST needs the header even with the cookie.
    const std::string event = R"({"name":"d/steps","data":{}})";
    CHECK(app.request("POST", "/_dashboard/api/events", {{"Cookie", cookie}}, event).status == 403);
    CHECK(app.executor.runs().empty());
    const auto sent =
        app.request("POST", "/_dashboard/api/events", {{"Cookie", cookie}, kCsrf}, event);
    CHECK(sent.status == 200);
    CHECK(app.executor.wait_for_runs("d-steps", 1, 10s).size() == 1);

    // Scripts may use the key as a bearer instead, as on /v1.
    CHECK(app.request("GET", "/_dashboard/api/runs",
                      {{"Authorization", std::string("Bearer ") + kKey}})
              .status == 200);
    CHECK(app.request("GET", "/_dashboard/api/runs", {{"Authorization", "Bearer signkey-test-00"}})
              .status == 401);

    // Signing out ends the session.
    CHECK(app.request("POST", "/_dashboard/api/logout", {{"Cookie", cookie}, kCsrf}).status == 200);
    CHECK(app.request("GET", "/_dashboard/api/runs", {{"Cookie", cookie}}).status == 401);

    // The key is in no answer (its hex part neither).
    for (const auto& body : app.bodies) {
        CHECK(body.find("64617368626f617264") == std::string::npos);
    }
}

TEST_CASE(
    "the dashboard API lists, filters and pages runs, shows steps and waits, cancels and "
    "reruns",
    "[unit]") {
    App app(std::nullopt);  // dev mode: open like the rest of the API, POSTs still need the header
    define_functions(*app.client);
    app.sync();
    const auto first = app.executor.send(json::object{{"name", "d/steps"}, {"data", {{"n", 1}}}});
    const auto second = app.executor.send(json::object{{"name", "d/steps"}, {"data", {{"n", 2}}}});
    REQUIRE(app.executor.send(json::object{{"name", "d/waits"}}).has_value());
    REQUIRE(first.has_value());
    REQUIRE(second.has_value());
    const auto ids = app.executor.wait_for_runs("d-steps", 2, 10s);
    REQUIRE(ids.size() == 2);
    for (const auto& id : ids) {
        REQUIRE(app.executor.wait_for_run(id, 10s).has_value());
    }
    const auto waiting_ids = app.executor.wait_for_runs("d-waits", 1, 10s);
    REQUIRE(waiting_ids.size() == 1);
    const std::string waiting = waiting_ids.front();
    // Waiting once its wait is recorded.
    for (int i = 0; i < 500 && app.executor.run(waiting)->pending.empty(); ++i) {
        std::this_thread::sleep_for(10ms);
    }

    // Open without a key, but to loopback names only: a rebound foreign name is refused.
    const auto rebound =
        app.request("GET", "/_dashboard/api/runs", {{"Host", "rebound.example:8288"}});
    CHECK(rebound.status == 403);
    CHECK(app.request("GET", "/_dashboard/", {{"Host", "localhost:8288"}}).status == 200);

    auto all = app.get_json("/_dashboard/api/runs");
    CHECK(all.at("total") == 3);
    CHECK(all.at("counts").at("Completed") == 2);
    CHECK(all.at("counts").at("Waiting") == 1);
    CHECK(all.at("runs").at(0).at("run_id").as_string() == waiting);  // newest first

    auto page =
        app.get_json("/_dashboard/api/runs?function=d-steps&status=Completed&limit=1&offset=1");
    CHECK(page.at("total") == 2);
    REQUIRE(page.at("runs").as_array().size() == 1);
    CHECK(page.at("runs").at(0).at("run_id").as_string() == ids.front());
    CHECK(app.get_json("/_dashboard/api/runs?status=Waiting").at("total") == 1);
    CHECK(app.get_json("/_dashboard/api/runs?status=Running").at("total") == 1);
    CHECK(app.get_json("/_dashboard/api/runs?event=d%2Fwait").at("total") == 1);
    CHECK(app.get_json("/_dashboard/api/runs?from=99999999999999").at("total") == 0);

    const auto detail = app.get_json("/_dashboard/api/runs/" + ids.front()).at("run");
    CHECK(detail.at("status") == "Completed");
    CHECK(detail.at("output") == 2);
    CHECK(detail.at("event").at("data").at("n") == 1);
    const auto& history = detail.at("history").as_array();
    REQUIRE(history.size() == 3);
    CHECK(history.at(0).at("name") == "first");
    CHECK(history.at(0).at("op") == "StepRun");
    CHECK(history.at(1).at("op") == "Sleep");
    CHECK(history.at(2).at("name") == "second");
    for (const auto& step : history) {
        CHECK(step.at("started_at").to_number<std::int64_t>() > 0);
        CHECK(step.at("ended_at").to_number<std::int64_t>() >=
              step.at("started_at").to_number<std::int64_t>());
    }
    // The sleep lasted at least its 10 ms.
    CHECK(history.at(1).at("ended_at").to_number<std::int64_t>() -
              history.at(1).at("started_at").to_number<std::int64_t>() >=
          10);
    CHECK(detail.at("ended_at").to_number<std::int64_t>() >=
          detail.at("started_at").to_number<std::int64_t>());

    const auto waits = app.get_json("/_dashboard/api/runs/" + waiting).at("run").at("waits");
    REQUIRE(waits.as_array().size() == 1);
    CHECK(waits.at(0).at("op") == "WaitForEvent");
    CHECK(waits.at(0).at("event") == "d/go");
    CHECK(waits.at(0).at("until").to_number<std::int64_t>() -
              waits.at(0).at("started_at").to_number<std::int64_t>() ==
          3600000);

    // Events, newest first, with the runs they started.
    const auto events = app.get_json("/_dashboard/api/events").at("events");
    REQUIRE(events.as_array().size() == 3);
    CHECK(events.at(0).at("name") == "d/waits");
    CHECK(events.at(0).at("run_ids").at(0).as_string() == waiting);
    CHECK(events.at(2).at("id").as_string() == first->front());
    CHECK(events.at(2).at("run_ids").as_array().size() == 1);

    // Cancel (the header is required even without a key), then cancel again: refused.
    CHECK(app.request("POST", "/_dashboard/api/runs/" + waiting + "/cancel").status == 403);
    CHECK(app.request("POST", "/_dashboard/api/runs/" + waiting + "/cancel", {kCsrf}).status ==
          200);
    CHECK(app.executor.run(waiting)->status == RunStatus::kCancelled);
    CHECK(app.request("POST", "/_dashboard/api/runs/" + waiting + "/cancel", {kCsrf}).status ==
          409);
    CHECK(app.executor.run(waiting)->pending.empty());

    // Rerun from the start: a new run with the same event.
    const auto rerun =
        app.request("POST", "/_dashboard/api/runs/" + ids.front() + "/rerun", {kCsrf});
    REQUIRE(rerun.status == 200);
    const std::string again(json::parse(rerun.body).at("run_id").as_string());
    CHECK(again != ids.front());
    const auto done = app.executor.wait_for_run(again, 10s);
    REQUIRE(done.has_value());
    CHECK(done->status == RunStatus::kCompleted);
    CHECK(done->event.at("data").at("n") == 1);
    CHECK(app.request("POST", "/_dashboard/api/runs/nope/rerun", {kCsrf}).status == 409);
    CHECK(app.request("GET", "/_dashboard/api/runs/nope").status == 404);

    // The functions with their triggers and run counts.
    const auto functions = app.get_json("/_dashboard/api/functions").at("functions");
    REQUIRE(functions.as_array().size() == 2);
    bool seen = false;
    for (const auto& fn : functions.as_array()) {
        if (fn.at("id") == "d-steps") {
            seen = true;
            CHECK(fn.at("runs").at("Completed") == 3);
            CHECK(fn.at("config").at("triggers").at(0).at("event") == "d/steps");
        }
    }
    CHECK(seen);
}

TEST_CASE("an executor can run without the dashboard", "[unit]") {
    inngest::local::ExecutorOptions options;
    options.port = 0;
    options.dashboard = false;
    Executor executor(options);
    executor.start();
    inngest::detail::OutboundRequest out{
        "GET", executor.url() + "/_dashboard/", {}, {}, 10000ms, std::nullopt};
    CHECK(inngest::detail::send_http(out)->status == 404);
}
