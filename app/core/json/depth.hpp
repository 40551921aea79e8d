#pragma once

// How deep JSON nests. A request body is read with Boost.JSON's default limit of 32 levels of
// arrays and objects, and a script's result is held to the same. What the app stores may nest
// such a value a few levels deeper (a record's archive package holds the record's content three
// levels down, an approval's variables hold a script's result one level down), so JSON read
// back from the database is read with room for that: what was accepted and stored can always be
// read again.

#include <boost/json/parse.hpp>

#include <cstddef>
#include <string_view>

namespace riveredge::core {

/// The deepest a request body (and a script's result) may nest.
inline constexpr std::size_t kRequestJsonDepth = 32;
/// The deepest JSON read back from storage may nest: a request's value and the app's own levels
/// around it.
inline constexpr std::size_t kStoredJsonDepth = 2 * kRequestJsonDepth;

/// JSON text the app stored (a jsonb column read as text), read with kStoredJsonDepth levels.
inline boost::json::value parse_stored_json(std::string_view text) {
    boost::json::parse_options options;
    options.max_depth = kStoredJsonDepth;
    return boost::json::parse(text, {}, options);
}

}  // namespace riveredge::core
