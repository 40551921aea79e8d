// Process definitions: both import formats into one model, and validation that names the node
// or edge at fault.

#include "modules/approvals/definition.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace riveredge::approvals;
namespace json = boost::json;

namespace {

json::value fixture(const std::string& name) {
    std::ifstream in(std::string(PROJECT_SOURCE_DIR) + "/tests/app/fixtures/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str());
}

// The problems as "node:<id>: message" / "edge:<id>: message" lines.
std::vector<std::string> problems_of(const ProcessDefinition& d) {
    std::vector<std::string> out;
    for (const auto& p : validate(d)) {
        out.push_back(p.node   ? "node:" + *p.node + ": " + p.message
                      : p.edge ? "edge:" + *p.edge + ": " + p.message
                               : p.message);
    }
    return out;
}

bool mentions(const std::vector<std::string>& problems,
              const std::string& where,
              const std::string& words) {
    for (const auto& p : problems) {
        if (p.rfind(where, 0) == 0 && p.find(words) != std::string::npos) {
            return true;
        }
    }
    return false;
}

json::value leave_request() {
    return fixture("proflow_leave_request.json");
}

}  // namespace

TEST_CASE("the process format of the planning documents imports and validates", "[approvals]") {
    const auto d = import_definition(fixture("seed_user_registration.json"), "auto");
    CHECK(d.key == "userRegistration");
    CHECK(d.nodes.size() == 8);
    CHECK(d.edges.size() == 8);
    CHECK(d.node("wait_verification_event")->type == "signalCatchEvent");
    const auto* reject = &d.edges[0];
    for (const auto& e : d.edges) {
        if (e.id == "reject_path") {
            reject = &e;
        }
    }
    CHECK(reject->is_default);
    CHECK(reject->source == "email_gateway");
    CAPTURE(problems_of(d));
    CHECK(validate(d).empty());
}

TEST_CASE("ProFlow arrays and the editor's flattened maps import to the same definition",
          "[approvals]") {
    const auto arrays = import_definition(leave_request(), "proflow");
    CHECK(arrays.node("manager_approval")->name == "直属经理审批");
    CHECK(arrays.nodes.size() == 5);
    CHECK(validate(arrays).empty());
    // The editor's store: {id: node} maps, ids as keys.
    json::object flattened{{"key", "leave-request"}, {"name", "请假申请"}};
    const auto source = leave_request();
    json::object nodes;
    for (const auto& n : source.at("nodes").as_array()) {
        nodes[n.at("id").as_string()] = n;
    }
    json::object edges;
    for (const auto& e : source.at("edges").as_array()) {
        edges[e.at("id").as_string()] = e;
    }
    flattened["flattenNodes"] = nodes;
    flattened["flattenEdges"] = edges;
    const auto from_maps = import_definition(flattened, "auto");
    // Map order may differ; compare node and edge sets.
    const auto sorted = [](ProcessDefinition d) {
        std::sort(d.nodes.begin(), d.nodes.end(), [](auto& a, auto& b) { return a.id < b.id; });
        std::sort(d.edges.begin(), d.edges.end(), [](auto& a, auto& b) { return a.id < b.id; });
        return json::serialize(d.to_json());
    };
    CHECK(sorted(arrays) == sorted(from_maps));
    // The UI fields are gone; the model round-trips through its JSON.
    CHECK(json::serialize(arrays.to_json()).find("position") == std::string::npos);
    CHECK(json::serialize(ProcessDefinition::from_json(arrays.to_json()).to_json()) ==
          json::serialize(arrays.to_json()));
}

TEST_CASE("invalid definitions are refused with the node or edge named", "[approvals]") {
    const auto broken = [](const std::function<void(json::object&)>& edit) {
        auto source = leave_request().as_object();
        edit(source);
        return problems_of(import_definition(source, "proflow"));
    };
    const auto node_data = [](json::object& s, const std::string& id) -> json::object& {
        for (auto& n : s["nodes"].as_array()) {
            if (n.at("id") == json::value(id)) {
                return n.as_object()["data"].as_object()["bpmn"].as_object();
            }
        }
        throw std::logic_error("no node " + id);
    };
    const auto edge = [](json::object& s, const std::string& id) -> json::object& {
        for (auto& e : s["edges"].as_array()) {
            if (e.at("id") == json::value(id)) {
                return e.as_object();
            }
        }
        throw std::logic_error("no edge " + id);
    };

    CHECK(mentions(broken([](json::object& s) {
                       s["nodes"].as_array().push_back(json::parse(
                           R"({"id":"start2","type":"startEvent","data":{"bpmn":{}}})"));
                   }),
                   "node:start2", "exactly one start event"));
    CHECK(mentions(broken([&](json::object& s) { edge(s, "e5")["target"] = "nowhere"; }), "edge:e5",
                   "dangling"));
    CHECK(mentions(broken([&](json::object& s) { edge(s, "e3").erase("data"); }), "edge:e3",
                   "needs a condition"));
    CHECK(mentions(broken([&](json::object& s) {
                       edge(s, "e3")["data"] = json::parse(R"({"condition":"${amount >= }"})");
                   }),
                   "edge:e3", "does not compile"));
    CHECK(mentions(
        broken([&](json::object& s) { node_data(s, "finance_approval").erase("approvers"); }),
        "node:finance_approval", "needs approvers"));
    CHECK(mentions(broken([&](json::object& s) {
                       node_data(s, "manager_approval")["deadline"] =
                           json::parse(R"({"duration":"2 days"})");
                   }),
                   "node:manager_approval", "ISO 8601"));
    CHECK(mentions(
        broken([&](json::object& s) { node_data(s, "finance_approval")["mode"] = "ratio"; }),
        "node:finance_approval", "ratio"));
    CHECK(mentions(
        broken([&](json::object& s) {
            s["nodes"].as_array().push_back(json::parse(
                R"({"id":"orphan","type":"userTask","data":{"bpmn":{"approvers":[{"type":"initiator"}]}}})"));
            s["edges"].as_array().push_back(
                json::parse(R"({"id":"e9","source":"orphan","target":"end"})"));
        }),
        "node:orphan", "cannot be reached"));
    CHECK(mentions(broken([](json::object& s) {
                       s["nodes"].as_array().push_back(
                           json::parse(R"({"id":"x","type":"sendTask","data":{}})"));
                   }),
                   "node:x", "unknown element type"));

    // A way back to the manager: a cycle, allowed only as an explicit return path.
    const auto loop = [&](bool marked) {
        return broken([&](json::object& s) {
            s["edges"].as_array().push_back(json::parse(
                R"({"id":"back","source":"amount_gateway","target":"manager_approval","data":{"condition":"${returned == true}","priority":0}})"));
            if (marked) {
                edge(s, "back")["data"].as_object()["isReturn"] = true;
            }
        });
    };
    const auto unmarked = loop(false);
    CHECK(std::any_of(unmarked.begin(), unmarked.end(), [](const std::string& p) {
        return p.find("closes a cycle") != std::string::npos;
    }));
    const auto marked = loop(true);
    CAPTURE(marked);
    CHECK(std::none_of(marked.begin(), marked.end(),
                       [](const std::string& p) { return p.find("cycle") != std::string::npos; }));

    // A parallel fork whose branches never meet again.
    const auto fork = import_definition(json::parse(R"({"nodes":[
        {"id":"s","type":"startEvent"},{"id":"f","type":"parallelGateway"},
        {"id":"a","type":"userTask","data":{"bpmn":{"approvers":[{"type":"initiator"}]}}},
        {"id":"b","type":"userTask","data":{"bpmn":{"approvers":[{"type":"initiator"}]}}},
        {"id":"e1","type":"endEvent"},{"id":"e2","type":"endEvent"}],
      "edges":[{"id":"1","source":"s","target":"f"},{"id":"2","source":"f","target":"a"},
        {"id":"3","source":"f","target":"b"},{"id":"4","source":"a","target":"e1"},
        {"id":"5","source":"b","target":"e2"}]})"),
                                        "proflow");
    CHECK(mentions(problems_of(fork), "node:f", "never meet"));

    CHECK_THROWS_AS(import_definition(json::parse("[1,2]"), "auto"), ImportError);
    CHECK_THROWS_AS(import_definition(json::parse(R"({"nodes":7})"), "proflow"), ImportError);
    CHECK_THROWS_AS(import_definition(json::parse(R"({"elements":{}})"), "seed"), ImportError);
}

TEST_CASE("boundary events: attached to the right task, started by it, named when misused",
          "[approvals]") {
    // review (a user task) has a timer boundary; charge (a service task) an error boundary.
    const auto with = [](const std::string& extra_nodes, const std::string& extra_edges) {
        return problems_of(import_definition(json::parse(R"({"nodes":[
        {"id":"s","type":"startEvent"},
        {"id":"review","type":"userTask","data":{"bpmn":{"approvers":[{"type":"initiator"}]}}},
        {"id":"charge","type":"serviceTask","data":{"bpmn":{"implementation":"temporal_activity",
          "activity_name":"Charge"}}},
        {"id":"fix","type":"userTask","data":{"bpmn":{"approvers":[{"type":"initiator"}]}}},
        {"id":"e","type":"endEvent"}, {"id":"e2","type":"endEvent"})" +
                                                         extra_nodes + R"(],
      "edges":[{"id":"1","source":"s","target":"review"},{"id":"2","source":"review",
        "target":"charge"},{"id":"3","source":"charge","target":"e"},
        {"id":"4","source":"fix","target":"e2"})" + extra_edges +
                                                         "]}"),
                                             "proflow"));
    };
    const std::string late =
        R"(,{"id":"late","type":"boundaryEvent","data":{"bpmn":{"attached_to":"review",)"
        R"("duration":"PT1H"}}},{"id":"declined","type":"boundaryEvent","data":{"bpmn":)"
        R"({"attached_to":"charge","event":"error"}}})";
    const std::string late_edges =
        R"(,{"id":"5","source":"late","target":"fix"},{"id":"6","source":"declined","target":"e"})";
    // Valid: a boundary has no incoming flow, and what follows it is reached through its task.
    const auto valid = with(late, late_edges);
    CAPTURE(valid);
    CHECK(valid.empty());

    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("nowhere","duration":"PT1H"}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b", "attached to a task of this process"));
    CHECK(mentions(with(late, late_edges + R"(,{"id":"7","source":"s","target":"late"})"),
                   "node:late", "no incoming flow"));
    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("charge","duration":"PT1H"}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b", "timer boundary event is attached to a user or manual task"));
    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("review","duration":"soon"}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b", "ISO 8601"));
    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("review","event":"error"}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b",
                   "service, script or business rule task, a call activity or a sub-process"));
    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("charge","event":"error","cancel_activity":false}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b", "always interrupts"));
    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("review","event":"escalation"}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b", "a timer, a signal, a message, an error, a cancel or a compensation"));
    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("review","event":"message"}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b", "names its message"));
    CHECK(mentions(with(R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":)"
                        R"("charge","signal":"stop"}}})",
                        R"(,{"id":"5","source":"b","target":"fix"})"),
                   "node:b", "signal boundary event is attached to a user or manual task"));
    // Without the boundary, what it led to is unreachable.
    CHECK(mentions(with("", ""), "node:fix", "cannot be reached"));
}

TEST_CASE("sub-processes, error end events and transactions import and validate", "[approvals]") {
    // ProFlow: React Flow's parentId (or parentNode) names the container; a transaction is a
    // sub-process that compensates, an errorEndEvent an end event with an error_code.
    const auto proflow = import_definition(json::parse(R"({"nodes":[
        {"id":"s","type":"startEvent"},{"id":"tx","type":"transaction"},
        {"id":"in","type":"startEvent","parentNode":"tx"},
        {"id":"err","type":"errorEndEvent","parentId":"tx","data":{"bpmn":{"error_code":"E"}}},
        {"id":"b","type":"boundaryEvent","data":{"bpmn":{"attached_to":"tx","event":"error"}}},
        {"id":"e","type":"endEvent"}],"edges":[{"id":"1","source":"s","target":"tx"},
        {"id":"2","source":"in","target":"err"},{"id":"3","source":"tx","target":"e"},
        {"id":"4","source":"b","target":"e"}]})"),
                                           "proflow");
    CAPTURE(problems_of(proflow));
    CHECK(problems_of(proflow).empty());
    CHECK(proflow.node("tx")->type == "subProcess");
    CHECK(is_transaction(*proflow.node("tx")));
    CHECK(proflow.node("in")->parent == "tx");
    CHECK(end_throws(*proflow.node("err")) == "error");
    CHECK(error_code_of(*proflow.node("err")) == "E");
    CHECK(proflow.inside("err", "tx"));
    // The compiled form keeps the containers.
    CHECK(ProcessDefinition::from_json(proflow.to_json()).node("err")->parent == "tx");

    // The planning documents' format: `parent` on the element (or in its config).
    const auto seed = import_definition(json::parse(R"({"process":{"key":"p"},"elements":[
        {"id":"s","type":"startEvent","outgoing":["sub"]},
        {"id":"sub","type":"subProcess","outgoing":["e"]},
        {"id":"in","type":"startEvent","parent":"sub","outgoing":["out"]},
        {"id":"out","type":"endEvent","config":{"parent":"sub"}},
        {"id":"e","type":"endEvent"}]})"),
                                        "seed");
    CAPTURE(problems_of(seed));
    CHECK(problems_of(seed).empty());
    CHECK(seed.node("out")->parent == "sub");
    CHECK(seed.inner_start("sub")->id == "in");

    // Misuse, each named.
    const auto problems = [](const std::string& nodes, const std::string& edges) {
        return problems_of(import_definition(
            json::parse(R"({"nodes":[{"id":"s","type":"startEvent"},{"id":"e","type":"endEvent"},)"
                        R"({"id":"sub","type":"subProcess"},)" +
                        nodes +
                        R"(],"edges":[{"id":"1","source":"s","target":"sub"},)"
                        R"({"id":"2","source":"sub","target":"e"})" +
                        edges + "]}"),
            "proflow"));
    };
    // No start event inside.
    CHECK(mentions(problems(R"({"id":"out","type":"endEvent","parentId":"sub"})", ""), "node:sub",
                   "exactly one start event inside"));
    // No end event inside.
    CHECK(mentions(problems(R"({"id":"in","type":"startEvent","parentId":"sub"},)"
                            R"({"id":"t","type":"userTask","parentId":"sub","data":{"bpmn":)"
                            R"({"assignee":"${initiator}"}}})",
                            R"(,{"id":"3","source":"in","target":"t"})"),
                   "node:sub", "an end event inside"));
    const std::string inner = R"({"id":"in","type":"startEvent","parentId":"sub"},)"
                              R"({"id":"out","type":"endEvent","parentId":"sub"})";
    CHECK(problems(inner, R"(,{"id":"3","source":"in","target":"out"})").empty());
    // A flow across the border.
    CHECK(mentions(problems(inner, R"(,{"id":"3","source":"in","target":"e"})"), "edge:3",
                   "crosses the border of sub-process 'sub'"));
    // An error end event without a code.
    CHECK(mentions(problems(inner + R"(,{"id":"x","type":"errorEndEvent","parentId":"sub"})",
                            R"(,{"id":"3","source":"in","target":"out"})"),
                   "node:x", "error_code"));
    // A cancel end event outside a transaction.
    CHECK(mentions(problems(inner + R"(,{"id":"x","type":"cancelEndEvent","parentId":"sub"})",
                            R"(,{"id":"3","source":"in","target":"out"})"),
                   "node:x", "inside a transaction"));
    // A container that is not a sub-process.
    CHECK(mentions(problems(inner + R"(,{"id":"x","type":"endEvent","parentId":"e"})",
                            R"(,{"id":"3","source":"in","target":"out"})"),
                   "node:x", "is not a sub-process"));
    // Boundaries a sub-process cannot have, or not where it sits.
    CHECK(mentions(problems(inner + R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":)"
                                    R"({"attached_to":"sub","event":"cancel"}}})",
                            R"(,{"id":"3","source":"in","target":"out"},)"
                            R"({"id":"4","source":"b","target":"e"})"),
                   "node:b", "a cancel boundary event is attached to a transaction"));
    CHECK(mentions(problems(inner + R"(,{"id":"b","type":"boundaryEvent","parentId":"sub",)"
                                    R"("data":{"bpmn":{"attached_to":"sub","duration":"PT1H"}}},)"
                                    R"({"id":"e2","type":"endEvent","parentId":"sub"})",
                            R"(,{"id":"3","source":"in","target":"out"},)"
                            R"({"id":"4","source":"b","target":"e2"})"),
                   "node:b", "sits where its task does"));
    CHECK(mentions(problems(inner + R"(,{"id":"b","type":"boundaryEvent","data":{"bpmn":)"
                                    R"({"attached_to":"sub","event":"error"}}},)"
                                    R"({"id":"c","type":"boundaryEvent","data":{"bpmn":)"
                                    R"({"attached_to":"sub","event":"error"}}})",
                            R"(,{"id":"3","source":"in","target":"out"},)"
                            R"({"id":"4","source":"b","target":"e"},)"
                            R"({"id":"5","source":"c","target":"e"})"),
                   "node:b", "at most one error boundary event without an error_code"));
}

TEST_CASE("a timer's date is one the engine can read when the timer is reached", "[approvals]") {
    const auto timer_problems = [](const std::string& date) {
        auto source = leave_request().as_object();
        source["nodes"].as_array().push_back(
            json::parse(R"({"id":"wait","type":"timerCatchEvent","data":{"bpmn":{"date":")" + date +
                        R"("}}})"));
        return problems_of(import_definition(source, "proflow"));
    };
    for (const char* ok : {"2030-01-01T09:00:00Z", "2030-01-01 09:00:00.25+08:00"}) {
        CAPTURE(ok);
        CHECK_FALSE(mentions(timer_problems(ok), "node:wait", "RFC 3339"));
    }
    // Each matches RFC 3339's shape but is no time: the engine could not schedule it.
    for (const char* bad :
         {"2030-02-30T09:00:00Z", "0000-01-01T00:00:00Z", "2030-01-01T24:00:00Z",
          "2030-01-01T09:00:00+16:00", "2030-01-01T09:00:00.1234567890Z", "tomorrow"}) {
        CAPTURE(bad);
        CHECK(mentions(timer_problems(bad), "node:wait", "RFC 3339"));
    }
}

TEST_CASE("ISO 8601 durations", "[approvals]") {
    for (const char* ok : {"PT1H", "P2D", "P1W", "PT30M", "P1DT12H", "PT0.5S", "P1Y2M"}) {
        CAPTURE(ok);
        CHECK(valid_iso_duration(ok));
    }
    for (const char* bad : {"P", "PT", "1H", "P1H", "PT1D", "2 days", ""}) {
        CAPTURE(bad);
        CHECK_FALSE(valid_iso_duration(bad));
    }
    CHECK(unwrap_expression(" ${amount > 1} ") == "amount > 1");
    CHECK(unwrap_expression("amount > 1") == "amount > 1");
}

TEST_CASE("a definition of any size or shape is checked without exhausting the stack",
          "[approvals]") {
    // std::regex recursed once per digit: a duration of 30,000 of them took the server down.
    CHECK_FALSE(valid_iso_duration("P" + std::string(300000, '9') + "D"));
    auto source = leave_request().as_object();
    source["nodes"].as_array().push_back(
        json::parse(R"({"id":"wait","type":"timerCatchEvent","data":{"bpmn":{"duration":"P)" +
                    std::string(300000, '9') + R"(D"}}})"));
    CHECK(mentions(problems_of(import_definition(source, "proflow")), "node:wait", "duration"));

    // A chain of 50,000 nodes overflowed the cycle check's recursion; it is refused at import.
    const auto chain = [](std::size_t length) {
        json::array nodes{json::parse(R"({"id":"n0","type":"startEvent"})")};
        json::array edges;
        for (std::size_t i = 1; i < length; ++i) {
            const auto id = "n" + std::to_string(i);
            nodes.push_back(json::object{
                {"id", id}, {"type", i + 1 == length ? "endEvent" : "exclusiveGateway"}});
            edges.push_back(json::object{{"id", "e" + std::to_string(i)},
                                         {"source", "n" + std::to_string(i - 1)},
                                         {"target", id}});
        }
        return json::object{{"nodes", std::move(nodes)}, {"edges", std::move(edges)}};
    };
    CHECK_THROWS_AS(import_definition(chain(50000), "proflow"), ImportError);
    try {
        import_definition(chain(kMaxNodes + 1), "proflow");
        FAIL("a definition past the node limit was imported");
    } catch (const ImportError& error) {
        CHECK_THAT(error.message, Catch::Contains("at most 1000 nodes"));
    }
    // At the limit, a chain is checked (its cycle check walks it without recursion).
    const auto at_limit = problems_of(import_definition(chain(kMaxNodes), "proflow"));
    CAPTURE(at_limit);
    CHECK(at_limit.empty());
    json::array elements;
    for (std::size_t i = 0; i <= kMaxNodes + kMaxEdges; ++i) {
        elements.push_back(json::object{{"id", "x" + std::to_string(i)}, {"type", "manualTask"}});
    }
    CHECK_THROWS_AS(import_definition(json::object{{"elements", elements}}, "seed"), ImportError);
}

TEST_CASE("sub-processes nest at most 20 deep", "[approvals]") {
    // Each level a sub-process with its own start and end, inside the one before.
    const auto nested = [](int depth) {
        json::array nodes{json::parse(R"({"id":"start","type":"startEvent"})"),
                          json::parse(R"({"id":"end","type":"endEvent"})")};
        json::array edges{json::parse(R"({"id":"in","source":"start","target":"s1"})"),
                          json::parse(R"({"id":"out","source":"s1","target":"end"})")};
        for (int level = 1; level <= depth; ++level) {
            const auto s = "s" + std::to_string(level);
            json::object sub{{"id", s}, {"type", "subProcess"}};
            if (level > 1) {
                sub["parentId"] = "s" + std::to_string(level - 1);
            }
            nodes.push_back(std::move(sub));
            nodes.push_back(
                json::object{{"id", s + "-start"}, {"type", "startEvent"}, {"parentId", s}});
            nodes.push_back(
                json::object{{"id", s + "-end"}, {"type", "endEvent"}, {"parentId", s}});
            const auto inner = level < depth ? "s" + std::to_string(level + 1) : s + "-end";
            edges.push_back(
                json::object{{"id", s + "-a"}, {"source", s + "-start"}, {"target", inner}});
            if (level < depth) {
                edges.push_back(
                    json::object{{"id", s + "-b"}, {"source", inner}, {"target", s + "-end"}});
            }
        }
        return problems_of(
            import_definition(json::object{{"nodes", nodes}, {"edges", edges}}, "proflow"));
    };
    const auto ok = nested(kMaxNesting);
    CAPTURE(ok);
    CHECK(ok.empty());
    const auto deep = nested(kMaxNesting + 1);
    CAPTURE(deep);
    CHECK(mentions(deep, "node:s21", "nest at most 20 deep"));
}

TEST_CASE("a signal is never named as a message", "[approvals]") {
    // Messages wait beside signals as "message:<name>": a signal so named would act as one.
    auto source = leave_request().as_object();
    auto& nodes = source["nodes"].as_array();
    nodes.push_back(json::parse(
        R"({"id":"shout","type":"signalThrowEvent","data":{"bpmn":{"signal":"message:paid"}}})"));
    nodes.push_back(json::parse(
        R"({"id":"hear","type":"signalCatchEvent","data":{"bpmn":{"signal":"message:paid"}}})"));
    nodes.push_back(json::parse(
        R"({"id":"fine","type":"signalCatchEvent","data":{"bpmn":{"signal":"paid"}}})"));
    const auto problems = problems_of(import_definition(source, "proflow"));
    CAPTURE(problems);
    CHECK(mentions(problems, "node:shout", "does not start with 'message:'"));
    CHECK(mentions(problems, "node:hear", "does not start with 'message:'"));
    CHECK_FALSE(mentions(problems, "node:fine", "message:"));
}
