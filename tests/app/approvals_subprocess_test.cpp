// Embedded sub-processes, error end events and transactions end to end on real PostgreSQL and
// the embedded executor with a manual clock: a sub-process completing when its inner tokens
// end, a boundary timer interrupting one with its inner tasks, errors caught by the nearest
// matching boundary (one level, two levels, a child instance's call activity), an uncaught
// error failing the instance, and a failed transaction compensating newest first.

#include "app/app_under_test.hpp"
#include "app/approvals_support.hpp"

#include <algorithm>
#include <map>
#include <optional>

using riveredge_test::AppUnderTest;
using riveredge_test::AppUnderTestOptions;
using namespace riveredge_test::approvals;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {
// A ProFlow node; `parent` is the sub-process it sits in (React Flow's parentId).
std::string node(const std::string& id,
                 const std::string& type,
                 const std::string& parent = "",
                 const std::string& settings = "{}") {
    return R"({"id":")" + id + R"(","type":")" + type + R"(")" +
           (parent.empty() ? "" : R"(,"parentId":")" + parent + R"(")") + R"(,"data":{"bpmn":)" +
           settings + "}}";
}

std::string user(const std::string& id, const std::string& who, const std::string& parent = "") {
    return node(id, "userTask", parent,
                R"({"approvers":[{"type":"user","value":")" + who + "\"}]}");
}

// Edges "a>b" as ProFlow edges.
std::string edges(const std::vector<std::string>& pairs) {
    std::string out;
    int n = 0;
    for (const auto& pair : pairs) {
        const auto arrow = pair.find('>');
        out += std::string(out.empty() ? "" : ",") + R"({"id":"f)" + std::to_string(n++) +
               R"(","source":")" + pair.substr(0, arrow) + R"(","target":")" +
               pair.substr(arrow + 1) + R"("})";
    }
    return out;
}

std::string process(const std::string& key,
                    const std::vector<std::string>& nodes,
                    const std::vector<std::string>& flows) {
    std::string list;
    for (const auto& n : nodes) {
        list += (list.empty() ? "" : ",") + n;
    }
    return R"({"key":")" + key + R"(","nodes":[)" + list + R"(],"edges":[)" + edges(flows) + "]}";
}

// A process whose sub-process calls `called` (bob's task "check") from a call activity and is
// interrupted by a one-hour timer boundary (then dave's task "handle"); started, and answered
// once its child waits at "check": {instance, child}.
std::pair<std::int64_t, std::int64_t> start_calling_late(AppUnderTest& t,
                                                         Flow& flow,
                                                         const std::string& alice,
                                                         const std::string& called) {
    flow.publish(
        alice, process(called,
                       {node("start", "startEvent"), user("check", "bob"), node("end", "endEvent")},
                       {"start>check", "check>end"}));
    const auto id = flow.start(
        alice,
        flow.publish(
            alice,
            process(
                "calling_" + called,
                {node("start", "startEvent"), node("sub", "subProcess"),
                 node("in", "startEvent", "sub"),
                 node("call", "callActivity", "sub", R"({"called_element":")" + called + R"("})"),
                 node("out", "endEvent", "sub"),
                 node("late", "boundaryEvent", "", R"({"attached_to":"sub","duration":"PT1H"})"),
                 user("handle", "dave"), node("end", "endEvent"), node("end2", "endEvent")},
                {"start>sub", "in>call", "call>out", "sub>end", "late>handle", "handle>end2"})));
    const auto child = wait_children(t, alice, id).front();
    REQUIRE(flow.wait_pending(alice, child, "check").is_object());
    return {id, child};
}

}  // namespace

TEST_CASE("an embedded sub-process runs its inner tasks and completes when they end",
          "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto carol = t.token("acme", "carol");
    const auto definition = flow.publish(
        alice,
        process("embedded",
                {node("start", "startEvent"), node("sub", "subProcess"),
                 node("in", "startEvent", "sub"), user("review", "bob", "sub"),
                 node("out", "endEvent", "sub"), user("after", "carol"), node("end", "endEvent")},
                {"start>sub", "in>review", "review>out", "sub>after", "after>end"}));
    const auto id = flow.start(alice, definition);
    const auto at_review = flow.wait_pending(alice, id, "review");
    REQUIRE(at_review.is_object());
    CHECK(todo_nodes(t, carol).empty());  // the sub-process has not completed yet
    auto status = statuses(t, alice, id);
    CHECK(status["sub"] == "active");
    CHECK(status["in"] == "completed");
    // The diagram names each inner node's sub-process.
    for (const auto& n : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/diagram",
                                alice, "nodes")) {
        CHECK(n.at("parent") == (n.at("id") == "in" || n.at("id") == "review" || n.at("id") == "out"
                                     ? json::value("sub")
                                     : json::value(nullptr)));
    }
    REQUIRE(flow.act(bob, flow.pending_task(at_review, "review"), "approve").status == 200);
    const auto at_after = flow.wait_pending(alice, id, "after");
    REQUIRE(at_after.is_object());
    status = statuses(t, alice, id);
    CHECK(status["sub"] == "completed");
    CHECK(status["out"] == "completed");
    REQUIRE(flow.act(carol, flow.pending_task(at_after, "after"), "approve").status == 200);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
}

TEST_CASE("a boundary timer interrupts a sub-process and cancels its inner tasks",
          "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto carol = t.token("acme", "carol");
    const auto dave = t.token("acme", "dave");
    const auto erin = t.token("acme", "erin");
    // Inside: two reviews in parallel and a nested sub-process with a third; after an hour the
    // whole sub-process is taken away and dave handles it.
    const auto definition = flow.publish(
        alice,
        process("interrupted",
                {node("start", "startEvent"), node("sub", "subProcess"),
                 node("in", "startEvent", "sub"), node("fork", "parallelGateway", "sub"),
                 user("r1", "bob", "sub"), node("nested", "subProcess", "sub"),
                 node("in2", "startEvent", "nested"), user("r2", "carol", "nested"),
                 node("out2", "endEvent", "nested"), node("join", "parallelGateway", "sub"),
                 node("out", "endEvent", "sub"),
                 node("late", "boundaryEvent", "", R"({"attached_to":"sub","duration":"PT1H"})"),
                 user("handle", "dave"), node("end", "endEvent"), node("end2", "endEvent"),
                 node("nudge", "boundaryEvent", "",
                      R"({"attached_to":"sub","duration":"PT30M","cancel_activity":false})"),
                 user("nudged", "erin"), node("end3", "endEvent")},
                {"start>sub", "in>fork", "fork>r1", "fork>nested", "in2>r2", "r2>out2", "r1>join",
                 "nested>join", "join>out", "sub>end", "late>handle", "handle>end2", "nudge>nudged",
                 "nudged>end3"}));
    const auto id = flow.start(alice, definition);
    const auto both = flow.wait_pending(alice, id, "r2");
    REQUIRE(both.is_object());
    CHECK(todo_nodes(t, bob) == std::vector<std::string>{"r1"});
    CHECK(todo_nodes(t, carol) == std::vector<std::string>{"r2"});
    const auto settle = [&] {
        t.app().executor()->poke();
        REQUIRE(t.app().wait_settled(20s));
    };
    settle();  // parked before the clock moves, so its wait counts from now
    clock->advance(std::chrono::minutes(50));
    settle();
    CHECK(todo_nodes(t, dave).empty());  // not yet
    // The non-interrupting nudge fired beside the sub-process, whose tasks stay open.
    for (int i = 0; i < 200 && todo_nodes(t, erin).empty(); ++i) {
        t.app().executor()->poke();
        std::this_thread::sleep_for(25ms);
    }
    CHECK(todo_nodes(t, erin) == std::vector<std::string>{"nudged"});
    CHECK(todo_nodes(t, bob) == std::vector<std::string>{"r1"});
    clock->advance(std::chrono::minutes(15));
    settle();
    const auto at_handle = flow.wait_pending(alice, id, "handle");
    REQUIRE(at_handle.is_object());
    CHECK(todo_nodes(t, bob).empty());
    CHECK(todo_nodes(t, carol).empty());
    auto status = statuses(t, alice, id);
    CHECK(status["sub"] == "cancelled");
    CHECK(status["nested"] == "cancelled");
    CHECK(status["r1"] == "cancelled");
    CHECK(status["r2"] == "cancelled");
    CHECK(status["late"] == "completed");
    REQUIRE(flow.act(dave, flow.pending_task(at_handle, "handle"), "approve").status == 200);
    CHECK(todo_nodes(t, erin) == std::vector<std::string>{"nudged"});  // outside: it stays
    REQUIRE(flow.act(erin, flow.pending_task(at_handle, "nudged"), "approve").status == 200);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(statuses(t, alice, id)["end"] == "pending");
}

TEST_CASE("an interrupted sub-process ends its call activity's child even when it is suspended",
          "[app][approvals][subprocess]") {
    // Suspended (or held failed), the child has no run left to end it: the interruption does.
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto [id, child] = start_calling_late(t, flow, alice, "checking");
    REQUIRE(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(child) + "/suspend",
                   alice, R"({"reason":"on hold"})")
                .status == 200);
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));  // parked before the clock moves
    clock->advance(std::chrono::minutes(61));
    t.app().executor()->poke();
    // The parent goes on (dave's task) while the child is over.
    REQUIRE(flow.wait_pending(alice, id, "handle").is_object());
    const auto ended = t.call("GET", "/api/v1/approvals/instances/" + std::to_string(child), alice);
    CHECK(ended.body.at("status") == "cancelled");
}

TEST_CASE("an interrupted sub-process whose step died before ending the child ends it on retry",
          "[app][approvals][subprocess]") {
    // The park's first attempt closes the call activity's visit, then dies ending its child;
    // the retry finds the visit closed and must still end the child.
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto [id, child] = start_calling_late(t, flow, alice, "checked_late");
    REQUIRE(t.app().wait_settled(20s));  // parked before the clock moves
    fail_first_update(t, "child_end_fails", "approval_instances",
                      "OLD.status = 'running' AND NEW.status = 'cancelled'");
    clock->advance(std::chrono::minutes(61));
    t.app().executor()->poke();
    for (int i = 0; i < 400 && updates_met(t, "child_end_fails") == 0; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "child_end_fails") == 1);
    clock->advance(std::chrono::minutes(2));  // the park step's retry
    t.app().executor()->poke();
    REQUIRE(flow.wait_pending(alice, id, "handle").is_object());
    REQUIRE(t.app().wait_settled(20s));
    const auto ended = t.call("GET", "/api/v1/approvals/instances/" + std::to_string(child), alice);
    CHECK(ended.body.at("status") == "cancelled");
}

TEST_CASE("an interrupted sub-process whose step died before waking the child wakes it on retry",
          "[app][approvals][subprocess]") {
    // The park's first attempt ends the call activity's child (held: suspended), then dies
    // before its wake; the retry finds the child cancelled and must still wake its run, which
    // otherwise sleeps until its held re-check a day later.
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto [id, child] = start_calling_late(t, flow, alice, "checked_held");
    REQUIRE(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(child) + "/suspend",
                   alice, R"({"reason":"on hold"})")
                .status == 200);
    REQUIRE(t.app().wait_settled(20s));
    // Past the child's running re-check: its run parks held, for a day, before the interruption.
    clock->advance(std::chrono::minutes(16));
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));
    fail_first_insert(t, "child_wake_fails", "approval_events",
                      "NEW.step_key = 'wake:parent-ended'");
    clock->advance(std::chrono::minutes(45));
    t.app().executor()->poke();
    for (int i = 0; i < 400 && updates_met(t, "child_wake_fails") == 0; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(updates_met(t, "child_wake_fails") == 1);
    REQUIRE(t.call("GET", "/api/v1/approvals/instances/" + std::to_string(child), alice)
                .body.at("status") == "cancelled");  // the first attempt's end committed
    clock->advance(std::chrono::minutes(2));         // the park step's retry
    t.app().executor()->poke();
    REQUIRE(flow.wait_pending(alice, id, "handle").is_object());
    REQUIRE(t.app().wait_settled(20s));
    // The child's run ended now, hours before its re-check; the clock stands still.
    std::optional<inngest::local::RunStatus> child_run;
    for (const auto& run : t.app().executor()->runs("riveredge-flow-approvals-instance")) {
        if (run.event.at("data").at("instance_id").to_number<std::int64_t>() == child) {
            child_run = run.status;
        }
    }
    REQUIRE(child_run.has_value());
    CHECK(inngest::local::run_status_name(*child_run) == std::string("Completed"));
    CHECK(updates_met(t, "child_wake_fails") == 2);  // its wake went out on the retry
}

TEST_CASE("an error end event is caught by its sub-process's boundary, uncaught it fails",
          "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    // Inside: bob reviews; an "abort" signal beside the review throws TOO_LATE, which the
    // sub-process's boundary for that code catches (the other boundary's code does not match).
    const auto definition = flow.publish(
        alice,
        process("caught",
                {node("start", "startEvent"), node("sub", "subProcess"),
                 node("in", "startEvent", "sub"), user("review", "bob", "sub"),
                 node("out", "endEvent", "sub"),
                 node("abort", "boundaryEvent", "sub",
                      R"({"attached_to":"review","signal":"abort","cancel_activity":false})"),
                 node("throw", "endEvent", "sub",
                      R"({"error_code":"TOO_LATE","error_message":"the offer expired"})"),
                 node("other", "boundaryEvent", "",
                      R"({"attached_to":"sub","event":"error","error_code":"OTHER"})"),
                 node("late", "boundaryEvent", "",
                      R"({"attached_to":"sub","event":"error","error_code":"TOO_LATE",)"
                      R"("error_variable":"why"})"),
                 node("declined", "serviceTask", "",
                      R"({"action":"set_variables","output_mapping":{"declined":true}})"),
                 node("end", "endEvent"), node("end2", "endEvent"), node("end3", "endEvent")},
                {"start>sub", "in>review", "review>out", "abort>throw", "sub>end", "late>declined",
                 "declined>end2", "other>end3"}));
    const auto id = flow.start(alice, definition);
    const std::string path = "/api/v1/approvals/instances/" + std::to_string(id);
    REQUIRE(flow.wait_pending(alice, id, "review").is_object());
    REQUIRE(t.call("POST", path + "/signals", alice, R"({"name":"abort"})").status == 202);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("declined") == true);
    const auto& why = done.at("variables").at("why");
    CHECK(why.at("code") == "TOO_LATE");
    CHECK(why.at("node_id") == "throw");
    CHECK(std::string(why.at("message").as_string()).find("the offer expired") !=
          std::string::npos);
    CHECK(todo_nodes(t, bob).empty());  // the review went with the sub-process
    auto status = statuses(t, alice, id);
    CHECK(status["review"] == "cancelled");
    CHECK(status["sub"] == "failed");
    CHECK(status["late"] == "completed");
    CHECK(status["other"] == "pending");
    CHECK(status["end"] == "pending");

    // Nothing catches BOOM: the instance fails with the code in its reason.
    const auto uncaught = flow.publish(
        alice, process("uncaught",
                       {node("start", "startEvent"), node("sub", "subProcess"),
                        node("in", "startEvent", "sub"),
                        node("boom", "errorEndEvent", "sub", R"({"error_code":"BOOM"})"),
                        node("end", "endEvent"),
                        node("other", "boundaryEvent", "",
                             R"({"attached_to":"sub","event":"error","error_code":"OTHER"})"),
                        node("end2", "endEvent")},
                       {"start>sub", "in>boom", "sub>end", "other>end2"}));
    const auto second = flow.start(alice, uncaught);
    const auto failed = flow.wait_done(alice, second);
    REQUIRE(failed.is_object());
    CHECK(failed.at("status") == "failed");
    CHECK(std::string(failed.at("status_reason").as_string()).find("BOOM") != std::string::npos);
}

TEST_CASE("an error propagates through two sub-processes to the boundary that matches",
          "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    // The planning documents' format: `parent` names the container. The inner sub-process
    // catches only NOT_THIS; the outer one catches any error.
    const auto definition = flow.publish(alice, R"({"process":{"key":"levels"},"elements":[
        {"id":"start","type":"startEvent","outgoing":["outer"]},
        {"id":"outer","type":"subProcess","outgoing":["end"]},
        {"id":"o_in","type":"startEvent","parent":"outer","outgoing":["inner"]},
        {"id":"inner","type":"subProcess","parent":"outer","outgoing":["o_out"]},
        {"id":"o_out","type":"endEvent","parent":"outer"},
        {"id":"i_in","type":"startEvent","parent":"inner","outgoing":["mark"]},
        {"id":"mark","type":"serviceTask","parent":"inner",
         "config":{"action":"set_variables","output_mapping":{"marked":true}},"outgoing":["fail"]},
        {"id":"fail","type":"endEvent","parent":"inner","config":{"error_code":"DEEP"}},
        {"id":"not_this","type":"boundaryEvent","parent":"outer",
         "config":{"attached_to":"inner","event":"error","error_code":"NOT_THIS"},
         "outgoing":["o_out2"]},
        {"id":"o_out2","type":"endEvent","parent":"outer"},
        {"id":"any","type":"boundaryEvent",
         "config":{"attached_to":"outer","event":"error","error_variable":"caught"},
         "outgoing":["recovered"]},
        {"id":"recovered","type":"serviceTask",
         "config":{"action":"set_variables","output_mapping":{"recovered":true}},
         "outgoing":["end2"]},
        {"id":"end","type":"endEvent"},
        {"id":"end2","type":"endEvent"}]})");
    const auto id = flow.start(alice, definition);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("marked") == true);
    CHECK(done.at("variables").at("recovered") == true);
    CHECK(done.at("variables").at("caught").at("code") == "DEEP");
    auto status = statuses(t, alice, id);
    CHECK(status["outer"] == "failed");
    CHECK(status["inner"] == "cancelled");
    CHECK(status["not_this"] == "pending");
    CHECK(status["o_out"] == "pending");
    CHECK(status["end"] == "pending");
    CHECK(status["any"] == "completed");
}

TEST_CASE("an error a child instance throws reaches its call activity's boundary",
          "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    flow.publish(alice, process("child_check",
                                {node("start", "startEvent"),
                                 node("refuse", "endEvent", "",
                                      R"({"error_code":"NO_CREDIT","error_message":"limit"})")},
                                {"start>refuse"}));
    const auto parent = flow.publish(
        alice,
        process("calling",
                {node("start", "startEvent"),
                 node("call", "callActivity", "", R"({"called_element":"child_check"})"),
                 node("other", "boundaryEvent", "",
                      R"({"attached_to":"call","event":"error","error_code":"ELSE"})"),
                 node("no_credit", "boundaryEvent", "",
                      R"({"attached_to":"call","event":"error","error_code":"NO_CREDIT",)"
                      R"("error_variable":"child_error"})"),
                 node("end", "endEvent"), node("end2", "endEvent"), node("end3", "endEvent")},
                {"start>call", "call>end", "other>end2", "no_credit>end3"}));
    const auto id = flow.start(alice, parent);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    const auto& error = done.at("variables").at("child_error");
    CHECK(error.at("code") == "NO_CREDIT");
    CHECK(std::string(error.at("message").as_string()).find("limit") != std::string::npos);
    auto status = statuses(t, alice, id);
    CHECK(status["no_credit"] == "completed");
    CHECK(status["other"] == "pending");
}

TEST_CASE(
    "processes that call each other stop at ten levels instead of starting children "
    "without end",
    "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    // ping calls pong, pong calls ping: each published before the other exists.
    const auto calling = [&](const std::string& key, const std::string& other) {
        return flow.publish(
            alice,
            process(key,
                    {node("start", "startEvent"),
                     node("call", "callActivity", "", R"({"called_element":")" + other + R"("})"),
                     node("end", "endEvent")},
                    {"start>call", "call>end"}));
    };
    calling("pong", "ping");
    const auto root = flow.start(alice, calling("ping", "pong"));
    const auto instances = [&] {
        REQUIRE(t.app().executor()->wait_idle(30s));
        const auto all = t.call("GET", "/api/v1/approvals/instances?page_size=100", alice);
        REQUIRE(all.status == 200);
        return all.body;
    };
    // Until the eleventh level's call has failed (each level starts in a run of its own).
    json::value all;
    for (int i = 0; i < 400; ++i) {
        all = instances();
        if (json::serialize(all).find("\"failed\"") != std::string::npos) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    INFO(json::serialize(all));
    // The first process and ten levels of children; the eleventh level's call failed, named.
    CHECK(all.at("total") == 11);
    int failed = 0;
    for (const auto& instance : all.at("items").as_array()) {
        if (instance.at("status") == "failed") {
            ++failed;
            CHECK(instance.at("status_reason") ==
                  "call activity 'call': processes call each other more than 10 deep");
        }
    }
    CHECK(failed == 1);
    // Nothing more starts later, and the administrator's terminate ends the whole chain.
    clock->advance(std::chrono::hours(1));
    t.app().executor()->poke();
    CHECK(instances().at("total") == 11);
    REQUIRE(t.call("POST", "/api/v1/approvals/instances/" + std::to_string(root) + "/terminate",
                   alice, R"({"reason":"a loop"})")
                .status == 200);
    const auto ended = instances();
    for (const auto& instance : ended.at("items").as_array()) {
        CHECK(instance.at("status") != "running");
    }
}

TEST_CASE("a child's error passes a call activity without a boundary to its sub-process's",
          "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    flow.publish(alice, process("credit_check",
                                {node("start", "startEvent"),
                                 node("refuse", "endEvent", "", R"({"error_code":"NO_CREDIT"})")},
                                {"start>refuse"}));
    // The call activity sits in a sub-process beside bob's review; only the sub-process has a
    // boundary for NO_CREDIT.
    const auto parent = flow.publish(
        alice, process("calling_inside",
                       {node("start", "startEvent"), node("sub", "subProcess"),
                        node("in", "startEvent", "sub"), node("fork", "parallelGateway", "sub"),
                        node("call", "callActivity", "sub", R"({"called_element":"credit_check"})"),
                        user("review", "bob", "sub"), node("join", "parallelGateway", "sub"),
                        node("out", "endEvent", "sub"),
                        node("no_credit", "boundaryEvent", "",
                             R"({"attached_to":"sub","event":"error","error_code":"NO_CREDIT",)"
                             R"("error_variable":"credit"})"),
                        node("end", "endEvent"), node("refused", "endEvent")},
                       {"start>sub", "in>fork", "fork>call", "fork>review", "call>join",
                        "review>join", "join>out", "sub>end", "no_credit>refused"}));
    const auto id = flow.start(alice, parent);
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    CHECK(done.at("variables").at("credit").at("code") == "NO_CREDIT");
    CHECK(done.at("variables").at("credit").at("node_id") == "call");
    CHECK(todo_nodes(t, bob).empty());  // the review went with the sub-process
    auto status = statuses(t, alice, id);
    CHECK(status["call"] == "failed");
    CHECK(status["review"] == "cancelled");
    CHECK(status["sub"] == "failed");
    CHECK(status["no_credit"] == "completed");
    CHECK(status["end"] == "pending");
}

TEST_CASE("a failed transaction compensates its completed tasks newest first",
          "[app][approvals][subprocess]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    Flow flow{t, *clock};
    const auto alice = t.token("acme", "alice", {"admin"});
    bind_undo_activity(t, alice);
    const auto task = [](const std::string& id, const std::string& parent) {
        return node(id, "serviceTask", parent,
                    R"({"action":"set_variables","input_mapping":{")" + id + R"(":true}})");
    };
    const auto handler = [](const std::string& id, const std::string& parent) {
        return node(id, "serviceTask", parent,
                    R"({"action":"Undo","input_mapping":{"event":")" + id + R"("}})");
    };
    const auto compensation = [](const std::string& id, const std::string& host,
                                 const std::string& parent) {
        return node(id, "boundaryEvent", parent,
                    R"({"attached_to":")" + host + R"(","event":"compensation"})");
    };
    // audit (outside) -> trip [hotel -> car -> flight -> fail: PAYMENT]; only the trip's tasks
    // are compensated, flight first.
    const std::string source = process(
        "trip",
        {node("start", "startEvent"), task("audit", ""), compensation("undo_audit", "audit", ""),
         handler("cancel_audit", ""), node("trip", "transaction"), node("in", "startEvent", "trip"),
         task("hotel", "trip"), task("car", "trip"), task("flight", "trip"),
         node("fail", "endEvent", "trip", R"({"error_code":"PAYMENT"})"),
         compensation("undo_hotel", "hotel", "trip"), handler("cancel_hotel", "trip"),
         compensation("undo_flight", "flight", "trip"), handler("cancel_flight", "trip"),
         compensation("undo_car", "car", "trip"), handler("cancel_car", "trip"),
         node("unpaid", "boundaryEvent", "",
              R"({"attached_to":"trip","event":"error","error_code":"PAYMENT"})"),
         node("end", "endEvent"), node("end2", "endEvent")},
        {"start>audit", "audit>trip", "in>hotel", "hotel>car", "car>flight", "flight>fail",
         "trip>end", "unpaid>end2", "undo_audit>cancel_audit", "undo_hotel>cancel_hotel",
         "undo_flight>cancel_flight", "undo_car>cancel_car"});
    const auto id = flow.start(alice, flow.publish(alice, source));
    const auto done = flow.wait_done(alice, id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");
    std::vector<std::string> compensated;
    for (const auto& e : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events",
                                alice, "events")) {
        if (e.at("name") == "compensated") {
            compensated.emplace_back(e.at("data").at("handler").as_string());
        }
    }
    CHECK(compensated == std::vector<std::string>{"cancel_flight", "cancel_car", "cancel_hotel"});
    auto status = statuses(t, alice, id);
    CHECK(status["trip"] == "failed");
    CHECK(status["unpaid"] == "completed");
    CHECK(status["end"] == "pending");
    const auto names = event_names(t, alice, id);
    CHECK(std::count(names.begin(), names.end(), "error_thrown") == 1);
    CHECK(std::count(names.begin(), names.end(), "error_caught") == 1);
    CHECK(done.at("variables").at("error").at("code") == "PAYMENT");

    // A cancel end event: the transaction compensates and its cancel boundary takes over.
    const auto handled = [&](std::int64_t instance) {
        std::vector<std::string> out;
        for (const auto& e :
             listed(t, "/api/v1/approvals/instances/" + std::to_string(instance) + "/events", alice,
                    "events")) {
            if (e.at("name") == "compensated") {
                out.emplace_back(e.at("data").at("handler").as_string());
            }
        }
        return out;
    };
    const auto cancelled = flow.start(
        alice,
        flow.publish(
            alice,
            process("trip_cancel",
                    {node("start", "startEvent"), node("trip", "transaction"),
                     node("in", "startEvent", "trip"), task("hotel", "trip"), task("car", "trip"),
                     node("stop", "cancelEndEvent", "trip"),
                     compensation("undo_hotel", "hotel", "trip"), handler("cancel_hotel", "trip"),
                     compensation("undo_car", "car", "trip"), handler("cancel_car", "trip"),
                     node("called_off", "boundaryEvent", "",
                          R"({"attached_to":"trip","event":"cancel"})"),
                     node("end", "endEvent"), node("end2", "endEvent")},
                    {"start>trip", "in>hotel", "hotel>car", "car>stop", "trip>end",
                     "called_off>end2", "undo_hotel>cancel_hotel", "undo_car>cancel_car"})));
    const auto after_cancel = flow.wait_done(alice, cancelled);
    REQUIRE(after_cancel.is_object());
    CHECK(after_cancel.at("status") == "completed");
    CHECK(handled(cancelled) == std::vector<std::string>{"cancel_car", "cancel_hotel"});
    CHECK(statuses(t, alice, cancelled)["called_off"] == "completed");
    // A cancel is no error: the transaction ends cancelled and no error variable is set.
    CHECK(statuses(t, alice, cancelled)["trip"] == "cancelled");
    CHECK(!after_cancel.at("variables").as_object().contains("error"));
    const auto cancel_names = event_names(t, alice, cancelled);
    CHECK(std::count(cancel_names.begin(), cancel_names.end(), "cancel_thrown") == 1);
    CHECK(std::count(cancel_names.begin(), cancel_names.end(), "error_caught") == 0);

    // Nothing catches the error: the transaction compensates, then the instance fails.
    const auto uncaught = flow.start(
        alice,
        flow.publish(
            alice,
            process("trip_uncaught",
                    {node("start", "startEvent"), node("trip", "transaction"),
                     node("in", "startEvent", "trip"), task("hotel", "trip"), task("car", "trip"),
                     node("fail", "endEvent", "trip", R"({"error_code":"PAYMENT"})"),
                     compensation("undo_hotel", "hotel", "trip"), handler("cancel_hotel", "trip"),
                     compensation("undo_car", "car", "trip"), handler("cancel_car", "trip"),
                     node("end", "endEvent")},
                    {"start>trip", "in>hotel", "hotel>car", "car>fail", "trip>end",
                     "undo_hotel>cancel_hotel", "undo_car>cancel_car"})));
    const auto failed = flow.wait_done(alice, uncaught);
    REQUIRE(failed.is_object());
    CHECK(failed.at("status") == "failed");
    CHECK(std::string(failed.at("status_reason").as_string()).find("PAYMENT") != std::string::npos);
    CHECK(handled(uncaught) == std::vector<std::string>{"cancel_car", "cancel_hotel"});

    // A call activity whose child ends with an error: nothing on the call catches it, the
    // transaction's boundary does, and what completed inside compensates first.
    flow.publish(alice, process("no_credit",
                                {node("start", "startEvent"),
                                 node("refuse", "endEvent", "", R"({"error_code":"NO_CREDIT"})")},
                                {"start>refuse"}));
    const auto called = flow.start(
        alice,
        flow.publish(
            alice,
            process("trip_called",
                    {node("start", "startEvent"), node("trip", "transaction"),
                     node("in", "startEvent", "trip"), task("hotel", "trip"),
                     node("check", "callActivity", "trip", R"({"called_element":"no_credit"})"),
                     node("out", "endEvent", "trip"), compensation("undo_hotel", "hotel", "trip"),
                     handler("cancel_hotel", "trip"),
                     node("refused", "boundaryEvent", "",
                          R"({"attached_to":"trip","event":"error","error_code":"NO_CREDIT"})"),
                     node("end", "endEvent"), node("end2", "endEvent")},
                    {"start>trip", "in>hotel", "hotel>check", "check>out", "trip>end",
                     "refused>end2", "undo_hotel>cancel_hotel"})));
    const auto after_call = flow.wait_done(alice, called);
    REQUIRE(after_call.is_object());
    CHECK(after_call.at("status") == "completed");
    CHECK(after_call.at("variables").at("error").at("code") == "NO_CREDIT");
    CHECK(handled(called) == std::vector<std::string>{"cancel_hotel"});
    const auto call_status = statuses(t, alice, called);
    CHECK(call_status.at("check") == "failed");
    CHECK(call_status.at("trip") == "failed");
    CHECK(call_status.at("end2") == "completed");
    const auto call_names = event_names(t, alice, called);
    CHECK(std::count(call_names.begin(), call_names.end(), "error_caught") == 1);

    // A service task that fails with no boundary of its own: the transaction's boundary that
    // catches any error takes it, after compensating what completed inside.
    const auto charge = t.call("POST", "/api/v1/scripts", alice,
                               R"({"name":"charge","code":"function main(a) { throw new )"
                               R"(Error('card declined'); }"})");
    REQUIRE(charge.status == 201);
    REQUIRE(t.call("PUT", "/api/v1/approvals/activities/Charge", alice,
                   R"({"kind":"script","script_id":)" +
                       std::to_string(charge.body.at("id").as_int64()) + "}")
                .status == 200);
    const auto declined = flow.start(
        alice,
        flow.publish(
            alice,
            process("trip_declined",
                    {node("start", "startEvent"), node("trip", "transaction"),
                     node("in", "startEvent", "trip"), task("hotel", "trip"),
                     node("pay", "serviceTask", "trip", R"({"action":"Charge"})"),
                     node("out", "endEvent", "trip"), compensation("undo_hotel", "hotel", "trip"),
                     handler("cancel_hotel", "trip"),
                     node("any", "boundaryEvent", "", R"({"attached_to":"trip","event":"error"})"),
                     node("end", "endEvent"), node("end2", "endEvent")},
                    {"start>trip", "in>hotel", "hotel>pay", "pay>out", "trip>end", "any>end2",
                     "undo_hotel>cancel_hotel"})));
    const auto after_decline = flow.wait_done(alice, declined);
    REQUIRE(after_decline.is_object());
    CHECK(after_decline.at("status") == "completed");
    CHECK(after_decline.at("variables").at("error").at("node_id") == "pay");
    CHECK(handled(declined) == std::vector<std::string>{"cancel_hotel"});
    CHECK(statuses(t, alice, declined)["trip"] == "failed");
}
