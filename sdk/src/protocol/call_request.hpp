#pragma once

// The body of a POST call request (protocol §8.1), parsed leniently.

#include <inngest/errors.hpp>
#include <inngest/event.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace inngest::detail {

struct CallRequest {
    Event event;
    std::vector<Event> events;
    /// Memoized step state keyed by hashed step id. A key present with null differs from absent.
    boost::json::object steps;
    /// Hashed ids of completed steps, in completion order.
    std::vector<std::string> stack;
    std::string run_id;
    std::string fn_id;
    std::string env;
    std::int64_t attempt = 0;
    std::int64_t max_attempts = 0;
    std::int64_t version = -1;
    bool disable_immediate_execution = false;
    bool use_api = false;
};

/// Parses a call request body. Unknown fields are ignored and missing ctx fields default to
/// zero/false/empty; a body that is not a JSON object, or whose known fields have the wrong
/// types, is a `kMalformedRequest` error naming the field.
Result<CallRequest> parse_call_request(std::string_view body);

}  // namespace inngest::detail
