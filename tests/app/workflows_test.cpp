// Workflows end to end: definitions in YAML and JSON, the order state machine, the
// customer-support DAG, retries, compensation and the error handler, pause/resume/cancel, the
// per-tenant quota and priority, and refusals.

#include "app/app_under_test.hpp"
#include "app/replaying_receiver.hpp"
#include "core/db/database.hpp"

#include <inngest/http_server.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>

namespace riveredge_test {
namespace {

constexpr const char* kOrderYaml = R"yaml(
key: order
name: Order lifecycle
kind: state_machine
initial: created
context:
  amount: 100
states:
  created:
    on_entry: {kind: set, values: {stage: created}}
    compensate: {kind: set, values: {created_undone: true}}
    transitions:
      - event: pay
        target: paid
        guard: event.data.amount >= context.amount
        action:
          kind: set
          expressions:
            paid_amount: event.data.amount
      - event: cancel
        target: cancelled
  paid:
    on_entry:
      - {kind: set, values: {stage: paid}}
      - {kind: notify, users: [alice], subject: "Order paid", body: "Your order is paid"}
    on_exit: {kind: set, values: {left_paid: true}}
    transitions:
      - {event: ship, target: shipped}
  shipped:
    on_entry: {kind: set, values: {stage: shipped}}
    transitions:
      - {event: deliver, target: delivered}
  delivered:
    final: true
    on_entry: {kind: set, values: {stage: delivered}}
  cancelled:
    final: true
    on_entry: {kind: set, values: {stage: cancelled}}
)yaml";

constexpr const char* kSupportDagJson = R"json({
  "key": "support",
  "name": "Customer support ticket",
  "kind": "dag",
  "nodes": [
    {"id": "triage", "action": {"kind": "set", "values": {"queue": "billing"}}},
    {"id": "lookup_customer", "depends_on": ["triage"],
     "action": {"kind": "set", "values": {"customer": "ACME"}}},
    {"id": "lookup_orders", "depends_on": ["triage"],
     "action": {"kind": "set", "values": {"orders": 3}}},
    {"id": "respond", "depends_on": ["lookup_customer", "lookup_orders"], "retries": 2,
     "action": [{"kind": "fail", "message": "mail server busy", "times": 2},
                {"kind": "set", "values": {"responded": true}}]},
    {"id": "close", "depends_on": ["respond"], "action": {"kind": "noop"}}
  ]
})json";

constexpr const char* kSupportDagYaml = R"yaml(
key: support
name: Customer support ticket
kind: dag
nodes:
  - id: triage
    action: {kind: set, values: {queue: billing}}
  - id: lookup_customer
    depends_on: [triage]
    action: {kind: set, values: {customer: ACME}}
  - id: lookup_orders
    depends_on: [triage]
    action: {kind: set, values: {orders: 3}}
  - id: respond
    depends_on: [lookup_customer, lookup_orders]
    retries: 2
    action:
      - {kind: fail, message: mail server busy, times: 2}
      - {kind: set, values: {responded: true}}
  - id: close
    depends_on: [respond]
    action: {kind: noop}
)yaml";

// A POST with a YAML (or any) content type.
Response post_as(const AppUnderTest& t,
                 const std::string& path,
                 const std::string& token,
                 const std::string& content_type,
                 const std::string& body) {
    inngest::detail::OutboundRequest request{
        "POST", "http://127.0.0.1:" + std::to_string(t.port()) + path, {}, body, 10s, std::nullopt};
    request.headers = {{"Content-Type", content_type}, {"Authorization", "Bearer " + token}};
    auto response = inngest::detail::send_http(request);
    REQUIRE(response.has_value());
    boost::system::error_code ec;
    auto parsed = json::parse(response->body, ec);
    return {response->status, ec ? json::value(response->body) : parsed};
}

struct Flows {
    AppUnderTest& t;
    std::string admin;

    std::int64_t publish(const std::string& content_type, const std::string& source) {
        const auto created =
            post_as(t, "/api/v1/workflows/definitions", admin, content_type, source);
        INFO(json::serialize(created.body));
        REQUIRE(created.status == 201);
        const auto id = created.body.at("id").as_int64();
        const auto version = created.body.at("version").as_int64();
        const auto published = t.call("POST",
                                      "/api/v1/workflows/definitions/" + std::to_string(id) +
                                          "/versions/" + std::to_string(version) + "/publish",
                                      admin);
        INFO(json::serialize(published.body));
        REQUIRE(published.status == 200);
        return id;
    }

    std::int64_t start(const std::string& token, const std::string& body) {
        const auto r = t.call("POST", "/api/v1/workflows/executions", token, body);
        INFO(json::serialize(r.body));
        REQUIRE(r.status == 201);
        return r.body.at("id").as_int64();
    }

    json::value wait(const std::string& token,
                     std::int64_t id,
                     const std::function<bool(const json::value&)>& predicate) {
        json::value last;
        for (int i = 0; i < 600; ++i) {
            const auto r =
                t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id), token);
            if (r.status == 200 && predicate(r.body)) {
                return r.body;
            }
            last = r.body;
            std::this_thread::sleep_for(25ms);
        }
        INFO("last seen: " << json::serialize(last));
        FAIL("the execution did not reach the expected condition");
        return nullptr;
    }

    json::value wait_state(const std::string& token, std::int64_t id, const std::string& state) {
        return wait(token, id, [&](const json::value& e) {
            return e.at("current_state") == json::value(state);
        });
    }

    json::value wait_status(const std::string& token, std::int64_t id, const std::string& status) {
        return wait(token, id,
                    [&](const json::value& e) { return e.at("status") == json::value(status); });
    }

    Response send(const std::string& token,
                  std::int64_t id,
                  const std::string& event,
                  const std::string& data = "{}") {
        return t.call("POST", "/api/v1/workflows/executions/" + std::to_string(id) + "/events",
                      token, R"({"event":")" + event + R"(","data":)" + data + "}");
    }

    // Waits for facts, not time: what was announced is relayed and nothing is due.
    void settle() { REQUIRE(t.app().wait_settled(10s)); }

    json::array history(const std::string& token, std::int64_t id, const std::string& query = "") {
        const auto r =
            t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id) + "/history" + query,
                   token);
        REQUIRE(r.status == 200);
        return r.body.at("items").as_array();
    }
};

const json::object* run_of(const json::array& history, const std::string& key) {
    for (const auto& item : history) {
        if (item.at("step_key") == json::value(key)) {
            return &item.as_object();
        }
    }
    return nullptr;
}

}  // namespace

TEST_CASE("workflows: definitions in YAML and JSON give one model, with a DAG's parallel groups",
          "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    const auto bob = t.token("acme", "bob");

    // Validation only: the groups of the support DAG, from YAML and from JSON alike.
    const auto from_yaml = post_as(t, "/api/v1/workflows/definitions/validate", bob,
                                   "application/yaml", kSupportDagYaml);
    INFO(json::serialize(from_yaml.body));
    REQUIRE(from_yaml.status == 200);
    const auto from_json = post_as(t, "/api/v1/workflows/definitions/validate", bob,
                                   "application/json", kSupportDagJson);
    REQUIRE(from_json.status == 200);
    CHECK(from_yaml.body == from_json.body);
    CHECK(from_yaml.body.at("parallel_groups") ==
          json::parse(R"([["triage"],["lookup_customer","lookup_orders"],["respond"],["close"]])"));

    const auto sm =
        post_as(t, "/api/v1/workflows/definitions/validate", bob, "text/yaml", kOrderYaml);
    REQUIRE(sm.status == 200);
    CHECK(sm.body.at("initial") == "created");
    CHECK(sm.body.at("states").at("created").at("events") == json::parse(R"(["pay","cancel"])"));
    CHECK(sm.body.at("states").at("delivered").at("final") == true);

    // Import: a YAML version then a JSON version of the same key; the model is the same.
    const auto first =
        post_as(t, "/api/v1/workflows/definitions", admin, "application/yaml", kSupportDagYaml);
    REQUIRE(first.status == 201);
    CHECK(first.body.at("version") == 1);
    CHECK(first.body.at("kind") == "dag");
    CHECK(first.body.at("published_version").is_null());
    const auto id = first.body.at("id").as_int64();
    const auto second =
        post_as(t, "/api/v1/workflows/definitions", admin, "application/json", kSupportDagJson);
    REQUIRE(second.status == 201);
    CHECK(second.body.at("id") == id);
    CHECK(second.body.at("version") == 2);
    const auto base = "/api/v1/workflows/definitions/" + std::to_string(id);
    const auto v1 = t.call("GET", base + "/versions/1", bob);
    const auto v2 = t.call("GET", base + "/versions/2", bob);
    REQUIRE(v1.status == 200);
    REQUIRE(v2.status == 200);
    CHECK(v1.body.at("format") == "yaml");
    CHECK(v2.body.at("format") == "json");
    CHECK(v1.body.at("model") == v2.body.at("model"));
    CHECK(v1.body.at("parallel_groups").as_array().size() == 4);
    CHECK(t.call("GET", base + "/versions", bob).body.at("versions").as_array().size() == 2);

    // Nothing runs before a version is published; then the published one runs.
    Flows f{t, admin};
    const auto unpublished =
        t.call("POST", "/api/v1/workflows/executions", bob, R"({"definition_key":"support"})");
    CHECK(unpublished.status == 409);
    REQUIRE(t.call("POST", base + "/versions/1/publish", admin).status == 200);
    CHECK(t.call("GET", base, bob).body.at("published_version") == 1);
    CHECK(t.call("POST", "/api/v1/workflows/executions", bob,
                 R"({"definition_key":"support","version":2})")
              .status == 409);  // version 2 is not published
    const auto listed = t.call("GET", "/api/v1/workflows/definitions?kind=dag", bob);
    REQUIRE(listed.status == 200);
    CHECK(listed.body.at("total") == 1);
    // A key keeps its kind.
    std::string as_sm = kOrderYaml;
    as_sm.replace(as_sm.find("key: order"), 10, "key: support");
    CHECK(post_as(t, "/api/v1/workflows/definitions", admin, "application/yaml", as_sm).status ==
          409);
}

TEST_CASE("workflows: definitions that misuse an element are refused with the element named",
          "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    const auto user = t.token("acme", "alice");
    struct Case {
        std::string yaml;
        std::string element;
        std::string says;
        std::string type = "application/yaml";
    };
    const std::string dag = "key: d\nkind: dag\n";
    const std::string sm = "key: s\nkind: state_machine\ninitial: a\n";
    const std::vector<Case> cases{
        {dag + "nodes:\n  - {id: a, depends_on: [b], action: {kind: noop}}\n"
               "  - {id: b, depends_on: [a], action: {kind: noop}}\n",
         "nodes", "cycle through a, b"},
        {dag + "nodes:\n  - {id: a, action: {kind: noop}}\n"
               "  - {id: b, depends_on: [x], action: {kind: noop}}\n",
         "nodes[1].depends_on[0]", "'x' is unknown"},
        {dag + "nodes:\n  - {id: a, action: {kind: noop}}\n  - {id: a, action: {kind: noop}}\n",
         "nodes[1].id", "duplicates node 'a'"},
        {dag + "nodes:\n  - {id: a, depends_on: [a], action: {kind: noop}}\n",
         "nodes[0].depends_on[0]", "itself"},
        {dag + "nodes:\n  - {id: a, action: {kind: teleport}}\n", "nodes[0].action.kind",
         "'teleport' is not an action kind"},
        {dag + "nodes:\n  - {id: a, action: {kind: noop}, retry: 3}\n", "nodes[0].retry",
         "not a known field"},
        {dag + "nodes:\n  - {id: a, action: {kind: noop}, retries: 50}\n", "nodes[0].retries",
         "between 0 and 10"},
        {dag + "nodes:\n  - {id: a}\n", "nodes[0].action", "required"},
        {dag + "nodes:\n  - {id: a, action: {kind: set}}\n", "nodes[0].action.values", "required"},
        {dag + "nodes:\n  - {id: a, action: {kind: notify, subject: hi}}\n",
         "nodes[0].action.users", "1 to 100 user ids"},
        {dag + "nodes: []\n", "nodes", "at least one node"},
        {sm + "states:\n  a:\n    transitions:\n      - {event: go, target: nowhere}\n  b: "
              "{final: true}\n",
         "states.a.transitions[0].target", "'nowhere' is unknown"},
        {sm + "states:\n  a:\n    transitions:\n      - {event: go, target: b, guard: "
              "'event.data.x >'}\n  b: {final: true}\n",
         "states.a.transitions[0].guard", "not a valid expression"},
        {sm + "states:\n  a:\n    transitions:\n      - {event: go, target: b, guard: "
              "'secret.x == 1'}\n  b: {final: true}\n",
         "states.a.transitions[0].guard", "unknown name 'secret'"},
        {sm + "states:\n  a:\n    transitions:\n      - {event: go, target: b}\n      - {event: "
              "go, target: a}\n  b: {final: true}\n",
         "states.a.transitions[1]", "never taken"},
        {sm + "states:\n  a:\n    transitions:\n      - {event: go, target: b}\n  b:\n    final: "
              "true\n    transitions:\n      - {event: back, target: a}\n",
         "states.b.transitions", "final state has no transitions"},
        {sm + "states:\n  a:\n    transitions:\n      - {event: go, target: b}\n  b: {final: "
              "true}\n  c: {final: true}\n",
         "states.c", "not reachable"},
        {sm + "states:\n  a: {}\n  b: {final: true}\n", "states.a.transitions",
         "at least one transition"},
        {"key: s\nkind: state_machine\ninitial: z\nstates:\n  a: {final: true}\n", "initial",
         "'z' is unknown"},
        {sm + "states:\n  a:\n    transitions:\n      - {event: go, target: b}\n  b: {}\n",
         "states", "at least one state must be final"},
        {"key: k\nkind: flowchart\n", "kind", "not dag or state_machine"},
        {"kind: dag\nnodes:\n  - {id: a, action: {kind: noop}}\n", "key", "required"},
        // A node after a valid one, depending on it, without an id or with one not a string.
        {dag + "nodes:\n  - {id: a, action: {kind: noop}}\n"
               "  - {depends_on: [a], action: {kind: noop}}\n",
         "nodes[1].id", "must be 1 to 64 letters"},
        {dag + "nodes:\n  - {id: a, action: {kind: noop}}\n"
               "  - {id: 5, depends_on: [a], action: {kind: noop}}\n",
         "nodes[1].id", "must be 1 to 64 letters"},
        // Past int64 (YAML would make it a double, so JSON).
        {R"({"key":"d","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"},)"
         R"("retries":18446744073709551615}]})",
         "nodes[0].retries", "between 0 and 10", "application/json"},
    };
    for (const auto& c : cases) {
        INFO(c.yaml);
        const auto r = post_as(t, "/api/v1/workflows/definitions", admin, c.type, c.yaml);
        INFO(json::serialize(r.body));
        REQUIRE(r.status == 422);
        CHECK(r.body.at("error").at("code") == "invalid_definition");
        const auto& fields = r.body.at("error").at("details").at("fields").as_object();
        REQUIRE(fields.contains(c.element));
        CHECK(std::string(fields.at(c.element).as_string()).find(c.says) != std::string::npos);
        CHECK(std::string(r.body.at("error").at("message").as_string()).find(c.element) !=
              std::string::npos);
        // Validation alone says the same, to a user too.
        const auto checked =
            post_as(t, "/api/v1/workflows/definitions/validate", user, c.type, c.yaml);
        CHECK(checked.status == 422);
        CHECK(checked.body.at("error").at("details").at("fields").as_object().contains(c.element));
    }
    // A source that cannot be read at all is a 400.
    const auto broken =
        post_as(t, "/api/v1/workflows/definitions", admin, "application/yaml", "key: [unclosed\n");
    CHECK(broken.status == 400);
    CHECK(std::string(broken.body.at("error").at("message").as_string()).find("YAML line") !=
          std::string::npos);
    CHECK(post_as(t, "/api/v1/workflows/definitions", admin, "application/json", "{nope").status ==
          400);
    // Nothing was saved.
    CHECK(t.call("GET", "/api/v1/workflows/definitions", admin).body.at("total") == 0);
}

TEST_CASE("workflows: an order state machine moves through its states by events, guards refusing",
          "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    const auto alice = t.token("acme", "alice");
    Flows f{t, admin};
    f.publish("application/yaml", kOrderYaml);

    const auto id = f.start(alice, R"({"definition_key":"order","input":{"order_id":"SO-1"}})");
    auto e = f.wait_state(alice, id, "created");
    CHECK(e.at("status") == "running");
    CHECK(e.at("allowed_events") == json::parse(R"(["pay","cancel"])"));
    CHECK(e.at("context").at("amount") == 100);  // the definition's default
    CHECK(e.at("context").at("order_id") == "SO-1");

    // An event the state does not take: 409 naming the state and the event.
    const auto early = f.send(alice, id, "ship");
    CHECK(early.status == 409);
    CHECK(early.body.at("error").at("code") == "event_not_allowed");
    CHECK(early.body.at("error").at("message") == "event 'ship' is not allowed in state 'created'");
    CHECK(early.body.at("error").at("details").at("state") == "created");
    CHECK(early.body.at("error").at("details").at("event") == "ship");
    // A payment below the amount: the guard refuses.
    const auto short_paid = f.send(alice, id, "pay", R"({"amount":50})");
    CHECK(short_paid.status == 409);
    CHECK(short_paid.body.at("error").at("code") == "guard_refused");
    CHECK(std::string(short_paid.body.at("error").at("message").as_string())
              .find("event.data.amount >= context.amount") != std::string::npos);

    const auto paid = f.send(alice, id, "pay", R"({"amount":120})");
    INFO(json::serialize(paid.body));
    REQUIRE(paid.status == 202);
    CHECK(paid.body.at("from_state") == "created");
    CHECK(paid.body.at("to_state") == "paid");
    // The next event is checked against the state the accepted ones lead to.
    REQUIRE(f.send(alice, id, "ship").status == 202);
    REQUIRE(f.send(alice, id, "deliver").status == 202);
    e = f.wait_status(alice, id, "completed");
    CHECK(e.at("current_state") == "delivered");
    CHECK(e.at("final") == true);
    CHECK(e.at("context").at("paid_amount") == 120);
    CHECK(e.at("context").at("left_paid") == true);
    CHECK(e.at("context").at("stage") == "delivered");
    CHECK(e.at("ended_at").is_string());
    CHECK(t.wait_unread(t.token("acme", "alice"), 1));  // paid's notify action

    const auto done = f.send(alice, id, "deliver");
    CHECK(done.status == 409);

    // History: every entry, exit and transition with its input, output, attempts and timing.
    const auto history = f.history(alice, id);
    std::vector<std::string> keys;
    for (const auto& run : history) {
        keys.emplace_back(run.at("step_key").as_string());
        CHECK(run.at("status") == "succeeded");
        CHECK(run.at("attempts") == 1);
        CHECK(run.at("started_at").is_string());
        CHECK(run.at("ended_at").is_string());
        CHECK(run.at("duration_ms").is_int64());
    }
    CHECK(keys == std::vector<std::string>{"entry:created#1", "transition:1", "entry:paid#1",
                                           "exit:paid#1", "entry:shipped#1", "entry:delivered#1"});
    const auto* transition = run_of(history, "transition:1");
    REQUIRE(transition != nullptr);
    CHECK(transition->at("phase") == "transition");
    CHECK(transition->at("node") == "created->paid");
    CHECK(transition->at("input").at("event").at("data").at("amount") == 120);
    CHECK(transition->at("output").at("paid_amount") == 120);
    CHECK(run_of(history, "entry:paid#1")->at("action_kind") == "set,notify");
    const auto events =
        t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id) + "/events", alice);
    REQUIRE(events.status == 200);
    REQUIRE(events.body.at("events").as_array().size() == 3);
    for (const auto& event : events.body.at("events").as_array()) {
        CHECK(event.at("status") == "applied");
    }

    // Cancel from created: a second order ends in its cancelled state.
    const auto second = f.start(alice, R"({"definition_key":"order","input":{"amount":10}})");
    f.wait_state(alice, second, "created");
    REQUIRE(f.send(alice, second, "cancel").status == 202);
    e = f.wait_status(alice, second, "completed");
    CHECK(e.at("current_state") == "cancelled");
    CHECK(e.at("context").at("stage") == "cancelled");
}

TEST_CASE("workflows: a customer-support DAG runs its parallel groups and retries a node",
          "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    const auto bob = t.token("acme", "bob");
    Flows f{t, admin};
    f.publish("application/json", kSupportDagJson);
    const auto id =
        f.start(bob, R"({"definition_key":"support","input":{"ticket":"T-7"},"priority":60})");
    const auto e = f.wait_status(bob, id, "completed");
    CHECK(e.at("parallel_groups") ==
          json::parse(R"([["triage"],["lookup_customer","lookup_orders"],["respond"],["close"]])"));
    CHECK(e.at("priority") == 60);
    CHECK(e.at("context").at("queue") == "billing");
    CHECK(e.at("context").at("nodes").at("lookup_orders").at("orders") == 3);
    CHECK(e.at("context").at("responded") == true);

    const auto history = f.history(bob, id, "?phase=node");
    REQUIRE(history.size() == 5);
    std::map<std::string, const json::object*> by_node;
    for (const auto& run : history) {
        by_node[std::string(run.at("node").as_string())] = &run.as_object();
        CHECK(run.at("status") == "succeeded");
    }
    // The respond node failed twice and succeeded at its third attempt.
    CHECK(by_node.at("respond")->at("attempts") == 3);
    CHECK(by_node.at("triage")->at("attempts") == 1);
    CHECK(by_node.at("respond")->at("error").is_null());
    // The lookups began only after triage ended, and respond after both lookups.
    const auto ended = [&](const std::string& node) {
        return std::string(by_node.at(node)->at("ended_at").as_string());
    };
    const auto started = [&](const std::string& node) {
        return std::string(by_node.at(node)->at("started_at").as_string());
    };
    CHECK(started("lookup_customer") >= ended("triage"));
    CHECK(started("lookup_orders") >= ended("triage"));
    CHECK(started("respond") >= ended("lookup_customer"));
    CHECK(started("respond") >= ended("lookup_orders"));
    CHECK(started("close") >= ended("respond"));
    CHECK(by_node.at("lookup_customer")->at("input").at("context").at("queue") == "billing");
    // Events are for state machines.
    CHECK(f.send(bob, id, "anything").status == 409);
}

TEST_CASE(
    "workflows: a node step run again after its end committed answers its stored output and sets "
    "nothing twice",
    "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    Flows f{t, admin};
    f.publish("application/yaml", R"yaml(
key: counter
kind: dag
nodes:
  - id: inc
    action: {kind: set, expressions: {count: context.count + 1}}
  - id: after
    depends_on: [inc]
    action: {kind: noop}
)yaml");
    const auto id = f.start(admin, R"({"definition_key":"counter","input":{"count":0}})");
    REQUIRE(f.wait_status(admin, id, "completed").at("context").at("count") == 1);
    f.settle();
    // Inngest calls again with the steps before the node memoized, as when the node's end
    // committed and its answer was lost.
    const auto call = t.call_again_at("riveredge-flow-workflows-execution", "node:inc#1");
    const auto node_step = inngest_test::step_hash("node:inc#1");
    const auto [status, reply] = t.replay(call);
    REQUIRE(status == 206);
    const auto& op = reply.as_array().at(0);
    REQUIRE(op.at("id") == json::value(node_step));
    INFO(json::serialize(op.at("data")));
    CHECK(op.at("data").at("ok") == true);
    CHECK(op.at("data").at("output") == json::parse(R"({"count":1})"));
    const auto e = t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id), admin).body;
    CHECK(e.at("context").at("count") == 1);
    // The history keeps the input the node ran with.
    const auto history = f.history(admin, id, "?phase=node");
    const auto* inc = run_of(history, "node:inc");
    REQUIRE(inc != nullptr);
    CHECK(inc->at("status") == "succeeded");
    CHECK(inc->at("input").at("context").at("count") == 0);
}

TEST_CASE(
    "workflows: a failed node compensates the completed ones newest first, then the error handler "
    "runs",
    "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    Flows f{t, admin};
    f.publish("application/yaml", R"yaml(
key: fulfil
kind: dag
on_error:
  kind: set
  expressions: {failed_node: event.data.node, failure: event.data.error}
nodes:
  - id: reserve
    action: {kind: set, values: {reserved: true}}
    compensate: {kind: set, values: {reserved: false}}
  - id: charge
    depends_on: [reserve]
    action: {kind: set, values: {charged: true}}
    compensate: {kind: set, values: {charged: false}}
  - id: notify_warehouse
    depends_on: [reserve]
    action: {kind: noop}
  - id: pack
    depends_on: [charge]
    action: {kind: noop}
    compensate: {kind: fail, message: packing station offline}
  - id: ship
    depends_on: [pack, notify_warehouse]
    retries: 1
    action: {kind: fail, message: carrier down}
  - id: invoice
    depends_on: [ship]
    action: {kind: noop}
)yaml");
    const auto id = f.start(admin, R"({"definition_key":"fulfil"})");
    const auto e = f.wait_status(admin, id, "failed");
    CHECK(e.at("compensated") == true);
    CHECK(std::string(e.at("error").as_string()) == "node 'ship' failed: carrier down");
    CHECK(e.at("context").at("reserved") == false);
    CHECK(e.at("context").at("charged") == false);
    CHECK(e.at("context").at("failed_node") == "node 'ship'");
    CHECK(e.at("context").at("failure") == "carrier down");

    const auto history = f.history(admin, id);
    const auto* ship = run_of(history, "node:ship");
    REQUIRE(ship != nullptr);
    CHECK(ship->at("status") == "failed");
    CHECK(ship->at("attempts") == 2);
    CHECK(ship->at("error") == "carrier down");
    CHECK(run_of(history, "node:invoice") == nullptr);  // never reached
    // Compensation walks back in reverse completion order: pack, charge, reserve
    // (notify_warehouse has no compensate action); pack's compensation fails through its three
    // attempts and the older ones still run.
    std::vector<std::string> order;
    for (const auto& run : history) {
        if (run.at("phase") == "compensate") {
            order.emplace_back(run.at("node").as_string());
        }
    }
    CHECK(order == std::vector<std::string>{"pack", "charge", "reserve"});
    const auto* pack = run_of(history, "compensate:node:pack");
    REQUIRE(pack != nullptr);
    CHECK(pack->at("status") == "failed");
    CHECK(pack->at("attempts") == 3);
    CHECK(pack->at("error") == "packing station offline");
    CHECK(run_of(history, "compensate:node:charge")->at("status") == "succeeded");
    CHECK(run_of(history, "compensate:node:reserve")->at("status") == "succeeded");
    const auto* handler = run_of(history, "on_error");
    REQUIRE(handler != nullptr);
    CHECK(handler->at("status") == "succeeded");
    CHECK(handler->at("id").as_int64() >
          run_of(history, "compensate:node:reserve")->at("id").as_int64());

    // A state machine whose entry action keeps failing compensates the states it entered.
    f.publish("application/yaml", R"yaml(
key: booking
kind: state_machine
initial: held
on_error: {kind: set, values: {handled: true}}
states:
  held:
    on_entry: {kind: set, values: {seat: 12}}
    compensate: {kind: set, values: {seat: null}}
    transitions:
      - {event: confirm, target: confirmed}
  confirmed:
    retries: 2
    on_entry: {kind: fail, message: payment gateway down}
    transitions:
      - {event: finish, target: done}
  done: {final: true}
)yaml");
    const auto booking = f.start(admin, R"({"definition_key":"booking"})");
    f.wait_state(admin, booking, "held");
    REQUIRE(f.send(admin, booking, "confirm").status == 202);
    const auto failed = f.wait_status(admin, booking, "failed");
    CHECK(failed.at("compensated") == true);
    CHECK(failed.at("context").at("seat").is_null());
    CHECK(failed.at("context").at("handled") == true);
    CHECK(std::string(failed.at("error").as_string()).find("state 'confirmed' on_entry failed") ==
          0);
    const auto booking_history = f.history(admin, booking);
    CHECK(run_of(booking_history, "entry:confirmed#1")->at("attempts") == 3);
    CHECK(run_of(booking_history, "compensate:entry:held#1") != nullptr);
}

TEST_CASE("workflows: the nodes of a parallel group run at the same time", "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    // Each call waits until both lookups have arrived: run one after the other, the first would
    // wait in vain and answer that it was alone.
    std::mutex mutex;
    std::condition_variable arrived;
    int calls = 0;
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes = [&](const inngest::HttpRequest&) -> std::optional<inngest::HttpResponse> {
        std::unique_lock lock(mutex);
        ++calls;
        arrived.notify_all();
        const bool together = arrived.wait_for(lock, 5s, [&] { return calls >= 2; });
        return inngest::HttpResponse{
            200, {}, together ? "{\"together\":true}" : "{\"together\":false}"};
    };
    inngest::HttpServer hook(options);
    hook.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    const auto url = "http://127.0.0.1:" + std::to_string(hook.port());
    Flows f{t, admin};
    f.publish("application/json",
              R"({"key":"lookups","kind":"dag","nodes":[
                  {"id":"triage","action":{"kind":"noop"}},
                  {"id":"crm","depends_on":["triage"],"action":{"kind":"http","url":")" +
                  url + R"(/crm","method":"GET"}},
                  {"id":"erp","depends_on":["triage"],"action":{"kind":"http","url":")" +
                  url +
                  R"(/erp","method":"GET"}},
                  {"id":"respond","depends_on":["crm","erp"],"action":{"kind":"noop"}}]})");
    const auto id = f.start(admin, R"({"definition_key":"lookups"})");
    const auto e = f.wait_status(admin, id, "completed");
    const auto& nodes = e.at("context").at("nodes");
    CHECK(nodes.at("crm").at("body") == R"({"together":true})");
    CHECK(nodes.at("erp").at("body") == R"({"together":true})");
}

TEST_CASE("workflows: executions pause, resume and cancel, and only admins may",
          "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    const auto alice = t.token("acme", "alice");
    Flows f{t, admin};
    f.publish("application/yaml", kOrderYaml);
    const auto id = f.start(alice, R"({"definition_key":"order"})");
    f.wait_state(alice, id, "created");
    const auto base = "/api/v1/workflows/executions/" + std::to_string(id);
    CHECK(t.call("POST", base + "/pause", alice).status == 403);
    const auto paused = t.call("POST", base + "/pause", admin);
    REQUIRE(paused.status == 200);
    CHECK(paused.body.at("status") == "paused");
    CHECK(t.call("POST", base + "/pause", admin).status == 409);
    // An event is accepted while paused but applied only after the resume.
    REQUIRE(f.send(alice, id, "pay", R"({"amount":100})").status == 202);
    f.settle();
    auto e = t.call("GET", base, alice).body;
    CHECK(e.at("current_state") == "created");
    CHECK(e.at("target_state") == "paid");
    REQUIRE(t.call("POST", base + "/resume", admin).status == 200);
    f.wait_state(alice, id, "paid");
    CHECK(t.call("POST", base + "/resume", admin).status == 409);

    // A reason that is not text is refused by name, and the execution runs on.
    const auto refused = t.call("POST", base + "/cancel", admin, R"({"reason":42})");
    CHECK(refused.status == 422);
    CHECK(refused.body.at("error").at("details").at("fields").as_object().contains("reason"));
    CHECK(t.call("GET", base, alice).body.at("status") == "running");
    const auto cancelled = t.call("POST", base + "/cancel", admin, R"({"reason":"customer left"})");
    REQUIRE(cancelled.status == 200);
    CHECK(cancelled.body.at("status") == "cancelled");
    CHECK(cancelled.body.at("error") == "cancelled by root: customer left");
    CHECK(cancelled.body.at("allowed_events").as_array().empty());
    const auto late = f.send(alice, id, "ship");
    CHECK(late.status == 409);
    CHECK(t.call("POST", base + "/cancel", admin).status == 409);
    CHECK(t.call("POST", base + "/resume", admin).status == 409);
    // The run stops at its next look and nothing more is recorded.
    f.settle();
    CHECK(t.call("GET", base, alice).body.at("status") == "cancelled");
    CHECK(run_of(f.history(alice, id), "entry:shipped#1") == nullptr);
}

TEST_CASE(
    "workflows: a tenant's quota holds its executions back by priority, and a paused DAG waits",
    "[app][workflows]") {
    AppUnderTest t(AppUnderTestOptions{.workflows_tenant_concurrency = 1});
    const auto admin = t.token("acme", "root", {"admin"});
    const auto other_admin = t.token("globex", "root", {"admin"});
    std::mutex mutex;
    std::condition_variable released;
    bool release = false;
    std::atomic<int> calls{0};
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes = [&](const inngest::HttpRequest&) -> std::optional<inngest::HttpResponse> {
        ++calls;
        std::unique_lock lock(mutex);
        released.wait_for(lock, 20s, [&] { return release; });
        return inngest::HttpResponse{200, {}, "{\"ok\":true}"};
    };
    inngest::HttpServer hook(options);
    hook.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    Flows f{t, admin};
    const std::string slow = R"({"key":"slow","kind":"dag","nodes":[{"id":"call",
      "action":{"kind":"http","url":"http://127.0.0.1:)" +
                             std::to_string(hook.port()) + R"(/hold","method":"POST"}},
      {"id":"after","depends_on":["call"],"action":{"kind":"noop"}}]})";
    f.publish("application/json", slow);
    f.publish("application/json",
              R"({"key":"quick","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"}}]})");
    Flows g{t, other_admin};
    g.publish("application/json",
              R"({"key":"quick","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"}}]})");

    const auto first = f.start(admin, R"({"definition_key":"slow"})");
    for (int i = 0; i < 400 && calls == 0; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(calls == 1);  // the first execution holds the tenant's one slot in its HTTP call
    const auto low = f.start(admin, R"({"definition_key":"quick","priority":0})");
    const auto high = f.start(admin, R"({"definition_key":"quick","priority":600})");
    // Another tenant's execution is not held back by acme's quota.
    const auto elsewhere = g.start(other_admin, R"({"definition_key":"quick"})");
    g.wait_status(other_admin, elsewhere, "completed");
    for (const auto id : {low, high}) {
        const auto e = t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id), admin);
        CHECK(e.body.at("status") == "queued");
        CHECK(e.body.at("started_at").is_null());
    }
    // The other tenant sees none of acme's rows.
    CHECK(
        t.call("GET", "/api/v1/workflows/executions/" + std::to_string(low), other_admin).status ==
        404);
    // Paused in the middle of its first level, the slow DAG finishes that level and waits.
    const auto first_base = "/api/v1/workflows/executions/" + std::to_string(first);
    REQUIRE(t.call("POST", first_base + "/pause", admin).status == 200);
    {
        std::lock_guard lock(mutex);
        release = true;
    }
    released.notify_all();
    const auto low_done = f.wait_status(admin, low, "completed");
    const auto high_done = f.wait_status(admin, high, "completed");
    // The higher priority went first once the slot was free.
    const auto high_run = f.history(admin, high).at(0).at("id").as_int64();
    const auto low_run = f.history(admin, low).at(0).at("id").as_int64();
    CHECK(high_run < low_run);
    CHECK(std::string(high_done.at("started_at").as_string()) <=
          std::string(low_done.at("started_at").as_string()));
    // The paused one let them run (a wait holds no slot) and ran nothing after its level.
    const auto held = t.call("GET", first_base, admin).body;
    CHECK(held.at("status") == "paused");
    CHECK(run_of(f.history(admin, first), "node:call") != nullptr);
    CHECK(run_of(f.history(admin, first), "node:after") == nullptr);
    REQUIRE(t.call("POST", first_base + "/resume", admin).status == 200);
    f.wait_status(admin, first, "completed");
    CHECK(run_of(f.history(admin, first), "node:after") != nullptr);
}

TEST_CASE(
    "workflows: an event sent while the run's wait waits for the tenant's slot is applied once "
    "the slot is free",
    "[app][workflows]") {
    // The run looked for events, found none, and its next call, the one that sets up its wait
    // for a wake, is held while another execution holds the tenant's one slot. The event sent
    // meanwhile and its wakes (at once, 2 s and 15 s later) find no wait: the run must still see
    // the event once it goes on, not sleep for a week.
    AppUnderTest t(AppUnderTestOptions{.workflows_tenant_concurrency = 1});
    const auto admin = t.token("acme", "root", {"admin"});
    Flows f{t, admin};
    f.publish("application/yaml",
              "key: door\nkind: state_machine\ninitial: closed\nstates:\n"
              "  closed:\n    transitions:\n      - {event: open, target: opened}\n"
              "  opened:\n    final: true\n");
    f.publish("application/json",
              R"({"key":"quick","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"}}]})");
    const auto door = f.start(admin, R"({"definition_key":"door"})");
    f.wait_state(admin, door, "closed");
    f.settle();
    const auto base = "/api/v1/workflows/executions/" + std::to_string(door);
    REQUIRE(t.call("POST", base + "/pause", admin).status == 200);
    f.settle();

    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 3);
    // Sessions of this database waiting for a lock: on a table, or on a row.
    const auto waiting = [&](bool on_table) {
        return riveredge::core::db::transact(
            owner, std::nullopt, [&](riveredge::core::db::Transaction& tx) {
                return tx.exec(
                             "SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON "
                             "a.pid = l.pid WHERE NOT l.granted AND a.datname = "
                             "current_database() AND (l.locktype = 'relation') = $1::boolean",
                             {on_table})
                           .integer(0, "n") > 0;
            });
    };
    const auto calls_waiting = [&] {
        const auto page = call_url("GET", t.app().executor_url() + "/metrics", kExecutorKey);
        return page.status == 200 &&
               std::string(page.body.as_string()).find("inngest_executor_calls_waiting 1") !=
                   std::string::npos;
    };
    const auto until = [](const std::function<bool()>& done) {
        for (int i = 0; i < 400 && !done(); ++i) {
            std::this_thread::sleep_for(25ms);
        }
        return done();
    };
    // Resumed, the run looks for events behind this lock, its call holding the tenant's slot.
    auto events_locked = std::make_unique<riveredge::core::db::Transaction>(owner, std::nullopt);
    events_locked->exec("LOCK TABLE workflow_events IN ACCESS EXCLUSIVE MODE");
    REQUIRE(t.call("POST", base + "/resume", admin).status == 200);
    REQUIRE(until([&] { return waiting(true); }));
    // Another execution's first call waits for the slot; once it has it, it stays in it behind
    // a lock on its row.
    const auto quick = f.start(admin, R"({"definition_key":"quick"})");
    auto quick_locked = std::make_unique<riveredge::core::db::Transaction>(
        owner, riveredge::core::TenantId::trusted("acme"));
    REQUIRE(
        quick_locked->exec("SELECT id FROM workflow_executions WHERE id = $1 FOR UPDATE", {quick})
            .size() == 1);
    REQUIRE(until(calls_waiting));
    // The look finds no event; the other execution takes the slot, and the door's next call, the
    // one that sets up its wait, is held.
    events_locked.reset();
    REQUIRE(until([&] { return waiting(false); }));
    REQUIRE(until(calls_waiting));

    REQUIRE(f.send(admin, door, "open").status == 202);
    std::this_thread::sleep_for(18s);  // past the last wake
    CHECK(t.call("GET", base, admin).body.at("current_state") == "closed");
    quick_locked.reset();
    f.wait_status(admin, quick, "completed");
    f.wait_state(admin, door, "opened");
    f.wait_status(admin, door, "completed");
}

TEST_CASE(
    "workflows: a retry waits its delay on the app's clock, and script and HTTP actions run "
    "through the tenant's capabilities",
    "[app][workflows]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto admin = t.token("acme", "root", {"admin"});
    const auto script = t.call(
        "POST", "/api/v1/scripts", admin,
        json::serialize(json::object{
            {"name", "double"},
            {"code", "function main(args, ctx) { return { double: args.x * 2 }; }"},
            {"parameters",
             json::array{json::object{{"name", "x"}, {"type", "number"}, {"required", true}}}}}));
    INFO(json::serialize(script.body));
    REQUIRE(script.status == 201);
    Flows f{t, admin};
    f.publish("application/yaml",
              "key: compute\nkind: dag\nnodes:\n"
              "  - id: compute\n    action: {kind: script, script_id: " +
                  std::to_string(script.body.at("id").as_int64()) +
                  ", arguments: {x: 21}}\n"
                  "  - id: flaky\n    depends_on: [compute]\n    retries: 2\n"
                  "    retry_delay_seconds: 30\n"
                  "    action: {kind: fail, message: not yet, times: 1}\n");
    const auto id = f.start(admin, R"({"definition_key":"compute"})");
    const json::object* flaky = nullptr;
    json::array history;
    for (int i = 0; i < 400 && (flaky == nullptr || flaky->at("status") != "retrying"); ++i) {
        std::this_thread::sleep_for(25ms);
        history = f.history(admin, id);
        flaky = run_of(history, "node:flaky");
    }
    REQUIRE(flaky != nullptr);
    CHECK(flaky->at("status") == "retrying");
    CHECK(flaky->at("attempts") == 1);
    CHECK(flaky->at("error") == "not yet");
    // The second attempt waits for the clock.
    REQUIRE(t.app().executor()->wait_idle(10s));
    CHECK(t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id), admin)
              .body.at("status") == "running");
    clock->advance(31s);
    t.app().executor()->poke();
    const auto e = f.wait_status(admin, id, "completed");
    CHECK(e.at("context").at("nodes").at("compute").at("double") == 42);
    history = f.history(admin, id);
    CHECK(run_of(history, "node:flaky")->at("attempts") == 2);
    CHECK(run_of(history, "node:flaky")->at("output").at("recovered_at_attempt") == 2);
    CHECK(run_of(history, "node:compute")->at("action_kind") == "script");

    // An HTTP action to a host the tenant does not allow fails its node, named.
    f.publish("application/yaml",
              "key: call-out\nkind: dag\nnodes:\n"
              "  - id: call\n    action: {kind: http, url: 'http://example.com/hook'}\n");
    const auto refused = f.start(admin, R"({"definition_key":"call-out"})");
    const auto failed = f.wait_status(admin, refused, "failed");
    CHECK(failed.at("error") ==
          "node 'call' failed: host 'example.com' is not on the tenant's allow-list");
}

TEST_CASE("workflows: a script node's result nested as deep as a script may return is replayed",
          "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    // 32 levels of arrays and objects: the deepest result the script worker accepts.
    const auto script =
        t.call("POST", "/api/v1/scripts", admin,
               json::serialize(json::object{
                   {"name", "deep"},
                   {"code",
                    "function main(args, ctx) { var v = 'bottom'; for (var i = 0; i < 31; i++) "
                    "{ v = i % 2 ? [v] : { v: v }; } return { deep: v }; }"}}));
    INFO(json::serialize(script.body));
    REQUIRE(script.status == 201);
    Flows f{t, admin};
    const auto script_id = std::to_string(script.body.at("id").as_int64());
    f.publish("application/yaml",
              "key: deep\nkind: dag\nnodes:\n"
              "  - id: first\n    action: {kind: script, script_id: " +
                  script_id +
                  "}\n"
                  "  - id: second\n    depends_on: [first]\n"
                  "    action: {kind: script, script_id: " +
                  script_id + "}\n");
    const auto id = f.start(admin, R"({"definition_key":"deep"})");
    // The execution's context nests the result deeper than the tests' JSON client reads.
    const auto execution = [&] {
        inngest::detail::OutboundRequest request{"GET",
                                                 "http://127.0.0.1:" + std::to_string(t.port()) +
                                                     "/api/v1/workflows/executions/" +
                                                     std::to_string(id),
                                                 {{"Authorization", "Bearer " + admin}},
                                                 {},
                                                 10s,
                                                 std::nullopt};
        const auto response = inngest::detail::send_http(request);
        REQUIRE(response.has_value());
        REQUIRE(response->status == 200);
        json::parse_options deep;
        deep.max_depth = 128;
        return json::parse(response->body, {}, deep);
    };
    json::value e = execution();
    for (int i = 0; i < 600 && e.at("status") != "completed" && e.at("status") != "failed"; ++i) {
        std::this_thread::sleep_for(25ms);
        e = execution();
    }
    INFO(json::serialize(e));
    REQUIRE(e.at("status") == "completed");
    // The first node's result came back whole from the step state the second node's run read.
    json::value v = e.at("context").at("nodes").at("first").at("deep");
    int depth = 1;
    for (; !v.is_string(); ++depth) {
        v = v.is_array() ? json::value(v.as_array().at(0)) : json::value(v.as_object().at("v"));
    }
    CHECK(depth == 32);
    CHECK(v == "bottom");
    CHECK(e.at("context").at("nodes").at("second") == e.at("context").at("nodes").at("first"));
}

TEST_CASE(
    "workflows: a script action still carried out by an earlier attempt is waited for, not "
    "counted as a failed attempt of its node",
    "[app][workflows]") {
    // The executor gave up on the node's step (its call timeout) while the action's script run
    // went on; the step's retry meets that run, still leased by its carrier, and is answered
    // retry-after. Counted as the node's failure, a node with no retries would fail the
    // execution while its script succeeds.
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto admin = t.token("acme", "root", {"admin"});
    const auto script =
        t.call("POST", "/api/v1/scripts", admin,
               R"({"name":"double","code":"function main() { return {double: 42}; }"})");
    REQUIRE(script.status == 201);
    const auto script_id = script.body.at("id").as_int64();
    // The earlier attempt's run of execution 1's node, its carrier alive (a fresh lease).
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    const auto tenant = riveredge::core::TenantId::trusted("acme");
    const auto holder =
        riveredge::core::db::exec_once(
            owner, tenant,
            "INSERT INTO script_runs (tenant_id, script_id, version, mode, trigger, status, "
            "arguments, run_by, idempotency_key, started_at, lease_until) VALUES ($1, $2, 1, "
            "'sync', 'workflow', 'running', '{}', 'workflows', 'workflow-1-node:compute-0', "
            "now(), now() + interval '5 minutes') RETURNING id",
            {tenant, script_id})
            .integer(0, "id");
    Flows f{t, admin};
    f.publish("application/yaml",
              "key: compute\nkind: dag\nnodes:\n"
              "  - id: compute\n    action: {kind: script, script_id: " +
                  std::to_string(script_id) + "}\n");
    const auto id = f.start(admin, R"({"definition_key":"compute"})");
    REQUIRE(id == 1);
    const auto runs = [&] {
        return t.call("GET", "/api/v1/scripts/" + std::to_string(script_id) + "/runs", admin)
            .body.at("total")
            .as_int64();
    };
    // The node's step waits for the run (20 s), then is answered retry-after.
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(45s));
    CHECK(t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id), admin)
              .body.at("status") == "running");
    const auto history = f.history(admin, id);
    const auto* compute = run_of(history, "node:compute");
    REQUIRE(compute != nullptr);
    CHECK(compute->at("status") == "running");
    CHECK(runs() == 1);
    // The earlier attempt's run ends; the step, retried after it, gets it by its key.
    REQUIRE(riveredge::core::db::exec_once(
                owner, tenant,
                "UPDATE script_runs SET status = 'succeeded', result = '{\"double\":42}', "
                "console = '[]', console_truncated = false, duration_ms = 1, memory_bytes = 1, "
                "finished_at = now(), lease_until = NULL WHERE id = $1",
                {holder})
                .affected() == 1);
    clock->advance(std::chrono::minutes(2));
    t.app().executor()->poke();
    const auto e = f.wait_status(admin, id, "completed");
    CHECK(e.at("context").at("nodes").at("compute").at("double") == 42);
    CHECK(runs() == 1);
}

TEST_CASE("workflows: an order waiting for events survives a restart of the app, in one run",
          "[app][workflows]") {
    std::string database;
    std::int64_t id = 0;
    {
        AppUnderTest first;
        database = first.settings().database_url;
        const auto admin = first.token("acme", "root", {"admin"});
        Flows f{first, admin};
        f.publish("application/yaml", kOrderYaml);
        id = f.start(admin, R"({"definition_key":"order"})");
        f.wait_state(admin, id, "created");
        REQUIRE(f.send(admin, id, "pay", R"({"amount":100})").status == 202);
        f.wait_state(admin, id, "paid");
        f.settle();
    }  // the process is gone; its executor's run waits in the database
    AppUnderTest second(AppUnderTestOptions{.database_url = database});
    REQUIRE(second.app().wait_settled(10s));
    const auto resumed = second.app().executor()->runs("riveredge-flow-workflows-execution");
    REQUIRE(resumed.size() == 1);
    CHECK(resumed[0].waiting_for == std::vector<std::string>{"workflows/execution.wake"});
    const auto admin = second.token("acme", "root", {"admin"});
    Flows f{second, admin};
    REQUIRE(f.send(admin, id, "ship").status == 202);
    REQUIRE(f.send(admin, id, "deliver").status == 202);
    const auto done = f.wait_status(admin, id, "completed");
    CHECK(done.at("current_state") == "delivered");
    const auto runs = second.app().executor()->runs("riveredge-flow-workflows-execution");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].run_id == resumed[0].run_id);
}

TEST_CASE(
    "workflows: each retry attempt of an http node sends an Idempotency-Key of its own, so a "
    "receiver that replays answers by key lets the retry succeed",
    "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    // The first call fails with 500, and a key seen before gets its stored answer.
    riveredge_test::ReplayingReceiver hook;
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    Flows f{t, admin};
    f.publish("application/json",
              R"({"key":"charge","kind":"dag","nodes":[
                  {"id":"charge","retries":1,"action":{"kind":"http","url":"http://127.0.0.1:)" +
                  std::to_string(hook.port()) + R"(/charge"}}]})");
    const auto id = f.start(admin, R"({"definition_key":"charge"})");
    const auto e = f.wait(admin, id, [](const json::value& x) {
        return x.at("status") == "completed" || x.at("status") == "failed";
    });
    INFO(json::serialize(e));
    CHECK(e.at("status") == "completed");
    const auto keys = hook.keys();
    REQUIRE(keys.size() == 2);
    CHECK(!keys[0].empty());
    CHECK(keys[0] != keys[1]);
}

TEST_CASE(
    "workflows: an http node whose answer holds a NUL is called once and its output kept, the "
    "NUL as U+FFFD",
    "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    std::atomic<int> calls{0};
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes = [&](const inngest::HttpRequest&) -> std::optional<inngest::HttpResponse> {
        ++calls;
        return inngest::HttpResponse{200, {}, std::string("a\0b", 3)};
    };
    inngest::HttpServer hook(options);
    hook.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    Flows f{t, admin};
    f.publish("application/json",
              R"({"key":"fetch","kind":"dag","nodes":[
                  {"id":"fetch","action":{"kind":"http","url":"http://127.0.0.1:)" +
                  std::to_string(hook.port()) + R"(/nul"}}]})");
    const auto id = f.start(admin, R"({"definition_key":"fetch"})");
    const auto e = f.wait(admin, id, [](const json::value& x) {
        return x.at("status") == "completed" || x.at("status") == "failed";
    });
    INFO(json::serialize(e));
    CHECK(e.at("status") == "completed");
    f.settle();
    CHECK(calls == 1);
    const auto history = f.history(admin, id);
    const auto* fetch = run_of(history, "node:fetch");
    REQUIRE(fetch != nullptr);
    CHECK(fetch->at("status") == "succeeded");
    CHECK(fetch->at("attempts") == 1);
    CHECK(fetch->at("output").at("body") ==
          "a\xEF\xBF\xBD"
          "b");
    hook.stop();
}

TEST_CASE(
    "workflows: a state machine picked up by a new run keeps counting its visits, so a state "
    "entered again keeps every visit in its history",
    "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    const auto alice = t.token("acme", "alice");
    Flows f{t, admin};
    f.publish("application/yaml", R"yaml(
key: loop
kind: state_machine
initial: a
states:
  a:
    on_entry:
      - {kind: set, values: {at: a}}
      - {kind: notify, users: [alice], subject: "At a", body: "Back at a"}
    transitions:
      - {event: go, target: b}
  b:
    on_entry: {kind: set, values: {at: b}}
    transitions:
      - {event: back, target: a}
      - {event: done, target: end}
  end:
    final: true
)yaml");
    const auto id = f.start(admin, R"({"definition_key":"loop"})");
    f.wait_state(admin, id, "a");
    REQUIRE(f.send(admin, id, "go").status == 202);
    f.wait_state(admin, id, "b");
    f.settle();
    REQUIRE(t.wait_unread(alice, 1));
    // The run is replaced by a new one of the same event (an operator's rerun in Inngest): it
    // finds the execution in state b and goes on from there.
    auto& executor = *t.app().executor();
    const auto runs = executor.runs("riveredge-flow-workflows-execution");
    REQUIRE(runs.size() == 1);
    REQUIRE(executor.cancel(runs[0].run_id).has_value());
    REQUIRE(executor.rerun(runs[0].run_id).has_value());
    f.settle();
    REQUIRE(f.send(admin, id, "back").status == 202);
    f.wait_state(admin, id, "a");
    REQUIRE(f.send(admin, id, "go").status == 202);
    REQUIRE(f.send(admin, id, "done").status == 202);
    const auto done = f.wait_status(admin, id, "completed");
    CHECK(done.at("current_state") == "end");
    // Every entry has a row of its own, the second visit to a included, and its notice went out.
    std::vector<std::string> keys;
    for (const auto& run : f.history(admin, id, "?phase=entry")) {
        keys.emplace_back(run.at("step_key").as_string());
    }
    std::sort(keys.begin(), keys.end());
    CHECK(keys == std::vector<std::string>{"entry:a#1", "entry:a#2", "entry:b#1", "entry:b#2",
                                           "entry:end#1"});
    CHECK(t.wait_unread(alice, 2));
}

TEST_CASE("workflows: a run that fails before it begins ends its queued execution failed",
          "[app][workflows]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto admin = t.token("acme", "root", {"admin"});
    Flows f{t, admin};
    f.publish("application/yaml", kOrderYaml);
    // The database refuses every start of an execution (standing in for one that fails each
    // attempt of the run's first step).
    {
        riveredge::core::db::Pool pool(*t.settings().migration_database_url, 1);
        riveredge::core::db::transact(pool, std::nullopt, [](riveredge::core::db::Transaction& tx) {
            tx.exec(
                "CREATE FUNCTION refuse_start() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'starting is refused'; END $$");
            tx.exec(
                "CREATE TRIGGER refuse_start BEFORE UPDATE ON workflow_executions FOR EACH "
                "ROW WHEN (OLD.status = 'queued' AND NEW.status = 'running') EXECUTE "
                "FUNCTION refuse_start()");
        });
    }
    const auto id = f.start(admin, R"({"definition_key":"order"})");
    const auto status = [&] {
        return t.call("GET", "/api/v1/workflows/executions/" + std::to_string(id), admin)
            .body.at("status");
    };
    // The run retries its first step on the app's clock until it fails through its retries.
    for (int i = 0; i < 40 && status() != "failed"; ++i) {
        REQUIRE(t.app().executor()->wait_idle(10s));
        clock->advance(70s);
        t.app().executor()->poke();
        std::this_thread::sleep_for(100ms);
    }
    // The run failed before its first step ever succeeded; its failure handler ends the
    // execution, which never left "queued".
    const auto runs = t.app().executor()->runs("riveredge-flow-workflows-execution");
    REQUIRE(runs.size() == 1);
    REQUIRE(runs[0].status == inngest::local::RunStatus::kFailed);
    const auto failed = f.wait_status(admin, id, "failed");
    CHECK(failed.at("error").as_string().find("failed through its retries") != json::string::npos);
    CHECK(failed.at("ended_at").is_string());
}

TEST_CASE("workflows: rows are the tenant's own, and refusals hold", "[app][workflows]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "root", {"admin"});
    const auto alice = t.token("acme", "alice");
    const auto intruder = t.token("globex", "eve", {"admin"});
    Flows f{t, admin};
    const auto definition = f.publish("application/yaml", kOrderYaml);
    const auto id = f.start(alice, R"({"definition_key":"order"})");
    f.wait_state(alice, id, "created");
    const auto d = "/api/v1/workflows/definitions/" + std::to_string(definition);
    const auto e = "/api/v1/workflows/executions/" + std::to_string(id);
    for (const auto& [method, path] :
         std::vector<std::pair<std::string, std::string>>{{"GET", d},
                                                          {"GET", d + "/versions"},
                                                          {"GET", d + "/versions/1"},
                                                          {"POST", d + "/versions/1/publish"},
                                                          {"GET", e},
                                                          {"GET", e + "/history"},
                                                          {"GET", e + "/events"},
                                                          {"POST", e + "/pause"},
                                                          {"POST", e + "/resume"},
                                                          {"POST", e + "/cancel"}}) {
        INFO(method << " " << path);
        CHECK(t.call(method, path, intruder, "{}").status == 404);
    }
    CHECK(t.call("POST", e + "/events", intruder, R"({"event":"pay","data":{"amount":500}})")
              .status == 404);
    CHECK(t.call("POST", "/api/v1/workflows/executions", intruder,
                 R"({"definition_id":)" + std::to_string(definition) + "}")
              .status == 404);
    CHECK(t.call("GET", "/api/v1/workflows/executions", intruder).body.at("total") == 0);
    CHECK(t.call("GET", "/api/v1/workflows/definitions", intruder).body.at("total") == 0);
    // The intruder's own definition of the same key is separate.
    Flows g{t, intruder};
    g.publish("application/yaml", kOrderYaml);

    CHECK(t.call("GET", e).status == 401);
    CHECK(
        post_as(t, "/api/v1/workflows/definitions", alice, "application/yaml", kOrderYaml).status ==
        403);
    CHECK(t.call("POST", d + "/versions/1/publish", alice).status == 403);
    const auto bad_priority = t.call("POST", "/api/v1/workflows/executions", alice,
                                     R"({"definition_key":"order","priority":9000})");
    CHECK(bad_priority.status == 422);
    CHECK(
        bad_priority.body.at("error").at("details").at("fields").as_object().contains("priority"));
    CHECK(t.call("POST", "/api/v1/workflows/executions", alice, R"({"input":{}})").status == 422);
    CHECK(t.call("POST", e + "/events", alice, R"({"data":{}})").status == 422);
    CHECK(t.call("GET", e + "/history?phase=bogus", alice).status == 422);
    CHECK(t.call("GET", e + "/history?sort=bogus", alice).status == 422);
    CHECK(t.call("GET", "/api/v1/workflows/executions?status=lost", alice).status == 422);
    CHECK(t.call("GET", d + "/versions/9", alice).status == 404);
    CHECK(t.call("POST", d + "/versions/9/publish", admin).status == 404);
}

}  // namespace riveredge_test
