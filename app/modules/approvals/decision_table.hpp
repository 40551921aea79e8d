#pragma once

// Decision tables for business rule tasks (DMN's shape, kept small): named inputs computed from
// the process variables, rules whose cells test those inputs, and outputs chosen by the hit
// policy. A table is a versioned definition of its own, so a process names it by key.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <vector>

namespace riveredge::approvals {

/// Everything wrong with a table's source, each naming where ("rules[2].when[0]: ..."); empty
/// when it can be saved. The source:
///   {"hit_policy": "first" | "unique" | "collect",
///    "inputs":  [{"name": "amount", "expression": "amount"}, ...],
///    "outputs": ["approver", "level"],
///    "rules":   [{"when": [<cell per input>], "then": {"approver": "cfo"}}, ...]}
/// A cell is null or "-" (any value), a string expression over `value` (the input) and the
/// variables ("value >= 1000"), or a JSON number, boolean or array (equal to, or one of).
std::vector<std::string> check_decision_table(const boost::json::object& source);

/// The table's answer for `variables`: `first` gives the first matching rule's outputs (null
/// when none matches), `unique` the only one's (std::runtime_error when several match),
/// `collect` an array of every match's outputs in rule order. Throws std::runtime_error when
/// an input cannot be computed.
boost::json::value evaluate_decision(const boost::json::object& source,
                                     const boost::json::object& variables);

}  // namespace riveredge::approvals
