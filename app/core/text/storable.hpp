#pragma once

// Text from outside the request (a provider's reply, a script's output) made storable before it
// goes into a PostgreSQL text or jsonb column, which refuse a NUL and bytes that are not UTF-8.
// The caller did not write it and cannot fix it, so it is kept, readably, instead of refused.

#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace riveredge::core {

/// `text` with each NUL and each byte that does not begin or continue a whole UTF-8 character
/// (a sequence cut short included) replaced by U+FFFD.
std::string storable_text(std::string_view text);

/// `value` with every string (and object key) made storable_text.
boost::json::value storable_json(const boost::json::value& value);

}  // namespace riveredge::core
