// Approval definitions over REST (import both formats, validate, publish immutable versions,
// tenant isolation) and a first run of instances: branches, a group task, rejection and two
// deciders at the same moment. approvals_engine_test.cpp covers the rest of the engine.

#include "app/app_under_test.hpp"
#include "app/approvals_support.hpp"
#include "core/db/database.hpp"

#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

using riveredge_test::AppUnderTest;
using namespace riveredge_test::approvals;
namespace json = boost::json;
using namespace std::chrono_literals;

TEST_CASE("definitions import from ProFlow and the process format and publish as versions",
          "[app][approvals]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});

    const auto seed = t.call("POST", "/api/v1/approvals/definitions", alice,
                             import_body(fixture("seed_user_registration.json")));
    REQUIRE(seed.status == 201);
    CHECK(seed.body.at("key") == "userRegistration");
    CHECK(seed.body.at("format") == "seed");
    CHECK(seed.body.at("valid") == true);
    CHECK(seed.body.at("latest_version") == 0);

    const auto created = t.call("POST", "/api/v1/approvals/definitions", alice,
                                import_body(fixture("proflow_leave_request.json")));
    REQUIRE(created.status == 201);
    CHECK(created.body.at("format") == "proflow");
    // The draft is kept verbatim for the designer, UI fields included.
    CHECK(created.body.at("draft").at("nodes").at(0).at("position").is_object());
    const auto id = created.body.at("id").as_int64();
    const auto path = "/api/v1/approvals/definitions/" + std::to_string(id);

    const auto v1 = t.call("POST", path + "/publish", alice);
    REQUIRE(v1.status == 201);
    CHECK(v1.body.at("version") == 1);
    CHECK(v1.body.at("compiled").at("nodes").as_array().size() == 5);
    CHECK(v1.body.at("content_hash").as_string().size() == 64);

    // A draft with a problem is saved, reported, and cannot be published.
    auto source = json::parse(fixture("proflow_leave_request.json")).as_object();
    source["edges"].as_array()[2].as_object().erase("data");  // e3 loses its condition
    const auto edited = t.call("PUT", path, alice, import_body(json::serialize(source)));
    REQUIRE(edited.status == 200);
    CHECK(edited.body.at("valid") == false);
    CHECK(edited.body.at("problems").at(0).at("edge") == "e3");
    const auto refused = t.call("POST", path + "/publish", alice);
    CHECK(refused.status == 422);
    CHECK(refused.body.at("error").at("details").at("problems").at(0).at("edge") == "e3");

    // Fixed: version 2; version 1 is unchanged.
    source["edges"].as_array()[2].as_object()["data"] =
        json::parse(R"({"condition":"${amount >= 5000}","priority":1})");
    REQUIRE(t.call("PUT", path, alice, import_body(json::serialize(source))).status == 200);
    const auto v2 = t.call("POST", path + "/publish", alice);
    REQUIRE(v2.status == 201);
    CHECK(v2.body.at("version") == 2);
    const auto versions = t.call("GET", path + "/versions", alice);
    REQUIRE(versions.body.at("versions").as_array().size() == 2);
    const auto first = t.call("GET", path + "/versions/1", alice);
    CHECK(json::serialize(first.body.at("compiled")).find("amount >= 1000") != std::string::npos);
    CHECK(t.call("GET", path + "/versions/3", alice).status == 404);
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::core::db::Transaction tx(pool, riveredge::core::TenantId::trusted("acme"));
    CHECK_THROWS_AS(tx.exec("UPDATE approval_definition_versions SET content_hash = 'x'"),
                    riveredge::core::db::DbError);
}

TEST_CASE("definition validation over REST names nodes and edges and isolates tenants",
          "[app][approvals]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto mallory = t.token("globex", "mallory", {"admin"});
    const auto checked =
        t.call("POST", "/api/v1/approvals/definitions/validate", alice,
               import_body(R"({"nodes":[{"id":"s","type":"startEvent"},{"id":"t","type":"userTask"},
                      {"id":"e","type":"endEvent"}],
                     "edges":[{"id":"a","source":"s","target":"t"},{"id":"b","source":"t","target":"gone"}]})"));
    REQUIRE(checked.status == 200);
    CHECK(checked.body.at("valid") == false);
    std::set<std::string> where;
    for (const auto& p : checked.body.at("problems").as_array()) {
        where.insert(p.at("node").is_string()   ? "node:" + std::string(p.at("node").as_string())
                     : p.at("edge").is_string() ? "edge:" + std::string(p.at("edge").as_string())
                                                : "process");
    }
    CHECK(where.count("edge:b") == 1);  // dangling
    CHECK(where.count("node:t") == 1);  // no approvers
    CHECK(where.count("node:e") == 1);  // no incoming flow
    CHECK(t.call("POST", "/api/v1/approvals/definitions/validate", alice, R"({"source":[]})")
              .status == 422);
    CHECK(t.call("POST", "/api/v1/approvals/definitions", alice, "{oops").status == 400);
    CHECK(t.call("POST", "/api/v1/approvals/definitions", alice,
                 import_body(fixture("proflow_leave_request.json"), R"("format":"bpmn-xml")"))
              .status == 422);

    const auto created = t.call("POST", "/api/v1/approvals/definitions", alice,
                                import_body(fixture("proflow_leave_request.json")));
    REQUIRE(created.status == 201);
    CHECK(t.call("POST", "/api/v1/approvals/definitions", alice,
                 import_body(fixture("proflow_leave_request.json")))
              .status == 409);
    const auto path =
        "/api/v1/approvals/definitions/" + std::to_string(created.body.at("id").as_int64());
    for (const auto& [method, target] :
         std::vector<std::pair<std::string, std::string>>{{"GET", path},
                                                          {"PUT", path},
                                                          {"POST", path + "/publish"},
                                                          {"GET", path + "/versions"},
                                                          {"GET", path + "/versions/1"}}) {
        CAPTURE(method, target);
        CHECK(t.call(method, target, mallory, import_body(fixture("proflow_leave_request.json")))
                  .status == 404);
    }
    CHECK(t.call("GET", "/api/v1/approvals/definitions", mallory)
              .body.at("items")
              .as_array()
              .empty());
    // The same key is free in another tenant.
    CHECK(t.call("POST", "/api/v1/approvals/definitions", mallory,
                 import_body(fixture("proflow_leave_request.json")))
              .status == 201);
    CHECK(t.call("GET", path, alice).body.at("latest_version") == 0);
}

namespace {

constexpr const char* kExpenseProcess = R"({"key":"expense","name":"报销","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"manager","type":"userTask","data":{"bpmn":{"name":"经理审批","approvers":[{"type":"user","value":"bob"},{"type":"user","value":"erin"}],"mode":"any"}}},
  {"id":"amount","type":"exclusiveGateway"},
  {"id":"finance","type":"userTask","data":{"bpmn":{"approvers":[{"type":"role","value":"finance"}]}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"manager"},{"id":"2","source":"manager","target":"amount"},
  {"id":"big","source":"amount","target":"finance","data":{"condition":"${amount >= 1000 && dept == 'R&D'}","priority":1}},
  {"id":"small","source":"amount","target":"end","data":{"isDefault":true}},
  {"id":"3","source":"finance","target":"end"}]})";

}  // namespace

TEST_CASE("instances run durably: branch on amount, approve, reject, one outcome for two deciders",
          "[app][approvals]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(riveredge_test::AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto erin = t.token("acme", "erin");
    const auto carol = t.token("acme", "carol", {"finance"});
    const auto dave = t.token("acme", "dave");
    const auto mallory = t.token("globex", "mallory", {"finance", "admin"});
    const auto created =
        t.call("POST", "/api/v1/approvals/definitions", alice, import_body(kExpenseProcess));
    REQUIRE(created.status == 201);
    const auto definition = created.body.at("id").as_int64();
    const auto start = [&](const std::string& variables) {
        const auto r = t.call("POST", "/api/v1/approvals/instances", alice,
                              R"({"definition_id":)" + std::to_string(definition) +
                                  R"(,"variables":)" + variables + "}");
        return r;
    };
    CHECK(start(R"({"amount":1})").status == 409);  // nothing published yet
    REQUIRE(t.call("POST",
                   "/api/v1/approvals/definitions/" + std::to_string(definition) + "/publish",
                   alice)
                .status == 201);

    // Small amount: the manager step only. bob and erin decide at the same moment: one wins.
    const auto small = start(R"({"amount":500,"dept":"R&D"})");
    REQUIRE(small.status == 201);
    const auto small_id = small.body.at("id").as_int64();
    auto seen = flow.wait_instance(alice, small_id,
                                   [](const json::value& i) { return has_pending(i, "manager"); });
    REQUIRE(seen.is_object());
    std::vector<std::int64_t> manager_tasks;
    for (const auto& task : seen.at("tasks").as_array()) {
        manager_tasks.push_back(task.at("id").as_int64());
    }
    REQUIRE(manager_tasks.size() == 2);
    CHECK(t.call("GET", "/api/v1/approvals/tasks", bob).body.at("items").as_array().size() == 1);
    CHECK(t.call("POST", "/api/v1/approvals/tasks/" + std::to_string(manager_tasks[0]) + "/approve",
                 dave, "{}")
              .status == 403);
    std::vector<int> statuses(2);
    std::thread first([&] {
        statuses[0] =
            t.call("POST",
                   "/api/v1/approvals/tasks/" + std::to_string(manager_tasks[0]) + "/approve", bob,
                   R"({"comment":"同意"})")
                .status;
    });
    std::thread second([&] {
        statuses[1] =
            t.call("POST",
                   "/api/v1/approvals/tasks/" + std::to_string(manager_tasks[1]) + "/reject", erin,
                   R"({"comment":"不同意"})")
                .status;
    });
    first.join();
    second.join();
    std::sort(statuses.begin(), statuses.end());
    CHECK(statuses == std::vector<int>{200, 409});
    const auto small_done = flow.wait_instance(
        alice, small_id, [](const json::value& i) { return i.at("status") != "running"; });
    REQUIRE(small_done.is_object());
    // Whichever decision won decided the instance.
    const bool bob_won =
        t.call("GET", "/api/v1/approvals/tasks?box=done", bob).body.at("items").as_array().size() ==
        1;
    CHECK(small_done.at("status") == (bob_won ? "completed" : "rejected"));

    // Large amount in R&D: manager, then finance (a group task for the role).
    const auto large = start(R"({"amount":5000,"dept":"R&D"})");
    const auto large_id = large.body.at("id").as_int64();
    seen = flow.wait_instance(alice, large_id,
                              [](const json::value& i) { return has_pending(i, "manager"); });
    REQUIRE(seen.is_object());
    REQUIRE(t.call("POST",
                   "/api/v1/approvals/tasks/" + std::to_string(flow.pending_task(seen, "manager")) +
                       "/approve",
                   bob, "{}")
                .status == 200);
    // current_nodes settles when the run parks at finance (a decision racing the run's previous
    // park may show the manager step there until then).
    seen = flow.wait_instance(alice, large_id, [](const json::value& i) {
        return has_pending(i, "finance") && i.at("current_nodes") == json::array{"finance"};
    });
    REQUIRE(seen.is_object());
    const auto finance_task = flow.pending_task(seen, "finance");
    CHECK(t.call("GET", "/api/v1/approvals/tasks", carol).body.at("items").as_array().size() == 1);
    CHECK(t.call("GET", "/api/v1/approvals/tasks", mallory).body.at("items").as_array().empty());
    CHECK(t.call("POST", "/api/v1/approvals/tasks/" + std::to_string(finance_task) + "/approve",
                 mallory, "{}")
              .status == 404);
    REQUIRE(t.call("POST", "/api/v1/approvals/tasks/" + std::to_string(finance_task) + "/approve",
                   carol, R"({"comment":"ok"})")
                .status == 200);
    const auto large_done = flow.wait_instance(
        alice, large_id, [](const json::value& i) { return i.at("status") != "running"; });
    REQUIRE(large_done.is_object());
    CHECK(large_done.at("status") == "completed");
    std::vector<std::string> actions;
    const auto timeline = t.call(
        "GET", "/api/v1/approvals/instances/" + std::to_string(large_id) + "/timeline", alice);
    for (const auto& entry : timeline.body.at("timeline").as_array()) {
        actions.emplace_back(entry.at("action").as_string());
    }
    CHECK(actions == std::vector<std::string>{"started", "task_created", "approved", "task_created",
                                              "approved", "completed"});

    // Small amount outside R&D, rejected: the instance ends rejected.
    const auto rejected = start(R"({"amount":20000,"dept":"Sales"})");
    const auto rejected_id = rejected.body.at("id").as_int64();
    seen = flow.wait_instance(alice, rejected_id,
                              [](const json::value& i) { return has_pending(i, "manager"); });
    REQUIRE(seen.is_object());
    REQUIRE(t.call("POST",
                   "/api/v1/approvals/tasks/" +
                       std::to_string(flow.pending_task(seen, "manager", "erin")) + "/reject",
                   erin, R"({"comment":"预算不足"})")
                .status == 200);
    const auto rejected_done = flow.wait_instance(
        alice, rejected_id, [](const json::value& i) { return i.at("status") != "running"; });
    REQUIRE(rejected_done.is_object());
    CHECK(rejected_done.at("status") == "rejected");
    CHECK(t.call("GET", "/api/v1/approvals/tasks", erin).body.at("items").as_array().empty());
    CHECK(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(rejected_id), mallory)
              .status == 404);
}
