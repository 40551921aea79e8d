#include "modules/approvals/decision_table.hpp"

#include "core/json/fields.hpp"
#include "modules/approvals/definition.hpp"

#include <inngest/local/expression.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace riveredge::approvals {

namespace {

namespace json = boost::json;
using inngest::local::Expression;

bool any_value(const json::value& cell) {
    return cell.is_null() ||
           (cell.is_string() && (cell.as_string().empty() || cell.as_string() == "-"));
}

// A number compares by value whatever its JSON kind (1 and 1.0 are equal).
bool same(const json::value& a, const json::value& b) {
    if (a.is_number() && b.is_number()) {
        return a.to_number<double>() == b.to_number<double>();
    }
    return a == b;
}

bool cell_matches(const json::value& cell,
                  const json::value& input,
                  const json::object& variables) {
    if (any_value(cell)) {
        return true;
    }
    if (cell.is_string()) {
        const auto compiled = Expression::compile(unwrap_expression(std::string(cell.as_string())));
        if (!compiled) {
            throw std::runtime_error("cell " + json::serialize(cell) +
                                     " does not compile: " + compiled.error().message);
        }
        auto scope = variables;
        scope["value"] = input;
        return compiled->matches(scope);
    }
    if (cell.is_array()) {
        const auto& options = cell.as_array();
        return std::any_of(options.begin(), options.end(),
                           [&](const json::value& option) { return same(option, input); });
    }
    return same(cell, input);
}

const json::array* array_at(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}

}  // namespace

std::vector<std::string> check_decision_table(const json::object& source) {
    std::vector<std::string> problems;
    const auto policy = core::string_field(source, "hit_policy");
    if (policy != "first" && policy != "unique" && policy != "collect") {
        problems.emplace_back("hit_policy: first, unique or collect");
    }
    const auto* inputs = array_at(source, "inputs");
    const auto* outputs = array_at(source, "outputs");
    const auto* rules = array_at(source, "rules");
    if (inputs == nullptr || inputs->empty()) {
        problems.emplace_back("inputs: one or more {name, expression}");
    }
    if (outputs == nullptr || outputs->empty()) {
        problems.emplace_back("outputs: one or more output names");
    }
    if (rules == nullptr || rules->empty()) {
        problems.emplace_back("rules: one or more {when, then}");
    }
    if (!problems.empty()) {
        return problems;
    }
    for (std::size_t i = 0; i < inputs->size(); ++i) {
        const auto where = "inputs[" + std::to_string(i) + "]";
        const auto* input = (*inputs)[i].if_object();
        if (input == nullptr || core::string_field(*input, "name").empty()) {
            problems.push_back(where + ": {name, expression}");
            continue;
        }
        const auto expression = core::string_field(*input, "expression");
        const auto compiled =
            Expression::compile(expression.empty() ? core::string_field(*input, "name")
                                                   : unwrap_expression(expression));
        if (!compiled) {
            problems.push_back(where + ".expression: " + compiled.error().message);
        }
    }
    std::set<std::string> names;
    for (const auto& output : *outputs) {
        if (!output.is_string() || output.as_string().empty() ||
            !names.insert(std::string(output.as_string())).second) {
            problems.emplace_back("outputs: distinct names, found " + json::serialize(output));
        }
    }
    for (std::size_t r = 0; r < rules->size(); ++r) {
        const auto where = "rules[" + std::to_string(r) + "]";
        const auto* rule = (*rules)[r].if_object();
        const auto* when = rule != nullptr ? array_at(*rule, "when") : nullptr;
        const auto* then = rule != nullptr ? rule->if_contains("then") : nullptr;
        if (when == nullptr || when->size() != inputs->size()) {
            problems.push_back(where + ".when: one cell per input (" +
                               std::to_string(inputs->size()) + ")");
        } else {
            for (std::size_t c = 0; c < when->size(); ++c) {
                const auto& cell = (*when)[c];
                if (cell.is_object()) {
                    problems.push_back(where + ".when[" + std::to_string(c) +
                                       "]: a value, a list of values or an expression");
                } else if (cell.is_string() && !any_value(cell)) {
                    const auto compiled =
                        Expression::compile(unwrap_expression(std::string(cell.as_string())));
                    if (!compiled) {
                        problems.push_back(where + ".when[" + std::to_string(c) +
                                           "]: " + compiled.error().message);
                    }
                }
            }
        }
        if (then == nullptr || !then->is_object()) {
            problems.push_back(where + ".then: an object of outputs");
            continue;
        }
        for (const auto& [name, value] : then->as_object()) {
            if (names.count(std::string(name)) == 0) {
                problems.push_back(where + ".then: '" + std::string(name) +
                                   "' is not one of the outputs");
            }
        }
    }
    return problems;
}

json::value evaluate_decision(const json::object& source, const json::object& variables) {
    const auto& inputs = source.at("inputs").as_array();
    json::array values;
    for (const auto& item : inputs) {
        const auto& input = item.as_object();
        const auto expression = core::string_field(input, "expression");
        const auto compiled = Expression::compile(
            expression.empty() ? core::string_field(input, "name") : unwrap_expression(expression));
        if (!compiled) {
            throw std::runtime_error("input " + core::string_field(input, "name") +
                                     " does not compile: " + compiled.error().message);
        }
        const auto value = compiled->evaluate(variables);
        values.push_back(value ? *value : json::value(nullptr));
    }
    const auto policy = core::string_field(source, "hit_policy");
    json::array matches;
    const auto& rules = source.at("rules").as_array();
    for (std::size_t r = 0; r < rules.size(); ++r) {
        const auto& rule = rules[r].as_object();
        const auto& when = rule.at("when").as_array();
        bool all = true;
        for (std::size_t c = 0; c < when.size() && all; ++c) {
            all = cell_matches(when[c], values[c], variables);
        }
        if (!all) {
            continue;
        }
        if (policy == "first") {
            return rule.at("then");
        }
        matches.push_back(rule.at("then"));
    }
    if (policy == "collect") {
        return matches;
    }
    if (matches.size() > 1) {
        throw std::runtime_error("hit policy unique: " + std::to_string(matches.size()) +
                                 " rules match");
    }
    return matches.empty() ? json::value(nullptr) : matches.front();
}

}  // namespace riveredge::approvals
