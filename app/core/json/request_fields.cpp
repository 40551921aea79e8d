#include "core/json/request_fields.hpp"

#include "core/errors.hpp"

#include <algorithm>
#include <unordered_set>

namespace riveredge::core {
namespace {

// The field's value, or null when it is absent or null (and "required" filed if it must be there).
const boost::json::value* present(const boost::json::object& body,
                                  std::string_view name,
                                  bool required,
                                  boost::json::object& problems) {
    const auto* value = body.if_contains(name);
    if (value == nullptr || value->is_null()) {
        if (required) {
            problems[name] = "required";
        }
        return nullptr;
    }
    return value;
}

// The field's value when it is there and keeps its rule; null when it is absent or null ("required"
// filed if it must be there) and when it breaks its rule, with the problem `problem_of` finds in it
// (a present value's problem, or nothing) filed under its name.
template <class ProblemOf>
const boost::json::value* checked(const boost::json::object& body,
                                  std::string_view name,
                                  bool required,
                                  boost::json::object& problems,
                                  ProblemOf&& problem_of) {
    const auto* value = present(body, name, required, problems);
    if (value == nullptr) {
        return nullptr;
    }
    if (const std::optional<std::string> problem = problem_of(*value)) {
        problems[name] = *problem;
        return nullptr;
    }
    return value;
}

// The rule of a field of one JSON kind: `expected` when the value is of another.
auto of_kind(boost::json::kind kind, const char* expected) {
    return [kind, expected](const boost::json::value& value) {
        return value.kind() == kind ? std::nullopt : std::optional<std::string>(expected);
    };
}

std::string size_rule(const TextRule& rule) {
    const auto max = std::to_string(rule.max);
    if (rule.min == 0) {
        return "a string of at most " + max + " bytes";
    }
    if (rule.min == 1) {
        return "a non-empty string of at most " + max + " bytes";
    }
    return "a string of " + std::to_string(rule.min) + " to " + max + " bytes";
}

// What is wrong with `value` as a text under `rule`, or nothing.
std::optional<std::string> text_problem(const boost::json::value& value, const TextRule& rule) {
    if (!value.is_string() || value.get_string().size() < rule.min ||
        value.get_string().size() > rule.max) {
        return size_rule(rule);
    }
    const auto& text = value.get_string();
    if (rule.single_line && std::any_of(text.begin(), text.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u < 0x20 || u == 0x7f;
        })) {
        return "no control characters";
    }
    // No text keeps a NUL: PostgreSQL cannot store one, and a text cut at it is not the text a
    // hash or a signature covered.
    if (text.find('\0') != boost::json::string::npos) {
        return "no NUL characters";
    }
    return std::nullopt;
}

}  // namespace

void require_fields(const boost::json::object& body,
                    std::initializer_list<std::string_view> names,
                    boost::json::object& problems) {
    for (const auto name : names) {
        present(body, name, true, problems);
    }
}

std::optional<std::string> text_field(const boost::json::object& body,
                                      std::string_view name,
                                      TextRule rule,
                                      boost::json::object& problems) {
    const auto* value = checked(body, name, rule.required, problems,
                                [&](const boost::json::value& v) { return text_problem(v, rule); });
    return value != nullptr ? std::optional<std::string>(value->get_string()) : std::nullopt;
}

std::string required_text(const boost::json::object& body,
                          std::string_view name,
                          std::size_t max,
                          boost::json::object& problems) {
    return text_field(body, name, {.max = max, .min = 1, .required = true}, problems).value_or("");
}

std::optional<std::vector<std::string>> text_list_field(const boost::json::object& body,
                                                        std::string_view name,
                                                        TextListRule rule,
                                                        boost::json::object& problems) {
    const auto* value = checked(body, name, rule.required, problems,
                                [&](const boost::json::value& v) -> std::optional<std::string> {
                                    if (v.is_array() && v.get_array().size() >= rule.min &&
                                        v.get_array().size() <= rule.max) {
                                        return std::nullopt;
                                    }
                                    return "an array of " + std::to_string(rule.min) + " to " +
                                           std::to_string(rule.max) + " items";
                                });
    if (value == nullptr) {
        return std::nullopt;
    }
    std::vector<std::string> items;
    std::unordered_set<std::string_view> seen;  // views into the body, which outlives the loop
    for (const auto& item : value->get_array()) {
        if (const auto problem = text_problem(item, rule.item)) {
            problems[name] = "each item " + *problem;
            return std::nullopt;
        }
        const std::string_view text = item.get_string();
        if (!rule.distinct || seen.insert(text).second) {
            items.emplace_back(text);
        }
    }
    return items;
}

void file_under(boost::json::object& problems,
                std::string_view prefix,
                const boost::json::object& nested) {
    for (const auto& [name, problem] : nested) {
        problems[std::string(prefix) + "." + std::string(name)] = problem;
    }
}

std::optional<std::int64_t> int_field(const boost::json::object& body,
                                      std::string_view name,
                                      std::int64_t low,
                                      std::int64_t high,
                                      boost::json::object& problems) {
    const auto* value =
        checked(body, name, false, problems,
                [&](const boost::json::value& v) -> std::optional<std::string> {
                    if (v.is_int64() && v.get_int64() >= low && v.get_int64() <= high) {
                        return std::nullopt;
                    }
                    return "an integer from " + std::to_string(low) + " to " + std::to_string(high);
                });
    return value != nullptr ? std::optional<std::int64_t>(value->get_int64()) : std::nullopt;
}

std::optional<bool> bool_field(const boost::json::object& body,
                               std::string_view name,
                               boost::json::object& problems) {
    const auto* value =
        checked(body, name, false, problems, of_kind(boost::json::kind::bool_, "true or false"));
    return value != nullptr ? std::optional<bool>(value->get_bool()) : std::nullopt;
}

std::optional<boost::json::object> object_field(const boost::json::object& body,
                                                std::string_view name,
                                                boost::json::object& problems) {
    const auto* value =
        checked(body, name, false, problems, of_kind(boost::json::kind::object, "an object"));
    return value != nullptr ? std::optional<boost::json::object>(value->get_object())
                            : std::nullopt;
}

std::optional<std::string> choice_field(const boost::json::object& body,
                                        std::string_view name,
                                        std::initializer_list<std::string_view> allowed,
                                        boost::json::object& problems) {
    const auto* value = checked(body, name, false, problems,
                                [&](const boost::json::value& v) -> std::optional<std::string> {
                                    std::string names;
                                    for (const auto choice : allowed) {
                                        if (v.is_string() && v.get_string() == choice) {
                                            return std::nullopt;
                                        }
                                        names += (names.empty() ? "" : ", ") + std::string(choice);
                                    }
                                    return "one of " + names;
                                });
    return value != nullptr ? std::optional<std::string>(value->get_string()) : std::nullopt;
}

std::optional<TimePoint> time_field(const boost::json::object& body,
                                    std::string_view name,
                                    boost::json::object& problems,
                                    std::string_view shown) {
    const auto* value = present(body, name, false, problems);
    if (value == nullptr) {
        return std::nullopt;
    }
    const auto parsed = value->is_string() ? parse_time(value->get_string()) : std::nullopt;
    if (!parsed) {
        problems[shown.empty() ? name : shown] = "an RFC 3339 time, e.g. 2026-12-01T09:00:00+08:00";
    }
    return parsed;
}

void refuse_if_any(const boost::json::object& problems) {
    if (!problems.empty()) {
        throw DomainError::validation(problems);
    }
}

}  // namespace riveredge::core
