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

/// The path of the first integer beyond 2^53 in `value`, the one number JSON text carries that
/// JCS cannot write (`canonical_json` refuses it), in the style of field names ("n", "list[2]",
/// "a.b"; "" for `value` itself); nothing when there is none.
std::optional<std::string> integer_beyond_exact(const boost::json::value& value);

/// SHA-256 of `bytes` as lowercase hex.
std::string sha256_hex(const std::string& bytes);

}  // namespace riveredge::core
