// The approvals engine where a run fails or two writers race, on real PostgreSQL and the
// embedded executor with a manual clock: an exclusive gateway with no way out, a run that fails
// for good (its on_failure), signals that would pass for messages, a withdrawn child, and a
// decision racing a deadline's escalation or an interrupting boundary timer (a second
// connection holds the decision's row locks while the engine's step runs into them).

#include "app/app_under_test.hpp"
#include "app/approvals_support.hpp"
#include "core/db/database.hpp"
#include "modules/approvals/instance_repository.hpp"

#include <functional>
#include <thread>

using riveredge_test::AppUnderTest;
using riveredge_test::AppUnderTestOptions;
using namespace riveredge_test::approvals;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<inngest::local::ManualClock> fresh_clock() {
    return std::make_shared<inngest::local::ManualClock>();
}

std::string path_of(std::int64_t id) {
    return "/api/v1/approvals/instances/" + std::to_string(id);
}

// How many of the user's inbox items have this subject.
int inbox_with(AppUnderTest& t, const std::string& token, const std::string& subject) {
    int n = 0;
    for (const auto& item : listed(t, "/api/v1/messages/inbox", token, "items")) {
        n += item.at("subject") == json::value(subject) ? 1 : 0;
    }
    return n;
}

}  // namespace

TEST_CASE(
    "an exclusive gateway none of whose conditions holds, with no default, fails the instance",
    "[app][approvals]") {
    // It threw from the visit's step: the run failed for good and the instance stayed running,
    // its initiator never told, a retry refused.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto definition = flow.publish(alice, R"({"key":"amounts","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"which","type":"exclusiveGateway"},
  {"id":"big","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},
  {"id":"small","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"erin"}]}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"which"},
  {"id":"2","source":"which","target":"big","data":{"condition":"${amount > 1000}"}},
  {"id":"3","source":"which","target":"small","data":{"condition":"${amount <= 1000}"}},
  {"id":"4","source":"big","target":"end"},{"id":"5","source":"small","target":"end"}]})");
    const auto id = flow.start(alice, definition, "{}");
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "failed");
    INFO(json::serialize(done));
    CHECK(std::string(done.at("status_reason").as_string()).find("gateway 'which'") !=
          std::string::npos);
    REQUIRE(t.app().wait_settled(20s));
    CHECK(inbox_with(t, alice, "Your approval request #" + std::to_string(id) + " is failed") == 1);
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(std::count(actions.begin(), actions.end(), "failed") == 1);
    // The run ended the instance and returned: it did not fail.
    for (const auto& run : t.app().executor()->runs("riveredge-flow-approvals-instance")) {
        CHECK(run.status != inngest::local::RunStatus::kFailed);
    }
}

TEST_CASE("a run that fails for good ends its instance failed with the run's error, once",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto definition =
        flow.publish(alice, R"({"key":"dies","nodes":[{"id":"start","type":"startEvent"},
  {"id":"review","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"review"},{"id":"2","source":"review","target":"end"}]})");
    // Every attempt of the review's visit step dies (the database refusing its visit row).
    fail_every_insert(t, "review_visit_dies", "approval_node_visits", "NEW.node_id = 'review'");
    const auto id = flow.start(alice, definition);
    const auto status = [&] {
        return std::string(t.call("GET", path_of(id), alice).body.at("status").as_string());
    };
    // Through the step's retries (their backoff on the manual clock) to the run's failure.
    for (int round = 0; round < 30 && status() == "running"; ++round) {
        REQUIRE(t.app().wait_settled(20s));
        clock->advance(std::chrono::minutes(2));
        t.app().executor()->poke();
    }
    REQUIRE(t.app().wait_settled(20s));
    drop_trigger(t, "review_visit_dies", "approval_node_visits");
    const auto seen = t.call("GET", path_of(id), alice).body;
    INFO(json::serialize(seen));
    REQUIRE(seen.at("status") == "failed");
    const std::string reason(seen.at("status_reason").as_string());
    CHECK(reason.find("the run failed") != std::string::npos);
    CHECK(reason.find("every attempt dies here") != std::string::npos);
    CHECK(seen.at("current_nodes") == json::array{});
    CHECK(inbox_with(t, alice, "Your approval request #" + std::to_string(id) + " is failed") == 1);
    // No run holds its token: a retry would wake nobody.
    CHECK(t.call("POST", path_of(id) + "/retry", alice, R"({"reason":"again"})").status == 409);
    // The handler's step again (its answer lost): nothing more is ended, written or told.
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::InstanceRepository instances(pool);
    const auto again = instances.fail_run(riveredge::core::TenantId::trusted("acme"), id, 0,
                                          "run-failed:g0", "the run failed: again");
    CHECK(again.ended);
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(std::count(actions.begin(), actions.end(), "failed") == 1);
    CHECK(t.call("GET", path_of(id), alice).body.at("status_reason") == json::value(reason));
    // A newer generation's instance is not the failed run's to end.
    const auto other = instances.fail_run(riveredge::core::TenantId::trusted("acme"), id, 5,
                                          "run-failed:g5", "the run failed: stale");
    CHECK_FALSE(other.ended);
}

TEST_CASE("a signal named as a message is refused, so the initiator cannot fake one",
          "[app][approvals]") {
    // Messages (administrators only) are kept beside signals as "message:<name>": the
    // initiator's signal "message:paid" was caught by the receive task waiting for "paid".
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto order = flow.publish(alice, R"({"key":"order","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"paid","type":"receiveTask","data":{"bpmn":{"message":"paid"}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"paid"},{"id":"2","source":"paid","target":"end"}]})");
    const auto r = t.call("POST", "/api/v1/approvals/instances", bob,
                          R"({"definition_id":)" + std::to_string(order) +
                              R"(,"business_key":"ORD-1","variables":{}})");
    REQUIRE(r.status == 201);
    const auto id = r.body.at("id").as_int64();
    REQUIRE(flow.wait_instance(bob, id,
                               [](const json::value& i) {
                                   return i.at("current_nodes") == json::array{"paid"};
                               })
                .is_object());
    REQUIRE(t.app().wait_settled(10s));
    const auto refused =
        t.call("POST", path_of(id) + "/signals", bob, R"({"name":"message:paid","data":{"x":1}})");
    INFO(json::serialize(refused.body));
    CHECK(refused.status == 422);
    CHECK(refused.body.at("error").at("details").at("fields").as_object().contains("name"));
    REQUIRE(t.app().wait_settled(10s));
    clock->advance(std::chrono::minutes(16));  // past the run's re-check
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(10s));
    const auto still = t.call("GET", path_of(id), bob).body;
    CHECK(still.at("status") == "running");
    CHECK(still.at("current_nodes") == json::array{"paid"});
    CHECK(statuses(t, bob, id).at("paid") == "active");
    // The administrator's message still reaches it.
    REQUIRE(t.call("POST", "/api/v1/approvals/messages", alice,
                   R"({"name":"paid","business_key":"ORD-1","data":{"x":2}})")
                .status == 202);
    const auto done = flow.wait_done(bob, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("x") == 2);
}

TEST_CASE("a call activity's child is not withdrawn on its own", "[app][approvals]") {
    // The child has its parent's initiator, who could withdraw it and so fail the parent's
    // call activity, though withdrawing the parent was closed (someone had acted on it).
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    flow.publish(alice, R"({"key":"inner","nodes":[{"id":"start","type":"startEvent"},
  {"id":"check","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"erin"}]}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"check"},{"id":"2","source":"check","target":"end"}]})");
    const auto parent =
        flow.publish(alice, R"({"key":"outer","nodes":[{"id":"start","type":"startEvent"},)"
                            R"({"id":"sub","type":"callActivity","data":{"bpmn":{"called_element":)"
                            R"("inner"}}},{"id":"end","type":"endEvent"}],"edges":[)"
                            R"({"id":"1","source":"start","target":"sub"},)"
                            R"({"id":"2","source":"sub","target":"end"}]})");
    const auto id = flow.start(bob, parent);
    const auto child = wait_children(t, bob, id).at(0);
    REQUIRE(flow.wait_pending(bob, child, "check").is_object());
    const auto refused = t.call("POST", path_of(child) + "/withdraw", bob);
    INFO(json::serialize(refused.body));
    CHECK(refused.status == 409);
    REQUIRE(t.app().wait_settled(10s));
    CHECK(t.call("GET", path_of(child), bob).body.at("status") == "running");
    CHECK(t.call("GET", path_of(id), bob).body.at("status") == "running");
    // The parent itself is withdrawn with its child, as before.
    REQUIRE(t.call("POST", path_of(id) + "/withdraw", bob).status == 200);
    CHECK(flow.wait_done(bob, child).at("status") == "cancelled");
}

namespace {

// Runs `decide` in a transaction of a connection of its own (tenant acme's), then holds it open
// until another backend waits for one of its row locks (an engine step run into them), and
// commits: a decision that began after the engine read the rows it is about to change.
void decide_while_engine_waits(AppUnderTest& t,
                               const std::function<void(riveredge::core::db::Transaction&)>& decide,
                               const std::function<void()>& trigger) {
    riveredge::core::db::Pool holder(t.settings().database_url, 1);
    riveredge::core::db::Pool watcher(t.settings().migration_database_url.value(), 1);
    const auto acme = riveredge::core::TenantId::trusted("acme");
    riveredge::core::db::transact(holder, acme, [&](riveredge::core::db::Transaction& tx) {
        decide(tx);
        trigger();
        bool blocked = false;
        for (int i = 0; i < 1000 && !blocked; ++i) {
            blocked = !riveredge::core::db::exec_once(
                           watcher, std::nullopt,
                           "SELECT 1 FROM pg_locks WHERE NOT granted AND locktype IN "
                           "('transactionid', 'tuple') LIMIT 1")
                           .empty();
            if (!blocked) {
                std::this_thread::sleep_for(20ms);
            }
        }
        REQUIRE(blocked);
    });
}

// bob's approval of the review's first visit, as a decision writes it (task, then visit).
void approve_review(riveredge::core::db::Transaction& tx, std::int64_t id) {
    tx.exec(
        "UPDATE approval_tasks SET status = 'approved', decided_by = 'bob', decided_at = now() "
        "WHERE instance_id = $1 AND node_id = 'review' AND assignee = 'bob' AND status = 'pending'",
        {id});
    REQUIRE(tx.exec("UPDATE approval_node_visits SET status = 'approved', left_at = now() WHERE "
                    "instance_id = $1 AND node_id = 'review' AND visit = 1 AND status = 'active'",
                    {id})
                .affected() == 1);
}

}  // namespace

TEST_CASE("a deadline's escalation racing a decision leaves the decision standing",
          "[app][approvals]") {
    // The escalation read the tasks unlocked and transferred the task by id: bob's approval,
    // committed meanwhile, was overwritten (transferred) and his manager got a new task.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(
        t.call("PUT", "/api/v1/approvals/directory/bob", alice, R"({"manager_id":"mgr"})").status ==
        200);
    const auto id = flow.start(alice, flow.publish(alice, R"({"key":"escalating","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"review","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}],
   "deadline":{"duration":"P1D","action":"escalate"}}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"review"},{"id":"2","source":"review","target":"end"}]})"));
    REQUIRE(flow.wait_pending(alice, id, "review").is_object());
    REQUIRE(t.app().wait_settled(10s));
    decide_while_engine_waits(
        t, [&](riveredge::core::db::Transaction& tx) { approve_review(tx, id); },
        [&] {
            clock->advance(std::chrono::hours(25));  // the deadline passes
            t.app().executor()->poke();
        });
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    INFO(json::serialize(done));
    CHECK(done.at("status") == "completed");
    const auto& tasks = done.at("tasks").as_array();
    REQUIRE(tasks.size() == 1);
    CHECK(tasks.at(0).at("assignee") == "bob");
    CHECK(tasks.at(0).at("status") == "approved");
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(std::count(actions.begin(), actions.end(), "escalated") == 0);
}

TEST_CASE("a decision racing an interrupting boundary timer stands", "[app][approvals]") {
    // The park read the visit active, its boundary timer due, and then took the boundary
    // although the cancel found the visit closed by bob's approval meanwhile.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id = flow.start(alice, flow.publish(alice, R"({"key":"late","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"review","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},
  {"id":"late","type":"boundaryEvent","data":{"bpmn":{"attached_to":"review","duration":"PT1H"}}},
  {"id":"escalated","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"carol"}]}}},
  {"id":"end","type":"endEvent"},{"id":"end2","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"review"},{"id":"2","source":"review","target":"end"},
  {"id":"3","source":"late","target":"escalated"},{"id":"4","source":"escalated","target":"end2"}]})"));
    REQUIRE(flow.wait_pending(alice, id, "review").is_object());
    REQUIRE(t.app().wait_settled(10s));
    decide_while_engine_waits(
        t, [&](riveredge::core::db::Transaction& tx) { approve_review(tx, id); },
        [&] {
            clock->advance(std::chrono::hours(2));  // the boundary timer is due
            t.app().executor()->poke();
        });
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    INFO(json::serialize(done));
    CHECK(done.at("status") == "completed");
    const auto& tasks = done.at("tasks").as_array();
    REQUIRE(tasks.size() == 1);
    CHECK(tasks.at(0).at("node_id") == "review");
    CHECK(tasks.at(0).at("status") == "approved");
    const auto nodes = statuses(t, alice, id);
    CHECK(nodes.at("review") == "approved");
    CHECK(nodes.at("escalated") == "pending");
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(std::count(actions.begin(), actions.end(), "auto_cancelled") == 0);
}

TEST_CASE("a service task's step retried after its output merged applies the mapping once",
          "[app][approvals]") {
    // The merge commits in a transaction of its own; the attempt dies right after it (the
    // visit's record refused) and the retry mapped the result over the variables it had changed.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto definition = flow.publish(alice, R"({"key":"counting","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"bump","type":"serviceTask","data":{"bpmn":{"action":"set_variables",
   "input_mapping":{"by":1},"output_mapping":{"count":"${count + result.by}"}}}},
  {"id":"review","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"bump"},{"id":"2","source":"bump","target":"review"},
  {"id":"3","source":"review","target":"end"}]})");
    fail_first_insert(t, "bump_visit_dies", "approval_node_visits", "NEW.node_id = 'bump'");
    const auto id = flow.start(alice, definition, R"({"count":1})");
    json::value seen;
    for (int round = 0; round < 20 && !seen.is_object(); ++round) {
        REQUIRE(t.app().wait_settled(20s));
        const auto now = t.call("GET", path_of(id), alice).body;
        if (has_pending(now, "review")) {
            seen = now;
            break;
        }
        clock->advance(std::chrono::minutes(2));  // the step's retry
        t.app().executor()->poke();
    }
    REQUIRE(seen.is_object());
    REQUIRE(updates_met(t, "bump_visit_dies") >= 1);
    INFO(json::serialize(seen));
    CHECK(seen.at("variables").at("count") == 2);
    int changes = 0;
    for (const auto& c : listed(t, path_of(id) + "/variables", alice, "history")) {
        changes += c.at("name") == "count" ? 1 : 0;
    }
    CHECK(changes == 1);
}

TEST_CASE("set_variables with only an input mapping sets its mapped input as variables",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto definition = flow.publish(alice, R"({"key":"marking","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"mark","type":"serviceTask","data":{"bpmn":{"action":"set_variables",
   "input_mapping":{"checked":true,"copy":"${amount}"}}}},
  {"id":"keep","type":"serviceTask","data":{"bpmn":{"action":"set_variables",
   "input_mapping":{"ignored":1},"result_variable":"kept"}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"mark"},{"id":"2","source":"mark","target":"keep"},
  {"id":"3","source":"keep","target":"end"}]})");
    const auto id = flow.start(alice, definition, R"({"amount":5})");
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    INFO(json::serialize(done));
    CHECK(done.at("status") == "completed");
    const auto& variables = done.at("variables").as_object();
    CHECK(variables.at("checked") == true);
    CHECK(variables.at("copy") == 5);
    // A result_variable (or output_mapping) still says where the result goes.
    CHECK(variables.at("kept") == json::object{{"ignored", 1}});
    CHECK_FALSE(variables.contains("ignored"));
}
