#pragma once

// Workflow definitions: YAML or JSON sources read into one JSON model, validated with every
// problem named by its element (`nodes[2].depends_on[0]`, `states.paid.transitions[1].guard`),
// and the parallel groups of a DAG. Guards and `set` expressions are in the app's one
// expression language, the SDK's (`inngest::local::Expression`).

#include <inngest/local/expression.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace riveredge::workflows {

/// A source that cannot be read (YAML or JSON syntax, too large or too deep).
class SourceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The JSON model of a YAML document: plain scalars typed as YAML 1.2's core schema (null,
/// booleans, integers, floats), quoted scalars strings. Throws SourceError.
boost::json::value yaml_to_json(std::string_view text);

/// A guard or `set` expression compiled for a workflow: it may read only `event`, `context`
/// and `input`. Throws std::invalid_argument saying what is wrong.
inngest::local::Expression compile_expression(std::string_view text);

/// One problem of a definition: the element and what is wrong with it.
struct Problem {
    std::string element;
    std::string reason;
};

/// Every problem of a definition model; empty when it is valid.
std::vector<Problem> validate(const boost::json::value& model);

/// A DAG's parallel groups: its nodes by topological level, each level in definition order.
/// Only for a valid DAG model.
boost::json::array parallel_groups(const boost::json::object& model);

/// Inngest runs a function in at most 1000 steps. What a valid definition may cost:
/// a DAG's worst case (every attempt, sleep and compensation) must fit in `kStepBudget`; a
/// state machine takes at most `max_events` events, so that its worst case fits too. The rest
/// of the 1000 is left for pauses and for waits that time out.
inline constexpr int kStepBudget = 800;
/// The worst-case steps of a valid DAG.
int dag_worst_steps(const boost::json::object& model);
/// How many events a valid state machine's execution may take (at most 200).
int max_events(const boost::json::object& model);

/// The actions of an action field (one action object or a list of them), as a list; empty when
/// absent.
boost::json::array actions_of(const boost::json::object& owner, std::string_view key);

/// An integer member of a node or state (`retries`, `retry_delay_seconds`); 0 when absent.
int int_of(const boost::json::object& owner, const char* key);

/// Whether `state` is one of the state machine's final states.
bool is_final(const boost::json::object& model, const std::string& state);

}  // namespace riveredge::workflows
