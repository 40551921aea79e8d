// Workflow definitions without a database: YAML typing, guard expressions, parallel groups.

#include "modules/workflows/definition.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

namespace json = boost::json;
using riveredge::workflows::compile_expression;
using riveredge::workflows::parallel_groups;
using riveredge::workflows::SourceError;
using riveredge::workflows::validate;
using riveredge::workflows::yaml_to_json;

TEST_CASE("YAML scalars are typed as YAML 1.2's core schema, quoted ones stay strings",
          "[workflows]") {
    const auto model = yaml_to_json(
        "a: 12\nb: -3.5\nc: true\nd: ~\ne: '12'\nf: \"true\"\ng: text\nh: [1, x]\ni:\nj: 1e3\n"
        "k: 0x10\nl: .inf\n");
    CHECK(model == json::parse(R"({"a":12,"b":-3.5,"c":true,"d":null,"e":"12","f":"true",
        "g":"text","h":[1,"x"],"i":null,"j":1000.0,"k":"0x10","l":".inf"})"));
    CHECK_THROWS_AS(yaml_to_json("a: [1, 2\n"), SourceError);
    // An alias bomb is refused instead of expanded without end.
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char name = 'b'; name <= 'h'; ++name) {
        const char previous = static_cast<char>(name - 1);
        bomb += std::string(1, name) + ": &" + name + " [*" + previous + ", *" + previous + ", *" +
                previous + ", *" + previous + ", *" + previous + ", *" + previous + ", *" +
                previous + ", *" + previous + ", *" + previous + ", *" + previous + "]\n";
    }
    CHECK_THROWS_AS(yaml_to_json(bomb), SourceError);
    // So is a document nested past any sensible depth (the parser's stack stays bounded).
    CHECK_THROWS_AS(yaml_to_json(std::string(100000, '[')), SourceError);
    CHECK_THROWS_AS(yaml_to_json(std::string(100, '[') + std::string(100, ']')), SourceError);
}

TEST_CASE("guard expressions compare, combine and read event, context and input", "[workflows]") {
    const auto scope =
        json::parse(R"({"event":{"name":"pay","data":{"amount":120,"currency":"CNY"}},
        "context":{"amount":100,"vip":true,"tags":{"region":"east"}},"input":{"order":"SO-1"}})")
            .as_object();
    const auto test = [&](const char* text) {
        return compile_expression(text).matches(scope);
    };
    const auto value = [&](const char* text) {
        const auto result = compile_expression(text).evaluate(scope);
        return result ? *result : json::value("error: " + result.error().message);
    };
    CHECK(test("event.data.amount >= context.amount"));
    CHECK_FALSE(test("event.data.amount < context.amount"));
    CHECK(test("event.data.currency == 'CNY' && context.vip"));
    CHECK(test("!(context.amount > 500) || false"));
    CHECK(test("context.tags.region == \"east\""));
    CHECK(test("event.data.amount - context.amount == 20"));
    CHECK(test("event.data.amount * 2 / 4 == 60"));
    CHECK(test("input.order == 'SO-1'"));
    CHECK(test("context.missing == null"));
    CHECK_FALSE(test("context.missing > 1"));  // a comparison with nothing is false
    CHECK_FALSE(test("event.data.currency > 5"));
    CHECK(test("-context.amount < 0"));
    CHECK(value("event.data.amount + 1") == 121);
    CHECK(value("'a' + 'b'") == "ab");
    CHECK(value("1 / 0").as_string().starts_with("error"));
    for (const char* bad : {"", "event.data.amount >", "(1 == 1", "secret.key == 1", "event..x",
                            "1 === 1", "'open", "a = 1", "1 2"}) {
        INFO(bad);
        CHECK_THROWS_AS(compile_expression(bad), std::invalid_argument);
    }
}

TEST_CASE("a DAG's parallel groups are its topological levels in definition order", "[workflows]") {
    const auto model = json::parse(R"({"key":"k","kind":"dag","nodes":[
        {"id":"e","depends_on":["c","d"],"action":{"kind":"noop"}},
        {"id":"a","action":{"kind":"noop"}},
        {"id":"d","depends_on":["b"],"action":{"kind":"noop"}},
        {"id":"b","action":{"kind":"noop"}},
        {"id":"c","depends_on":["a"],"action":{"kind":"noop"}},
        {"id":"f","depends_on":["a","e"],"action":{"kind":"noop"}}]})");
    CHECK(validate(model).empty());
    CHECK(json::value(parallel_groups(model.as_object())) ==
          json::parse(R"([["a","b"],["d","c"],["e"],["f"]])"));
    const auto cyclic = json::parse(R"({"key":"k","kind":"dag","nodes":[
        {"id":"a","action":{"kind":"noop"}},
        {"id":"b","depends_on":["a","d"],"action":{"kind":"noop"}},
        {"id":"c","depends_on":["b"],"action":{"kind":"noop"}},
        {"id":"d","depends_on":["c"],"action":{"kind":"noop"}}]})");
    const auto problems = validate(cyclic);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].element == "nodes");
    CHECK(problems[0].reason == "the dependencies form a cycle through b, c, d");
}

TEST_CASE("a definition must fit in one run's steps, and a state machine's events are capped",
          "[workflows]") {
    json::array nodes;
    for (int i = 0; i < 80; ++i) {
        nodes.push_back(json::object{{"id", "n" + std::to_string(i)},
                                     {"retries", 10},
                                     {"action", json::object{{"kind", "noop"}}}});
    }
    const json::value big{{"key", "big"}, {"kind", "dag"}, {"nodes", nodes}};
    const auto problems = validate(big);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].element == "nodes");
    CHECK(problems[0].reason.find("could take 887 steps") == 0);
    nodes.resize(20);
    CHECK(validate(json::value{{"key", "ok"}, {"kind", "dag"}, {"nodes", nodes}}).empty());

    const auto simple = json::parse(R"({"key":"s","kind":"state_machine","initial":"a","states":{
        "a":{"transitions":[{"event":"go","target":"b"}]},"b":{"final":true}}})");
    // Per event: its look and wait, apply, entry.
    CHECK(riveredge::workflows::max_events(simple.as_object()) == (800 - 8) / 4);
    const auto heavy = json::parse(R"({"key":"s","kind":"state_machine","initial":"a","states":{
        "a":{"retries":10,"retry_delay_seconds":5,"on_exit":{"kind":"noop"},
             "transitions":[{"event":"go","target":"a","action":{"kind":"noop"}},
                            {"event":"end","target":"b"}]},
        "b":{"final":true}}})");
    // Per event: look and wait, apply, and three steps of 21 attempts and sleeps each.
    CHECK(riveredge::workflows::max_events(heavy.as_object()) == (800 - 28) / 66);
    CHECK(validate(heavy).empty());
}

TEST_CASE(
    "validation names a node's missing or mistyped id and an integer past int64, throwing "
    "for neither",
    "[workflows]") {
    const auto check = [](const char* text, const std::string& element, const std::string& says) {
        INFO(text);
        std::vector<riveredge::workflows::Problem> problems;
        CHECK_NOTHROW(problems = validate(json::parse(text)));
        bool named = false;
        for (const auto& problem : problems) {
            named = named ||
                    (problem.element == element && problem.reason.find(says) != std::string::npos);
        }
        CHECK(named);
    };
    // A later node depending on a valid one, its own id absent or not a string.
    check(R"({"key":"k","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"}},
        {"depends_on":["a"],"action":{"kind":"noop"}}]})",
          "nodes[1].id", "must be 1 to 64 letters");
    check(R"({"key":"k","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"}},
        {"id":5,"depends_on":["a"],"action":{"kind":"noop"}}]})",
          "nodes[1].id", "must be 1 to 64 letters");
    // Integers past int64 (Boost.JSON keeps them as uint64) lie outside every range.
    check(R"({"key":"k","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"},
        "retries":18446744073709551615}]})",
          "nodes[0].retries", "must lie between 0 and 10");
    check(R"({"key":"k","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"},
        "retry_delay_seconds":9223372036854775808}]})",
          "nodes[0].retry_delay_seconds", "must lie between 0 and 3600");
    check(R"({"key":"k","kind":"dag","nodes":[{"id":"a",
        "action":{"kind":"fail","times":18446744073709551615}}]})",
          "nodes[0].action.times", "must lie between 1 and 100");
    check(R"({"key":"k","kind":"dag","nodes":[{"id":"a",
        "action":{"kind":"http","url":"https://x.example","timeout_seconds":18446744073709551615}}]})",
          "nodes[0].action.timeout_seconds", "must lie between 1 and 60");
    check(R"({"key":"k","kind":"dag","nodes":[{"id":"a",
        "action":{"kind":"script","script_id":18446744073709551615}}]})",
          "nodes[0].action.script_id", "stored script's id");
    check(R"({"key":"s","kind":"state_machine","initial":"a","states":{
        "a":{"retries":18446744073709551615,"transitions":[{"event":"go","target":"b"}]},
        "b":{"final":true}}})",
          "states.a.retries", "must lie between 0 and 10");
}
