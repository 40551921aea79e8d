#pragma once

// JSON text for API responses: Boost.JSON's own serializer writes every double in exponent form
// (`2.177E0`, `5E-1`); clients read plain decimals (`2.177`, `0.5`), the shortest form that
// reads back to the same double.

#include <boost/json/value.hpp>

#include <string>

namespace riveredge::core {

std::string to_json_text(const boost::json::value& value);

}  // namespace riveredge::core
