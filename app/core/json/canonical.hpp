#pragma once

// RFC 8785 JSON Canonicalization Scheme (JCS): one byte sequence per JSON value, so that a hash
// or a signature over it stays valid whatever serializer wrote the value. Numbers are written
// as ECMAScript writes IEEE doubles, strings with the minimal escapes, object members sorted by
// their names' UTF-16 code units.

#include <boost/json/value.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace riveredge::core {

/// The name and version stored beside every canonical form, so that old hashes keep verifying
/// if the canonicalisation ever changes.
inline constexpr const char* kCanonicalization = "JCS-RFC8785/1";

/// Thrown for what JCS cannot represent (NaN, infinities, invalid UTF-8 in a string).
class CanonicalJsonError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

std::string canonical_json(const boost::json::value& value);

/// Where `value` holds a number whose canonical form a PostgreSQL `jsonb` column would not give
/// back: jsonb keeps the decimal Boost.JSON writes and gives it back in plain notation, which
/// Boost.JSON reads again. A whole number beyond 2^53 written as a double (1e16) comes back as
/// an integer JCS refuses; some 16- and 17-digit doubles come back a bit off (Boost.JSON 1.81
/// does not round every long decimal correctly). The first such number's path in the style of
/// field names ("n", "list[2]", "a.b"; "" for `value` itself), or nothing. A hash of a value it
/// names would not verify once the value is stored.
std::optional<std::string> number_changed_by_jsonb(const boost::json::value& value);

/// SHA-256 of `bytes` as lowercase hex.
std::string sha256_hex(const std::string& bytes);

}  // namespace riveredge::core
