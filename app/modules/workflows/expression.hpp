#pragma once

// Guards and `set` expressions: a small language over the event, the context and the input,
// parsed once (at validation and at use) and evaluated in C++, without any script engine.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <memory>
#include <string_view>

namespace riveredge::workflows {

/// A guard or value expression: literals (numbers, 'strings', true, false, null), paths under
/// `event`, `context` and `input` (a missing field is null), `! && || == != < <= > >= + - * /`
/// and parentheses.
class Expression {
public:
    /// Throws std::invalid_argument saying what is wrong and where.
    explicit Expression(std::string_view text);
    ~Expression();
    Expression(Expression&&) noexcept;
    Expression& operator=(Expression&&) noexcept;

    /// The value over `scope` ({event, context, input}).
    boost::json::value evaluate(const boost::json::object& scope) const;
    /// Its truth: false, null, 0 and "" are false.
    bool test(const boost::json::object& scope) const;

    struct Node;

private:
    std::unique_ptr<Node> root_;
};

}  // namespace riveredge::workflows
