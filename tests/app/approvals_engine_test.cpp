// The approvals engine end to end on real PostgreSQL and the embedded executor with a manual
// clock: approval modes, parallel and inclusive joins, deadlines over virtual days, return and
// resubmission, task actions, withdrawal, timers and signals, the seed's registration process,
// a decision that beats the wait, a restart mid-instance, hand-over, and 200 instances at once.

#include "app/app_under_test.hpp"
#include "app/approvals_support.hpp"
#include "app/replaying_receiver.hpp"
#include "core/db/database.hpp"
#include "modules/approvals/instance_repository.hpp"
#include "modules/approvals/task_repository.hpp"

#include <inngest/http_server.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using riveredge_test::AppUnderTest;
using riveredge_test::AppUnderTestOptions;
using riveredge_test::ReplayingReceiver;
using namespace riveredge_test::approvals;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<inngest::local::ManualClock> fresh_clock() {
    return std::make_shared<inngest::local::ManualClock>();
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}
// A linear process start -> <nodes> -> end, each node given as its ProFlow JSON.
std::string linear(const std::string& key, const std::vector<std::string>& nodes) {
    std::string out = R"({"key":")" + key + R"(","nodes":[{"id":"start","type":"startEvent"},)";
    std::string edges;
    std::string previous = "start";
    int n = 0;
    for (const auto& node : nodes) {
        out += node + ",";
        const auto id = json::parse(node).at("id").as_string();
        edges += R"({"id":"e)" + std::to_string(n++) + R"(","source":")" + previous +
                 R"(","target":")" + std::string(id) + R"("},)";
        previous = std::string(id);
    }
    edges +=
        R"({"id":"e)" + std::to_string(n) + R"(","source":")" + previous + R"(","target":"end"})";
    return out + R"({"id":"end","type":"endEvent"}],"edges":[)" + edges + "]}";
}

std::string user_task(const std::string& id, const std::string& settings) {
    return R"({"id":")" + id + R"(","type":"userTask","data":{"bpmn":)" + settings + "}}";
}

}  // namespace

TEST_CASE("approval modes: all, sequential, ratio with a veto", "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto erin = t.token("acme", "erin");
    const auto frank = t.token("acme", "frank");
    const auto gus = t.token("acme", "gus");
    const auto modes = flow.publish(
        alice,
        linear(
            "modes",
            {user_task(
                 "all",
                 R"({"mode":"all","approvers":[{"type":"user","value":"bob"},{"type":"user","value":"erin"}]})"),
             user_task(
                 "seq",
                 R"({"mode":"sequential","approvers":[{"type":"user","value":"bob"},{"type":"user","value":"erin"}]})"),
             user_task(
                 "ratio",
                 R"({"mode":"ratio","ratio":0.5,"veto":["gus"],"approvers":[{"type":"user","value":"bob"},{"type":"user","value":"erin"},{"type":"user","value":"frank"},{"type":"user","value":"gus"}]})")}));

    const auto id = flow.start(alice, modes);
    auto seen = flow.wait_pending(alice, id, "all");
    REQUIRE(seen.is_object());
    // 会签: bob's approval alone does not carry the node.
    REQUIRE(flow.act(bob, flow.pending_task(seen, "all", "bob"), "approve").status == 200);
    seen = flow.wait_instance(alice, id, [](const json::value&) { return true; });
    CHECK(has_pending(seen, "all"));
    CHECK_FALSE(has_pending(seen, "seq"));
    REQUIRE(flow.act(erin, flow.pending_task(seen, "all", "erin"), "approve").status == 200);
    // 依次: erin's turn comes only after bob's.
    seen = flow.wait_pending(alice, id, "seq");
    REQUIRE(seen.is_object());
    CHECK(flow.pending_task(seen, "seq", "erin") == 0);
    CHECK(todo_nodes(t, erin).empty());
    REQUIRE(flow.act(bob, flow.pending_task(seen, "seq", "bob"), "approve").status == 200);
    seen = flow.wait_instance(
        alice, id, [&](const json::value& i) { return flow.pending_task(i, "seq", "erin") != 0; });
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(erin, flow.pending_task(seen, "seq", "erin"), "approve").status == 200);
    // Ratio 1/2 of four: one rejection (not a veto) leaves it open; two approvals carry it.
    seen = flow.wait_pending(alice, id, "ratio");
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(bob, flow.pending_task(seen, "ratio", "bob"), "reject").status == 200);
    REQUIRE(flow.act(erin, flow.pending_task(seen, "ratio", "erin"), "approve").status == 200);
    CHECK(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id), alice)
              .body.at("status") == "running");
    REQUIRE(flow.act(frank, flow.pending_task(seen, "ratio", "frank"), "approve").status == 200);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    // gus never acted: his task closed with the node.
    CHECK(flow.act(gus, flow.pending_task(seen, "ratio", "gus"), "approve").status == 409);

    // 会签 rejected by one; and a veto rejects a ratio node at once.
    const auto rejected = flow.start(alice, modes);
    seen = flow.wait_pending(alice, rejected, "all");
    REQUIRE(flow.act(erin, flow.pending_task(seen, "all", "erin"), "reject").status == 200);
    CHECK(flow.wait_done(alice, rejected).at("status") == "rejected");

    const auto vetoed_def = flow.publish(
        alice,
        linear(
            "veto",
            {user_task(
                "ratio",
                R"({"mode":"ratio","ratio":0.25,"veto":["gus"],"approvers":[{"type":"user","value":"bob"},{"type":"user","value":"gus"}]})")}));
    const auto vetoed = flow.start(alice, vetoed_def);
    seen = flow.wait_pending(alice, vetoed, "ratio");
    REQUIRE(flow.act(gus, flow.pending_task(seen, "ratio", "gus"), "reject").status == 200);
    CHECK(flow.wait_done(alice, vetoed).at("status") == "rejected");
}

TEST_CASE("parallel branches join and an inclusive join waits only for the branches taken",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto erin = t.token("acme", "erin");
    const auto frank = t.token("acme", "frank");
    const auto definition = flow.publish(alice, R"({"key":"forks","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"fork","type":"parallelGateway"},
  {"id":"legal","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},
  {"id":"finance","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"erin"}]}}},
  {"id":"join","type":"parallelGateway"},
  {"id":"which","type":"inclusiveGateway"},
  {"id":"it","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"frank"}]}}},
  {"id":"hr","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"gus"}]}}},
  {"id":"ops","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"hank"}]}}},
  {"id":"merge","type":"inclusiveGateway"},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"fork"},
  {"id":"2","source":"fork","target":"legal"},{"id":"3","source":"fork","target":"finance"},
  {"id":"4","source":"legal","target":"join"},{"id":"5","source":"finance","target":"join"},
  {"id":"6","source":"join","target":"which"},
  {"id":"7","source":"which","target":"it","data":{"condition":"${amount > 100}","priority":1}},
  {"id":"8","source":"which","target":"hr","data":{"condition":"${remote == true}","priority":2}},
  {"id":"9","source":"which","target":"ops","data":{"isDefault":true}},
  {"id":"10","source":"it","target":"merge"},{"id":"11","source":"hr","target":"merge"},
  {"id":"12","source":"ops","target":"merge"},{"id":"13","source":"merge","target":"end"}]})");
    const auto id = flow.start(alice, definition, R"({"amount":500,"remote":false})");
    auto seen = flow.wait_instance(alice, id, [](const json::value& i) {
        return has_pending(i, "legal") && has_pending(i, "finance");
    });
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(bob, flow.pending_task(seen, "legal"), "approve").status == 200);
    // One branch done: the join holds until the other arrives.
    seen = flow.wait_instance(alice, id, [](const json::value& i) {
        return i.at("current_nodes") == json::array{"finance"};
    });
    REQUIRE(seen.is_object());
    CHECK_FALSE(has_pending(seen, "it"));
    REQUIRE(flow.act(erin, flow.pending_task(seen, "finance"), "approve").status == 200);
    seen = flow.wait_pending(alice, id, "it");
    REQUIRE(seen.is_object());
    CHECK_FALSE(has_pending(seen, "hr"));
    CHECK_FALSE(has_pending(seen, "ops"));
    REQUIRE(flow.act(frank, flow.pending_task(seen, "it"), "approve").status == 200);
    // Only one branch was taken, so the inclusive join goes on after it.
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("duration_seconds").is_number());
    CHECK(done.at("current_nodes").as_array().empty());

    // FlowView: every node with its status.
    const auto diagram =
        t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id) + "/diagram", alice);
    REQUIRE(diagram.status == 200);
    std::map<std::string, std::string> status;
    for (const auto& n : diagram.body.at("nodes").as_array()) {
        status[std::string(n.at("id").as_string())] = std::string(n.at("status").as_string());
    }
    CHECK(status["legal"] == "approved");
    CHECK(status["join"] == "completed");
    CHECK(status["it"] == "approved");
    CHECK(status["hr"] == "pending");
    CHECK(status["ops"] == "pending");
    CHECK(status["merge"] == "completed");
    CHECK(status["end"] == "completed");
    CHECK(diagram.body.at("source").at("nodes").as_array().size() == 11);

    // Two branches taken: the inclusive join waits for both.
    const auto both = flow.start(alice, definition, R"({"amount":500,"remote":true})");
    seen = flow.wait_instance(alice, both, [](const json::value& i) {
        return has_pending(i, "legal") && has_pending(i, "finance");
    });
    REQUIRE(flow.act(bob, flow.pending_task(seen, "legal"), "approve").status == 200);
    REQUIRE(flow.act(erin, flow.pending_task(seen, "finance"), "approve").status == 200);
    seen = flow.wait_instance(alice, both, [](const json::value& i) {
        return has_pending(i, "it") && has_pending(i, "hr");
    });
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(frank, flow.pending_task(seen, "it"), "approve").status == 200);
    seen = flow.wait_instance(alice, both, [](const json::value& i) {
        return i.at("current_nodes") == json::array{"hr"};
    });
    REQUIRE(seen.is_object());
    CHECK(seen.at("status") == "running");
    REQUIRE(flow.act(t.token("acme", "gus"), flow.pending_task(seen, "hr"), "approve").status ==
            200);
    CHECK(flow.wait_done(alice, both).at("status") == "completed");
}

TEST_CASE("deadlines remind, escalate to the manager and auto-approve over virtual days",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto mgr = t.token("acme", "mgr");
    const auto erin = t.token("acme", "erin");
    CHECK(t.call("PUT", "/api/v1/approvals/directory/bob", t.token("acme", "bob"),
                 R"({"manager_id":"mgr"})")
              .status == 403);
    REQUIRE(
        t.call("PUT", "/api/v1/approvals/directory/bob", alice, R"({"manager_id":"mgr"})").status ==
        200);
    const auto definition = flow.publish(
        alice,
        linear(
            "deadlines",
            {user_task(
                 "review",
                 R"({"approvers":[{"type":"user","value":"bob"}],"deadline":{"duration":"P2D","action":"escalate"}})"),
             user_task(
                 "check",
                 R"({"approvers":[{"type":"user","value":"erin"}],"deadline":{"duration":"P1D","action":"remind","max_reminders":2}})"),
             user_task(
                 "auto",
                 R"({"approvers":[{"type":"user","value":"frank"}],"deadline":{"duration":"PT4H","action":"remind","max_reminders":1,"then":"approve"}})")}));
    const auto id = flow.start(alice, definition);
    REQUIRE(flow.wait_pending(alice, id, "review").is_object());
    const auto later = [&](std::chrono::milliseconds by) {
        // Let the run park at its deadline sleep first: a sleep reported after the clock moved
        // would count from the new time, and the reminder under test would never come.
        REQUIRE(t.app().wait_settled(10s));
        clock->advance(by);
        t.app().executor()->poke();
    };
    later(std::chrono::hours(49));
    auto seen = flow.wait_instance(alice, id, [&](const json::value& i) {
        return flow.pending_task(i, "review", "mgr") != 0;
    });
    REQUIRE(seen.is_object());
    CHECK(flow.pending_task(seen, "review", "bob") == 0);
    CHECK(todo_nodes(t, mgr) == std::vector<std::string>{"review"});
    CHECK(t.wait_unread(mgr, 1));  // told of the escalated task
    REQUIRE(flow.act(mgr, flow.pending_task(seen, "review", "mgr"), "approve").status == 200);

    REQUIRE(flow.wait_pending(alice, id, "check").is_object());
    CHECK(t.wait_unread(erin, 1));
    later(std::chrono::hours(25));
    CHECK(t.wait_unread(erin, 2));
    later(std::chrono::hours(25));
    CHECK(t.wait_unread(erin, 3));
    later(std::chrono::hours(25));  // max_reminders reached: no third reminder
    REQUIRE(t.app().wait_settled(10s));
    CHECK(t.wait_unread(erin, 3));
    seen = flow.wait_pending(alice, id, "check");
    REQUIRE(flow.act(erin, flow.pending_task(seen, "check"), "approve").status == 200);

    REQUIRE(flow.wait_pending(alice, id, "auto").is_object());
    const auto frank = t.token("acme", "frank");
    CHECK(t.wait_unread(frank, 1));
    later(std::chrono::hours(5));  // one reminder ...
    CHECK(t.wait_unread(frank, 2));
    CHECK(flow.wait_pending(alice, id, "auto").is_object());
    later(std::chrono::hours(5));  // ... then it approves itself
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(contains(actions, "escalated"));
    CHECK(contains(actions, "auto_approved"));
}

TEST_CASE("a deadline's escalation whose attempt died escalates once", "[app][approvals]") {
    // The attempt that escalates dies before its step's answer is stored; the retry must not
    // escalate the escalated task again (to the manager's manager).
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    for (const auto& [user, manager] :
         std::vector<std::pair<std::string, std::string>>{{"bob", "mgr"}, {"mgr", "boss"}}) {
        REQUIRE(t.call("PUT", "/api/v1/approvals/directory/" + user, alice,
                       R"({"manager_id":")" + manager + R"("})")
                    .status == 200);
    }
    const auto id = flow.start(
        alice, flow.publish(alice, linear("escalate_once",
                                          {user_task("review", R"({"approvers":[{"type":"user",)"
                                                               R"("value":"bob"}],"deadline":)"
                                                               R"({"duration":"P1D","action":)"
                                                               R"("escalate"}})")})));
    REQUIRE(flow.wait_pending(alice, id, "review").is_object());
    REQUIRE(t.app().wait_settled(10s));
    // The attempt dies where the deadline's due time is cleared.
    fail_first_update(t, "deadline_clear_fails", "approval_node_visits",
                      "OLD.due_at IS NOT NULL AND NEW.due_at IS NULL");
    clock->advance(std::chrono::hours(25));
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "deadline_clear_fails") == 1);
    clock->advance(std::chrono::minutes(2));  // the step's retry
    t.app().executor()->poke();
    const auto seen = flow.wait_instance(
        alice, id, [&](const json::value& i) { return flow.pending_task(i, "review", "mgr") != 0; },
        1);
    REQUIRE(seen.is_object());
    REQUIRE(t.app().wait_settled(20s));
    const auto now = t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id), alice).body;
    CHECK(flow.pending_task(now, "review", "mgr") != 0);
    CHECK(flow.pending_task(now, "review", "boss") == 0);
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(std::count(actions.begin(), actions.end(), "escalated") == 1);
    CHECK(t.wait_unread(t.token("acme", "mgr"), 1));
    CHECK(t.wait_unread(t.token("acme", "boss"), 0));
    // Run once more (a step that died after the move committed): nothing moves, and the answer
    // is the task moved before, for its notice (keyed, so mgr is not told twice).
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::TaskRepository tasks(pool);
    const auto again = tasks.reassign_pending(
        {riveredge::core::TenantId::trusted("acme"), id, "review", 1},
        [](const std::string&) { return std::optional<std::string>("boss"); }, "escalated");
    REQUIRE(again.size() == 1);
    CHECK(again[0].id == flow.pending_task(now, "review", "mgr"));
    CHECK(again[0].assignee == "mgr");
    CHECK(flow.pending_task(
              t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id), alice).body,
              "review", "mgr") != 0);
}

TEST_CASE("an escalation to someone who holds the step already leaves that task where it is",
          "[app][approvals]") {
    // A visit holds one task per assignee. Moving bob's task to his manager, who approves this
    // step too, broke that rule and failed the deadline's step on every retry.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(
        t.call("PUT", "/api/v1/approvals/directory/bob", alice, R"({"manager_id":"mgr"})").status ==
        200);
    const auto id = flow.start(
        alice,
        flow.publish(alice, linear("both", {user_task("review", R"({"approvers":[)"
                                                                R"({"type":"user","value":"bob"},)"
                                                                R"({"type":"user","value":"mgr"}],)"
                                                                R"("mode":"all","deadline":)"
                                                                R"({"duration":"P1D",)"
                                                                R"("action":"escalate"}})")})));
    const auto seen = flow.wait_pending(alice, id, "review");
    REQUIRE(seen.is_object());
    REQUIRE(t.app().wait_settled(10s));
    clock->advance(std::chrono::hours(25));
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));
    const auto now = t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id), alice).body;
    CHECK(now.at("status") == "running");
    CHECK(flow.pending_task(now, "review", "bob") != 0);
    CHECK(flow.pending_task(now, "review", "mgr") != 0);
    // The deadline's step went through: no attempt of it failed.
    int failed_steps = 0;
    for (const auto& run : t.app().executor()->runs("riveredge-flow-approvals-instance")) {
        for (const auto& step : run.history) {
            failed_steps += step.error.is_null() ? 0 : 1;
        }
    }
    CHECK(failed_steps == 0);
    REQUIRE(flow.act(t.token("acme", "bob"), flow.pending_task(now, "review", "bob"), "approve")
                .status == 200);
    REQUIRE(flow.act(t.token("acme", "mgr"), flow.pending_task(now, "review", "mgr"), "approve")
                .status == 200);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
}

TEST_CASE("return to an earlier step or to the initiator, who resubmits", "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto erin = t.token("acme", "erin");
    // first copies the audit role's members on each visit.
    REQUIRE(t.call("PUT", "/api/v1/approvals/directory/carol", alice, R"({"roles":["audit"]})")
                .status == 200);
    const auto definition = flow.publish(
        alice,
        linear(
            "rework",
            {user_task("first", R"({"approvers":[{"type":"user","value":"bob"}],)"
                                R"("cc":[{"type":"role","value":"audit"}]})"),
             user_task(
                 "second",
                 R"({"approvers":[{"type":"user","value":"erin"}],"return_policy":"direct"})")}));
    const auto id = flow.start(alice, definition, R"({"amount":10})");
    auto seen = flow.wait_pending(alice, id, "first");
    REQUIRE(flow.act(bob, flow.pending_task(seen, "first"), "approve").status == 200);
    seen = flow.wait_pending(alice, id, "second");
    REQUIRE(seen.is_object());
    const auto second = flow.pending_task(seen, "second");
    // Only an earlier step (or the start) is a return target.
    CHECK(flow.act(erin, second, "return", R"({"return_to":"end"})").status == 422);
    CHECK(flow.act(erin, second, "return", R"({"return_to":"second"})").status == 422);
    CHECK(flow.act(erin, second, "return", "{}").status == 422);
    // dave joins the audit role before first's second visit copies him.
    REQUIRE(
        t.call("PUT", "/api/v1/approvals/directory/dave", alice, R"({"roles":["audit"]})").status ==
        200);
    REQUIRE(flow.act(erin, second, "return", R"({"return_to":"first","comment":"fix"})").status ==
            200);
    seen = flow.wait_pending(alice, id, "first");
    REQUIRE(seen.is_object());
    CHECK(t.wait_unread(t.token("acme", "dave"), 1));
    CHECK(t.wait_unread(t.token("acme", "carol"), 1));  // copied once
    REQUIRE(flow.act(bob, flow.pending_task(seen, "first"), "approve").status == 200);
    // Direct policy: back to the step that returned it.
    seen = flow.wait_pending(alice, id, "second");
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(erin, flow.pending_task(seen, "second"), "return", R"({"return_to":"start"})")
                .status == 200);
    seen = flow.wait_pending(alice, id, "start");
    REQUIRE(seen.is_object());
    CHECK(todo_nodes(t, alice) == std::vector<std::string>{"start"});
    REQUIRE(flow.act(alice, flow.pending_task(seen, "start"), "approve",
                     R"({"variables":{"amount":12}})")
                .status == 200);
    seen = flow.wait_pending(alice, id, "second");
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(erin, flow.pending_task(seen, "second"), "approve").status == 200);
    CHECK(flow.wait_done(alice, id).at("status") == "completed");
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(std::count(actions.begin(), actions.end(), "returned") == 2);
    CHECK(contains(actions, "resubmission_requested"));
    const auto variables =
        t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id) + "/variables", alice);
    CHECK(variables.body.at("variables").at("amount") == 12);
    const auto& history = variables.body.at("history").as_array();
    REQUIRE(history.size() == 1);
    CHECK(history[0].at("old_value") == 10);
    CHECK(history[0].at("actor") == "alice");
    // first ran twice (visit 1 and 2), second three times.
    std::map<std::string, int> visits;
    for (const auto& n : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/diagram",
                                alice, "nodes")) {
        visits[std::string(n.at("id").as_string())] = static_cast<int>(n.at("visits").as_int64());
    }
    CHECK(visits["first"] == 2);
    CHECK(visits["second"] == 3);
    CHECK(visits["start"] == 2);
}

TEST_CASE("transfer, delegate, add signers, claim, CC and withdraw", "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto erin = t.token("acme", "erin");
    const auto frank = t.token("acme", "frank");
    const auto gus = t.token("acme", "gus");
    const auto carol = t.token("acme", "carol", {"finance"});
    const auto dave = t.token("acme", "dave", {"finance"});
    const auto zed = t.token("acme", "zed");
    // The directory says who holds the finance role: a finance group task notifies them.
    const auto root = t.token("acme", "root", {"admin"});
    for (const char* member : {"carol", "dave"}) {
        REQUIRE(t.call("PUT", std::string("/api/v1/approvals/directory/") + member, root,
                       R"({"roles":["finance","audit"]})")
                    .status == 200);
    }
    CHECK(t.call("PUT", "/api/v1/approvals/directory/zed", root, R"({"roles":"finance"})").status ==
          422);
    const auto listed_directory = t.call("GET", "/api/v1/approvals/directory", root).body;
    REQUIRE(listed_directory.at("users").as_array().size() == 2);
    CHECK(listed_directory.at("users").at(0).at("roles") == json::parse(R"(["finance","audit"])"));
    const auto definition = flow.publish(
        alice,
        linear(
            "actions",
            {user_task(
                 "step",
                 R"({"approvers":[{"type":"user","value":"bob"}],"cc":[{"type":"user","value":"zed"}]})"),
             user_task("group", R"({"candidate_groups":["finance"]})")}));
    const auto id = flow.start(alice, definition);
    auto seen = flow.wait_pending(alice, id, "step");
    REQUIRE(seen.is_object());
    // CC: zed sees the instance and was told.
    CHECK(t.wait_unread(zed, 1));
    CHECK(t.call("GET", "/api/v1/approvals/instances?box=cc", zed)
              .body.at("items")
              .as_array()
              .size() == 1);
    CHECK(t.wait_unread(bob, 1));

    // Transfer bob -> erin; delegate erin -> frank, who resolves; erin adds gus after herself.
    REQUIRE(flow.act(bob, flow.pending_task(seen, "step"), "transfer", R"({"to":"erin"})").status ==
            200);
    CHECK(todo_nodes(t, bob).empty());
    CHECK(t.wait_unread(erin, 1));
    seen = flow.wait_pending(alice, id, "step");
    const auto erins = flow.pending_task(seen, "step", "erin");
    REQUIRE(erins != 0);
    REQUIRE(flow.act(erin, erins, "delegate", R"({"to":"frank"})").status == 200);
    CHECK(flow.act(frank, erins, "approve").status == 409);  // a delegate resolves, not decides
    CHECK(flow.act(erin, erins, "approve").status == 403);   // it is with frank now
    REQUIRE(flow.act(frank, erins, "resolve", R"({"comment":"looks fine"})").status == 200);
    // Each hand-over is news, however often the same task goes to the same person.
    CHECK(t.wait_unread(frank, 1));
    CHECK(t.wait_unread(erin, 2));  // it came back
    REQUIRE(flow.act(erin, erins, "delegate", R"({"to":"frank"})").status == 200);
    CHECK(t.wait_unread(frank, 2));
    REQUIRE(flow.act(frank, erins, "resolve", R"({"comment":"still fine"})").status == 200);
    CHECK(t.wait_unread(erin, 3));
    REQUIRE(flow.act(erin, erins, "add-signer", R"({"user":"gus","position":"after"})").status ==
            200);
    const auto approved = flow.act(erin, erins, "approve");
    REQUIRE(approved.status == 200);
    CHECK(approved.body.at("step_status") == "active");  // gus still signs
    seen = flow.wait_pending(alice, id, "step");
    REQUIRE(flow.act(gus, flow.pending_task(seen, "step", "gus"), "approve").status == 200);

    // Group task: carol claims it, then only she decides.
    seen = flow.wait_pending(alice, id, "group");
    REQUIRE(seen.is_object());
    const auto group = flow.pending_task(seen, "group");
    CHECK(todo_nodes(t, dave) == std::vector<std::string>{"group"});
    CHECK(t.wait_unread(carol, 1));
    CHECK(t.wait_unread(dave, 1));
    CHECK(t.wait_unread(zed, 1));  // only the CC: zed holds no finance role
    REQUIRE(flow.act(carol, group, "claim").status == 200);
    CHECK(todo_nodes(t, dave).empty());
    CHECK(flow.act(dave, group, "approve").status == 403);
    CHECK(flow.act(dave, group, "claim").status == 403);
    REQUIRE(flow.act(carol, group, "approve").status == 200);
    CHECK(flow.wait_done(alice, id).at("status") == "completed");
    const auto actions = flow.timeline_actions(alice, id);
    for (const char* action :
         {"copied", "transferred", "delegated", "resolved", "signer_added", "claimed"}) {
        CAPTURE(action);
        CHECK(contains(actions, action));
    }

    // Withdraw: the initiator only, and only while nobody has acted.
    const auto early = flow.start(alice, definition);
    seen = flow.wait_pending(alice, early, "step");
    CHECK(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(early) + "/withdraw", bob)
              .status == 403);
    const auto withdrawn =
        t.call("POST", "/api/v1/approvals/instances/" + std::to_string(early) + "/withdraw", alice);
    REQUIRE(withdrawn.status == 200);
    CHECK(withdrawn.body.at("status") == "withdrawn");
    CHECK(flow.act(bob, flow.pending_task(seen, "step"), "approve").status == 409);

    // A signer added before: bob waits for erin; then bob has acted and withdrawal is refused.
    const auto late = flow.start(alice, definition);
    seen = flow.wait_pending(alice, late, "step");
    const auto bobs = flow.pending_task(seen, "step", "bob");
    REQUIRE(flow.act(bob, bobs, "add-signer", R"({"user":"erin","position":"before"})").status ==
            200);
    CHECK(flow.act(bob, bobs, "approve").status == 409);
    seen = flow.wait_pending(alice, late, "step");
    REQUIRE(flow.act(erin, flow.pending_task(seen, "step", "erin"), "approve").status == 200);
    // bob's task is his turn again: he is told so (three tasks before, one notice each).
    CHECK(t.wait_unread(bob, 4));
    CHECK(flow.act(bob, bobs, "approve").status == 200);
    CHECK(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(late) + "/withdraw", alice)
              .status == 409);
    CHECK(flow.wait_pending(alice, late, "group").is_object());
}

TEST_CASE("timers and signals and a decision that beats the wait costs latency only",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto definition = flow.publish(
        alice,
        linear(
            "waits",
            {R"({"id":"cool","type":"timerCatchEvent","data":{"bpmn":{"duration":"PT2H"}}})",
             R"({"id":"paid","type":"signalCatchEvent","data":{"bpmn":{"signal":"paid","timeout":"P1D"}}})"}));
    const auto id = flow.start(alice, definition);
    const auto at = [&](const std::string& node) {
        return flow.wait_instance(
            alice, id,
            [&](const json::value& i) {
                return i.at("current_nodes") == json::array{json::value(node)};
            },
            1);
    };
    REQUIRE(at("cool").is_object());
    clock->advance(std::chrono::minutes(90));
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(10s));
    CHECK(at("cool").is_object());  // not yet
    clock->advance(std::chrono::minutes(31));
    t.app().executor()->poke();
    REQUIRE(at("paid").is_object());
    CHECK(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(id) + "/signals", alice,
                 R"({"data":{}})")
              .status == 422);
    REQUIRE(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(id) + "/signals", alice,
                   R"({"name":"paid","data":{"receipt":"R-1"}})")
                .status == 202);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("receipt") == "R-1");
    CHECK(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(id) + "/signals", alice,
                 R"({"name":"paid"})")
              .status == 409);

    // A decision recorded with no wake event (as if it arrived before the wait existed): the
    // instance notices at its next re-check, not before, and nothing is lost.
    const auto task_def = flow.publish(
        alice,
        linear("quiet", {user_task("step", R"({"approvers":[{"type":"user","value":"bob"}]})")}));
    const auto quiet = flow.start(alice, task_def);
    const auto seen = flow.wait_pending(alice, quiet, "step");
    REQUIRE(seen.is_object());
    REQUIRE(t.app().wait_settled(10s));  // the run parks right after it opened the task
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::TaskRepository tasks(pool);
    tasks.decide(riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "bob", {}},
                 flow.pending_task(seen, "step"), {"approve", std::nullopt, std::nullopt, {}},
                 clock->now());
    REQUIRE(t.app().wait_settled(10s));
    CHECK(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(quiet), alice)
              .body.at("status") == "running");
    clock->advance(std::chrono::minutes(16));
    t.app().executor()->poke();
    const auto finished = flow.wait_instance(
        alice, quiet, [](const json::value& i) { return i.at("status") != "running"; }, 1);
    REQUIRE(finished.is_object());
    CHECK(finished.at("status") == "completed");
}

TEST_CASE("a timer or a signal timeout that an earlier park attempt settled is settled again",
          "[app][approvals]") {
    // A park attempt closes a timer's visit (completed) or a timed-out signal wait's
    // (cancelled) and dies before its answer is stored; the next attempt finds the visit no
    // longer active and must still move the token on (it used to wait, a second at a time,
    // for a due time that had passed).
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id = flow.start(
        alice,
        flow.publish(
            alice,
            linear("settled_waits",
                   {R"({"id":"cool","type":"timerCatchEvent","data":{"bpmn":{"duration":"PT2H"}}})",
                    R"({"id":"paid","type":"signalCatchEvent","data":{"bpmn":{"signal":"paid",)"
                    R"("timeout":"P1D"}}})"})));
    const auto at = [&](const std::string& node) {
        return flow.wait_instance(
            alice, id,
            [&](const json::value& i) {
                return i.at("current_nodes") == json::array{json::value(node)};
            },
            1);
    };
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::TaskRepository tasks(pool);
    const auto acme = riveredge::core::TenantId::trusted("acme");
    REQUIRE(at("cool").is_object());
    REQUIRE(t.app().wait_settled(10s));
    // What the lost attempt did once the timer fell due; written before the clock moves, so the
    // executor's own park cannot get there first.
    tasks.close_visit({acme, id, "cool", 1}, "completed", clock->now() + std::chrono::minutes(121));
    clock->advance(std::chrono::minutes(121));
    t.app().executor()->poke();
    REQUIRE(at("paid").is_object());
    REQUIRE(t.app().wait_settled(10s));
    tasks.close_visit({acme, id, "paid", 1}, "cancelled", clock->now() + std::chrono::hours(25));
    clock->advance(std::chrono::hours(25));
    t.app().executor()->poke();
    const auto done = flow.wait_instance(
        alice, id, [](const json::value& i) { return i.at("status") != "running"; }, 1);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");  // the timeout's flow went on
    auto status = statuses(t, alice, id);
    CHECK(status["cool"] == "completed");
    CHECK(status["paid"] == "cancelled");
}

TEST_CASE("an engine step's event-log entry is written once however often the step runs",
          "[app][approvals]") {
    // A step retried after a crash or a failed attempt writes its entries again; the entry's key
    // (what it is about: a node visit, an attempt) keeps the log to one of each.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id = flow.start(
        alice,
        flow.publish(alice, linear("logged", {user_task("step", R"({"approvers":[{"type":)"
                                                                R"("user","value":"bob"}]})")})));
    REQUIRE(flow.wait_pending(alice, id, "step").is_object());
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::InstanceRepository instances(pool);
    const auto acme = riveredge::core::TenantId::trusted("acme");
    const auto count = [&](const std::string& name, std::int64_t instance) {
        const auto names = event_names(t, alice, instance);
        return std::count(names.begin(), names.end(), name);
    };
    const json::object data{{"node_id", "step"}, {"visit", 1}};
    instances.log(acme, id, "deadline", data, "deadline:step#1/0");
    instances.log(acme, id, "deadline", data, "deadline:step#1/0");
    CHECK(count("deadline", id) == 1);
    // Another round of the same visit is another entry.
    instances.log(acme, id, "deadline", data, "deadline:step#1/1");
    CHECK(count("deadline", id) == 2);
    // The key is the instance's own: another instance logs under the same key.
    const auto other = flow.start(
        alice,
        flow.publish(alice, linear("logged_too", {user_task("step", R"({"approvers":[)"
                                                                    R"({"type":"user",)"
                                                                    R"("value":"bob"}]})")})));
    instances.log(acme, other, "deadline", data, "deadline:step#1/0");
    CHECK(count("deadline", id) == 2);
    CHECK(count("deadline", other) == 1);
}

TEST_CASE("a decision's wake is sent now and again after 2 s and 15 s, each once",
          "[app][approvals]") {
    // Inngest drops a wake that arrives between the run's database read and its wait; the echoes
    // make such a loss cost seconds instead of the 15-minute re-check.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto definition = flow.publish(
        alice,
        linear("echo", {user_task("step", R"({"approvers":[{"type":"user","value":"bob"}]})")}));
    const auto id = flow.start(alice, definition);
    const auto seen = flow.wait_pending(alice, id, "step");
    REQUIRE(seen.is_object());
    REQUIRE(t.call("POST",
                   "/api/v1/approvals/tasks/" + std::to_string(flow.pending_task(seen, "step")) +
                       "/approve",
                   bob, R"({"comment":"ok"})")
                .status == 200);
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    const auto wakes = [&] {
        return riveredge::core::db::transact(
            pool, std::nullopt, [&](riveredge::core::db::Transaction& tx) {
                tx.exec("SELECT set_config('app.scope', 'outbox', true)");
                return tx.exec(
                    "SELECT event_id, round(extract(epoch FROM next_attempt_at - "
                    "created_at))::bigint AS delay, sent_at IS NOT NULL AS sent FROM app_outbox "
                    "WHERE name = 'approvals/instance.wake' AND (data->>'instance_id')::bigint = "
                    "$1 AND data->>'why' = 'approve' ORDER BY next_attempt_at",
                    {std::to_string(id)});
            });
    };
    const auto rows = wakes();
    REQUIRE(rows.size() == 3);
    CHECK(rows.integer(0, "delay") == 0);
    CHECK(rows.integer(1, "delay") == 2);
    CHECK(rows.integer(2, "delay") == 15);
    CHECK(std::set<std::string>{rows.text(0, "event_id"), rows.text(1, "event_id"),
                                rows.text(2, "event_id")}
              .size() == 3);
    // The echo is held back until due, then relayed; the spare wake costs the run nothing.
    CHECK(rows.text(1, "sent") == "f");
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    bool echoed = false;
    for (int i = 0; i < 200 && !echoed; ++i) {
        echoed = wakes().text(1, "sent") == "t";
        std::this_thread::sleep_for(25ms);
    }
    CHECK(echoed);
    CHECK(wakes().text(2, "sent") == "f");
    CHECK(flow.timeline_actions(alice, id) ==
          std::vector<std::string>{"started", "task_created", "approved", "completed"});
}

TEST_CASE("administrators reassign a stuck task and terminate an instance, with reasons",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto carol = t.token("acme", "carol");
    const auto other_admin = t.token("globex", "gina", {"admin"});
    const auto definition = flow.publish(
        alice,
        linear("stuck", {user_task("first", R"({"approvers":[{"type":"user","value":"bob"}]})"),
                         user_task("second", R"({"approvers":[{"type":"user","value":"bob"}]})")}));
    const auto id = flow.start(alice, definition);
    const auto seen = flow.wait_pending(alice, id, "first");
    REQUIRE(seen.is_object());
    const auto task = flow.pending_task(seen, "first");
    const std::string reassign = "/api/v1/approvals/tasks/" + std::to_string(task) + "/reassign";

    // Only a tenant administrator, with a reason and someone to take the task.
    CHECK(t.call("POST", reassign, bob, R"({"to":"carol","reason":"bob is away"})").status == 403);
    CHECK(t.call("POST", reassign, other_admin, R"({"to":"carol","reason":"x"})").status == 404);
    const auto invalid = t.call("POST", reassign, alice, R"({"to":"carol"})");
    CHECK(invalid.status == 422);
    CHECK(invalid.body.at("error").at("details").at("fields").as_object().contains("reason"));
    CHECK(t.call("POST", reassign, alice, R"({"to":"bob","reason":"x"})").status == 422);
    REQUIRE(t.call("POST", reassign, alice, R"({"to":"carol","reason":"bob is away"})").status ==
            200);
    CHECK(todo_nodes(t, bob).empty());
    CHECK(todo_nodes(t, carol) == std::vector<std::string>{"first"});
    CHECK(t.wait_unread(carol, 1));
    CHECK(t.call("POST", reassign, alice, R"({"to":"dave","reason":"again"})").status == 409);
    const auto now_carols = flow.pending_task(flow.wait_pending(alice, id, "first"), "first");
    REQUIRE(flow.act(carol, now_carols, "approve").status == 200);
    REQUIRE(flow.wait_pending(alice, id, "second").is_object());

    // Terminate: administrators only, with a reason; the open task goes, the run stops.
    const std::string terminate =
        "/api/v1/approvals/instances/" + std::to_string(id) + "/terminate";
    CHECK(t.call("POST", terminate, bob, R"({"reason":"no longer needed"})").status == 403);
    CHECK(t.call("POST", terminate, alice, "{}").status == 422);
    CHECK(t.call("POST", terminate, other_admin, R"({"reason":"x"})").status == 404);
    const auto ended = t.call("POST", terminate, alice, R"({"reason":"order cancelled"})");
    REQUIRE(ended.status == 200);
    CHECK(ended.body.at("status") == "cancelled");
    CHECK(ended.body.at("status_reason") == "terminated: order cancelled");
    CHECK(todo_nodes(t, bob).empty());
    CHECK(t.call("POST", terminate, alice, R"({"reason":"twice"})").status == 409);
    // The run stops at its next park. If the terminate's wake landed before the run waited,
    // the wake's echo (2 s later, through the outbox) is what reaches it: wait for that too.
    std::vector<inngest::local::RunSnapshot> runs;
    for (int i = 0; i < 100; ++i) {
        REQUIRE(t.app().wait_settled(20s));
        runs = t.app().executor()->runs("riveredge-flow-approvals-instance");
        if (!runs.empty() && runs.back().status != inngest::local::RunStatus::kRunning) {
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    REQUIRE(!runs.empty());
    CHECK(runs.back().status != inngest::local::RunStatus::kRunning);
    CHECK(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id), alice)
              .body.at("status") == "cancelled");

    // Both are in the timeline with who did them and why.
    const auto timeline =
        t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id) + "/timeline", alice);
    std::map<std::string, json::value> by_action;
    for (const auto& entry : timeline.body.at("timeline").as_array()) {
        by_action[std::string(entry.at("action").as_string())] = entry;
    }
    REQUIRE(by_action.contains("reassigned"));
    REQUIRE(by_action.contains("terminated"));
    CHECK(by_action["reassigned"].at("actor") == "alice");
    CHECK(json::serialize(by_action["reassigned"]).find("bob is away") != std::string::npos);
    CHECK(by_action["terminated"].at("actor") == "alice");
    CHECK(json::serialize(by_action["terminated"]).find("order cancelled") != std::string::npos);
}

TEST_CASE("an engine finish that comes after an administrator's terminate adds nothing",
          "[app][approvals]") {
    // The run's finish step (here: the task was rejected) fails its first attempt; before its
    // retry an administrator terminates the instance. The retry ends nothing, so it neither
    // writes 'rejected' after 'terminated' nor tells the initiator the request was rejected.
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto id = flow.start(
        alice, flow.publish(alice, linear("terminated_first",
                                          {user_task("step", R"({"approvers":[{"type":"user",)"
                                                             R"("value":"bob"}]})")})));
    const auto seen = flow.wait_pending(alice, id, "step");
    REQUIRE(seen.is_object());
    fail_first_update(t, "finish_fails", "approval_instances",
                      "OLD.status = 'running' AND NEW.status = 'rejected'");
    REQUIRE(flow.act(bob, flow.pending_task(seen, "step"), "reject").status == 200);
    for (int i = 0; i < 200 && updates_met(t, "finish_fails") == 0; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "finish_fails") == 1);
    const std::string path = "/api/v1/approvals/instances/" + std::to_string(id);
    REQUIRE(
        t.call("POST", path + "/terminate", alice, R"({"reason":"withdrawn by phone"})").status ==
        200);
    clock->advance(std::chrono::minutes(2));  // the finish step's retry
    t.app().executor()->poke();
    std::vector<inngest::local::RunSnapshot> runs;
    for (int i = 0; i < 200; ++i) {
        REQUIRE(t.app().wait_settled(20s));
        runs = t.app().executor()->runs("riveredge-flow-approvals-instance");
        if (!runs.empty() && runs.back().status != inngest::local::RunStatus::kRunning) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(!runs.empty());
    CHECK(runs.back().status == inngest::local::RunStatus::kCompleted);
    CHECK(t.call("GET", path, alice).body.at("status") == "cancelled");
    CHECK(flow.timeline_actions(alice, id).back() == "terminated");
    CHECK(t.call("GET", "/api/v1/messages/inbox/unread-count", alice).body.at("unread") == 0);

    // A finish retried after its first attempt ended the instance counts as having ended it (the
    // step's entry is there), so the retry still tells what the first attempt may not have.
    const auto other = flow.start(
        alice, flow.publish(alice, linear("finished_twice",
                                          {user_task("step", R"({"approvers":[{"type":"user",)"
                                                             R"("value":"bob"}]})")})));
    REQUIRE(flow.wait_pending(alice, other, "step").is_object());
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::InstanceRepository instances(pool);
    const auto acme = riveredge::core::TenantId::trusted("acme");
    const auto first = instances.finish(acme, other, "cancelled", std::nullopt, "finish:test");
    CHECK(first.ended);
    CHECK(instances.finish(acme, other, "cancelled", std::nullopt, "finish:test").ended);
    CHECK_FALSE(instances.finish(acme, other, "failed", std::nullopt, "finish:another").ended);
    const auto actions = flow.timeline_actions(alice, other);
    CHECK(std::count(actions.begin(), actions.end(), "cancelled") == 1);
    CHECK(std::count(actions.begin(), actions.end(), "failed") == 0);
}

TEST_CASE("administrators suspend, resume and retry an instance, with reasons",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto other_admin = t.token("globex", "gina", {"admin"});
    // A script that fails until an administrator mends it, bound as the activity "Charge".
    const auto created = t.call("POST", "/api/v1/scripts", alice,
                                R"({"name":"charge","code":"function main(a) { throw new )"
                                R"(Error('card declined'); }"})");
    REQUIRE(created.status == 201);
    const auto script_id = std::to_string(created.body.at("id").as_int64());
    REQUIRE(t.call("PUT", "/api/v1/approvals/activities/Charge", alice,
                   R"({"kind":"script","script_id":)" + script_id + "}")
                .status == 200);
    const auto definition = flow.publish(
        alice,
        linear("held", {R"({"id":"charge","type":"serviceTask","data":{"bpmn":{"implementation":)"
                        R"("temporal_activity","activity_name":"Charge","retry_policy":)"
                        R"({"max_attempts":2,"initial_interval":"PT1M"}}}})",
                        user_task("confirm", R"({"approvers":[{"type":"user","value":"bob"}]})")}));
    const auto id = flow.start(alice, definition);
    const std::string instance = "/api/v1/approvals/instances/" + std::to_string(id);
    const auto failures = [&] {
        int n = 0;
        for (const auto& e : listed(t, instance + "/events", alice, "events")) {
            n += e.at("name") == "service_failed" ? 1 : 0;
        }
        return n;
    };
    const auto status = [&] {
        return std::string(t.call("GET", instance, alice).body.at("status").as_string());
    };
    const auto settle = [&] {
        t.app().executor()->poke();
        REQUIRE(t.app().wait_settled(20s));
    };
    settle();
    REQUIRE(failures() == 1);  // attempt 1 failed; the run sleeps a minute before attempt 2

    // Suspend: administrators only, with a reason, in the caller's tenant.
    CHECK(t.call("POST", instance + "/suspend", bob, R"({"reason":"x"})").status == 403);
    CHECK(t.call("POST", instance + "/suspend", alice, "{}").status == 422);
    CHECK(t.call("POST", instance + "/suspend", other_admin, R"({"reason":"x"})").status == 404);
    const auto suspended = t.call("POST", instance + "/suspend", alice, R"({"reason":"audit"})");
    REQUIRE(suspended.status == 200);
    CHECK(suspended.body.at("status") == "suspended");
    CHECK(suspended.body.at("status_reason") == "suspended: audit");
    CHECK(t.call("POST", instance + "/suspend", alice, R"({"reason":"x"})").status == 409);
    CHECK(t.call("POST", instance + "/retry", alice, R"({"reason":"x"})").status == 409);
    // Held: the sleep ends, but attempt 2 is not made, however long it waits.
    clock->advance(std::chrono::minutes(2));
    settle();
    clock->advance(std::chrono::hours(2));
    settle();
    CHECK(failures() == 1);
    CHECK(status() == "suspended");

    // Resume: the task is visited afresh (attempt 1, then attempt 2), fails for good, and the
    // instance turns failed with its token held at the task.
    CHECK(t.call("POST", instance + "/resume", bob, R"({"reason":"x"})").status == 403);
    REQUIRE(t.call("POST", instance + "/resume", alice, R"({"reason":"audit done"})").status ==
            200);
    for (int i = 0; i < 200 && failures() < 2; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(failures() == 2);
    settle();
    clock->advance(std::chrono::minutes(2));
    settle();
    CHECK(failures() == 3);
    const auto failed = t.call("GET", instance, alice).body;
    REQUIRE(failed.at("status") == "failed");
    CHECK(std::string(failed.at("status_reason").as_string()).find("card declined") !=
          std::string::npos);

    // Retry: administrators only, with a reason; after the script is mended the task runs
    // afresh and the instance goes on.
    CHECK(t.call("POST", instance + "/retry", bob, R"({"reason":"x"})").status == 403);
    CHECK(t.call("POST", instance + "/retry", alice, "{}").status == 422);
    CHECK(t.call("POST", instance + "/resume", alice, R"({"reason":"x"})").status == 409);
    REQUIRE(t.call("PUT", "/api/v1/scripts/" + script_id, alice,
                   R"({"code":"function main(a) { return { charged: true }; }"})")
                .status == 200);
    const auto retried = t.call("POST", instance + "/retry", alice, R"({"reason":"card fixed"})");
    REQUIRE(retried.status == 200);
    CHECK(retried.body.at("status") == "running");
    CHECK(retried.body.at("status_reason").is_null());
    const auto confirm = flow.pending_task(flow.wait_pending(alice, id, "confirm"), "confirm");
    REQUIRE(confirm != 0);
    CHECK(failures() == 3);

    // A suspended instance's tasks leave the todo box and refuse decisions until resumed.
    REQUIRE(t.call("POST", instance + "/suspend", alice, R"({"reason":"hold on"})").status == 200);
    CHECK(todo_nodes(t, bob).empty());
    const auto refused = flow.act(bob, confirm, "approve");
    CHECK(refused.status == 409);
    CHECK(json::serialize(refused.body).find("suspended") != std::string::npos);
    REQUIRE(t.call("POST", instance + "/resume", alice, R"({"reason":"go"})").status == 200);
    CHECK(todo_nodes(t, bob) == std::vector<std::string>{"confirm"});
    REQUIRE(flow.act(bob, confirm, "approve").status == 200);
    CHECK(flow.wait_done(alice, id).at("status") == "completed");

    // Each step is in the timeline with who did it and why.
    const auto actions = flow.timeline_actions(alice, id);
    for (const char* action : {"suspended", "resumed", "failed", "retried", "completed"}) {
        CHECK(contains(actions, action));
    }
    const auto timeline = t.call("GET", instance + "/timeline", alice);
    bool retried_by_alice = false;
    for (const auto& entry : timeline.body.at("timeline").as_array()) {
        if (entry.at("action") == "retried") {
            retried_by_alice = entry.at("actor") == "alice" &&
                               json::serialize(entry).find("card fixed") != std::string::npos;
        }
    }
    CHECK(retried_by_alice);

    // A script task that fails holds the same way; a terminate ends a failed instance.
    const auto scripted = flow.publish(
        alice, linear("scripted", {R"({"id":"compute","type":"scriptTask","data":{"bpmn":)"
                                   R"({"script_id":)" +
                                   script_id + "}}}"}));
    REQUIRE(t.call("PUT", "/api/v1/scripts/" + script_id, alice,
                   R"({"code":"function main(a) { throw new Error('broken again'); }"})")
                .status == 200);
    const auto second = flow.start(alice, scripted);
    const std::string second_path = "/api/v1/approvals/instances/" + std::to_string(second);
    const auto second_failed = flow.wait_instance(
        alice, second, [](const json::value& i) { return i.at("status") == "failed"; });
    REQUIRE(second_failed.is_object());
    CHECK(std::string(second_failed.at("status_reason").as_string()).find("compute") !=
          std::string::npos);
    const auto ended = t.call("POST", second_path + "/terminate", alice, R"({"reason":"give up"})");
    REQUIRE(ended.status == 200);
    CHECK(ended.body.at("status") == "cancelled");
    CHECK(t.call("POST", second_path + "/retry", alice, R"({"reason":"x"})").status == 409);
}

TEST_CASE("boundary timers interrupt a task or start a path beside it, error boundaries catch",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto carol = t.token("acme", "carol");
    const auto for_user = [](const std::string& user) {
        return R"({"approvers":[{"type":"user","value":")" + user + R"("}]})";
    };
    // review (bob): after 30 minutes carol is nudged beside it (non-interrupting); after an hour
    // the review is taken from bob and escalated to carol (interrupting).
    const auto timers = flow.publish(
        alice,
        R"({"key":"timers","nodes":[{"id":"start","type":"startEvent"},)" +
            user_task("review", for_user("bob")) + "," + user_task("nudged", for_user("carol")) +
            "," + user_task("escalated", for_user("carol")) +
            R"(,{"id":"nudge","type":"boundaryEvent","data":{"bpmn":{"attached_to":"review",)"
            R"("duration":"PT30M","cancel_activity":false}}},)"
            R"({"id":"late","type":"boundaryEvent","data":{"bpmn":{"attached_to":"review",)"
            R"("duration":"PT1H"}}},)"
            R"({"id":"end","type":"endEvent"},{"id":"end2","type":"endEvent"},)"
            R"({"id":"end3","type":"endEvent"}],"edges":[)"
            R"({"id":"1","source":"start","target":"review"},)"
            R"({"id":"2","source":"review","target":"end"},)"
            R"({"id":"3","source":"nudge","target":"nudged"},)"
            R"({"id":"4","source":"nudged","target":"end2"},)"
            R"({"id":"5","source":"late","target":"escalated"},)"
            R"({"id":"6","source":"escalated","target":"end3"}]})");
    const auto id = flow.start(alice, timers);
    const std::string instance = "/api/v1/approvals/instances/" + std::to_string(id);
    const auto settle = [&] {
        t.app().executor()->poke();
        REQUIRE(t.app().wait_settled(20s));
    };
    const auto timer_events = [&] {
        int n = 0;
        for (const auto& e : listed(t, instance + "/events", alice, "events")) {
            n += e.at("name") == "boundary_timer" ? 1 : 0;
        }
        return n;
    };
    REQUIRE(flow.wait_pending(alice, id, "review").is_object());
    clock->advance(std::chrono::minutes(20));
    settle();
    CHECK(todo_nodes(t, carol).empty());  // not yet
    clock->advance(std::chrono::minutes(15));
    settle();
    CHECK(todo_nodes(t, carol) == std::vector<std::string>{"nudged"});
    CHECK(todo_nodes(t, bob) == std::vector<std::string>{"review"});  // still bob's
    CHECK(timer_events() == 1);
    clock->advance(std::chrono::minutes(30));
    settle();
    CHECK(todo_nodes(t, bob).empty());  // taken from bob
    auto carols = todo_nodes(t, carol);
    std::sort(carols.begin(), carols.end());
    CHECK(carols == std::vector<std::string>{"escalated", "nudged"});
    CHECK(timer_events() == 1);  // the nudge fired once
    const auto seen = t.call("GET", instance, alice).body;
    for (const char* node : {"nudged", "escalated"}) {
        REQUIRE(flow.act(carol, flow.pending_task(seen, node), "approve").status == 200);
    }
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    std::map<std::string, std::string> status;
    for (const auto& n : listed(t, instance + "/diagram", alice, "nodes")) {
        status[std::string(n.at("id").as_string())] = std::string(n.at("status").as_string());
    }
    CHECK(status["review"] == "cancelled");
    CHECK(status["late"] == "completed");
    CHECK(status["end"] == "pending");

    // An error boundary on a service task: the failure takes its path, not the instance down.
    const auto created = t.call("POST", "/api/v1/scripts", alice,
                                R"({"name":"charge","code":"function main(a) { throw new )"
                                R"(Error('card declined'); }"})");
    REQUIRE(created.status == 201);
    REQUIRE(t.call("PUT", "/api/v1/approvals/activities/Charge", alice,
                   R"({"kind":"script","script_id":)" +
                       std::to_string(created.body.at("id").as_int64()) + "}")
                .status == 200);
    const auto caught = flow.publish(
        alice, R"({"key":"caught","nodes":[{"id":"start","type":"startEvent"},)"
               R"({"id":"charge","type":"serviceTask","data":{"bpmn":{"implementation":)"
               R"("temporal_activity","activity_name":"Charge"}}},)"
               R"({"id":"declined","type":"boundaryEvent","data":{"bpmn":{"attached_to":"charge",)"
               R"("event":"error","error_variable":"charge_error"}}},)" +
                   user_task("fix", for_user("bob")) +
                   R"(,{"id":"end","type":"endEvent"},{"id":"end2","type":"endEvent"}],"edges":[)"
                   R"({"id":"1","source":"start","target":"charge"},)"
                   R"({"id":"2","source":"charge","target":"end"},)"
                   R"({"id":"3","source":"declined","target":"fix"},)"
                   R"({"id":"4","source":"fix","target":"end2"}]})");
    const auto second = flow.start(alice, caught);
    const auto at_fix = flow.wait_pending(alice, second, "fix");
    REQUIRE(at_fix.is_object());
    CHECK(at_fix.at("status") == "running");
    CHECK(std::string(at_fix.at("variables").at("charge_error").at("message").as_string())
              .find("card declined") != std::string::npos);
    REQUIRE(flow.act(bob, flow.pending_task(at_fix, "fix"), "approve").status == 200);
    CHECK(flow.wait_done(alice, second).at("status") == "completed");
}

TEST_CASE("messages by business key, thrown signals and messages, and event-based gateways",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto gina = t.token("globex", "gina", {"admin"});
    const auto settle = [&] {
        t.app().executor()->poke();
        REQUIRE(t.app().wait_settled(20s));
    };
    const auto start_keyed = [&](std::int64_t definition, const std::string& key,
                                 const std::string& variables = "{}") {
        const auto r =
            t.call("POST", "/api/v1/approvals/instances", alice,
                   R"({"definition_id":)" + std::to_string(definition) + R"(,"business_key":")" +
                       key + R"(","variables":)" + variables + "}");
        INFO(json::serialize(r.body));
        REQUIRE(r.status == 201);
        return r.body.at("id").as_int64();
    };
    const auto status_of = [&](std::int64_t id) {
        return std::string(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id), alice)
                               .body.at("status")
                               .as_string());
    };
    const auto edges = [](const std::vector<std::pair<std::string, std::string>>& pairs) {
        std::string out;
        int n = 0;
        for (const auto& [from, to] : pairs) {
            out += std::string(n == 0 ? "" : ",") + R"({"id":"f)" + std::to_string(n) +
                   R"(","source":")" + from + R"(","target":")" + to + R"("})";
            ++n;
        }
        return out;
    };

    // A receive task waits for "payment.received" for its business key, from REST or from an
    // event of the tenant's namespace.
    const auto order =
        flow.publish(alice, R"({"key":"order","nodes":[{"id":"start","type":"startEvent"},)"
                            R"({"id":"paid","type":"receiveTask","data":{"bpmn":{"message":)"
                            R"("payment.received"}}},{"id":"end","type":"endEvent"}],"edges":[)" +
                                edges({{"start", "paid"}, {"paid", "end"}}) + "]}");
    const auto first = start_keyed(order, "ORD-1");
    settle();
    const std::string messages = "/api/v1/approvals/messages";
    CHECK(t.call("POST", messages, bob, R"({"name":"payment.received","business_key":"ORD-1"})")
              .status == 403);
    CHECK(t.call("POST", messages, alice, R"({"name":"payment.received"})").status == 422);
    CHECK(t.call("POST", messages, gina, R"({"name":"payment.received","business_key":"ORD-1"})")
              .status == 404);  // another tenant's key does not exist for gina
    CHECK(t.call("POST", messages, alice, R"({"name":"payment.received","business_key":"ORD-9"})")
              .status == 404);
    const auto sent = t.call("POST", messages, alice,
                             R"({"name":"payment.received","business_key":"ORD-1",)"
                             R"("data":{"amount":42},"message_id":"m-1"})");
    REQUIRE(sent.status == 202);
    CHECK(sent.body.at("delivered") == json::array{first});
    const auto repeat = t.call("POST", messages, alice,
                               R"({"name":"payment.received","business_key":"ORD-1",)"
                               R"("data":{"amount":42},"message_id":"m-1"})");
    CHECK(repeat.status == 202);
    CHECK(repeat.body.at("delivered").as_array().empty());
    const auto done = flow.wait_done(alice, first);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("amount") == 42);

    // From an event of the tenant's namespace; another tenant's event with the same key does
    // not reach it.
    const auto second = start_keyed(order, "ORD-2");
    settle();
    const auto send_event = [&](const std::string& name) {
        REQUIRE(t.app()
                    .executor()
                    ->send(json::array{json::object{
                        {"name", name},
                        {"data", json::object{{"business_key", "ORD-2"},
                                              {"data", json::object{{"via", "event"}}}}}}})
                    .has_value());
        settle();
    };
    send_event("tenants/globex/payment.received");
    CHECK(status_of(second) == "running");
    send_event("tenants/acme/payment.received");
    CHECK(status_of(second) == "completed");

    // A message throw event correlates to another instance by key; a signal throw event reaches
    // the instances waiting for that signal now.
    const auto waiter = flow.publish(
        alice, R"({"key":"waiter","nodes":[{"id":"start","type":"startEvent"},)"
               R"({"id":"go","type":"intermediateCatchEvent","data":{"bpmn":{"message":"go"}}},)"
               R"({"id":"alarm","type":"signalCatchEvent","data":{"bpmn":{"signal":"alarm"}}},)"
               R"({"id":"end","type":"endEvent"}],"edges":[)" +
                   edges({{"start", "go"}, {"go", "alarm"}, {"alarm", "end"}}) + "]}");
    const auto thrower = flow.publish(
        alice, R"({"key":"thrower","nodes":[{"id":"start","type":"startEvent"},)"
               R"({"id":"send_go","type":"intermediateThrowEvent","data":{"bpmn":{"message":"go",)"
               R"("business_key":"${target}","data":{"from":"${initiator}"}}}},)"
               R"({"id":"raise","type":"signalThrowEvent","data":{"bpmn":{"signal":"alarm"}}},)"
               R"({"id":"end","type":"endEvent"}],"edges":[)" +
                   edges({{"start", "send_go"}, {"send_go", "raise"}, {"raise", "end"}}) + "]}");
    const auto receiver = start_keyed(waiter, "W-1");
    settle();
    const auto sender = start_keyed(thrower, "T-1", R"({"target":"W-1"})");
    settle();
    CHECK(status_of(sender) == "completed");
    // The message moved the receiver to its signal catch; the signal was thrown before it
    // waited there, so it is still waiting: a second thrower finishes it.
    const auto moved = flow.wait_instance(alice, receiver, [](const json::value& i) {
        return i.at("current_nodes") == json::array{"alarm"} || i.at("status") != "running";
    });
    REQUIRE(moved.is_object());
    CHECK(moved.at("variables").at("from") == "alice");
    if (moved.at("status") == "running") {
        start_keyed(thrower, "T-2", R"({"target":"nobody"})");
        settle();
    }
    CHECK(flow.wait_done(alice, receiver).at("status") == "completed");

    // An event-based gateway: the first event wins and the others are withdrawn.
    const auto race = flow.publish(
        alice, R"({"key":"race","nodes":[{"id":"start","type":"startEvent"},)"
               R"({"id":"gw","type":"eventBasedGateway"},)"
               R"({"id":"answer","type":"messageCatchEvent","data":{"bpmn":{"message":"answer"}}},)"
               R"({"id":"hour","type":"timerCatchEvent","data":{"bpmn":{"duration":"PT1H"}}},)" +
                   user_task("chase", R"({"approvers":[{"type":"user","value":"bob"}]})") +
                   R"(,{"id":"end","type":"endEvent"},{"id":"end2","type":"endEvent"}],"edges":[)" +
                   edges({{"start", "gw"},
                          {"gw", "answer"},
                          {"gw", "hour"},
                          {"answer", "end"},
                          {"hour", "chase"},
                          {"chase", "end2"}}) +
                   "]}");
    const auto answered = start_keyed(race, "R-1");
    const auto timed_out = start_keyed(race, "R-2");
    settle();
    REQUIRE(t.call("POST", messages, alice, R"({"name":"answer","business_key":"R-1"})").status ==
            202);
    settle();
    CHECK(status_of(answered) == "completed");
    CHECK(status_of(timed_out) == "running");
    clock->advance(std::chrono::minutes(61));
    settle();
    CHECK(todo_nodes(t, bob) == std::vector<std::string>{"chase"});
    // A late answer finds the race over: the instance stays where the timer took it.
    REQUIRE(t.call("POST", messages, alice, R"({"name":"answer","business_key":"R-2"})").status ==
            202);
    settle();
    const auto late =
        t.call("GET", "/api/v1/approvals/instances/" + std::to_string(timed_out), alice);
    CHECK(late.body.at("current_nodes") == json::array{"chase"});
    auto diagram = statuses(t, alice, timed_out);
    CHECK(diagram["hour"] == "completed");
    CHECK(diagram["answer"] == "pending");
}

TEST_CASE("a signal throw step retried after its broadcast committed wakes the receivers again",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto waiter = flow.start(
        alice, flow.publish(alice, linear("alarmed", {R"({"id":"alarm","type":"signalCatchEvent",)"
                                                      R"("data":{"bpmn":{"signal":"alarm"}}})"})));
    const auto thrower = flow.start(
        alice,
        flow.publish(alice, linear("alarming", {user_task("hold", R"({"approvers":[{"type":"user",)"
                                                                  R"("value":"bob"}]})"),
                                                R"({"id":"raise","type":"signalThrowEvent",)"
                                                R"("data":{"bpmn":{"signal":"alarm"}}})"})));
    const auto seen = flow.wait_pending(alice, thrower, "hold");
    REQUIRE(seen.is_object());
    REQUIRE(flow.wait_instance(alice, waiter,
                               [](const json::value& i) {
                                   return i.at("current_nodes") == json::array{"alarm"};
                               })
                .is_object());
    REQUIRE(t.app().wait_settled(10s));  // the waiter has stored its wait for the signal
    // What the throw step's first attempt committed before it died, the wakes not sent.
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::InstanceRepository instances(pool);
    const auto acme = riveredge::core::TenantId::trusted("acme");
    REQUIRE(instances.broadcast_signal(acme, "alarm", json::object{},
                                       "approval:" + std::to_string(thrower),
                                       "throw:" + std::to_string(thrower) + ":raise#1") ==
            std::vector<std::int64_t>{waiter});
    // The step runs again: it stores nothing new and still wakes the waiter, which goes on now
    // rather than at its next re-check.
    REQUIRE(flow.act(bob, flow.pending_task(seen, "hold"), "approve").status == 200);
    CHECK(flow.wait_done(alice, thrower).at("status") == "completed");
    const auto woken = flow.wait_instance(
        alice, waiter, [](const json::value& i) { return i.at("status") != "running"; }, 1);
    REQUIRE(woken.is_object());
    CHECK(woken.at("status") == "completed");
    for (const auto& e :
         listed(t, "/api/v1/approvals/instances/" + std::to_string(thrower) + "/events", alice,
                "events")) {
        if (e.at("name") == "signal_thrown") {
            CHECK(e.at("data").at("reached") == json::array{waiter});
        }
    }
}

TEST_CASE("a message throw step retried after its wake was sent logs the receiver's wake once",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    // The receiver takes the message and goes on to a task, so it is still running (and reached
    // again) when the throw step runs again.
    const auto receiving = flow.publish(
        alice, linear("receiving", {R"({"id":"go","type":"receiveTask",)"
                                    R"("data":{"bpmn":{"message":"go"}}})",
                                    user_task("after", R"({"approvers":[{"type":"user",)"
                                                       R"("value":"bob"}]})")}));
    const auto started = t.call("POST", "/api/v1/approvals/instances", alice,
                                R"({"definition_id":)" + std::to_string(receiving) +
                                    R"(,"business_key":"R-1","variables":{}})");
    REQUIRE(started.status == 201);
    const auto receiver = started.body.at("id").as_int64();
    // The throw step's first attempt delivers and wakes, then dies recording its visit.
    fail_first_insert(t, "thrown_visit_fails", "approval_node_visits", "NEW.node_id = 'send_go'");
    const auto sender = flow.start(
        alice,
        flow.publish(alice, linear("sending", {R"({"id":"send_go","type":)"
                                               R"("messageThrowEvent","data":{"bpmn":)"
                                               R"({"message":"go","business_key":"R-1"}}})"})));
    REQUIRE(flow.wait_pending(alice, receiver, "after").is_object());
    for (int i = 0; i < 200 && updates_met(t, "thrown_visit_fails") == 0; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "thrown_visit_fails") == 1);
    clock->advance(std::chrono::minutes(2));  // the step's retry wakes the receiver again
    t.app().executor()->poke();
    CHECK(flow.wait_done(alice, sender).at("status") == "completed");
    REQUIRE(t.app().wait_settled(20s));
    // The retry's wake is the same wake: one entry in the receiver's log.
    int wakes = 0;
    for (const auto& e :
         listed(t, "/api/v1/approvals/instances/" + std::to_string(receiver) + "/events", alice,
                "events")) {
        wakes += e.at("name") == "approvals/instance.wake" ? 1 : 0;
    }
    CHECK(wakes == 1);
}

TEST_CASE("a tenant event's correlate step retried after its delivery committed wakes the receiver",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto order =
        flow.publish(alice, linear("paid_order", {R"({"id":"paid","type":"receiveTask",)"
                                                  R"("data":{"bpmn":{"message":"paid"}}})"}));
    const auto r = t.call("POST", "/api/v1/approvals/instances", alice,
                          R"({"definition_id":)" + std::to_string(order) +
                              R"(,"business_key":"ORD-7","variables":{}})");
    REQUIRE(r.status == 201);
    const auto id = r.body.at("id").as_int64();
    REQUIRE(flow.wait_instance(alice, id,
                               [](const json::value& i) {
                                   return i.at("current_nodes") == json::array{"paid"};
                               })
                .is_object());
    REQUIRE(t.app().wait_settled(10s));
    // What the step's first attempt committed before it died, the wake not sent.
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::approvals::InstanceRepository instances(pool);
    const auto acme = riveredge::core::TenantId::trusted("acme");
    const json::object data{{"amount", 7}};
    REQUIRE(
        instances.deliver_message(acme, "paid", "ORD-7", data, "event:paid", "message:event:evt-7")
            .reached == std::vector<std::int64_t>{id});
    // The step runs again for the same event: it delivers nothing new and still wakes the
    // instance, which goes on now rather than at its next re-check.
    REQUIRE(t.app()
                .executor()
                ->send(json::array{json::object{
                    {"name", "tenants/acme/paid"},
                    {"id", "evt-7"},
                    {"data", json::object{{"business_key", "ORD-7"}, {"data", data}}}}})
                .has_value());
    t.app().executor()->poke();
    const auto done = flow.wait_instance(
        alice, id, [](const json::value& i) { return i.at("status") != "running"; }, 1);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("amount") == 7);
    const auto runs = t.app().executor()->runs("riveredge-flow-approvals-message-from-event");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].output.at("delivered") == json::array{id});
}

TEST_CASE("business rule tasks decide from versioned tables, and manual tasks are confirmed",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto gina = t.token("globex", "gina", {"admin"});
    const std::string decisions = "/api/v1/approvals/decisions";
    const auto table = [](const char* top) {
        return std::string(R"({"key":"approver","name":"Who approves","source":{)"
                           R"("hit_policy":"first","inputs":[{"name":"amount"}],)"
                           R"("outputs":["approver"],"rules":[)"
                           R"({"when":["value >= 1000"],"then":{"approver":")") +
               top + R"("}},{"when":["-"],"then":{"approver":"bob"}}]}})";
    };
    // Saving: administrators only; a bad table is refused naming the problem.
    CHECK(t.call("POST", decisions, bob, table("carol")).status == 403);
    const auto bad = t.call("POST", decisions, alice,
                            R"({"key":"approver","source":{"hit_policy":"first","inputs":)"
                            R"([{"name":"amount"}],"outputs":["approver"],"rules":[{"when":)"
                            R"(["-","-"],"then":{"approver":"x"}}]}})");
    CHECK(bad.status == 422);
    CHECK(json::serialize(bad.body).find("rules[0].when") != std::string::npos);
    const auto v1 = t.call("POST", decisions, alice, table("carol"));
    REQUIRE(v1.status == 201);
    CHECK(v1.body.at("version") == 1);
    const auto v2 = t.call("POST", decisions, alice, table("dave"));
    REQUIRE(v2.status == 201);
    CHECK(v2.body.at("version") == 2);
    CHECK(t.call("GET", decisions + "/approver", bob).body.at("version") == 2);
    CHECK(t.call("GET", decisions + "/approver?version=1", bob).body.at("version") == 1);
    CHECK(t.call("GET", decisions + "/approver", gina).status == 404);  // tenants do not share
    const auto tried =
        t.call("POST", decisions + "/approver/evaluate", bob, R"({"variables":{"amount":5000}})");
    REQUIRE(tried.status == 200);
    CHECK(tried.body.at("result").at("approver") == "dave");

    // A process: the table (pinned to version 1) names the approver, who confirms a manual
    // task whose assignee comes from the decision.
    const auto definition = flow.publish(
        alice, R"({"key":"purchase","nodes":[{"id":"start","type":"startEvent"},)"
               R"({"id":"decide","type":"businessRuleTask","data":{"bpmn":{"decision":"approver",)"
               R"("version":1}}},)"
               R"({"id":"hand_over","type":"manualTask","data":{"bpmn":{"approvers":[{"type":)"
               R"("user","value":"${approver}"}]}}},{"id":"end","type":"endEvent"}],"edges":[)"
               R"({"id":"1","source":"start","target":"decide"},)"
               R"({"id":"2","source":"decide","target":"hand_over"},)"
               R"({"id":"3","source":"hand_over","target":"end"}]})");
    const auto small = flow.start(alice, definition, R"({"amount":50})");
    const auto seen = flow.wait_pending(alice, small, "hand_over");
    REQUIRE(seen.is_object());
    CHECK(seen.at("variables").at("approver") == "bob");
    const auto task = flow.pending_task(seen, "hand_over", "bob");
    REQUIRE(task != 0);
    // A manual task is confirmed, not rejected.
    const auto refused = flow.act(bob, task, "reject", R"({"comment":"no"})");
    CHECK(refused.status == 422);
    REQUIRE(flow.act(bob, task, "approve").status == 200);
    CHECK(flow.wait_done(alice, small).at("status") == "completed");
    const auto large = flow.start(alice, definition, R"({"amount":5000})");
    const auto pinned = flow.wait_pending(alice, large, "hand_over");
    REQUIRE(pinned.is_object());
    CHECK(pinned.at("variables").at("approver") == "carol");  // version 1, not the latest

    // A missing table fails the task: the instance is failed and held for a retry.
    const auto missing = flow.publish(
        alice, R"({"key":"missing","nodes":[{"id":"start","type":"startEvent"},)"
               R"({"id":"decide","type":"businessRuleTask","data":{"bpmn":{"decision":"nope"}}},)"
               R"({"id":"end","type":"endEvent"}],"edges":[)"
               R"({"id":"1","source":"start","target":"decide"},)"
               R"({"id":"2","source":"decide","target":"end"}]})");
    const auto failing = flow.start(alice, missing);
    const auto failed = flow.wait_instance(
        alice, failing, [](const json::value& i) { return i.at("status") == "failed"; });
    REQUIRE(failed.is_object());
    CHECK(std::string(failed.at("status_reason").as_string()).find("'nope' does not exist") !=
          std::string::npos);
}

TEST_CASE("call activities start a child instance, map its variables, and end with it",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    flow.publish(
        alice,
        linear(
            "child_review",
            {user_task(
                "check",
                R"({"approvers":[{"type":"user","value":"bob"}],"editable_fields":["verdict"]})")}));
    const auto parent =
        flow.publish(alice, R"({"key":"parent","nodes":[{"id":"start","type":"startEvent"},)"
                            R"({"id":"sub","type":"callActivity","data":{"bpmn":{"called_element":)"
                            R"("child_review","input_mapping":{"amount":"${amount}"},)"
                            R"("output_mapping":{"child_says":"${verdict}"}}}},)"
                            R"({"id":"end","type":"endEvent"}],"edges":[)"
                            R"({"id":"1","source":"start","target":"sub"},)"
                            R"({"id":"2","source":"sub","target":"end"}]})");
    const auto children = [&](std::int64_t id) {
        std::vector<std::int64_t> out;
        for (const auto& e :
             listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events", alice,
                    "events")) {
            if (e.at("name") == "child_started") {
                out.push_back(e.at("data").at("child_id").as_int64());
            }
        }
        return out;
    };
    const auto wait_child = [&](std::int64_t id, std::size_t count) {
        for (int i = 0; i < 200 && children(id).size() < count; ++i) {
            std::this_thread::sleep_for(25ms);
        }
        const auto found = children(id);
        REQUIRE(found.size() == count);
        return found.back();
    };

    // The child runs with the mapped input; its result comes back through the output mapping.
    const auto id = flow.start(alice, parent, R"({"amount":300})");
    const auto child = wait_child(id, 1);
    const auto at_check = flow.wait_pending(alice, child, "check");
    REQUIRE(at_check.is_object());
    CHECK(at_check.at("variables").at("amount") == 300);
    CHECK(at_check.at("parent_id") == id);
    REQUIRE(flow.act(bob, flow.pending_task(at_check, "check"), "approve",
                     R"({"variables":{"verdict":"ok"}})")
                .status == 200);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("child_says") == "ok");

    // A child that is rejected fails the call activity: the parent is held for a retry, which
    // starts a fresh child.
    const auto second = flow.start(alice, parent, R"({"amount":5})");
    const auto rejected_child = wait_child(second, 1);
    const auto rejecting = flow.wait_pending(alice, rejected_child, "check");
    REQUIRE(flow.act(bob, flow.pending_task(rejecting, "check"), "reject", R"({"comment":"no"})")
                .status == 200);
    const auto failed = flow.wait_instance(
        alice, second, [](const json::value& i) { return i.at("status") == "failed"; });
    REQUIRE(failed.is_object());
    CHECK(std::string(failed.at("status_reason").as_string()).find("ended rejected") !=
          std::string::npos);
    const std::string second_path = "/api/v1/approvals/instances/" + std::to_string(second);
    // The instance turns failed a moment before its run stores the token at the call activity;
    // once the executor has nothing left to do, the token is held and the retry can take it.
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(t.call("POST", second_path + "/retry", alice, R"({"reason":"try again"})").status ==
            200);
    const auto fresh = wait_child(second, 2);
    CHECK(fresh != rejected_child);

    // Ending the parent ends its child: the child's task leaves bob's box.
    REQUIRE(flow.wait_pending(alice, fresh, "check").is_object());
    CHECK(todo_nodes(t, bob) == std::vector<std::string>{"check"});
    REQUIRE(
        t.call("POST", second_path + "/terminate", alice, R"({"reason":"not needed"})").status ==
        200);
    const auto ended = t.call("GET", "/api/v1/approvals/instances/" + std::to_string(fresh), alice);
    CHECK(ended.body.at("status") == "cancelled");
    CHECK(ended.body.at("status_reason") == "the calling instance ended");
    CHECK(todo_nodes(t, bob).empty());
}

TEST_CASE("a park attempt that failed an instance at a call activity and died leaves it retryable",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    flow.publish(alice, linear("checked", {user_task("check", R"({"approvers":[{"type":"user",)"
                                                              R"("value":"bob"}]})")}));
    const auto parent =
        flow.publish(alice, R"({"key":"caller","nodes":[{"id":"start","type":"startEvent"},)"
                            R"({"id":"sub","type":"callActivity","data":{"bpmn":{"called_element":)"
                            R"("checked"}}},{"id":"end","type":"endEvent"}],"edges":[)"
                            R"({"id":"1","source":"start","target":"sub"},)"
                            R"({"id":"2","source":"sub","target":"end"}]})");
    const auto children = [&](std::int64_t id) {
        std::vector<std::int64_t> out;
        for (const auto& e :
             listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events", alice,
                    "events")) {
            if (e.at("name") == "child_started") {
                out.push_back(e.at("data").at("child_id").as_int64());
            }
        }
        return out;
    };
    const auto id = flow.start(alice, parent);
    for (int i = 0; i < 200 && children(id).empty(); ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(children(id).size() == 1);
    const auto child = children(id).front();
    const auto seen = flow.wait_pending(alice, child, "check");
    REQUIRE(seen.is_object());
    // The park that sees the rejected child fails the instance, then dies storing the token
    // held at the call activity; its retry stores the snapshot it was given (the token waiting
    // for the child) and finds the instance held.
    fail_first_update(t, "held_store_fails", "approval_instances",
                      R"(NEW.engine_state -> 'waiting' @> '[{"kind":"failed"}]' AND NOT )"
                      R"(coalesce(OLD.engine_state -> 'waiting' @> '[{"kind":"failed"}]', false))");
    REQUIRE(flow.act(bob, flow.pending_task(seen, "check"), "reject").status == 200);
    const std::string path = "/api/v1/approvals/instances/" + std::to_string(id);
    REQUIRE(flow.wait_instance(alice, id,
                               [](const json::value& i) { return i.at("status") == "failed"; })
                .is_object());
    REQUIRE(t.app().wait_settled(20s));
    CHECK(updates_met(t, "held_store_fails") == 1);
    clock->advance(std::chrono::minutes(2));  // the step's retry
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));
    // The token is held at the call activity again: the administrator's retry is taken and
    // starts a fresh child.
    REQUIRE(t.call("POST", path + "/retry", alice, R"({"reason":"try again"})").status == 200);
    for (int i = 0; i < 200 && children(id).size() < 2; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    CHECK(children(id).size() == 2);
}

TEST_CASE("a finish retried after its first attempt ended the instance still wakes its relatives",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    flow.publish(alice, linear("woken_child", {user_task("check", R"({"approvers":[{"type":)"
                                                                  R"("user","value":"bob"}]})")}));
    const auto children = [&](std::int64_t id) {
        std::vector<std::int64_t> out;
        for (int i = 0; i < 200 && out.empty(); ++i) {
            for (const auto& e :
                 listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events", alice,
                        "events")) {
                if (e.at("name") == "child_started") {
                    out.push_back(e.at("data").at("child_id").as_int64());
                }
            }
            std::this_thread::sleep_for(25ms);
        }
        return out;
    };
    // Each case's step dies once sending its first wake, after its transaction ended the
    // instance; the retry (two virtual minutes on) ends nothing again and must still wake.
    const auto retry_step = [&](const std::string& failing) {
        for (int i = 0; i < 200 && updates_met(t, failing) == 0; ++i) {
            std::this_thread::sleep_for(25ms);
        }
        REQUIRE(t.app().wait_settled(20s));
        REQUIRE(updates_met(t, failing) == 1);
        clock->advance(std::chrono::minutes(2));
        t.app().executor()->poke();
    };

    // A child that completes wakes its parent, which goes on now rather than at its re-check.
    const auto parent =
        flow.publish(alice, R"({"key":"woken_parent","nodes":[{"id":"start","type":"startEvent"},)"
                            R"({"id":"sub","type":"callActivity","data":{"bpmn":{"called_element":)"
                            R"("woken_child"}}},{"id":"end","type":"endEvent"}],"edges":[)"
                            R"({"id":"1","source":"start","target":"sub"},)"
                            R"({"id":"2","source":"sub","target":"end"}]})");
    const auto id = flow.start(alice, parent);
    const auto found = children(id);
    REQUIRE(found.size() == 1);
    const auto child = found.front();
    const auto seen = flow.wait_pending(alice, child, "check");
    REQUIRE(seen.is_object());
    REQUIRE(t.app().wait_settled(10s));  // the parent waits for its child
    fail_first_insert(
        t, "parent_wake_fails", "approval_events",
        "NEW.name = 'approvals/instance.wake' AND NEW.data ->> 'why' = 'child ended'");
    REQUIRE(flow.act(bob, flow.pending_task(seen, "check"), "approve").status == 200);
    retry_step("parent_wake_fails");
    const auto done = flow.wait_instance(
        alice, id, [](const json::value& i) { return i.at("status") != "running"; }, 1);
    CHECK((done.is_object() && done.at("status") == "completed"));

    // A parent that ends cancels its child and wakes it: the child's run stops now.
    const auto racing = flow.publish(
        alice, R"({"key":"racing_parent","nodes":[{"id":"start","type":"startEvent"},)"
               R"({"id":"fork","type":"parallelGateway"},)"
               R"({"id":"sub","type":"callActivity","data":{"bpmn":{"called_element":)"
               R"("woken_child"}}},)" +
                   user_task("decide", R"({"approvers":[{"type":"user","value":"bob"}]})") +
                   R"(,{"id":"join","type":"parallelGateway"},{"id":"end","type":"endEvent"}],)"
                   R"("edges":[{"id":"1","source":"start","target":"fork"},)"
                   R"({"id":"2","source":"fork","target":"sub"},)"
                   R"({"id":"3","source":"fork","target":"decide"},)"
                   R"({"id":"4","source":"sub","target":"join"},)"
                   R"({"id":"5","source":"decide","target":"join"},)"
                   R"({"id":"6","source":"join","target":"end"}]})");
    const auto second = flow.start(alice, racing);
    const auto second_children = children(second);
    REQUIRE(second_children.size() == 1);
    const auto cancelled = second_children.front();
    REQUIRE(flow.wait_pending(alice, cancelled, "check").is_object());
    const auto deciding = flow.wait_pending(alice, second, "decide");
    REQUIRE(deciding.is_object());
    REQUIRE(t.app().wait_settled(10s));  // the child waits for its task
    fail_first_insert(
        t, "child_wake_fails", "approval_events",
        "NEW.name = 'approvals/instance.wake' AND NEW.data ->> 'why' = 'parent ended'");
    REQUIRE(flow.act(bob, flow.pending_task(deciding, "decide"), "reject").status == 200);
    retry_step("child_wake_fails");
    CHECK(flow.wait_done(alice, second).at("status") == "rejected");
    const auto child_run_running = [&] {
        for (const auto& run : t.app().executor()->runs("riveredge-flow-approvals-instance")) {
            if (run.event.at("data").at("instance_id").to_number<std::int64_t>() == cancelled) {
                return run.status == inngest::local::RunStatus::kRunning;
            }
        }
        return false;
    };
    bool running = true;
    for (int i = 0; i < 200 && running; ++i) {
        running = child_run_running();
        std::this_thread::sleep_for(25ms);
    }
    CHECK_FALSE(running);
    CHECK(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(cancelled), alice)
              .body.at("status") == "cancelled");
}

TEST_CASE("a step that failed an instance and runs again tells the initiator once",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    // How many "is failed" notices alice got for `id`, once the executor has nothing left to do.
    const auto failed_notices = [&](std::int64_t id) {
        REQUIRE(t.app().wait_settled(20s));
        const std::string subject = "Your approval request #" + std::to_string(id) + " is failed";
        int n = 0;
        for (const auto& item : listed(t, "/api/v1/messages/inbox", alice, "items")) {
            n += item.at("subject") == json::value(subject) ? 1 : 0;
        }
        return n;
    };
    // The attempt that marks the instance failed dies before its notice is stored (here the
    // notice's insert fails and the attempt goes on: the state a crash right after the mark
    // leaves); the step then runs again.
    const auto lose_notice = [&](const std::string& name) {
        fail_first_insert(t, name, "messages", "NEW.idempotency_key LIKE 'approval-failed-%'");
    };

    // A service task's visit: Inngest calls again with the steps before it memoized, as when the
    // step's answer was lost.
    lose_notice("visit_notice_fails");
    const auto id = flow.start(
        alice, flow.publish(alice, linear("failing", {R"({"id":"charge","type":"serviceTask",)"
                                                      R"("data":{"bpmn":{"implementation":)"
                                                      R"("temporal_activity","activity_name":)"
                                                      R"("Unbound"}}})"})));
    REQUIRE(flow.wait_instance(alice, id,
                               [](const json::value& i) { return i.at("status") == "failed"; })
                .is_object());
    REQUIRE(failed_notices(id) == 0);
    REQUIRE(updates_met(t, "visit_notice_fails") == 1);
    const auto call = t.call_again_at("riveredge-flow-approvals-instance", "visit:charge#1");
    const auto failing_step = inngest_test::step_hash("visit:charge#1");
    const auto [status, reply] = t.replay(call);
    REQUIRE(status == 206);
    CHECK(reply.as_array().at(0).at("id") == json::value(failing_step));
    CHECK(failed_notices(id) == 1);
    REQUIRE(t.replay(call).first == 206);  // and again: the notice is keyed
    CHECK(failed_notices(id) == 1);

    // A park that fails the instance at a call activity whose child was rejected, and dies
    // storing the token held there; its retry holds it again and tells.
    flow.publish(alice, linear("rejecting", {user_task("check", R"({"approvers":[{"type":"user",)"
                                                                R"("value":"bob"}]})")}));
    const auto caller =
        flow.start(alice, flow.publish(alice, R"({"key":"calling","nodes":[{"id":"start",)"
                                              R"("type":"startEvent"},{"id":"sub","type":)"
                                              R"("callActivity","data":{"bpmn":{)"
                                              R"("called_element":"rejecting"}}},{"id":"end",)"
                                              R"("type":"endEvent"}],"edges":[{"id":"1",)"
                                              R"("source":"start","target":"sub"},{"id":"2",)"
                                              R"("source":"sub","target":"end"}]})"));
    const auto child = wait_children(t, alice, caller).front();
    const auto checking = flow.wait_pending(alice, child, "check");
    REQUIRE(checking.is_object());
    lose_notice("park_notice_fails");
    fail_first_update(t, "held_again_fails", "approval_instances",
                      R"(NEW.engine_state -> 'waiting' @> '[{"kind":"failed"}]' AND NOT )"
                      R"(coalesce(OLD.engine_state -> 'waiting' @> '[{"kind":"failed"}]', false))");
    REQUIRE(flow.act(bob, flow.pending_task(checking, "check"), "reject").status == 200);
    REQUIRE(flow.wait_instance(alice, caller,
                               [](const json::value& i) { return i.at("status") == "failed"; })
                .is_object());
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "park_notice_fails") == 1);
    REQUIRE(updates_met(t, "held_again_fails") == 1);
    CHECK(failed_notices(caller) == 0);
    clock->advance(std::chrono::minutes(2));  // the park step's retry
    t.app().executor()->poke();
    CHECK(failed_notices(caller) == 1);
}

TEST_CASE("a visit that ended its instance failed and runs again ends the run the same way",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    // The attempt that ended the instance dies before its notice is stored (the notice's insert
    // fails and the attempt goes on: the state a crash right after the finish leaves).
    fail_first_insert(t, "finished_notice_fails", "messages",
                      "NEW.idempotency_key LIKE 'approval-finished-%'");
    const auto id = flow.start(
        alice, flow.publish(alice, linear("nobody", {user_task("check", R"({"approvers":[{"type":)"
                                                                        R"("form_field","value":)"
                                                                        R"("missing"}]})")})));
    REQUIRE(flow.wait_done(alice, id).at("status") == "failed");
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "finished_notice_fails") == 1);
    const auto notices = [&] {
        REQUIRE(t.app().wait_settled(20s));
        const std::string subject = "Your approval request #" + std::to_string(id) + " is failed";
        int n = 0;
        for (const auto& item : listed(t, "/api/v1/messages/inbox", alice, "items")) {
            n += item.at("subject") == json::value(subject) ? 1 : 0;
        }
        return n;
    };
    REQUIRE(notices() == 0);
    // Inngest calls again with the steps before the visit memoized (its answer was lost).
    auto call = t.call_again_at("riveredge-flow-approvals-instance", "visit:check#1");
    const auto failing_step = inngest_test::step_hash("visit:check#1");
    const auto [status, reply] = t.replay(call);
    REQUIRE(status == 206);
    const auto& op = reply.as_array().at(0);
    REQUIRE(op.at("id") == json::value(failing_step));
    INFO(json::serialize(op.at("data")));
    CHECK(op.at("data") == json::value(json::object{{"end", "failed"}}));
    CHECK(notices() == 1);
    // The run goes on from that answer: it ends, and stores no token held for a retry.
    call.steps[failing_step] = json::object{{"data", op.at("data")}};
    call.stack.push_back(failing_step);
    t.replay(call);
    const std::string path = "/api/v1/approvals/instances/" + std::to_string(id);
    CHECK(t.call("POST", path + "/retry", alice, R"({"reason":"try again"})").status == 409);
    CHECK(t.call("GET", path, alice).body.at("status") == "failed");
    CHECK(notices() == 1);
}

TEST_CASE("a park that failed two call activities and runs again tells the initiator as it did",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    flow.publish(alice, linear("refused", {user_task("check", R"({"approvers":[{"type":"user",)"
                                                              R"("value":"bob"}]})")}));
    const auto id = flow.start(
        alice, flow.publish(alice, R"({"key":"twice_calling","nodes":[{"id":"start",)"
                                   R"("type":"startEvent"},{"id":"fork","type":"parallelGateway"},)"
                                   R"({"id":"one","type":"callActivity","data":{"bpmn":{)"
                                   R"("called_element":"refused"}}},)"
                                   R"({"id":"two","type":"callActivity","data":{"bpmn":{)"
                                   R"("called_element":"refused"}}},)"
                                   R"({"id":"join","type":"parallelGateway"},)"
                                   R"({"id":"end","type":"endEvent"}],"edges":[)"
                                   R"({"id":"1","source":"start","target":"fork"},)"
                                   R"({"id":"2","source":"fork","target":"one"},)"
                                   R"({"id":"3","source":"fork","target":"two"},)"
                                   R"({"id":"4","source":"one","target":"join"},)"
                                   R"({"id":"5","source":"two","target":"join"},)"
                                   R"({"id":"6","source":"join","target":"end"}]})"));
    const auto children = wait_children(t, alice, id, 2);
    // Both children are rejected while the parent is suspended, so that one park sees both.
    const std::string path = "/api/v1/approvals/instances/" + std::to_string(id);
    REQUIRE(t.call("POST", path + "/suspend", alice, R"({"reason":"wait"})").status == 200);
    for (const auto child : children) {
        const auto seen = flow.wait_pending(alice, child, "check");
        REQUIRE(seen.is_object());
        REQUIRE(flow.act(bob, flow.pending_task(seen, "check"), "reject").status == 200);
        REQUIRE(flow.wait_done(alice, child).at("status") == "rejected");
    }
    REQUIRE(t.app().wait_settled(20s));
    // That park fails the instance at both (telling of the first, which failed it) and dies
    // storing the token held at the second; its retry holds both again.
    fail_first_update(t, "second_hold_fails", "approval_instances",
                      R"(NEW.engine_state -> 'waiting' @> '[{"kind":"failed"}]' AND )"
                      R"(coalesce(OLD.engine_state -> 'waiting' @> '[{"kind":"failed"}]', false) )"
                      R"(AND NEW.engine_state IS DISTINCT FROM OLD.engine_state)");
    REQUIRE(t.call("POST", path + "/resume", alice, R"({"reason":"go"})").status == 200);
    REQUIRE(flow.wait_instance(alice, id,
                               [](const json::value& i) { return i.at("status") == "failed"; })
                .is_object());
    const auto failed_notices = [&] {
        REQUIRE(t.app().wait_settled(20s));
        const std::string subject = "Your approval request #" + std::to_string(id) + " is failed";
        int n = 0;
        for (const auto& item : listed(t, "/api/v1/messages/inbox", alice, "items")) {
            n += item.at("subject") == json::value(subject) ? 1 : 0;
        }
        return n;
    };
    REQUIRE(failed_notices() == 1);
    REQUIRE(updates_met(t, "second_hold_fails") == 1);
    clock->advance(std::chrono::minutes(2));  // the park step's retry
    t.app().executor()->poke();
    CHECK(failed_notices() == 1);
    // Both are held for the administrator's retry.
    REQUIRE(t.call("POST", path + "/retry", alice, R"({"reason":"try again"})").status == 200);
}

TEST_CASE("an end event's copy whose step dies before its notice tells the copied on the retry",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto carol = t.token("acme", "carol");
    // The attempt copies carol, loses the notice (its insert fails and the attempt goes on: the
    // state a crash right after the copy leaves) and dies ending the instance.
    fail_first_insert(t, "cc_notice_fails", "messages", "NEW.idempotency_key LIKE 'approval-cc-%'");
    fail_first_update(t, "end_fails", "approval_instances",
                      "OLD.status = 'running' AND NEW.status = 'completed'");
    const auto id = flow.start(
        alice, flow.publish(alice, R"({"key":"copied_at_end","nodes":[{"id":"start",)"
                                   R"("type":"startEvent"},{"id":"end","type":"endEvent",)"
                                   R"("data":{"bpmn":{"cc":[{"type":"user","value":"carol"}]}}}],)"
                                   R"("edges":[{"id":"1","source":"start","target":"end"}]})"));
    for (int i = 0; i < 200 && updates_met(t, "end_fails") == 0; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "cc_notice_fails") == 1);
    REQUIRE(updates_met(t, "end_fails") == 1);
    clock->advance(std::chrono::minutes(2));  // the visit step's retry
    t.app().executor()->poke();
    REQUIRE(flow.wait_done(alice, id).at("status") == "completed");
    REQUIRE(t.app().wait_settled(20s));
    const std::string subject = "Copied: approval request #" + std::to_string(id);
    int copied = 0;
    for (const auto& item : listed(t, "/api/v1/messages/inbox", carol, "items")) {
        copied += item.at("subject") == json::value(subject) ? 1 : 0;
    }
    CHECK(copied == 1);
    const auto actions = flow.timeline_actions(alice, id);
    CHECK(std::count(actions.begin(), actions.end(), "copied") == 1);
}

TEST_CASE("listeners call activities when a node starts and ends and when a flow is taken",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    bind_script_activity(t, alice, "Audit", "audit",
                         R"([{"name":"event","type":"string"},{"name":"element","type":"string"},)"
                         R"({"name":"amount","type":"number"},{"name":"who","type":"string"}])");
    const std::string source =
        R"({"key":"listened","nodes":[{"id":"start","type":"startEvent"},)"
        R"({"id":"review","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user",)"
        R"("value":"bob"}],"listeners":[{"event":"start","activity":"Audit"},)"
        R"({"event":"end","activity":"Audit","input_mapping":{"amount":"${amount}"}},)"
        R"({"event":"start","activity":"Unbound"},)"
        R"({"event":"end","activity":"notify","input_mapping":{"recipients":["carol","carol"],)"
        R"("subject":"one","body":"first"}},)"
        R"({"event":"end","activity":"notify","input_mapping":{"recipients":["carol"],)"
        R"("subject":"two","body":"second"}}]}}},)"
        R"({"id":"end","type":"endEvent"}],"edges":[)"
        R"({"id":"in","source":"start","target":"review"},)"
        R"({"id":"out","source":"review","target":"end","data":{"listeners":)"
        R"([{"event":"take","activity":"Audit","input_mapping":{"who":"${initiator}"}}]}}]})";
    // Misused listeners are refused with the element named.
    const auto broken = t.call(
        "POST", "/api/v1/approvals/definitions/validate", alice,
        R"({"source":{"nodes":[{"id":"s","type":"startEvent","data":{"bpmn":{"listeners":)"
        R"([{"event":"take","activity":"Audit"}]}}},{"id":"e","type":"endEvent"}],)"
        R"("edges":[{"id":"x","source":"s","target":"e","data":{"listeners":[{"event":"take"}]}}]}})");
    REQUIRE(broken.status == 200);
    const auto problems = json::serialize(broken.body.at("problems"));
    CHECK(problems.find(R"("node":"s")") != std::string::npos);
    CHECK(problems.find("not 'take'") != std::string::npos);
    CHECK(problems.find(R"("edge":"x")") != std::string::npos);

    const auto id = flow.start(alice, flow.publish(alice, source), R"({"amount":12})");
    const auto seen = flow.wait_pending(alice, id, "review");
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(bob, flow.pending_task(seen, "review"), "approve").status == 200);
    REQUIRE(flow.wait_done(alice, id).at("status") == "completed");

    std::vector<std::string> calls;
    int failed = 0;
    int notified = 0;
    for (const auto& e : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events",
                                alice, "events")) {
        if (e.at("name") == "listener" &&
            e.at("data").at("result").as_object().contains("notified")) {
            ++notified;
        } else if (e.at("name") == "listener") {
            const auto& data = e.at("data");
            calls.push_back(std::string(data.at("event").as_string()) + ":" +
                            std::string(data.at("element").as_string()) + ":" +
                            json::serialize(data.at("result")));
        }
        failed += e.at("name") == "listener_failed" ? 1 : 0;
    }
    CAPTURE(calls);
    REQUIRE(calls.size() == 3);
    CHECK(calls[0] == R"(start:review:{"event":"start","element":"review"})");
    CHECK(calls[1] == R"(end:review:{"amount":12})");
    CHECK(calls[2] == R"(take:out:{"who":"alice"})");
    CHECK(failed == 1);  // the unbound one: logged, and the flow went on
    // Two listeners of one event are two calls: each notification reaches carol (once, though
    // the first names her twice).
    CHECK(notified == 2);
    CHECK(t.wait_unread(t.token("acme", "carol"), 2));
}

TEST_CASE("a service task's retries run its start listeners once", "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bind = [&](const std::string& activity, const std::string& code) {
        const auto created =
            t.call("POST", "/api/v1/scripts", alice,
                   json::serialize(json::object{
                       {"name", activity},
                       {"code", code},
                       {"parameters", json::parse(R"([{"name":"event","type":"string"},)"
                                                  R"({"name":"element","type":"string"}])")}}));
        REQUIRE(created.status == 201);
        const auto script = created.body.at("id").as_int64();
        REQUIRE(t.call("PUT", "/api/v1/approvals/activities/" + activity, alice,
                       R"({"kind":"script","script_id":)" + std::to_string(script) + "}")
                    .status == 200);
        return script;
    };
    const auto audit = bind("Audit", "function main(a) { return a; }");
    bind("Charge", "function main(a) { throw new Error('card declined'); }");
    const auto id = flow.start(
        alice,
        flow.publish(
            alice,
            R"({"key":"retried","nodes":[{"id":"start","type":"startEvent"},)"
            R"({"id":"charge","type":"serviceTask","data":{"bpmn":{"implementation":)"
            R"("temporal_activity","activity_name":"Charge",)"
            R"("retry_policy":{"max_attempts":3,"initial_interval":"PT1M"},)"
            R"("listeners":[{"event":"start","activity":"Audit"}]}}},)"
            R"({"id":"declined","type":"boundaryEvent","data":{"bpmn":{"attached_to":"charge",)"
            R"("event":"error"}}},)"
            R"({"id":"end","type":"endEvent"},{"id":"end2","type":"endEvent"}],"edges":[)"
            R"({"id":"1","source":"start","target":"charge"},)"
            R"({"id":"2","source":"charge","target":"end"},)"
            R"({"id":"3","source":"declined","target":"end2"}]})"));
    const auto done = flow.wait_instance(
        alice, id, [](const json::value& i) { return i.at("status") != "running"; }, 5);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    int failures = 0;
    for (const auto& e : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events",
                                alice, "events")) {
        failures += e.at("name") == "service_failed" ? 1 : 0;
    }
    CHECK(failures == 3);
    // Three attempts, one visit: the node started once.
    CHECK(listed(t, "/api/v1/scripts/" + std::to_string(audit) + "/runs", alice, "items").size() ==
          1);
}

TEST_CASE(
    "a service task's script run still carried out by an earlier attempt is waited for, "
    "not counted as a failed attempt that runs the script again",
    "[app][approvals]") {
    // The executor gave up on the task's step (its call timeout) while the script activity's run
    // went on; the step's retry meets that run, still leased by its carrier, and is answered
    // retry-after. Counted as a failed attempt, the task's next attempt would run the script
    // again under a key of its own while the first run still goes on (or the task fail).
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto created =
        t.call("POST", "/api/v1/scripts", alice,
               json::serialize(json::object{
                   {"name", "Charge"}, {"code", "function main() { return {charged: true}; }"}}));
    REQUIRE(created.status == 201);
    const auto script = created.body.at("id").as_int64();
    REQUIRE(t.call("PUT", "/api/v1/approvals/activities/Charge", alice,
                   R"({"kind":"script","script_id":)" + std::to_string(script) + "}")
                .status == 200);
    // The earlier attempt's run of instance 1's task, its carrier alive (a fresh lease).
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    const auto tenant = riveredge::core::TenantId::trusted("acme");
    const auto holder =
        riveredge::core::db::exec_once(
            owner, tenant,
            "INSERT INTO script_runs (tenant_id, script_id, version, mode, trigger, status, "
            "arguments, run_by, idempotency_key, started_at, lease_until) VALUES ($1, $2, 1, "
            "'sync', 'approval', 'running', '{}', 'approvals', 'approval-1-charge#1', now(), "
            "now() + interval '5 minutes') RETURNING id",
            {tenant, script})
            .integer(0, "id");
    const auto id = flow.start(
        alice,
        flow.publish(
            alice,
            linear("charged", {R"({"id":"charge","type":"serviceTask","data":{"bpmn":{)"
                               R"("implementation":"temporal_activity","activity_name":"Charge",)"
                               R"("result_variable":"charge",)"
                               R"("retry_policy":{"max_attempts":2,"initial_interval":"PT1M"}}}})",
                               user_task("confirm", R"({"approvers":[{"type":"user",)"
                                                    R"("value":"bob"}]})")})));
    REQUIRE(id == 1);
    const auto runs = [&] {
        return listed(t, "/api/v1/scripts/" + std::to_string(script) + "/runs", alice, "items")
            .size();
    };
    const auto failures = [&] {
        int n = 0;
        for (const auto& e :
             listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events", alice,
                    "events")) {
            n += e.at("name") == "service_failed" ? 1 : 0;
        }
        return n;
    };
    // The step waits for the run (20 s), then is answered retry-after: no attempt failed.
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(45s));
    CHECK(failures() == 0);
    CHECK(runs() == 1);
    // The earlier attempt's run ends; the step, retried after it, gets it by its key.
    REQUIRE(riveredge::core::db::exec_once(
                owner, tenant,
                "UPDATE script_runs SET status = 'succeeded', result = '{\"charged\":true}', "
                "console = '[]', console_truncated = false, duration_ms = 1, memory_bytes = 1, "
                "finished_at = now(), lease_until = NULL WHERE id = $1",
                {holder})
                .affected() == 1);
    const auto waiting = flow.wait_pending(alice, id, "confirm");
    REQUIRE(waiting.is_object());
    CHECK(waiting.at("variables").at("charge") == json::object{{"charged", true}});
    CHECK(failures() == 0);
    CHECK(runs() == 1);
}

TEST_CASE(
    "a service task's own retry attempts send Idempotency-Keys of their own; a step run "
    "again keeps its attempt's",
    "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    // Answers a key it has seen with its stored answer; fails the first call with a 500.
    ReplayingReceiver receiver(R"({"charged":true})");
    const auto received = [&] {
        return receiver.keys();
    };
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", alice, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    const auto id = flow.start(
        alice,
        flow.publish(alice, linear("charged",
                                   {R"({"id":"charge","type":"serviceTask","data":{"bpmn":{"url":)"
                                    R"("http://127.0.0.1:)" +
                                        std::to_string(receiver.port()) +
                                        R"(/charge","retry_policy":{"max_attempts":2,)"
                                        R"("initial_interval":"PT1M"}}}})",
                                    user_task("confirm", R"({"approvers":[{"type":"user",)"
                                                         R"("value":"bob"}]})")})));
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(received().size() == 1);  // attempt 1 got its 500; the run sleeps a minute
    clock->advance(std::chrono::minutes(2));
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));
    const auto tried = received();
    REQUIRE(tried.size() == 2);
    const std::string first = "approval-" + std::to_string(id) + "-charge#1";
    CHECK(tried[0] == first);
    CHECK(tried[1] == first + "/2");
    // Attempt 2 is a new call: the receiver did not answer it with attempt 1's stored 500.
    REQUIRE(flow.wait_pending(alice, id, "confirm").is_object());

    // Inngest calls again at each attempt's step, as when its answer was lost: the same call.
    for (const auto& [step, key] : {std::pair{std::string("visit:charge#1:2"), first + "/2"},
                                    std::pair{std::string("visit:charge#1"), first}}) {
        INFO(step);
        const auto [status, reply] =
            t.replay(t.call_again_at("riveredge-flow-approvals-instance", step));
        REQUIRE(status == 206);
        CHECK(reply.as_array().at(0).at("id") == json::value(inngest_test::step_hash(step)));
        const auto again = received();
        REQUIRE(!again.empty());
        CHECK(again.back() == key);
    }
    CHECK(receiver.keys().size() == 4);
    CHECK(receiver.answered() == 2);  // two calls, each sent again under its own key
}

TEST_CASE("a service task whose answer holds an escaped NUL is called once and its result stored",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    std::atomic<int> calls{0};
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes = [&](const inngest::HttpRequest&) -> std::optional<inngest::HttpResponse> {
        ++calls;
        return inngest::HttpResponse{200, {}, R"({"v":"a\u0000b"})"};
    };
    inngest::HttpServer receiver(options);
    receiver.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", alice, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    const auto id = flow.start(
        alice,
        flow.publish(alice,
                     linear("nul", {R"({"id":"ask","type":"serviceTask","data":{"bpmn":{"url":)"
                                    R"("http://127.0.0.1:)" +
                                        std::to_string(receiver.port()) +
                                        R"(/ask","result_variable":"reply"}}})",
                                    user_task("confirm", R"({"approvers":[{"type":"user",)"
                                                         R"("value":"bob"}]})")})));
    const auto waiting = flow.wait_pending(alice, id, "confirm");
    REQUIRE(waiting.is_object());
    CHECK(waiting.at("variables").at("reply").at("v") ==
          "a\xEF\xBF\xBD"
          "b");
    CHECK(calls.load() == 1);
}

TEST_CASE("a compensation throw event runs the completed tasks' handlers, newest first",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    bind_undo_activity(t, alice);
    const auto task = [](const std::string& id) {
        return R"({"id":")" + id +
               R"(","type":"serviceTask","data":{"bpmn":{"action":"set_variables",)"
               R"("input_mapping":{")" +
               id + R"(":true}}}})";
    };
    const auto handler = [](const std::string& id) {
        return R"({"id":")" + id +
               R"(","type":"serviceTask","data":{"bpmn":{"action":"Undo",)"
               R"("input_mapping":{"event":")" +
               id + R"("}}}})";
    };
    const auto boundary = [](const std::string& id, const std::string& host) {
        return R"({"id":")" + id + R"(","type":"boundaryEvent","data":{"bpmn":{"attached_to":")" +
               host + R"(","event":"compensation"}}})";
    };
    const std::string source =
        R"({"key":"trip","nodes":[{"id":"start","type":"startEvent"},)" + task("hotel") + "," +
        task("flight") + "," + boundary("undo_hotel", "hotel") + "," +
        boundary("undo_flight", "flight") + "," + handler("cancel_hotel") + "," +
        handler("cancel_flight") +
        R"(,{"id":"undo","type":"intermediateThrowEvent","data":{"bpmn":{"compensate":true}}},)"
        R"({"id":"end","type":"endEvent"}],"edges":[)"
        R"({"id":"1","source":"start","target":"hotel"},)"
        R"({"id":"2","source":"hotel","target":"flight"},)"
        R"({"id":"3","source":"flight","target":"undo"},)"
        R"({"id":"4","source":"undo","target":"end"},)"
        R"({"id":"5","source":"undo_hotel","target":"cancel_hotel"},)"
        R"({"id":"6","source":"undo_flight","target":"cancel_flight"}]})";
    // A handler with a flow of its own, or a compensation boundary on a gateway, is refused.
    const auto validate = [&](const std::string& body) {
        return json::serialize(t.call("POST", "/api/v1/approvals/definitions/validate", alice,
                                      R"({"source":)" + body + "}")
                                   .body.at("problems"));
    };
    auto with_flow = source;
    with_flow.insert(with_flow.size() - 2, R"(,{"id":"7","source":"cancel_hotel","target":"end"})");
    CHECK(validate(with_flow).find("a compensation handler has no outgoing flow") !=
          std::string::npos);
    CHECK(validate(source) == "[]");

    const auto id = flow.start(alice, flow.publish(alice, source));
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    std::vector<std::string> compensated;
    for (const auto& e : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events",
                                alice, "events")) {
        if (e.at("name") == "compensated") {
            compensated.push_back(std::string(e.at("data").at("handler").as_string()) + "=" +
                                  json::serialize(e.at("data").at("result")));
        }
    }
    CHECK(compensated == std::vector<std::string>{R"(cancel_flight={"event":"cancel_flight"})",
                                                  R"(cancel_hotel={"event":"cancel_hotel"})"});
}

TEST_CASE("signal and message boundary events interrupt a task or start a path beside it",
          "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto carol = t.token("acme", "carol");
    const auto for_user = [](const std::string& user) {
        return R"({"approvers":[{"type":"user","value":")" + user + R"("}]})";
    };
    // review (bob): a "ping" signal asks carol beside it; a "withdraw" message ends it.
    const auto definition = flow.publish(
        alice,
        R"({"key":"interruptible","nodes":[{"id":"start","type":"startEvent"},)" +
            user_task("review", for_user("bob")) + "," + user_task("pinged", for_user("carol")) +
            R"(,{"id":"ping","type":"boundaryEvent","data":{"bpmn":{"attached_to":"review",)"
            R"("signal":"ping","cancel_activity":false}}},)"
            R"({"id":"withdrawn","type":"boundaryEvent","data":{"bpmn":{"attached_to":"review",)"
            R"("message":"withdraw"}}},)"
            R"({"id":"end","type":"endEvent"},{"id":"end2","type":"endEvent"},)"
            R"({"id":"end3","type":"endEvent"}],"edges":[)"
            R"({"id":"1","source":"start","target":"review"},)"
            R"({"id":"2","source":"review","target":"end"},)"
            R"({"id":"3","source":"ping","target":"pinged"},)"
            R"({"id":"4","source":"pinged","target":"end2"},)"
            R"({"id":"5","source":"withdrawn","target":"end3"}]})");
    const auto r =
        t.call("POST", "/api/v1/approvals/instances", alice,
               R"({"definition_id":)" + std::to_string(definition) + R"(,"business_key":"B-1"})");
    REQUIRE(r.status == 201);
    const auto id = r.body.at("id").as_int64();
    const std::string instance = "/api/v1/approvals/instances/" + std::to_string(id);
    REQUIRE(flow.wait_pending(alice, id, "review").is_object());
    REQUIRE(t.call("POST", instance + "/signals", alice, R"({"name":"ping"})").status == 202);
    const auto pinged = flow.wait_pending(alice, id, "pinged");
    REQUIRE(pinged.is_object());
    CHECK(todo_nodes(t, bob) == std::vector<std::string>{"review"});  // still bob's
    CHECK(todo_nodes(t, carol) == std::vector<std::string>{"pinged"});
    REQUIRE(flow.act(carol, flow.pending_task(pinged, "pinged"), "approve").status == 200);
    // The message takes the review from bob and ends the instance through its own path.
    REQUIRE(t.call("POST", "/api/v1/approvals/messages", alice,
                   R"({"name":"withdraw","business_key":"B-1"})")
                .status == 202);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(todo_nodes(t, bob).empty());
    std::map<std::string, std::string> status;
    for (const auto& n : listed(t, instance + "/diagram", alice, "nodes")) {
        status[std::string(n.at("id").as_string())] = std::string(n.at("status").as_string());
    }
    CHECK(status["review"] == "cancelled");
    CHECK(status["withdrawn"] == "completed");
    CHECK(status["end"] == "pending");
}

TEST_CASE("the planning documents' registration process runs end to end", "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto admin = t.token("acme", "root", {"admin"});
    const auto alice = t.token("acme", "alice", {"admin"});
    // The seed's activities, bound to scripts in the sandbox.
    const auto script = [&](const std::string& name, const std::string& code,
                            const std::string& parameters) {
        json::object body{{"name", name}, {"code", code}};
        body["parameters"] = json::parse(parameters);
        const auto created = t.call("POST", "/api/v1/scripts", admin, json::serialize(body));
        REQUIRE(created.status == 201);
        const auto bound = t.call("PUT", "/api/v1/approvals/activities/" + name, admin,
                                  R"({"kind":"script","script_id":)" +
                                      std::to_string(created.body.at("id").as_int64()) + "}");
        REQUIRE(bound.status == 200);
    };
    script(
        "SendEmailActivity",
        "function main(a) { return { code: 'C-' + a.user_id, success: a.email.indexOf('@') > 0 }; "
        "}",
        R"([{"name":"email","type":"string"},{"name":"template","type":"string"},{"name":"user_id","type":"string"}])");
    script(
        "CompleteRegistrationActivity",
        "function main(a) { return { id: 'REG-' + a.user_id + '-' + a.username, success: true }; }",
        R"([{"name":"user_id","type":"string"},{"name":"email","type":"string"},{"name":"username","type":"string"}])");
    script("RejectRegistrationActivity", "function main(a) { return { rejected: a.user_id }; }",
           R"([{"name":"user_id","type":"string"},{"name":"reason","type":"string"}])");
    CHECK(t.call("PUT", "/api/v1/approvals/activities/X", t.token("acme", "bob"),
                 R"({"kind":"script","script_id":1})")
              .status == 403);

    const auto definition = flow.publish(alice, fixture("seed_user_registration.json"));
    const auto id = flow.start(alice, definition,
                               R"({"user_id":"u1","email":"new@example.com","username":"newbie"})");
    // The initiator validates the data (assignee ${initiator}).
    auto seen = flow.wait_pending(alice, id, "validate_user_task");
    REQUIRE(seen.is_object());
    REQUIRE(flow.act(alice, flow.pending_task(seen, "validate_user_task", "alice"), "approve",
                     R"({"variables":{"userValid":true}})")
                .status == 200);
    seen = flow.wait_instance(alice, id, [](const json::value& i) {
        return i.at("current_nodes") == json::array{"wait_verification_event"};
    });
    REQUIRE(seen.is_object());
    CHECK(seen.at("variables").at("verification_code") == "C-u1");
    CHECK(seen.at("variables").at("email_sent") == true);
    REQUIRE(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(id) + "/signals", alice,
                   R"({"name":"email_verified"})")
                .status == 202);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("registration_id") == "REG-u1-newbie");

    // Invalid data takes the reject path; an unverified e-mail times out and cancels.
    const auto invalid =
        flow.start(alice, definition, R"({"user_id":"u2","email":"x@example.com","username":"x"})");
    seen = flow.wait_pending(alice, invalid, "validate_user_task");
    REQUIRE(flow.act(alice, flow.pending_task(seen, "validate_user_task"), "approve",
                     R"({"variables":{"userValid":false}})")
                .status == 200);
    CHECK(flow.wait_done(alice, invalid).at("status") == "completed");
    CHECK(contains(flow.timeline_actions(alice, invalid), "completed"));
    auto status = statuses(t, alice, invalid);
    CHECK(status["reject_registration_task"] == "completed");
    CHECK(status["send_email_task"] == "pending");

    const auto unverified =
        flow.start(alice, definition, R"({"user_id":"u3","email":"y@example.com","username":"y"})");
    seen = flow.wait_pending(alice, unverified, "validate_user_task");
    REQUIRE(flow.act(alice, flow.pending_task(seen, "validate_user_task"), "approve",
                     R"({"variables":{"userValid":true}})")
                .status == 200);
    REQUIRE(flow.wait_instance(alice, unverified,
                               [](const json::value& i) {
                                   return i.at("current_nodes") ==
                                          json::array{"wait_verification_event"};
                               })
                .is_object());
    clock->advance(std::chrono::hours(3));
    t.app().executor()->poke();
    CHECK(flow.wait_done(alice, unverified).at("status") == "cancelled");
}

TEST_CASE("a restart mid-instance continues where it was", "[app][approvals]") {
    auto clock = fresh_clock();
    std::string database;
    std::int64_t id = 0;
    std::int64_t definition = 0;
    {
        AppUnderTest first(AppUnderTestOptions{.clock = clock});
        database = first.settings().database_url;
        Flow flow{first, *clock};
        const auto alice = first.token("acme", "alice", {"admin"});
        definition = flow.publish(
            alice,
            linear("two", {user_task("one", R"({"approvers":[{"type":"user","value":"bob"}]})"),
                           user_task("two", R"({"approvers":[{"type":"user","value":"erin"}]})")}));
        id = flow.start(alice, definition);
        auto seen = flow.wait_pending(alice, id, "one");
        REQUIRE(flow.act(first.token("acme", "bob"), flow.pending_task(seen, "one"), "approve")
                    .status == 200);
        REQUIRE(flow.wait_pending(alice, id, "two").is_object());
        // Parked on its wait (a decision before the wait exists is noticed at the next
        // re-check only, which this test's clock never reaches).
        REQUIRE(first.app().wait_settled(10s));
    }  // the process is gone; its embedded executor's run is stored in the database
    AppUnderTest second(AppUnderTestOptions{.clock = clock, .database_url = database});
    REQUIRE(second.app().wait_settled(10s));
    const auto resumed = second.app().executor()->runs("riveredge-flow-approvals-instance");
    REQUIRE(resumed.size() == 1);
    CHECK(resumed[0].waiting_for == std::vector<std::string>{"approvals/instance.wake"});
    Flow flow{second, *clock};
    const auto alice = second.token("acme", "alice", {"admin"});
    const auto seen = flow.wait_pending(alice, id, "two");
    REQUIRE(seen.is_object());
    REQUIRE(
        flow.act(second.token("acme", "erin"), flow.pending_task(seen, "two"), "approve").status ==
        200);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    // The stored run itself went on (no hand-over to a new run was needed) and ended once.
    CHECK(done.at("generation") == 0);
    const auto runs = second.app().executor()->runs("riveredge-flow-approvals-instance");
    REQUIRE(runs.size() == 1);
    const auto ended = second.app().executor()->wait_for_run(runs[0].run_id, 10s);
    REQUIRE(ended.has_value());
    CHECK(ended->status == inngest::local::RunStatus::kCompleted);
    CHECK(flow.timeline_actions(alice, id) == std::vector<std::string>{"started", "task_created",
                                                                       "approved", "task_created",
                                                                       "approved", "completed"});
}

TEST_CASE("a long instance hands over to fresh runs before the step budget", "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock, .approvals_step_budget = 20});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    std::string approvers;
    for (int i = 0; i < 12; ++i) {
        approvers += std::string(i ? "," : "") + R"({"type":"user","value":"u)" +
                     std::to_string(i) + R"("})";
    }
    const auto definition = flow.publish(
        alice, linear("long", {user_task("chain", R"({"mode":"sequential","approvers":[)" +
                                                      approvers + "]}")}));
    const auto id = flow.start(alice, definition);
    for (int i = 0; i < 12; ++i) {
        const std::string user = "u" + std::to_string(i);
        const auto seen = flow.wait_instance(alice, id, [&](const json::value& inst) {
            return flow.pending_task(inst, "chain", user) != 0;
        });
        REQUIRE(seen.is_object());
        // The run is parked on its wake before each decision, so it sees every one (a wake that
        // lands while the run is between waits is noticed at the next re-check instead).
        REQUIRE(t.app().wait_settled(10s));
        REQUIRE(flow.act(t.token("acme", user), flow.pending_task(seen, "chain", user), "approve")
                    .status == 200);
    }
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("generation").as_int64() >= 1);
    std::set<std::string> names;
    for (const auto& e : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events",
                                alice, "events")) {
        names.insert(std::string(e.at("name").as_string()));
    }
    CHECK(names.count("approvals/instance.continued") == 1);

    // Deleting archives: no new instances, the finished one and its version stay readable.
    const auto path = "/api/v1/approvals/definitions/" + std::to_string(definition);
    const auto archived = t.call("DELETE", path, alice);
    REQUIRE(archived.status == 200);
    CHECK_FALSE(archived.body.at("archived_at").is_null());
    CHECK(t.call("DELETE", "/api/v1/approvals/definitions/999999", alice).status == 404);
    CHECK(listed(t, "/api/v1/approvals/definitions", alice, "items").empty());
    CHECK(t.call("POST", "/api/v1/approvals/instances", alice,
                 R"({"definition_id":)" + std::to_string(definition) + "}")
              .status == 409);
    CHECK(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id) + "/diagram", alice)
              .status == 200);
}

TEST_CASE("200 concurrent instances complete with no task lost or duplicated", "[app][approvals]") {
    auto clock = fresh_clock();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto definition = flow.publish(
        alice,
        linear("bulk", {user_task("step", R"({"approvers":[{"type":"user","value":"bob"}]})")}));
    constexpr int kInstances = 200;
    std::vector<std::int64_t> ids(kInstances);
    std::atomic<int> failures{0};
    const auto in_parallel = [&](const std::function<void(int)>& work) {
        std::vector<std::thread> threads;
        for (int w = 0; w < 4; ++w) {
            threads.emplace_back([&, w] {
                for (int i = w; i < kInstances; i += 4) {
                    work(i);
                }
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
    };
    in_parallel([&](int i) {
        const auto r = t.call("POST", "/api/v1/approvals/instances", alice,
                              R"({"definition_id":)" + std::to_string(definition) +
                                  R"(,"business_key":"bulk-)" + std::to_string(i) + R"("})");
        if (r.status != 201) {
            ++failures;
            return;
        }
        ids[static_cast<std::size_t>(i)] = r.body.at("id").as_int64();
    });
    REQUIRE(failures == 0);
    // Every instance reaches bob exactly once.
    std::vector<std::int64_t> todo;
    for (int round = 0; round < 400 && todo.size() < kInstances; ++round) {
        todo.clear();
        for (const auto& task : listed(t, "/api/v1/approvals/tasks?page_size=500", bob, "items")) {
            todo.push_back(task.at("id").as_int64());
        }
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(todo.size() == kInstances);
    in_parallel([&](int i) {
        if (flow.act(bob, todo[static_cast<std::size_t>(i)], "approve").status != 200) {
            ++failures;
        }
    });
    CHECK(failures == 0);
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    const auto count = [&](const std::string& sql) {
        riveredge::core::db::Transaction tx(pool, riveredge::core::TenantId::trusted("acme"));
        const auto rows = tx.exec(sql);
        tx.commit();
        return rows.integer(0, "n");
    };
    for (int round = 0; round < 600; ++round) {
        if (count("SELECT count(*) AS n FROM approval_instances WHERE status = 'completed'") ==
            kInstances) {
            break;
        }
        if (round % 100 == 99) {
            clock->advance(std::chrono::minutes(16));
            t.app().executor()->poke();
        }
        std::this_thread::sleep_for(50ms);
    }
    CHECK(count("SELECT count(*) AS n FROM approval_instances WHERE status = 'completed'") ==
          kInstances);
    CHECK(count("SELECT count(*) AS n FROM approval_tasks") == kInstances);
    CHECK(count("SELECT count(*) AS n FROM approval_tasks WHERE status = 'approved'") ==
          kInstances);
    CHECK(count("SELECT count(DISTINCT instance_id) AS n FROM approval_tasks") == kInstances);
    CHECK(count("SELECT count(*) AS n FROM approval_timeline WHERE action = 'completed'") ==
          kInstances);
    // List filters: a business key finds its instance; the definition finds all of them.
    const auto by_key =
        listed(t, "/api/v1/approvals/instances?business_key=bulk-7", alice, "items");
    REQUIRE(by_key.size() == 1);
    CHECK(by_key[0].at("id") == ids[7]);
    CHECK(listed(t,
                 "/api/v1/approvals/instances?page_size=500&definition_id=" +
                     std::to_string(definition),
                 alice, "items")
              .size() == kInstances);
    CHECK(listed(t, "/api/v1/approvals/instances?definition_id=999999", alice, "items").empty());
}
