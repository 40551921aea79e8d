// The scripts module end to end: REST over real HTTP, a real PostgreSQL, the embedded executor
// for async runs and the real sandbox worker.

#include "app/app_under_test.hpp"
#include "core/db/database.hpp"
#include "modules/scripts/repository.hpp"
#include "modules/scripts/script_runner.hpp"
#include "modules/scripts/service.hpp"

#include <inngest/errors.hpp>
#include <inngest/http_server.hpp>
#include <inngest/metrics.hpp>

#include <functional>
#include <optional>
#include <thread>
#include <variant>

using riveredge_test::AppUnderTest;
using riveredge_test::Response;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kInvoiceTotal = R"(function main(args, ctx) {
  console.log("pricing", args.lines.length, "lines");
  var total = 0;
  args.lines.forEach(function (l) { total += l.qty * l.price; });
  return { total: total * (1 - args.discount), tenant: ctx.tenant_id };
})";

std::string create_body(const std::string& name,
                        const std::string& code,
                        const std::string& extra = "") {
    json::object body{{"name", name}, {"code", code}};
    std::string text = json::serialize(body);
    if (!extra.empty()) {
        text.pop_back();
        text += "," + extra + "}";
    }
    return text;
}

std::int64_t create_invoice_script(const AppUnderTest& t, const std::string& token) {
    const auto created = t.call("POST", "/api/v1/scripts", token,
                                create_body("invoice-total", kInvoiceTotal,
                                            R"("description":"Sums invoice lines","parameters":[
                {"name":"lines","type":"array","required":true},
                {"name":"discount","type":"number","default":0}])"));
    REQUIRE(created.status == 201);
    return created.body.at("id").as_int64();
}

json::value wait_run(const AppUnderTest& t, const std::string& token, std::int64_t run_id) {
    for (int i = 0; i < 400; ++i) {
        const auto run = t.call("GET", "/api/v1/script-runs/" + std::to_string(run_id), token);
        if (run.status == 200 && run.body.at("status") != "queued" &&
            run.body.at("status") != "running") {
            return run.body;
        }
        std::this_thread::sleep_for(25ms);
    }
    return nullptr;
}

}  // namespace

TEST_CASE("scripts are saved as immutable versions and run synchronously", "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id = create_invoice_script(t, alice);
    const auto path = "/api/v1/scripts/" + std::to_string(id);

    auto script = t.call("GET", path, alice);
    REQUIRE(script.status == 200);
    CHECK(script.body.at("latest_version") == 1);
    CHECK(script.body.at("language") == "javascript");
    CHECK(script.body.at("parameters").as_array().size() == 2);
    CHECK(script.body.at("timeout_ms") == 5000);

    const auto run =
        t.call("POST", path + "/run", alice,
               R"({"arguments":{"lines":[{"qty":2,"price":5},{"qty":1,"price":10}]}})");
    REQUIRE(run.status == 200);
    CHECK(run.body.at("status") == "succeeded");
    CHECK(run.body.at("result") == json::parse(R"({"total":20,"tenant":"acme"})"));
    CHECK(run.body.at("version") == 1);
    CHECK(run.body.at("run_by") == "alice");
    CHECK(run.body.at("arguments") ==
          json::parse(R"({"lines":[{"qty":2,"price":5},{"qty":1,"price":10}],"discount":0})"));
    CHECK(run.body.at("console").at(0).at("message") == "pricing 2 lines");
    CHECK(run.body.at("duration_ms").as_int64() >= 0);
    CHECK(run.body.at("memory_bytes").as_int64() > 0);
    CHECK(run.body.at("finished_at").is_string());

    // A code change is version 2; a rename alone is not a version.
    auto saved =
        t.call("PUT", path, alice, R"({"code":"function main(args) { return {total: -1}; }"})");
    REQUIRE(saved.status == 200);
    CHECK(saved.body.at("latest_version") == 2);
    saved = t.call("PUT", path, alice, R"({"name":"invoice-total-v2","enabled":true})");
    CHECK(saved.body.at("latest_version") == 2);
    CHECK(saved.body.at("name") == "invoice-total-v2");
    const auto versions = t.call("GET", path + "/versions", alice);
    REQUIRE(versions.body.at("versions").as_array().size() == 2);
    CHECK(versions.body.at("versions").at(0).at("version") == 2);
    const auto first = t.call("GET", path + "/versions/1", alice);
    REQUIRE(first.status == 200);
    CHECK(first.body.at("code") == kInvoiceTotal);
    CHECK(t.call("GET", path + "/versions/3", alice).status == 404);

    // Runs name their version; a pinned older version still runs as it was.
    const auto latest = t.call("POST", path + "/run", alice, R"({"arguments":{"lines":[]}})");
    CHECK(latest.body.at("version") == 2);
    CHECK(latest.body.at("result").at("total") == -1);
    const auto pinned =
        t.call("POST", path + "/run", alice,
               R"({"version":1,"arguments":{"lines":[{"qty":1,"price":8}],"discount":0.5}})");
    CHECK(pinned.body.at("version") == 1);
    CHECK(pinned.body.at("result").at("total") == 4);
    const auto runs = t.call("GET", path + "/runs", alice);
    REQUIRE(runs.body.at("items").as_array().size() == 3);
    CHECK(runs.body.at("items").at(0).at("id") == pinned.body.at("id"));
    CHECK(t.call("GET", path + "/runs?status=failed", alice).body.at("items").as_array().empty());

    // The database refuses to change a saved version, even if code tried.
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::core::db::Transaction tx(pool, riveredge::core::TenantId::trusted("acme"));
    CHECK_THROWS_AS(tx.exec("UPDATE script_versions SET code = 'x'"), riveredge::core::db::DbError);
}

TEST_CASE("async runs are carried out durably and fetched later", "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id = create_invoice_script(t, alice);
    const auto queued = t.call("POST", "/api/v1/scripts/" + std::to_string(id) + "/run", alice,
                               R"({"mode":"async","arguments":{"lines":[{"qty":3,"price":3}]}})");
    REQUIRE(queued.status == 202);
    CHECK(queued.body.at("mode") == "async");
    CHECK((queued.body.at("status") == "queued" || queued.body.at("status") == "running" ||
           queued.body.at("status") == "succeeded"));
    const auto finished = wait_run(t, alice, queued.body.at("id").as_int64());
    REQUIRE(finished.is_object());
    CHECK(finished.at("status") == "succeeded");
    CHECK(finished.at("result").at("total") == 9);

    // An async run that fails is recorded as failed, with the script's error, and not retried.
    const auto broken = t.call("POST", "/api/v1/scripts", alice,
                               create_body("broken", "function main() {\n  null.x;\n}"));
    REQUIRE(broken.status == 201);
    const auto failing = t.call(
        "POST", "/api/v1/scripts/" + std::to_string(broken.body.at("id").as_int64()) + "/run",
        alice, R"({"mode":"async"})");
    const auto failed = wait_run(t, alice, failing.body.at("id").as_int64());
    REQUIRE(failed.is_object());
    CHECK(failed.at("status") == "failed");
    CHECK(failed.at("error").at("line") == 2);
    CHECK(failed.at("error").at("message").as_string().find("TypeError") != json::string::npos);
}

TEST_CASE("the sandbox limits hold through the API and runs are recorded", "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto admin = t.token("acme", "root", {"admin"});
    const auto loop =
        t.call("POST", "/api/v1/scripts", alice,
               create_body("loop", "function main() { for (;;) {} }", R"("timeout_ms":200)"));
    REQUIRE(loop.status == 201);
    const auto started = std::chrono::steady_clock::now();
    const auto stopped =
        t.call("POST", "/api/v1/scripts/" + std::to_string(loop.body.at("id").as_int64()) + "/run",
               alice, "{}");
    CHECK(std::chrono::steady_clock::now() - started < 3s);
    REQUIRE(stopped.status == 200);
    CHECK(stopped.body.at("status") == "timed_out");
    CHECK(stopped.body.at("error").at("message").as_string().find("200 ms") != json::string::npos);

    const auto bomb = t.call(
        "POST", "/api/v1/scripts", alice,
        create_body(
            "bomb",
            "function main() { var a = []; for (;;) a.push(new Array(1e5).join('x') + a.length); }",
            R"("memory_limit_mb":4,"timeout_ms":30000)"));
    REQUIRE(bomb.status == 201);
    const auto refused =
        t.call("POST", "/api/v1/scripts/" + std::to_string(bomb.body.at("id").as_int64()) + "/run",
               alice, "{}");
    CHECK(refused.body.at("status") == "memory_exceeded");
    CHECK(refused.body.at("memory_bytes").as_int64() <= 4 * 1024 * 1024);
    CHECK(t.call("GET", "/healthz").status == 200);  // the service is unharmed

    // What a script returns is stored even with a NUL in it, which jsonb cannot hold:
    // U+FFFD stands in, and the run ends instead of staying running.
    const auto odd = t.call("POST", "/api/v1/scripts", alice,
                            create_body("odd", R"(function main() { )"
                                               R"(return 'a\u0000b'; })"));
    REQUIRE(odd.status == 201);
    const auto ended =
        t.call("POST", "/api/v1/scripts/" + std::to_string(odd.body.at("id").as_int64()) + "/run",
               alice, "{}");
    INFO(json::serialize(ended.body));
    REQUIRE(ended.status == 200);
    CHECK(ended.body.at("status") == "succeeded");
    CHECK(ended.body.at("result") ==
          "a\xEF\xBF\xBD"
          "b");
    // So is a console line with a NUL in it, whole: the worker keeps what follows the NUL.
    const auto noisy = t.call("POST", "/api/v1/scripts", alice,
                              create_body("noisy", R"(function main() { )"
                                                   R"(console.log('a\u0000b', 'c'); })"));
    REQUIRE(noisy.status == 201);
    const auto logged =
        t.call("POST", "/api/v1/scripts/" + std::to_string(noisy.body.at("id").as_int64()) + "/run",
               alice, "{}");
    INFO(json::serialize(logged.body));
    REQUIRE(logged.status == 200);
    CHECK(logged.body.at("status") == "succeeded");
    REQUIRE(logged.body.at("console").as_array().size() == 1);
    CHECK(logged.body.at("console").at(0).at("message") ==
          "a\xEF\xBF\xBD"
          "b c");
    // And a thrown error's message, whole: the run records what follows the NUL too.
    const auto thrower = t.call("POST", "/api/v1/scripts", alice,
                                create_body("thrower", R"(function main() { )"
                                                       R"(throw new Error('a\u0000b'); })"));
    REQUIRE(thrower.status == 201);
    const auto thrown = t.call(
        "POST", "/api/v1/scripts/" + std::to_string(thrower.body.at("id").as_int64()) + "/run",
        alice, "{}");
    INFO(json::serialize(thrown.body));
    REQUIRE(thrown.status == 200);
    CHECK(thrown.body.at("status") == "failed");
    CHECK(thrown.body.at("error").at("message") ==
          "Error: a\xEF\xBF\xBD"
          "b");

    // Per-script limits stay within the tenant's maxima.
    CHECK(t.call("POST", "/api/v1/scripts", alice,
                 create_body("slow", "function main() {}", R"("timeout_ms":600000)"))
              .body.at("error")
              .at("details")
              .at("fields")
              .as_object()
              .contains("timeout_ms"));
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"max_timeout_ms":100})").status ==
            200);
    CHECK(t.call("POST", "/api/v1/scripts", alice,
                 create_body("slow2", "function main() {}", R"("timeout_ms":200)"))
              .status == 422);
}

TEST_CASE("validate reports syntax errors with their line and saving refuses them",
          "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto good = t.call("POST", "/api/v1/scripts/validate", alice,
                             R"({"code":"function main() { return 1; }"})");
    REQUIRE(good.status == 200);
    CHECK(good.body.at("valid") == true);
    CHECK(good.body.at("error").is_null());
    const auto bad = t.call("POST", "/api/v1/scripts/validate", alice,
                            R"({"code":"function main() {\n  var x = ;\n}"})");
    REQUIRE(bad.status == 200);
    CHECK(bad.body.at("valid") == false);
    CHECK(bad.body.at("error").at("line") == 2);
    CHECK(bad.body.at("error").at("message").as_string().find("SyntaxError") != json::string::npos);
    // Validating never runs the code: an endless loop validates at once.
    const auto started = std::chrono::steady_clock::now();
    CHECK(t.call("POST", "/api/v1/scripts/validate", alice, R"({"code":"for(;;){}"})")
              .body.at("valid") == true);
    CHECK(std::chrono::steady_clock::now() - started < 2s);

    const auto refused = t.call("POST", "/api/v1/scripts", alice,
                                create_body("bad", "function main() {\n  return 1 +;\n}"));
    REQUIRE(refused.status == 422);
    CHECK(refused.body.at("error").at("details").at("fields").at("code").as_string().find(
              "line 2") != json::string::npos);
    CHECK(t.call("GET", "/api/v1/scripts", alice).body.at("items").as_array().empty());
}

TEST_CASE("arguments are checked against the declared parameters", "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id = create_invoice_script(t, alice);
    const auto run = [&](const std::string& body) {
        return t.call("POST", "/api/v1/scripts/" + std::to_string(id) + "/run", alice, body);
    };
    auto r = run(R"({"arguments":{}})");
    CHECK(r.status == 422);
    CHECK(r.body.at("error").at("details").at("fields").as_object().contains("arguments.lines"));
    r = run(R"({"arguments":{"lines":"nope"}})");
    CHECK(r.body.at("error").at("details").at("fields").at("arguments.lines") ==
          "must be of type array");
    r = run(R"({"arguments":{"lines":[],"discnt":0.1}})");
    CHECK(r.body.at("error").at("details").at("fields").at("arguments.discnt") ==
          "is not a declared parameter");
    CHECK(run(R"({"arguments":[1,2]})").status == 422);
    // Nothing was recorded for refused runs.
    CHECK(t.call("GET", "/api/v1/scripts/" + std::to_string(id) + "/runs", alice)
              .body.at("items")
              .as_array()
              .empty());
    // Bad declarations are refused with the parameter named.
    const auto bad_params = t.call(
        "POST", "/api/v1/scripts", alice,
        create_body(
            "p", "function main() {}",
            R"("parameters":[{"name":"ok","type":"string"},{"name":"1x","type":"string"},{"name":"n","type":"integer","default":"three"}])"));
    REQUIRE(bad_params.status == 422);
    const auto& fields = bad_params.body.at("error").at("details").at("fields").as_object();
    CHECK(fields.contains("parameters[1].name"));
    CHECK(fields.contains("parameters[2].default"));
}

TEST_CASE("one tenant cannot read, run or detect another tenant's scripts and runs",
          "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto mallory = t.token("globex", "mallory", {"admin"});
    const auto id = create_invoice_script(t, alice);
    const auto run = t.call("POST", "/api/v1/scripts/" + std::to_string(id) + "/run", alice,
                            R"({"arguments":{"lines":[]}})");
    REQUIRE(run.status == 200);
    const auto path = "/api/v1/scripts/" + std::to_string(id);
    for (const auto& [method, target, body] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"GET", path, ""},
             {"PUT", path, R"({"code":"function main() { return 'owned'; }"})"},
             {"GET", path + "/versions", ""},
             {"GET", path + "/versions/1", ""},
             {"POST", path + "/run", R"({"arguments":{"lines":[]}})"},
             {"POST", path + "/run", R"({"mode":"async","arguments":{"lines":[]}})"},
             {"GET", path + "/runs", ""},
             {"GET", "/api/v1/script-runs/" + std::to_string(run.body.at("id").as_int64()), ""}}) {
        CAPTURE(method, target);
        const auto answer = t.call(method, target, mallory, body);
        CHECK(answer.status == 404);
        // Not even the existence shows: the same answer as for an id that never existed.
        CHECK(json::serialize(answer.body).find("invoice") == std::string::npos);
    }
    CHECK(t.call("GET", "/api/v1/scripts", mallory).body.at("items").as_array().empty());
    // The same name is free in another tenant.
    CHECK(t.call("POST", "/api/v1/scripts", mallory,
                 create_body("invoice-total", "function main() {}"))
              .status == 201);
    // Settings are per tenant.
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", mallory,
                   R"({"http_allow_list":["globex.example"]})")
                .status == 200);
    CHECK(t.call("GET", "/api/v1/scripts/settings", alice)
              .body.at("http_allow_list")
              .as_array()
              .empty());
    // acme's script is unchanged and still has one run.
    CHECK(t.call("GET", path, alice).body.at("latest_version") == 1);
    CHECK(t.call("GET", path + "/runs", alice).body.at("items").as_array().size() == 1);
}

TEST_CASE("ctx.http follows the tenant allow-list that only admins set", "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto admin = t.token("acme", "root", {"admin"});
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes =
        [](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        return inngest::HttpResponse{200, {}, "{\"echo\":\"" + request.path + "\"}"};
    };
    inngest::HttpServer hook(options);
    hook.start();
    const auto created = t.call(
        "POST", "/api/v1/scripts", alice,
        create_body(
            "hook",
            "function main(args, ctx) { return JSON.parse(ctx.http({url: args.url}).body); }",
            R"("parameters":[{"name":"url","type":"string","required":true}])"));
    REQUIRE(created.status == 201);
    const auto run_path =
        "/api/v1/scripts/" + std::to_string(created.body.at("id").as_int64()) + "/run";
    const std::string args =
        R"({"arguments":{"url":"http://127.0.0.1:)" + std::to_string(hook.port()) + R"(/ping"}})";

    auto off = t.call("POST", run_path, alice, args);
    CHECK(off.body.at("status") == "failed");
    CHECK(off.body.at("error").at("message").as_string().find("allow-list") != json::string::npos);

    CHECK(t.call("PUT", "/api/v1/scripts/settings", t.token("acme", "bob"),
                 R"({"http_allow_list":["127.0.0.1"]})")
              .status == 403);
    CHECK(t.call("PUT", "/api/v1/scripts/settings", admin,
                 R"({"http_allow_list":["http://127.0.0.1:80/x"]})")
              .status == 422);
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    const auto on = t.call("POST", run_path, alice, args);
    CHECK(on.body.at("status") == "succeeded");
    CHECK(on.body.at("result") == json::parse(R"({"echo":"/ping"})"));
    hook.stop();
}

TEST_CASE("bad script requests get precise 4xx answers and change nothing", "[app][scripts]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    CHECK(t.call("POST", "/api/v1/scripts", alice, "{not json").status == 400);
    CHECK(t.call("POST", "/api/v1/scripts", alice, R"({"name":"x"})").status == 422);
    CHECK(t.call("POST", "/api/v1/scripts", alice,
                 create_body("x", "function main() {}", R"("language":"python")"))
              .status == 422);
    CHECK(t.call("GET", "/api/v1/scripts/abc", alice).status == 422);
    CHECK(t.call("GET", "/api/v1/scripts/999999", alice).status == 404);
    CHECK(t.call("POST", "/api/v1/scripts/999999/run", alice, "{}").status == 404);
    CHECK(t.call("GET", "/api/v1/scripts?page_size=100000", alice).status == 422);
    CHECK(t.call("GET", "/api/v1/scripts", "").status == 401);

    // A name full of SQL is just a name.
    const std::string sql_name = "x'; DROP TABLE scripts; --";
    const auto odd = t.call("POST", "/api/v1/scripts", alice,
                            create_body(sql_name, "function main() { return 1; }"));
    REQUIRE(odd.status == 201);
    CHECK(odd.body.at("name") == json::value(sql_name));
    CHECK(t.call("POST", "/api/v1/scripts", alice, create_body(sql_name, "function main() {}"))
              .status == 409);
    const auto id = odd.body.at("id").as_int64();
    CHECK(t.call("POST", "/api/v1/scripts/" + std::to_string(id) + "/run", alice,
                 R"({"mode":"later"})")
              .status == 422);
    REQUIRE(t.call("PUT", "/api/v1/scripts/" + std::to_string(id), alice, R"({"enabled":false})")
                .status == 200);
    const auto disabled =
        t.call("POST", "/api/v1/scripts/" + std::to_string(id) + "/run", alice, "{}");
    CHECK(disabled.status == 409);
    CHECK(
        t.call("GET", "/api/v1/scripts?enabled=false", alice).body.at("items").as_array().size() ==
        1);
    CHECK(t.call("GET", "/api/v1/scripts/" + std::to_string(id) + "/runs", alice)
              .body.at("items")
              .as_array()
              .empty());
}

TEST_CASE("a durable step's script run is once per key: a repeat gets the run, a failure frees it",
          "[app][scripts]") {
    // What schedules, workflows and approvals pass for a step: the step re-run after a crash
    // must not run the script a second time, and a retry after the script failed must.
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto ok = t.call("POST", "/api/v1/scripts", alice,
                           create_body("once", "function main(a) { return {n: a.n}; }",
                                       R"("parameters":[{"name":"n","type":"number"}])"));
    REQUIRE(ok.status == 201);
    const auto failing = t.call("POST", "/api/v1/scripts", alice,
                                create_body("fails", "function main() { throw new Error('no'); }"));
    REQUIRE(failing.status == 201);
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::scripts::Repository repository(pool);
    const riveredge::scripts::ScriptRunner runner(SCRIPT_WORKER_PATH);
    const riveredge::core::OutboundPolicy outbound;
    riveredge::scripts::Service service(repository, runner, outbound);
    const riveredge::core::Principal schedule{
        riveredge::core::TenantId::trusted("acme"), "schedule:7", {}};
    const json::object request{{"mode", "sync"}, {"arguments", json::object{{"n", 1}}}};
    const auto runs_of = [&](const json::value& script) {
        return t
            .call("GET", "/api/v1/scripts/" + std::to_string(script.at("id").as_int64()) + "/runs",
                  alice)
            .body.at("total")
            .as_int64();
    };

    const auto first =
        service.start_run(schedule, ok.body.at("id").as_int64(), request, "schedule", "fire-1");
    CHECK(first.at("status") == "succeeded");
    const auto again =
        service.start_run(schedule, ok.body.at("id").as_int64(), request, "schedule", "fire-1");
    CHECK(again.at("id") == first.at("id"));
    CHECK(runs_of(ok.body) == 1);
    // The key is its sender's own; without a key every call is a run.
    const riveredge::core::Principal other{
        riveredge::core::TenantId::trusted("acme"), "schedule:8", {}};
    CHECK(service.start_run(other, ok.body.at("id").as_int64(), request, "schedule", "fire-1")
              .at("id") != first.at("id"));
    service.start_run(schedule, ok.body.at("id").as_int64(), request, "schedule");
    CHECK(runs_of(ok.body) == 3);

    // A failed run leaves the key free: the retry runs the script again.
    const auto failed = service.start_run(schedule, failing.body.at("id").as_int64(),
                                          json::object{{"mode", "sync"}}, "schedule", "fire-2");
    CHECK(failed.at("status") == "failed");
    const auto retried = service.start_run(schedule, failing.body.at("id").as_int64(),
                                           json::object{{"mode", "sync"}}, "schedule", "fire-2");
    CHECK(retried.at("id") != failed.at("id"));
    CHECK(runs_of(failing.body) == 2);

    // A run left 'running' by a process that died runs again, in the same record.
    const auto orphan = repository.create_run(
        schedule.tenant,
        riveredge::scripts::NewRun{ok.body.at("id").as_int64(), 1, "sync", "schedule",
                                   json::object{{"n", 2}}, "schedule:7", "fire-3"},
        "running");
    const auto resumed =
        service.start_run(schedule, ok.body.at("id").as_int64(),
                          json::object{{"mode", "sync"}, {"arguments", json::object{{"n", 3}}}},
                          "schedule", "fire-3");
    CHECK(resumed.at("id") == orphan.id);
    CHECK(resumed.at("status") == "succeeded");

    // A worker that cannot start leaves the run failed, not running for ever.
    const riveredge::scripts::ScriptRunner broken("/nonexistent/riveredge-script-worker");
    riveredge::scripts::Service stranded(repository, broken, outbound);
    CHECK_THROWS(
        stranded.start_run(schedule, ok.body.at("id").as_int64(), request, "schedule", "fire-4"));
    const auto listed = t.call("GET",
                               "/api/v1/scripts/" + std::to_string(ok.body.at("id").as_int64()) +
                                   "/runs?sort=-created_at",
                               alice)
                            .body.at("items")
                            .as_array();
    REQUIRE(!listed.empty());
    CHECK(listed[0].at("status") == "failed");
    // The tenant learns that it failed, not where the deployment keeps its worker.
    CHECK(listed[0].at("error").at("message") == "the script worker could not be started");
    CHECK(json::serialize(listed[0]).find("/nonexistent") == std::string::npos);
}

TEST_CASE("a durable step's keyed run settles when the run holding its key fails meanwhile",
          "[app][scripts]") {
    // The run holding the key (another attempt's, still running) fails between the insert that
    // meets it and the look-up of it: the key is free then, and this attempt's run is recorded
    // and run in the same call instead of the step failing once.
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto ok = t.call("POST", "/api/v1/scripts", alice,
                           create_body("once", "function main(a) { return {n: a.n}; }",
                                       R"("parameters":[{"name":"n","type":"number"}])"));
    REQUIRE(ok.status == 201);
    const auto script_id = ok.body.at("id").as_int64();
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::scripts::Repository repository(pool);
    const riveredge::scripts::ScriptRunner runner(SCRIPT_WORKER_PATH);
    const riveredge::core::OutboundPolicy outbound;
    riveredge::scripts::Service service(repository, runner, outbound);
    const riveredge::core::Principal schedule{
        riveredge::core::TenantId::trusted("acme"), "schedule:7", {}};
    const auto holder = repository.create_run(
        schedule.tenant,
        riveredge::scripts::NewRun{script_id, 1, "sync", "schedule", json::object{{"n", 1}},
                                   "schedule:7", "fire-1"},
        "running");
    // The holder fails right after each insert into script_runs, as if its attempt ended
    // failed just then (each statement sees what is committed when it starts).
    {
        riveredge::core::db::Pool owner(*t.settings().migration_database_url, 1);
        riveredge::core::db::transact(
            owner, std::nullopt, [&](riveredge::core::db::Transaction& tx) {
                tx.exec(
                    "CREATE FUNCTION fail_holder() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "UPDATE script_runs SET status = 'failed', finished_at = now() WHERE id = " +
                    std::to_string(holder.id) + " AND status = 'running'; RETURN NULL; END $$");
                tx.exec(
                    "CREATE TRIGGER fail_holder AFTER INSERT ON script_runs FOR EACH STATEMENT "
                    "EXECUTE FUNCTION fail_holder()");
            });
    }
    json::value run;
    REQUIRE_NOTHROW(run = service.start_run(
                        schedule, script_id,
                        json::object{{"mode", "sync"}, {"arguments", json::object{{"n", 2}}}},
                        "schedule", "fire-1"));
    CHECK(run.at("id") != holder.id);
    CHECK(run.at("status") == "succeeded");
    CHECK(run.at("result") == json::object{{"n", 2}});
    const auto holder_now = repository.run(schedule.tenant, holder.id);
    REQUIRE(holder_now);
    CHECK(holder_now->status == "failed");
}

TEST_CASE("a run another attempt is still carrying out is not run a second time",
          "[app][scripts]") {
    // The executor gives up on a call after its call timeout and retries the step while the
    // first attempt still runs the script; a keyed run's caller does the same. The second
    // attempt must not start the script again: it waits for the first one, or is retried.
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto slow = t.call(
        "POST", "/api/v1/scripts", alice,
        create_body("slow",
                    "function main() { var end = Date.now() + 1500; while (Date.now() < end) {} "
                    "return {done: true}; }"));
    REQUIRE(slow.status == 201);
    const auto script_id = slow.body.at("id").as_int64();
    riveredge::core::db::Pool pool(t.settings().database_url, 4);
    riveredge::scripts::Repository repository(pool);
    const riveredge::scripts::ScriptRunner runner(SCRIPT_WORKER_PATH);
    const riveredge::core::OutboundPolicy outbound;
    inngest::Metrics metrics;
    riveredge::scripts::Service service(repository, runner, outbound, &metrics);
    const auto tenant = riveredge::core::TenantId::trusted("acme");
    const auto runs_counted = [&] {
        const auto text = metrics.text();
        const std::string series = R"(riveredge_script_runs_total{outcome="succeeded"} )";
        const auto at = text.find(series);
        return at == std::string::npos ? 0 : std::stoi(text.substr(at + series.size()));
    };
    // Two attempts 300 ms apart, on threads of their own; what each answered (or threw).
    const auto overlapping = [](const std::function<json::object()>& attempt) {
        const auto answer = [&attempt](json::object& out) {
            try {
                out = attempt();
            } catch (const std::exception& error) {
                out = json::object{{"thrown", error.what()}};
            }
        };
        json::object first;
        json::object second;
        std::thread a([&] { answer(first); });
        std::this_thread::sleep_for(300ms);
        std::thread b([&] { answer(second); });
        a.join();
        b.join();
        return std::pair{first, second};
    };

    SECTION("the durable step of an async run") {
        const auto queued = repository.create_run(
            tenant,
            riveredge::scripts::NewRun{script_id, 1, "async", "api", json::object{}, "alice"},
            "queued");
        const auto [first, second] =
            overlapping([&] { return service.execute_run(tenant, queued.id); });
        CHECK(runs_counted() == 1);
        CHECK(first.at("status") == "succeeded");
        CHECK(second.at("status") == "succeeded");
        CHECK(second.at("id") == queued.id);

        // One left running by a process that died holds nothing: it runs again.
        const auto orphan = repository.create_run(
            tenant,
            riveredge::scripts::NewRun{script_id, 1, "async", "api", json::object{}, "alice"},
            "running");
        CHECK(service.execute_run(tenant, orphan.id).at("status") == "succeeded");
        CHECK(runs_counted() == 2);
    }
    SECTION("a keyed run of another module's step") {
        const riveredge::core::Principal schedule{tenant, "schedule:7", {}};
        const auto [first, second] = overlapping([&] {
            return service.start_run(schedule, script_id, json::object{{"mode", "sync"}},
                                     "schedule", "fire-1");
        });
        CHECK(runs_counted() == 1);
        CHECK(first.at("status") == "succeeded");
        CHECK(second.at("status") == "succeeded");
        CHECK(second.at("id") == first.at("id"));
    }
}

TEST_CASE("a run whose fence's connection is lost while its script runs is not run a second time",
          "[app][scripts]") {
    // The fence is a session lock on a connection of its own, idle while the script runs: a
    // server's idle timeout, a proxy or a network blip may drop it, and the lock with it. An
    // attempt that takes the fence then must not run the script while its carrier still runs
    // it (the carrier's lease on the run is fresh); one whose carrier died (kill -9) must run it
    // once that lease is stale.
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto create = [&](const std::string& name, const std::string& code) {
        const auto created = t.call("POST", "/api/v1/scripts", alice,
                                    create_body(name, code, R"("timeout_ms":10000)"));
        REQUIRE(created.status == 201);
        return created.body.at("id").as_int64();
    };
    const auto slow =
        create("slow",
               "function main() { var end = Date.now() + 4000; while (Date.now() < end) {} "
               "return {done: true}; }");
    const auto quick = create("quick", "function main() { return {done: true}; }");
    riveredge::core::db::Pool pool(t.settings().database_url, 4);
    riveredge::scripts::Repository repository(pool);
    const riveredge::scripts::ScriptRunner runner(SCRIPT_WORKER_PATH);
    const riveredge::core::OutboundPolicy outbound;
    inngest::Metrics metrics;
    riveredge::scripts::Service service(repository, runner, outbound, &metrics);
    const auto tenant = riveredge::core::TenantId::trusted("acme");
    const auto runs_counted = [&] {
        const auto text = metrics.text();
        const std::string series = R"(riveredge_script_runs_total{outcome="succeeded"} )";
        const auto at = text.find(series);
        return at == std::string::npos ? 0 : std::stoi(text.substr(at + series.size()));
    };
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    // The backends holding the fence of run `run_id` (its advisory lock) in this database.
    const auto fence_holders = [&](std::int64_t run_id) {
        return riveredge::core::db::exec_once(
            owner, std::nullopt,
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) AND "
            "(classid::bigint << 32 | objid::bigint) = "
            "hashtextextended('riveredge.script_run.acme.' || $1, 0)",
            {run_id});
    };
    // Ending a backend takes its own role.
    riveredge::core::db::Pool app_role(t.settings().database_url, 1);

    SECTION("the connection is dropped while the carrier runs the script") {
        const auto queued = repository.create_run(
            tenant, riveredge::scripts::NewRun{slow, 1, "async", "api", json::object{}, "alice"},
            "queued");
        json::object first;
        std::jthread carrier([&] {
            try {
                first = service.execute_run(tenant, queued.id);
            } catch (const std::exception& error) {
                first = json::object{{"thrown", error.what()}};
            }
        });
        // The script runs under the fence: its connection is ended by the server.
        int holder = 0;
        for (int i = 0; i < 400 && holder == 0; ++i) {
            const auto holders = fence_holders(queued.id);
            if (!holders.empty() && repository.run(tenant, queued.id)->status == "running") {
                holder = static_cast<int>(holders.integer(0, "pid"));
            } else {
                std::this_thread::sleep_for(10ms);
            }
        }
        REQUIRE(holder != 0);
        REQUIRE(riveredge::core::db::exec_once(app_role, std::nullopt,
                                               "SELECT pg_terminate_backend($1::int) AS ended",
                                               {holder})
                    .boolean(0, "ended"));
        for (int i = 0; i < 200 && !fence_holders(queued.id).empty(); ++i) {
            std::this_thread::sleep_for(10ms);
        }
        REQUIRE(fence_holders(queued.id).empty());
        REQUIRE(repository.run(tenant, queued.id)->status == "running");
        // A retried step's attempt takes the free fence while the first one still runs the
        // script: it waits for that run instead of starting a second worker.
        json::object second;
        REQUIRE_NOTHROW(second = service.execute_run(tenant, queued.id));
        carrier.join();
        INFO(json::serialize(first) << "\n" << json::serialize(second));
        CHECK(runs_counted() == 1);
        CHECK(first.at("status") == "succeeded");
        CHECK(second.at("status") == "succeeded");
        CHECK(second.at("id") == queued.id);
    }
    SECTION("its carrier was killed: the run is carried out once its lease is stale") {
        const auto orphan = repository.create_run(
            tenant, riveredge::scripts::NewRun{quick, 1, "async", "api", json::object{}, "alice"},
            "running");
        REQUIRE(riveredge::core::db::exec_once(owner, tenant,
                                               "UPDATE script_runs SET lease_until = "
                                               "clock_timestamp() + interval '2 seconds' WHERE id "
                                               "= $1",
                                               {orphan.id})
                    .affected() == 1);
        const auto asked = std::chrono::steady_clock::now();
        const auto resumed = service.execute_run(tenant, orphan.id);
        CHECK(resumed.at("status") == "succeeded");
        CHECK(runs_counted() == 1);
        // Not before the lease was stale; well within the step's wait for it.
        CHECK(std::chrono::steady_clock::now() - asked >= 1500ms);
        CHECK(std::chrono::steady_clock::now() - asked < 15s);
    }
    SECTION("the server's idle timeout does not end the fence's connection") {
        // A deployment that ends sessions idle for a second: not the fence's.
        riveredge::core::db::Pool strict_pool(
            t.settings().database_url + " options='-c idle_session_timeout=1000'", 1);
        riveredge::scripts::Repository strict(strict_pool);
        const auto session = strict.fence_session();
        REQUIRE(strict.try_fence(*session, tenant, 4242));
        std::this_thread::sleep_for(2500ms);
        CHECK(strict.fence_held(*session));
        CHECK(fence_holders(4242).size() == 1);
    }
}

TEST_CASE(
    "a durable step's keyed run another attempt still carries out answers retry-after "
    "within the step's wait, and the retry gets the run by its key",
    "[app][scripts]") {
    // Another module's step (a schedule's action, a workflow node, an approval task) runs the
    // script synchronously on the step's thread: waiting there for an earlier attempt's run up
    // to that run's time limit would outlast the executor's call timeout (60 s) and hold one of
    // the tenant's sync-run slots all along. It waits as an async run's step does, then asks to
    // be retried after the run's limit.
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto slow = t.call(
        "POST", "/api/v1/scripts", alice,
        create_body("slow",
                    "function main() { var end = Date.now() + 5000; while (Date.now() < end) {} "
                    "return {done: true}; }",
                    R"("timeout_ms":20000)"));
    REQUIRE(slow.status == 201);
    const auto quick =
        t.call("POST", "/api/v1/scripts", alice, create_body("quick", "function main() {}"));
    REQUIRE(quick.status == 201);
    const auto script_id = slow.body.at("id").as_int64();
    riveredge::core::db::Pool pool(t.settings().database_url, 4);
    riveredge::scripts::Repository repository(pool);
    const riveredge::scripts::ScriptRunner runner(SCRIPT_WORKER_PATH);
    const riveredge::core::OutboundPolicy outbound;
    inngest::Metrics metrics;
    // A step's wait of 1 s instead of 20 s, so a script of 5 s outlasts it.
    riveredge::scripts::Service service(repository, runner, outbound, &metrics,
                                        {.fence_wait = 1s, .lease = 15s, .heartbeat = 3s});
    const auto tenant = riveredge::core::TenantId::trusted("acme");
    const riveredge::core::Principal schedule{tenant, "schedule:7", {}};
    const json::object request{{"mode", "sync"}};
    const auto runs_counted = [&] {
        const auto text = metrics.text();
        const std::string series = R"(riveredge_script_runs_total{outcome="succeeded"} )";
        const auto at = text.find(series);
        return at == std::string::npos ? 0 : std::stoi(text.substr(at + series.size()));
    };

    json::object first;
    std::jthread carrier([&] {
        try {
            first = service.start_run(schedule, script_id, request, "schedule", "fire-1");
        } catch (const std::exception& error) {
            first = json::object{{"thrown", error.what()}};
        }
    });
    std::optional<riveredge::scripts::RunRow> running;
    for (int i = 0; i < 400 && !(running && running->status == "running"); ++i) {
        std::this_thread::sleep_for(10ms);
        running = repository.run_with_key(tenant, "schedule:7", script_id, "fire-1");
    }
    REQUIRE(running);
    REQUIRE(running->status == "running");

    // The step retried while the first attempt still runs the script.
    const auto asked = std::chrono::steady_clock::now();
    std::optional<std::chrono::seconds> retry_after;
    try {
        const auto answered = service.start_run(schedule, script_id, request, "schedule", "fire-1");
        FAIL("answered " << json::serialize(answered));
    } catch (const inngest::RetryAfterError& retry) {
        retry_after = std::get<std::chrono::seconds>(retry.retry_at());
    }
    const auto waited = std::chrono::steady_clock::now() - asked;
    CHECK(waited < 3s);
    REQUIRE(retry_after);
    CHECK(*retry_after == 50s);  // the run's limit, 20 s, and 30 s
    // Its sync-run slot is free again: the tenant's two are not both taken.
    const auto other =
        service.start_run(schedule, quick.body.at("id").as_int64(), request, "schedule", "fire-2");
    CHECK(other.at("status") == "succeeded");

    carrier.join();
    INFO(json::serialize(first));
    CHECK(first.at("status") == "succeeded");
    // Retried after the run, the step gets it by its key: the script ran once.
    const auto retried = service.start_run(schedule, script_id, request, "schedule", "fire-1");
    CHECK(retried.at("id") == first.at("id"));
    CHECK(retried.at("status") == "succeeded");
    CHECK(runs_counted() == 2);  // the slow script once, the quick one once
}
