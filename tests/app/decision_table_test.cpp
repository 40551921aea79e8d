// Decision tables: the hit policies, what a cell may say, and a source's problems named by
// where they are.

#include "modules/approvals/decision_table.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace riveredge::approvals;
namespace json = boost::json;

namespace {

// Who approves a purchase: by amount and category, with a catch-all last.
json::object table(const char* policy) {
    auto source = json::parse(R"({
      "inputs": [{"name": "amount", "expression": "amount"},
                 {"name": "category", "expression": "category"}],
      "outputs": ["approver", "level"],
      "rules": [
        {"when": ["value >= 10000", "-"], "then": {"approver": "cfo", "level": 3}},
        {"when": ["value >= 1000", ["it", "hardware"]], "then": {"approver": "it_head", "level": 2}},
        {"when": [5, null], "then": {"approver": "five", "level": 0}},
        {"when": ["-", "-"], "then": {"approver": "manager", "level": 1}}
      ]})")
                      .as_object();
    source["hit_policy"] = policy;
    return source;
}

json::object variables(double amount, const char* category) {
    return json::object{{"amount", amount}, {"category", category}};
}

}  // namespace

TEST_CASE("decision tables: first, unique and collect", "[approvals]") {
    const auto first = table("first");
    CHECK(check_decision_table(first).empty());
    CHECK(evaluate_decision(first, variables(20000, "travel")).at("approver") == "cfo");
    CHECK(evaluate_decision(first, variables(2000, "hardware")).at("approver") == "it_head");
    CHECK(evaluate_decision(first, variables(2000, "travel")).at("approver") == "manager");
    // A number cell compares by value: 5 matches 5.0.
    CHECK(evaluate_decision(first, variables(5.0, "travel")).at("approver") == "five");

    // collect: every match, in rule order.
    const auto all = evaluate_decision(table("collect"), variables(20000, "it"));
    REQUIRE(all.is_array());
    REQUIRE(all.as_array().size() == 3);
    CHECK(all.as_array()[0].at("approver") == "cfo");
    CHECK(all.as_array()[1].at("approver") == "it_head");
    CHECK(all.as_array()[2].at("approver") == "manager");

    // unique: two matches are an error; no match is null.
    CHECK_THROWS_WITH(evaluate_decision(table("unique"), variables(20000, "it")),
                      Catch::Contains("unique"));
    auto narrow = table("unique");
    narrow["rules"].as_array().pop_back();  // no catch-all
    CHECK(evaluate_decision(narrow, variables(10, "travel")).is_null());
    CHECK(evaluate_decision(narrow, variables(2000, "it")).at("level") == 2);
}

TEST_CASE("decision tables: a source's problems are named where they are", "[approvals]") {
    const auto problems = [](const std::function<void(json::object&)>& edit) {
        auto source = table("first");
        edit(source);
        return check_decision_table(source);
    };
    const auto mentions = [](const std::vector<std::string>& found, const std::string& words) {
        return std::any_of(found.begin(), found.end(), [&](const std::string& p) {
            return p.find(words) != std::string::npos;
        });
    };
    CHECK(mentions(problems([](json::object& s) { s["hit_policy"] = "any"; }), "hit_policy"));
    CHECK(mentions(problems([](json::object& s) { s.erase("rules"); }), "rules"));
    CHECK(mentions(problems([](json::object& s) {
                       s["rules"].as_array()[1].as_object()["when"] = json::array{"-"};
                   }),
                   "rules[1].when: one cell per input"));
    CHECK(mentions(problems([](json::object& s) {
                       s["rules"].as_array()[0].as_object()["when"].as_array()[0] = "value >=";
                   }),
                   "rules[0].when[0]"));
    CHECK(mentions(problems([](json::object& s) {
                       s["rules"].as_array()[2].as_object()["then"] = json::object{{"boss", "x"}};
                   }),
                   "rules[2].then: 'boss' is not one of the outputs"));
    CHECK(mentions(problems([](json::object& s) {
                       s["inputs"].as_array()[1] = json::object{{"expression", "x"}};
                   }),
                   "inputs[1]"));
    CHECK(mentions(problems([](json::object& s) {
                       s["outputs"] = json::array{"approver", "approver"};
                   }),
                   "distinct"));
}
