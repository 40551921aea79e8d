// The guard and value expressions: tokenizer, recursive-descent parser and evaluator.

#include "modules/workflows/expression.hpp"

#include <boost/json/serialize.hpp>

#include <cctype>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace riveredge::workflows {

namespace json = boost::json;

struct Expression::Node {
    enum class Kind { kLiteral, kPath, kNot, kNegate, kBinary } kind = Kind::kLiteral;
    json::value literal;
    std::vector<std::string> path;
    std::string op;
    std::unique_ptr<Node> left;
    std::unique_ptr<Node> right;
};

namespace {

using ExprNode = Expression::Node;

struct Token {
    enum class Kind { kNumber, kString, kName, kOp, kEnd } kind = Kind::kEnd;
    std::string text;
    json::value value;
    std::size_t at = 0;
};

std::vector<Token> tokenize(std::string_view text) {
    std::vector<Token> out;
    std::size_t i = 0;
    const auto fail = [&](const std::string& why) {
        throw std::invalid_argument(why + " at position " + std::to_string(i + 1));
    };
    while (i < text.size()) {
        const char c = text[i];
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            ++i;
            continue;
        }
        Token token;
        token.at = i;
        if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
            std::size_t end = i;
            while (end < text.size() &&
                   (std::isdigit(static_cast<unsigned char>(text[end])) != 0 || text[end] == '.')) {
                ++end;
            }
            double number = 0;
            const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + end, number);
            if (ec != std::errc() || ptr != text.data() + end) {
                fail("a malformed number");
            }
            token.kind = Token::Kind::kNumber;
            const auto whole = static_cast<std::int64_t>(number);
            token.value = static_cast<double>(whole) == number && std::abs(number) < 1e15
                              ? json::value(whole)
                              : json::value(number);
            i = end;
        } else if (c == '\'' || c == '"') {
            std::string value;
            std::size_t end = i + 1;
            while (end < text.size() && text[end] != c) {
                if (text[end] == '\\' && end + 1 < text.size()) {
                    ++end;
                }
                value.push_back(text[end]);
                ++end;
            }
            if (end >= text.size()) {
                fail("an unterminated string");
            }
            token.kind = Token::Kind::kString;
            token.value = json::string(value);
            i = end + 1;
        } else if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_') {
            std::size_t end = i;
            while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) != 0 ||
                                         text[end] == '_' || text[end] == '.')) {
                ++end;
            }
            token.kind = Token::Kind::kName;
            token.text = std::string(text.substr(i, end - i));
            i = end;
        } else {
            static const std::vector<std::string> ops{"&&", "||", "==", "!=", "<=", ">=", "<", ">",
                                                      "!",  "(",  ")",  "+",  "-",  "*",  "/"};
            bool matched = false;
            for (const auto& op : ops) {
                if (text.substr(i, op.size()) == op) {
                    token.kind = Token::Kind::kOp;
                    token.text = op;
                    i += op.size();
                    matched = true;
                    break;
                }
            }
            if (!matched) {
                fail(std::string("an unexpected '") + c + "'");
            }
        }
        out.push_back(std::move(token));
    }
    Token end;
    end.at = text.size();
    out.push_back(std::move(end));
    return out;
}

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

    std::unique_ptr<ExprNode> parse() {
        auto node = binary(0);
        if (peek().kind != Token::Kind::kEnd) {
            fail("an unexpected '" + describe(peek()) + "'");
        }
        return node;
    }

private:
    // Binding strength, weakest first.
    static int level_of(const std::string& op) {
        if (op == "||") {
            return 0;
        }
        if (op == "&&") {
            return 1;
        }
        if (op == "==" || op == "!=") {
            return 2;
        }
        if (op == "<" || op == "<=" || op == ">" || op == ">=") {
            return 3;
        }
        if (op == "+" || op == "-") {
            return 4;
        }
        if (op == "*" || op == "/") {
            return 5;
        }
        return -1;
    }

    std::unique_ptr<ExprNode> binary(int level) {
        if (level > 5) {
            return unary();
        }
        auto left = binary(level + 1);
        while (peek().kind == Token::Kind::kOp && level_of(peek().text) == level) {
            auto node = std::make_unique<ExprNode>();
            node->kind = ExprNode::Kind::kBinary;
            node->op = next().text;
            node->left = std::move(left);
            node->right = binary(level + 1);
            left = std::move(node);
        }
        return left;
    }

    std::unique_ptr<ExprNode> unary() {
        if (peek().kind == Token::Kind::kOp && (peek().text == "!" || peek().text == "-")) {
            auto node = std::make_unique<ExprNode>();
            node->kind = next().text == "!" ? ExprNode::Kind::kNot : ExprNode::Kind::kNegate;
            node->left = unary();
            return node;
        }
        return primary();
    }

    std::unique_ptr<ExprNode> primary() {
        auto token = next();
        auto node = std::make_unique<ExprNode>();
        switch (token.kind) {
            case Token::Kind::kNumber:
            case Token::Kind::kString:
                node->literal = token.value;
                return node;
            case Token::Kind::kName: {
                if (token.text == "true" || token.text == "false") {
                    node->literal = token.text == "true";
                    return node;
                }
                if (token.text == "null") {
                    return node;
                }
                std::size_t start = 0;
                while (start <= token.text.size()) {
                    const auto dot = token.text.find('.', start);
                    node->path.push_back(token.text.substr(
                        start, dot == std::string::npos ? std::string::npos : dot - start));
                    if (dot == std::string::npos) {
                        break;
                    }
                    start = dot + 1;
                }
                const auto& root = node->path.front();
                if (root != "event" && root != "context" && root != "input") {
                    at_ = token.at;
                    fail("an unknown name '" + token.text +
                         "' (paths start with event, context or input)");
                }
                for (const auto& part : node->path) {
                    if (part.empty()) {
                        at_ = token.at;
                        fail("an empty segment in '" + token.text + "'");
                    }
                }
                node->kind = ExprNode::Kind::kPath;
                return node;
            }
            case Token::Kind::kOp:
                if (token.text == "(") {
                    auto inner = binary(0);
                    if (peek().kind != Token::Kind::kOp || peek().text != ")") {
                        fail("a missing ')'");
                    }
                    next();
                    return inner;
                }
                at_ = token.at;
                fail("an unexpected '" + token.text + "'");
                break;
            case Token::Kind::kEnd:
                at_ = token.at;
                fail("an incomplete expression");
                break;
        }
        return node;
    }

    static std::string describe(const Token& token) {
        if (token.kind == Token::Kind::kName || token.kind == Token::Kind::kOp) {
            return token.text;
        }
        return json::serialize(token.value);
    }
    const Token& peek() const { return tokens_[position_]; }
    Token next() {
        at_ = tokens_[position_].at;
        return tokens_[position_ < tokens_.size() - 1 ? position_++ : position_];
    }
    [[noreturn]] void fail(const std::string& why) const {
        throw std::invalid_argument(why + " at position " + std::to_string(at_ + 1));
    }

    std::vector<Token> tokens_;
    std::size_t position_ = 0;
    std::size_t at_ = 0;
};

bool truthy(const json::value& value) {
    if (value.is_bool()) {
        return value.get_bool();
    }
    if (value.is_null()) {
        return false;
    }
    if (value.is_number()) {
        return value.to_number<double>() != 0;
    }
    if (value.is_string()) {
        return !value.get_string().empty();
    }
    return true;
}

json::value number_value(double number) {
    const auto whole = static_cast<std::int64_t>(number);
    if (static_cast<double>(whole) == number && std::abs(number) < 1e15) {
        return whole;
    }
    return number;
}

bool equal(const json::value& a, const json::value& b) {
    if (a.is_number() && b.is_number()) {
        return a.to_number<double>() == b.to_number<double>();
    }
    return a == b;
}

json::value eval(const ExprNode& node, const json::object& scope) {
    switch (node.kind) {
        case ExprNode::Kind::kLiteral:
            return node.literal;
        case ExprNode::Kind::kPath: {
            const json::value* at = nullptr;
            const json::object* object = &scope;
            for (const auto& part : node.path) {
                if (object == nullptr) {
                    return nullptr;
                }
                at = object->if_contains(part);
                if (at == nullptr) {
                    return nullptr;
                }
                object = at->is_object() ? &at->get_object() : nullptr;
            }
            return at == nullptr ? json::value() : *at;
        }
        case ExprNode::Kind::kNot:
            return !truthy(eval(*node.left, scope));
        case ExprNode::Kind::kNegate: {
            const auto value = eval(*node.left, scope);
            return value.is_number() ? number_value(-value.to_number<double>()) : json::value();
        }
        case ExprNode::Kind::kBinary:
            break;
    }
    const auto& op = node.op;
    if (op == "&&") {
        return truthy(eval(*node.left, scope)) && truthy(eval(*node.right, scope));
    }
    if (op == "||") {
        return truthy(eval(*node.left, scope)) || truthy(eval(*node.right, scope));
    }
    const auto left = eval(*node.left, scope);
    const auto right = eval(*node.right, scope);
    if (op == "==") {
        return equal(left, right);
    }
    if (op == "!=") {
        return !equal(left, right);
    }
    if (left.is_number() && right.is_number()) {
        const double a = left.to_number<double>();
        const double b = right.to_number<double>();
        if (op == "<") {
            return a < b;
        }
        if (op == "<=") {
            return a <= b;
        }
        if (op == ">") {
            return a > b;
        }
        if (op == ">=") {
            return a >= b;
        }
        if (op == "+") {
            return number_value(a + b);
        }
        if (op == "-") {
            return number_value(a - b);
        }
        if (op == "*") {
            return number_value(a * b);
        }
        if (op == "/") {
            return b == 0 ? json::value() : number_value(a / b);
        }
    }
    if (left.is_string() && right.is_string()) {
        const std::string_view a = left.get_string();
        const std::string_view b = right.get_string();
        if (op == "<") {
            return a < b;
        }
        if (op == "<=") {
            return a <= b;
        }
        if (op == ">") {
            return a > b;
        }
        if (op == ">=") {
            return a >= b;
        }
        if (op == "+") {
            return json::string(std::string(a) + std::string(b));
        }
    }
    // Mixed or missing operands: comparisons are false, arithmetic is null.
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
        return false;
    }
    return nullptr;
}

}  // namespace

Expression::Expression(std::string_view text) {
    if (text.size() > 1000) {
        throw std::invalid_argument("longer than 1000 characters");
    }
    root_ = Parser(tokenize(text)).parse();
}
Expression::~Expression() = default;
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;

json::value Expression::evaluate(const json::object& scope) const {
    return eval(*root_, scope);
}

bool Expression::test(const json::object& scope) const {
    return truthy(evaluate(scope));
}

}  // namespace riveredge::workflows
