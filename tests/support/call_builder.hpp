#pragma once

// Builds call requests the way the Inngest executor sends them (protocol §8.1): JSON with
// sorted keys, memoized steps keyed by hashed id, and the stack in completion order.

#include <inngest/serve.hpp>

#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace inngest_test {

/// Hex SHA-1 of a step id, as the protocol hashes it.
std::string step_hash(std::string_view id);

/// Serializes JSON with object keys sorted (the executor's canonical form).
std::string canonical_json(const boost::json::value& value);

struct CallBuilder {
    std::string fn_slug;
    std::string step_id = "step";
    boost::json::object event{{"name", "test/event"}, {"data", boost::json::object{}}};
    boost::json::array events;  // empty: [event]
    boost::json::object steps;
    std::vector<std::string> stack;
    int attempt = 0;
    int max_attempts = 5;
    bool disable_immediate_execution = false;
    std::string run_id = "01JTESTRUN0000000000000000";

    /// Memoizes `value` (already in protocol shape, e.g. {"data": X}) for a user step id.
    CallBuilder& memo(std::string_view user_id, boost::json::value value);
    /// Memoizes a successful step result.
    CallBuilder& data(std::string_view user_id, boost::json::value result);

    std::string body() const;
    inngest::HttpRequest request() const;
};

}  // namespace inngest_test
