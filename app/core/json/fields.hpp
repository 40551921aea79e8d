#pragma once

// Reading optional fields of JSON objects that come from definitions and stored settings.

#include <boost/json/object.hpp>

#include <string>
#include <string_view>

namespace riveredge::core {

/// The string at `key`, or "" when it is missing or not a string.
inline std::string string_field(const boost::json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->get_string())
                                                  : std::string();
}

}  // namespace riveredge::core
