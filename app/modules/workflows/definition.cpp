#include "modules/workflows/definition.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace riveredge::workflows {

inngest::local::Expression compile_expression(std::string_view text) {
    auto compiled = inngest::local::Expression::compile(text);
    if (!compiled) {
        throw std::invalid_argument(compiled.error().message);
    }
    for (const auto& name : compiled->variables()) {
        if (name != "event" && name != "context" && name != "input") {
            throw std::invalid_argument("unknown name '" + name +
                                        "' (an expression reads event, context and input)");
        }
    }
    return std::move(*compiled);
}

namespace json = boost::json;

namespace {

bool valid_id(std::string_view id, std::size_t max = 64) {
    if (id.empty() || id.size() > max) {
        return false;
    }
    return std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
    });
}

class Checker {
public:
    std::vector<Problem> problems;

    void add(std::string element, std::string reason) {
        if (problems.size() < 100) {
            problems.push_back({std::move(element), std::move(reason)});
        }
    }

    // Fields beyond `allowed` are refused, so a misspelt field is named instead of ignored.
    void only(const json::object& object,
              const std::string& element,
              std::initializer_list<std::string_view> allowed) {
        for (const auto& [key, value] : object) {
            if (std::find(allowed.begin(), allowed.end(), std::string_view(key)) == allowed.end()) {
                add(join(element, key), "is not a known field");
            }
        }
    }

    static std::string join(const std::string& element, std::string_view key) {
        return element.empty() ? std::string(key) : element + "." + std::string(key);
    }

    void integer(const json::object& object,
                 const std::string& element,
                 std::string_view key,
                 std::int64_t low,
                 std::int64_t high) {
        const auto* value = object.if_contains(key);
        if (value == nullptr) {
            return;
        }
        if (!value->is_int64() && !value->is_uint64()) {
            add(join(element, key), "must be an integer");
            return;
        }
        // Boost.JSON keeps an integer past int64 as uint64, which no int64 can hold: compared as
        // it is, it lies beyond every range.
        const bool within =
            value->is_int64()
                ? value->get_int64() >= low && value->get_int64() <= high
                : high >= 0 && value->get_uint64() <= static_cast<std::uint64_t>(high) &&
                      (low <= 0 || value->get_uint64() >= static_cast<std::uint64_t>(low));
        if (!within) {
            add(join(element, key),
                "must lie between " + std::to_string(low) + " and " + std::to_string(high));
        }
    }

    bool string(const json::object& object,
                const std::string& element,
                std::string_view key,
                bool required,
                std::size_t max = 2000) {
        const auto* value = object.if_contains(key);
        if (value == nullptr) {
            if (required) {
                add(join(element, key), "is required");
            }
            return false;
        }
        if (!value->is_string() || value->get_string().empty() ||
            value->get_string().size() > max) {
            add(join(element, key),
                "must be a non-empty string of at most " + std::to_string(max) + " characters");
            return false;
        }
        return true;
    }

    void expression(const json::value& value, const std::string& element) {
        if (!value.is_string()) {
            add(element, "must be an expression in a string");
            return;
        }
        try {
            compile_expression(value.get_string());
        } catch (const std::invalid_argument& error) {
            add(element, std::string("is not a valid expression: ") + error.what());
        }
    }

    void action(const json::value& value, const std::string& element) {
        if (!value.is_object()) {
            add(element, "must be an action object with a kind");
            return;
        }
        const auto& a = value.get_object();
        const auto* kind = a.if_contains("kind");
        if (kind == nullptr || !kind->is_string()) {
            add(join(element, "kind"), "is required: noop, set, fail, script, notify or http");
            return;
        }
        const std::string k(kind->get_string());
        if (k == "noop") {
            only(a, element, {"kind"});
        } else if (k == "set") {
            only(a, element, {"kind", "values", "expressions"});
            const auto* values = a.if_contains("values");
            const auto* expressions = a.if_contains("expressions");
            if (values == nullptr && expressions == nullptr) {
                add(join(element, "values"), "is required (or expressions)");
            }
            if (values != nullptr && !values->is_object()) {
                add(join(element, "values"), "must be an object");
            }
            if (expressions != nullptr) {
                if (!expressions->is_object()) {
                    add(join(element, "expressions"), "must be an object of expressions");
                } else {
                    for (const auto& [key, e] : expressions->get_object()) {
                        expression(e, join(join(element, "expressions"), key));
                    }
                }
            }
        } else if (k == "fail") {
            only(a, element, {"kind", "message", "times"});
            string(a, element, "message", false);
            integer(a, element, "times", 1, 100);
        } else if (k == "script") {
            only(a, element, {"kind", "script_id", "arguments"});
            const auto* id = a.if_contains("script_id");
            if (id == nullptr || !id->is_int64() || id->get_int64() <= 0) {
                add(join(element, "script_id"), "must be a stored script's id");
            }
            if (const auto* args = a.if_contains("arguments"); args && !args->is_object()) {
                add(join(element, "arguments"), "must be an object");
            }
        } else if (k == "notify") {
            only(a, element, {"kind", "users", "subject", "body"});
            const auto* users = a.if_contains("users");
            if (users == nullptr || !users->is_array() || users->get_array().empty() ||
                users->get_array().size() > 100) {
                add(join(element, "users"), "must list 1 to 100 user ids");
            } else {
                for (std::size_t i = 0; i < users->get_array().size(); ++i) {
                    const auto& u = users->get_array()[i];
                    if (!u.is_string() || u.get_string().empty()) {
                        add(join(element, "users") + "[" + std::to_string(i) + "]",
                            "must be a user id");
                    }
                }
            }
            string(a, element, "subject", true, 200);
            string(a, element, "body", false, 10000);
        } else if (k == "http") {
            only(a, element, {"kind", "url", "method", "body", "timeout_seconds"});
            if (string(a, element, "url", true)) {
                const std::string url(a.at("url").get_string());
                if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
                    add(join(element, "url"), "must be an http or https URL");
                }
            }
            if (const auto* m = a.if_contains("method")) {
                static const std::set<std::string> methods{"GET", "POST", "PUT", "PATCH", "DELETE"};
                if (!m->is_string() || methods.count(std::string(m->get_string())) == 0) {
                    add(join(element, "method"), "must be GET, POST, PUT, PATCH or DELETE");
                }
            }
            integer(a, element, "timeout_seconds", 1, 60);
        } else {
            add(join(element, "kind"), "'" + k +
                                           "' is not an action kind (noop, set, fail, script, "
                                           "notify or http)");
        }
    }

    // An action field: one action or a list of up to 20.
    void actions(const json::object& owner, const std::string& element, std::string_view key) {
        const auto* value = owner.if_contains(key);
        if (value == nullptr) {
            return;
        }
        if (value->is_array()) {
            const auto& list = value->get_array();
            if (list.empty() || list.size() > 20) {
                add(join(element, key), "must hold 1 to 20 actions");
            }
            for (std::size_t i = 0; i < list.size(); ++i) {
                action(list[i], join(element, key) + "[" + std::to_string(i) + "]");
            }
            return;
        }
        action(*value, join(element, key));
    }

    void retries(const json::object& owner, const std::string& element) {
        integer(owner, element, "retries", 0, 10);
        integer(owner, element, "retry_delay_seconds", 0, 3600);
    }
};

void check_dag(Checker& c, const json::object& model) {
    c.only(model, "", {"key", "name", "description", "kind", "on_error", "nodes"});
    const auto* nodes_value = model.if_contains("nodes");
    if (nodes_value == nullptr || !nodes_value->is_array() || nodes_value->get_array().empty()) {
        c.add("nodes", "must list at least one node");
        return;
    }
    const auto& nodes = nodes_value->get_array();
    if (nodes.size() > 200) {
        c.add("nodes", "must list at most 200 nodes");
        return;
    }
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const std::string element = "nodes[" + std::to_string(i) + "]";
        if (!nodes[i].is_object()) {
            c.add(element, "must be an object");
            continue;
        }
        const auto& node = nodes[i].get_object();
        c.only(
            node, element,
            {"id", "name", "depends_on", "action", "compensate", "retries", "retry_delay_seconds"});
        const auto* id = node.if_contains("id");
        if (id == nullptr || !id->is_string() || !valid_id(id->get_string())) {
            c.add(element + ".id", "must be 1 to 64 letters, digits, '_', '-' or '.'");
            continue;
        }
        const std::string name(id->get_string());
        if (!index.emplace(name, i).second) {
            c.add(element + ".id", "duplicates node '" + name + "'");
        }
        if (!node.contains("action")) {
            c.add(element + ".action", "is required");
        }
        c.actions(node, element, "action");
        c.actions(node, element, "compensate");
        c.retries(node, element);
    }
    bool dependencies_known = true;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (!nodes[i].is_object()) {
            continue;
        }
        const std::string element = "nodes[" + std::to_string(i) + "].depends_on";
        // Its id may be missing or not a string: the first loop named that and went on.
        const auto* own = nodes[i].get_object().if_contains("id");
        const auto* deps = nodes[i].get_object().if_contains("depends_on");
        if (deps == nullptr) {
            continue;
        }
        if (!deps->is_array()) {
            c.add(element, "must list node ids");
            dependencies_known = false;
            continue;
        }
        std::set<std::string> seen;
        for (std::size_t d = 0; d < deps->get_array().size(); ++d) {
            const auto& dep = deps->get_array()[d];
            const std::string at = element + "[" + std::to_string(d) + "]";
            if (!dep.is_string() || index.count(std::string(dep.get_string())) == 0) {
                c.add(at,
                      "names no node: '" +
                          (dep.is_string() ? std::string(dep.get_string()) : json::serialize(dep)) +
                          "' is unknown");
                dependencies_known = false;
            } else if (!seen.emplace(dep.get_string()).second) {
                c.add(at, "repeats '" + std::string(dep.get_string()) + "'");
            } else if (own != nullptr && own->is_string() &&
                       dep.get_string() == own->get_string()) {
                c.add(at, "a node cannot depend on itself");
                dependencies_known = false;
            }
        }
    }
    if (!c.problems.empty() || !dependencies_known) {
        return;
    }
    // Kahn's algorithm: what is left once every reachable level is taken lies on a cycle.
    const auto groups = parallel_groups(model);
    std::size_t placed = 0;
    for (const auto& group : groups) {
        placed += group.as_array().size();
    }
    if (placed < nodes.size()) {
        std::set<std::string> done;
        for (const auto& group : groups) {
            for (const auto& id : group.as_array()) {
                done.emplace(id.as_string());
            }
        }
        std::string cycle;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const std::string id(nodes[i].get_object().at("id").as_string());
            if (done.count(id) == 0) {
                cycle += (cycle.empty() ? "" : ", ") + id;
            }
        }
        c.add("nodes", "the dependencies form a cycle through " + cycle);
    }
}

void check_state_machine(Checker& c, const json::object& model) {
    c.only(model, "",
           {"key", "name", "description", "kind", "on_error", "initial", "context", "states"});
    if (const auto* context = model.if_contains("context"); context && !context->is_object()) {
        c.add("context", "must be an object of defaults");
    }
    const auto* states_value = model.if_contains("states");
    if (states_value == nullptr || !states_value->is_object() ||
        states_value->get_object().empty()) {
        c.add("states", "must map at least one state name to its definition");
        return;
    }
    const auto& states = states_value->get_object();
    if (states.size() > 200) {
        c.add("states", "must hold at most 200 states");
        return;
    }
    std::string initial;
    if (c.string(model, "", "initial", true, 64)) {
        initial = std::string(model.at("initial").get_string());
        if (!states.contains(initial)) {
            c.add("initial", "names no state: '" + initial + "' is unknown");
            initial.clear();
        }
    }
    bool any_final = false;
    std::map<std::string, std::vector<std::string>> edges;
    for (const auto& [name, value] : states) {
        const std::string element = "states." + std::string(name);
        if (!valid_id(name)) {
            c.add(element, "a state name must be 1 to 64 letters, digits, '_', '-' or '.'");
        }
        if (!value.is_object()) {
            c.add(element, "must be an object (use {} for a state with nothing to do)");
            continue;
        }
        const auto& state = value.get_object();
        c.only(state, element,
               {"final", "on_entry", "on_exit", "compensate", "transitions", "retries",
                "retry_delay_seconds", "description"});
        c.actions(state, element, "on_entry");
        c.actions(state, element, "on_exit");
        c.actions(state, element, "compensate");
        c.retries(state, element);
        bool final = false;
        if (const auto* f = state.if_contains("final")) {
            if (!f->is_bool()) {
                c.add(element + ".final", "must be true or false");
            } else {
                final = f->get_bool();
            }
        }
        any_final = any_final || final;
        const auto* transitions = state.if_contains("transitions");
        if (final) {
            if (transitions != nullptr) {
                c.add(element + ".transitions", "a final state has no transitions");
            }
            if (state.contains("on_exit")) {
                c.add(element + ".on_exit", "a final state is never left");
            }
            continue;
        }
        if (transitions == nullptr || !transitions->is_array() ||
            transitions->get_array().empty()) {
            c.add(element + ".transitions",
                  "a state that is not final needs at least one transition");
            continue;
        }
        std::set<std::string> unguarded;
        for (std::size_t i = 0; i < transitions->get_array().size(); ++i) {
            const std::string at = element + ".transitions[" + std::to_string(i) + "]";
            const auto& t = transitions->get_array()[i];
            if (!t.is_object()) {
                c.add(at, "must be an object with event and target");
                continue;
            }
            const auto& transition = t.get_object();
            c.only(transition, at, {"event", "target", "guard", "action"});
            std::string event;
            if (c.string(transition, at, "event", true, 100)) {
                event = std::string(transition.at("event").get_string());
                if (!valid_id(event, 100)) {
                    c.add(at + ".event", "must be letters, digits, '_', '-' or '.'");
                }
            }
            if (c.string(transition, at, "target", true, 64)) {
                const std::string target(transition.at("target").get_string());
                if (!states.contains(target)) {
                    c.add(at + ".target", "names no state: '" + target + "' is unknown");
                } else {
                    edges[std::string(name)].push_back(target);
                }
            }
            if (const auto* guard = transition.if_contains("guard")) {
                c.expression(*guard, at + ".guard");
            } else if (!event.empty() && !unguarded.emplace(event).second) {
                c.add(at, "is never taken: an earlier transition takes event '" + event +
                              "' without a guard");
            }
            c.actions(transition, at, "action");
        }
    }
    if (!any_final) {
        c.add("states", "at least one state must be final");
    }
    if (initial.empty() || !c.problems.empty()) {
        return;
    }
    std::set<std::string> reached{initial};
    std::vector<std::string> queue{initial};
    while (!queue.empty()) {
        const auto at = queue.back();
        queue.pop_back();
        for (const auto& target : edges[at]) {
            if (reached.emplace(target).second) {
                queue.push_back(target);
            }
        }
    }
    for (const auto& [name, value] : states) {
        if (reached.count(std::string(name)) == 0) {
            c.add("states." + std::string(name),
                  "is not reachable from the initial state '" + initial + "'");
        }
    }
}

// Steps of a retried step: one per attempt, and a sleep before each retry when it waits.
int attempts_cost(const json::object& owner) {
    const int retries = int_of(owner, "retries");
    return retries + 1 + (int_of(owner, "retry_delay_seconds") > 0 ? retries : 0);
}

// Compensation (three attempts each), its plan, the error handler, the gate and the finish.
constexpr int kFailureSteps = 5;
constexpr int kCompensationSteps = 3;

}  // namespace

int dag_worst_steps(const json::object& model) {
    // Its begin, each level's gate, and a failure's handling.
    int steps = 1 + static_cast<int>(parallel_groups(model).size()) + kFailureSteps;
    for (const auto& n : model.at("nodes").as_array()) {
        const auto& node = n.as_object();
        steps += attempts_cost(node);
        if (node.contains("compensate")) {
            steps += kCompensationSteps;
        }
    }
    return steps;
}

int max_events(const json::object& model) {
    const auto& states = model.at("states").as_object();
    const auto& initial = states.at(model.at("initial").as_string()).as_object();
    const int fixed = 2 + attempts_cost(initial) + kFailureSteps +
                      (initial.contains("compensate") ? kCompensationSteps : 0);
    int per_event = 1;
    for (const auto& [name, value] : states) {
        const auto& from = value.as_object();
        const auto* transitions = from.if_contains("transitions");
        if (transitions == nullptr || !transitions->is_array()) {
            continue;
        }
        for (const auto& t : transitions->as_array()) {
            const auto& transition = t.as_object();
            const auto* target = states.if_contains(transition.at("target").as_string());
            if (target == nullptr) {
                continue;
            }
            // Its look and wait, exit, the transition's action, apply, entry (and its undoing).
            int cost = 2 + 1 + attempts_cost(target->as_object());
            if (from.contains("on_exit")) {
                cost += attempts_cost(from);
            }
            if (transition.contains("action")) {
                cost += attempts_cost(from);
            }
            if (target->as_object().contains("compensate")) {
                cost += kCompensationSteps;
            }
            per_event = std::max(per_event, cost);
        }
    }
    return std::clamp((kStepBudget - fixed) / per_event, 0, 200);
}

std::vector<Problem> validate(const json::value& value) {
    Checker c;
    if (!value.is_object()) {
        c.add("(document)", "must be an object (a mapping in YAML)");
        return c.problems;
    }
    const auto& model = value.get_object();
    if (c.string(model, "", "key", true, 100) && !valid_id(model.at("key").get_string(), 100)) {
        c.add("key", "must be letters, digits, '_', '-' or '.'");
    }
    c.string(model, "", "name", false, 200);
    c.string(model, "", "description", false, 2000);
    c.actions(model, "", "on_error");
    const auto* kind = model.if_contains("kind");
    if (kind == nullptr || !kind->is_string()) {
        c.add("kind", "is required: dag or state_machine");
        return c.problems;
    }
    if (kind->get_string() == "dag") {
        check_dag(c, model);
        if (c.problems.empty() && dag_worst_steps(model) > kStepBudget) {
            c.add("nodes", "could take " + std::to_string(dag_worst_steps(model)) +
                               " steps with every retry, more than the " +
                               std::to_string(kStepBudget) +
                               " one run may take: fewer nodes or retries");
        }
    } else if (kind->get_string() == "state_machine") {
        check_state_machine(c, model);
        if (c.problems.empty() && max_events(model) < 10) {
            c.add("states", "a run could take only " + std::to_string(max_events(model)) +
                                " events within its " + std::to_string(kStepBudget) +
                                " steps: fewer retries on the states");
        }
    } else {
        c.add("kind", "'" + std::string(kind->get_string()) + "' is not dag or state_machine");
    }
    return c.problems;
}

json::array parallel_groups(const json::object& model) {
    const auto& nodes = model.at("nodes").as_array();
    std::map<std::string, int> pending;
    std::map<std::string, std::vector<std::string>> dependents;
    std::vector<std::string> order;
    for (const auto& n : nodes) {
        const auto& node = n.as_object();
        const std::string id(node.at("id").as_string());
        order.push_back(id);
        pending[id] = 0;
        if (const auto* deps = node.if_contains("depends_on")) {
            for (const auto& dep : deps->as_array()) {
                ++pending[id];
                dependents[std::string(dep.as_string())].push_back(id);
            }
        }
    }
    json::array groups;
    std::vector<std::string> level;
    for (const auto& id : order) {
        if (pending[id] == 0) {
            level.push_back(id);
        }
    }
    while (!level.empty()) {
        json::array group;
        std::set<std::string> next_ids;
        for (const auto& id : level) {
            group.emplace_back(id);
            for (const auto& dependent : dependents[id]) {
                if (--pending[dependent] == 0) {
                    next_ids.insert(dependent);
                }
            }
        }
        groups.push_back(std::move(group));
        level.clear();
        for (const auto& id : order) {  // definition order within a level
            if (next_ids.count(id) != 0) {
                level.push_back(id);
            }
        }
    }
    return groups;
}

json::array actions_of(const json::object& owner, std::string_view key) {
    json::array out;
    const auto* value = owner.if_contains(key);
    if (value == nullptr) {
        return out;
    }
    if (value->is_array()) {
        for (const auto& item : value->get_array()) {
            out.push_back(item.as_object());
        }
    } else if (value->is_object()) {
        out.push_back(value->get_object());
    }
    return out;
}

int int_of(const json::object& owner, const char* key) {
    const auto* value = owner.if_contains(key);
    return value != nullptr && value->is_int64() ? static_cast<int>(value->get_int64()) : 0;
}

bool is_final(const json::object& model, const std::string& state) {
    const auto* s = model.at("states").as_object().if_contains(state);
    if (s == nullptr) {
        return false;
    }
    const auto* f = s->as_object().if_contains("final");
    return f != nullptr && f->is_bool() && f->get_bool();
}

}  // namespace riveredge::workflows
