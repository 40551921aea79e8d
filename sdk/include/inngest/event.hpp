#pragma once

/// @file
/// @brief `Event`: what triggers a function and what `Client::send` sends.

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace inngest {

/// An Inngest event.
struct Event {
    /// Required. Names starting with `inngest/` are reserved for the server.
    std::string name{};
    /// The payload; always an object.
    boost::json::object data{};
    /// Idempotency key: a second event with the same id starts no second run for 24 hours.
    std::optional<std::string> id{};
    /// Milliseconds since the Unix epoch; the server fills in "now" when unset. A future value
    /// delays the runs it starts.
    std::optional<std::int64_t> ts{};
    /// User context, always an object.
    boost::json::object user{};
    /// Optional schema version of the payload.
    std::optional<std::string> v{};
};

/// Boost.JSON conversion: `boost::json::value_from(event)`.
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& out, const Event& event);
/// Boost.JSON conversion: `boost::json::value_to<Event>(json)`. Lenient: unknown fields are
/// ignored, a missing `data`/`user` becomes `{}`; throws `boost::system::system_error` when
/// `name` is missing or a field has the wrong type.
Event tag_invoke(const boost::json::value_to_tag<Event>&, const boost::json::value& json);

}  // namespace inngest
