#pragma once

// Compact JSON output with ECMAScript number formatting (`1234.5`, not Boost's `1.2345E3`), the
// form the official SDKs write and RFC 8785 (JCS) requires. Object keys keep insertion order.

#include <boost/json/value.hpp>

#include <string>

namespace inngest::detail {

/// Appends `value` to `out`.
void write_json(std::string& out, const boost::json::value& value);
/// `value` as compact JSON.
std::string to_json(const boost::json::value& value);
/// RFC 8785 (JCS) form: keys sorted by UTF-16 code units, no whitespace, ECMAScript numbers.
std::string to_canonical_json(const boost::json::value& value);
/// Appends a double the way ECMAScript's Number::toString writes it (`null` when not finite).
void write_number(std::string& out, double number);

}  // namespace inngest::detail
