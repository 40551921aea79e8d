#pragma once

/// @file
/// @brief The subset of CEL that Inngest expressions use (`if`, `match`, keys, conditions).

#include <inngest/errors.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace inngest::local {

/// A compiled expression such as `event.data.total > 100 && async.data.id == event.data.id`.
///
/// Supported: literals (numbers, 'single' or "double" quoted strings, true, false, null,
/// lists `[..]`, maps `{k: v}`), variables and field access (`event.data.x`, `a["k"]`, `xs[0]`),
/// `== != < <= > >=`, `&& || !`, `+ - * / %`, `? :`, `in` (list membership, map keys,
/// substrings), `size(x)`/`x.size()`, `int() double() string()`, `has(a.b)`, and the string
/// methods `startsWith`, `endsWith`, `contains`. Comparisons are loosely typed as Inngest's
/// are: mixed types are unequal rather than an error, and a missing field reads as null.
/// Anything else is a compile error naming the position.
///
/// @par Thread safety
/// A compiled expression is immutable; `evaluate` may run on many threads at once.
class Expression {
public:
    /// Compiles `source`; the error names what is unsupported and where.
    static Result<Expression> compile(std::string_view source);

    /// Evaluates against top-level variables (`event`, `async`, ...).
    Result<boost::json::value> evaluate(const boost::json::object& variables) const;
    /// True only when the expression evaluates to boolean `true`.
    bool matches(const boost::json::object& variables) const;

    const std::string& source() const noexcept;
    /// The top-level variables it reads (`event` for `event.data.x`), each once, in order of
    /// first use: for callers that admit only some names.
    std::vector<std::string> variables() const;

    struct Node;

private:
    Expression() = default;
    std::shared_ptr<const Node> root_;
    std::shared_ptr<const std::string> source_;
};

}  // namespace inngest::local
