#pragma once

// Reading the fields of a request body against simple rules. A field that breaks its rule adds
// its problem under its name to `problems` and reads as nothing, so a caller checks every field
// and then answers one 422 (`DomainError::validation(problems)`) that names them all. Absent
// and null read as nothing too; only a required field makes that a problem.

#include "core/time/rfc3339.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riveredge::core {

/// What a text field must be: `min`..`max` bytes, never a NUL, and on one line when
/// `single_line` (no control characters: names, titles, keys).
struct TextRule {
    std::size_t max = 0;
    std::size_t min = 0;
    bool required = false;
    bool single_line = false;
};

std::optional<std::string> text_field(const boost::json::object& body,
                                      std::string_view name,
                                      TextRule rule,
                                      boost::json::object& problems);

/// A required, non-empty text of at most `max` bytes; empty when it is missing or breaks the
/// rule (its problem filed), which the caller's 422 then refuses.
std::string required_text(const boost::json::object& body,
                          std::string_view name,
                          std::size_t max,
                          boost::json::object& problems);

/// A list of `min`..`max` texts, each by `item`; `distinct` drops repeats, keeping the first.
struct TextListRule {
    std::size_t min = 0;
    std::size_t max = 0;
    TextRule item{};
    bool required = false;
    bool distinct = false;
};

std::optional<std::vector<std::string>> text_list_field(const boost::json::object& body,
                                                        std::string_view name,
                                                        TextListRule rule,
                                                        boost::json::object& problems);

/// Files each problem of a nested object's fields under `prefix`.`name` (its path in the body).
void file_under(boost::json::object& problems,
                std::string_view prefix,
                const boost::json::object& nested);

/// An integer from `low` to `high`.
std::optional<std::int64_t> int_field(const boost::json::object& body,
                                      std::string_view name,
                                      std::int64_t low,
                                      std::int64_t high,
                                      boost::json::object& problems);

/// true or false.
std::optional<bool> bool_field(const boost::json::object& body,
                               std::string_view name,
                               boost::json::object& problems);

/// A JSON object.
std::optional<boost::json::object> object_field(const boost::json::object& body,
                                                std::string_view name,
                                                boost::json::object& problems);

/// One of `allowed`.
std::optional<std::string> choice_field(const boost::json::object& body,
                                        std::string_view name,
                                        std::initializer_list<std::string_view> allowed,
                                        boost::json::object& problems);

/// Files "required" under each of `names` that is absent or null (for the readers that take no
/// rule of their own: integers, flags, choices, times).
void require_fields(const boost::json::object& body,
                    std::initializer_list<std::string_view> names,
                    boost::json::object& problems);

/// The one 422 (`DomainError::validation`) naming every problem filed; nothing when none is.
void refuse_if_any(const boost::json::object& problems);

/// An RFC 3339 time; its problem is filed under `shown` when given (a nested field's path).
std::optional<TimePoint> time_field(const boost::json::object& body,
                                    std::string_view name,
                                    boost::json::object& problems,
                                    std::string_view shown = {});

}  // namespace riveredge::core
