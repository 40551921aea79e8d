#include <inngest/local/expression.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <vector>

namespace inngest::local {

struct Expression::Node {
    enum class Kind {
        kLiteral,
        kVariable,
        kField,    // children[0].name
        kIndex,    // children[0][children[1]]
        kUnary,    // op children[0]
        kBinary,   // children[0] op children[1]
        kTernary,  // children[0] ? children[1] : children[2]
        kCall,     // name(children...)
        kMethod,   // children[0].name(children[1..])
        kList,
        kMap,  // children alternate key, value
    };
    Kind kind = Kind::kLiteral;
    std::string name;  // variable, field, operator or function name
    boost::json::value literal;
    std::vector<std::shared_ptr<const Node>> children;
    int depth = 1;  // levels of the tree from here down
};

namespace {

using Node = Expression::Node;
using NodePtr = std::shared_ptr<const Node>;
namespace json = boost::json;

struct CompileError {
    std::string message;
};

// Parsing, evaluating and freeing an expression recurse once per level of nesting (brackets,
// prefix operators) and of its tree (a + b + c ...): both are bounded, so a long expression is
// an error instead of a stack overflow.
constexpr int kMaxDepth = 200;

class Parser {
public:
    explicit Parser(std::string_view source) : source_(source) {}

    NodePtr parse() {
        NodePtr node = ternary();
        skip_space();
        if (pos_ != source_.size()) {
            fail("unexpected '" + std::string(1, source_[pos_]) + "'");
        }
        return node;
    }

private:
    // One level of nesting while it lives.
    class Nested {
    public:
        explicit Nested(Parser& parser) : parser_(parser) {
            if (++parser_.nesting_ > kMaxDepth) {
                parser_.fail("expression nested too deeply");
            }
        }
        ~Nested() { --parser_.nesting_; }
        Nested(const Nested&) = delete;
        Nested& operator=(const Nested&) = delete;

    private:
        Parser& parser_;
    };

    [[noreturn]] void fail(const std::string& what) const {
        throw CompileError{what + " at position " + std::to_string(pos_ + 1)};
    }

    void skip_space() {
        while (pos_ < source_.size() &&
               std::isspace(static_cast<unsigned char>(source_[pos_])) != 0) {
            ++pos_;
        }
    }

    bool accept(std::string_view token) {
        skip_space();
        if (source_.substr(pos_, token.size()) != token) {
            return false;
        }
        // Keep `<` from eating the start of `<=`, and words from matching prefixes.
        const std::size_t end = pos_ + token.size();
        if (std::isalpha(static_cast<unsigned char>(token.back())) != 0 && end < source_.size() &&
            (std::isalnum(static_cast<unsigned char>(source_[end])) != 0 || source_[end] == '_')) {
            return false;
        }
        pos_ = end;
        return true;
    }

    void expect(std::string_view token) {
        if (!accept(token)) {
            fail("expected '" + std::string(token) + "'");
        }
    }

    NodePtr make(Node::Kind kind, std::string name, std::vector<NodePtr> children) const {
        auto node = std::make_shared<Node>();
        node->kind = kind;
        node->name = std::move(name);
        for (const auto& child : children) {
            node->depth = std::max(node->depth, child->depth + 1);
        }
        if (node->depth > kMaxDepth) {
            fail("expression nested too deeply");
        }
        node->children = std::move(children);
        return node;
    }

    NodePtr ternary() {
        const Nested nested(*this);
        NodePtr condition = logical_or();
        if (accept("?")) {
            NodePtr then = ternary();
            expect(":");
            NodePtr otherwise = ternary();
            return make(Node::Kind::kTernary, "?", {condition, then, otherwise});
        }
        return condition;
    }

    NodePtr logical_or() {
        NodePtr left = logical_and();
        while (accept("||")) {
            left = make(Node::Kind::kBinary, "||", {left, logical_and()});
        }
        return left;
    }

    NodePtr logical_and() {
        NodePtr left = relation();
        while (accept("&&")) {
            left = make(Node::Kind::kBinary, "&&", {left, relation()});
        }
        return left;
    }

    NodePtr relation() {
        NodePtr left = additive();
        for (const char* op : {"==", "!=", "<=", ">=", "<", ">", "in"}) {
            if (accept(op)) {
                return make(Node::Kind::kBinary, op, {left, additive()});
            }
        }
        return left;
    }

    NodePtr additive() {
        NodePtr left = multiplicative();
        for (;;) {
            if (accept("+")) {
                left = make(Node::Kind::kBinary, "+", {left, multiplicative()});
            } else if (accept("-")) {
                left = make(Node::Kind::kBinary, "-", {left, multiplicative()});
            } else {
                return left;
            }
        }
    }

    NodePtr multiplicative() {
        NodePtr left = unary();
        for (;;) {
            if (accept("*")) {
                left = make(Node::Kind::kBinary, "*", {left, unary()});
            } else if (accept("/")) {
                left = make(Node::Kind::kBinary, "/", {left, unary()});
            } else if (accept("%")) {
                left = make(Node::Kind::kBinary, "%", {left, unary()});
            } else {
                return left;
            }
        }
    }

    NodePtr unary() {
        const Nested nested(*this);
        if (accept("!")) {
            return make(Node::Kind::kUnary, "!", {unary()});
        }
        if (accept("-")) {
            return make(Node::Kind::kUnary, "-", {unary()});
        }
        return postfix();
    }

    std::string identifier() {
        skip_space();
        const std::size_t start = pos_;
        while (pos_ < source_.size() &&
               (std::isalnum(static_cast<unsigned char>(source_[pos_])) != 0 ||
                source_[pos_] == '_')) {
            ++pos_;
        }
        if (start == pos_ || std::isdigit(static_cast<unsigned char>(source_[start])) != 0) {
            fail("expected a name");
        }
        return std::string(source_.substr(start, pos_ - start));
    }

    std::vector<NodePtr> arguments(std::string_view close) {
        std::vector<NodePtr> args;
        if (accept(close)) {
            return args;
        }
        do {
            args.push_back(ternary());
        } while (accept(","));
        expect(close);
        return args;
    }

    NodePtr postfix() {
        NodePtr node = primary();
        for (;;) {
            if (accept(".")) {
                std::string name = identifier();
                if (accept("(")) {
                    std::vector<NodePtr> children{node};
                    for (auto& arg : arguments(")")) {
                        children.push_back(std::move(arg));
                    }
                    static const std::vector<std::string> kMethods{"startsWith", "endsWith",
                                                                   "contains", "size"};
                    if (std::find(kMethods.begin(), kMethods.end(), name) == kMethods.end()) {
                        fail("unsupported method '" + name + "'");
                    }
                    node = make(Node::Kind::kMethod, name, std::move(children));
                } else {
                    node = make(Node::Kind::kField, name, {node});
                }
            } else if (accept("[")) {
                NodePtr index = ternary();
                expect("]");
                node = make(Node::Kind::kIndex, "[]", {node, index});
            } else {
                return node;
            }
        }
    }

    NodePtr literal(json::value value) {
        auto node = std::make_shared<Node>();
        node->kind = Node::Kind::kLiteral;
        node->literal = std::move(value);
        return node;
    }

    NodePtr string_literal(char quote) {
        ++pos_;
        std::string text;
        while (pos_ < source_.size() && source_[pos_] != quote) {
            char c = source_[pos_++];
            if (c == '\\' && pos_ < source_.size()) {
                const char escaped = source_[pos_++];
                switch (escaped) {
                    case 'n':
                        c = '\n';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    default:
                        c = escaped;
                }
            }
            text.push_back(c);
        }
        if (pos_ >= source_.size()) {
            fail("unterminated string");
        }
        ++pos_;
        return literal(json::value(text));
    }

    NodePtr number_literal() {
        const std::size_t start = pos_;
        bool is_double = false;
        while (pos_ < source_.size() &&
               (std::isdigit(static_cast<unsigned char>(source_[pos_])) != 0 ||
                source_[pos_] == '.' || source_[pos_] == 'e' || source_[pos_] == 'E')) {
            is_double = is_double || !std::isdigit(static_cast<unsigned char>(source_[pos_]));
            ++pos_;
        }
        const std::string text(source_.substr(start, pos_ - start));
        if (pos_ < source_.size() && (source_[pos_] == 'u' || source_[pos_] == 'U')) {
            ++pos_;  // CEL unsigned suffix
        }
        try {
            if (is_double) {
                return literal(json::value(std::stod(text)));
            }
            return literal(json::value(static_cast<std::int64_t>(std::stoll(text))));
        } catch (const std::exception&) {
            fail("invalid number '" + text + "'");
        }
    }

    NodePtr primary() {
        skip_space();
        if (pos_ >= source_.size()) {
            fail("unexpected end of expression");
        }
        const char c = source_[pos_];
        if (c == '(') {
            ++pos_;
            NodePtr inner = ternary();
            expect(")");
            return inner;
        }
        if (c == '\'' || c == '"') {
            return string_literal(c);
        }
        if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
            return number_literal();
        }
        if (c == '[') {
            ++pos_;
            return make(Node::Kind::kList, "[]", arguments("]"));
        }
        if (c == '{') {
            ++pos_;
            std::vector<NodePtr> entries;
            if (!accept("}")) {
                do {
                    entries.push_back(ternary());
                    expect(":");
                    entries.push_back(ternary());
                } while (accept(","));
                expect("}");
            }
            return make(Node::Kind::kMap, "{}", std::move(entries));
        }
        const std::string name = identifier();
        if (name == "true") {
            return literal(json::value(true));
        }
        if (name == "false") {
            return literal(json::value(false));
        }
        if (name == "null") {
            return literal(json::value(nullptr));
        }
        if (accept("(")) {
            static const std::vector<std::string> kFunctions{"size",   "int",    "uint",
                                                             "double", "string", "has"};
            if (std::find(kFunctions.begin(), kFunctions.end(), name) == kFunctions.end()) {
                fail("unsupported function '" + name + "'");
            }
            auto args = arguments(")");
            if (args.size() != 1) {
                fail(name + "() takes one argument");
            }
            if (name == "has" && args[0]->kind != Node::Kind::kField) {
                fail("has() needs a field selection like has(event.data.x)");
            }
            return make(Node::Kind::kCall, name, std::move(args));
        }
        auto node = std::make_shared<Node>();
        node->kind = Node::Kind::kVariable;
        node->name = name;
        return node;
    }

    std::string_view source_;
    std::size_t pos_ = 0;
    int nesting_ = 0;
};

struct EvalError {
    std::string message;
};

bool is_number(const json::value& v) {
    return v.is_int64() || v.is_uint64() || v.is_double();
}

double as_double(const json::value& v) {
    if (v.is_int64()) {
        return static_cast<double>(v.get_int64());
    }
    if (v.is_uint64()) {
        return static_cast<double>(v.get_uint64());
    }
    return v.get_double();
}

bool loosely_equal(const json::value& a, const json::value& b) {
    if (is_number(a) && is_number(b)) {
        return as_double(a) == as_double(b);
    }
    return a == b;
}

std::optional<int> compare(const json::value& a, const json::value& b) {
    if (is_number(a) && is_number(b)) {
        const double x = as_double(a);
        const double y = as_double(b);
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.is_string() && b.is_string()) {
        const int c = a.get_string().compare(b.get_string());
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    return std::nullopt;  // mixed types: every ordering is false
}

json::value number(double x, bool integral) {
    if (integral && std::floor(x) == x && std::fabs(x) < 9.2e18) {
        return json::value(static_cast<std::int64_t>(x));
    }
    return json::value(x);
}

class Evaluator {
public:
    explicit Evaluator(const json::object& variables) : variables_(variables) {}

    json::value eval(const Node& node) const {
        switch (node.kind) {
            case Node::Kind::kLiteral:
                return node.literal;
            case Node::Kind::kVariable: {
                const auto* value = variables_.if_contains(node.name);
                return value != nullptr ? *value : json::value(nullptr);
            }
            case Node::Kind::kField: {
                const json::value base = eval(*node.children[0]);
                if (const auto* object = base.if_object()) {
                    if (const auto* field = object->if_contains(node.name)) {
                        return *field;
                    }
                }
                return nullptr;
            }
            case Node::Kind::kIndex:
                return index(eval(*node.children[0]), eval(*node.children[1]));
            case Node::Kind::kUnary: {
                const json::value operand = eval(*node.children[0]);
                if (node.name == "!") {
                    return json::value(!(operand.is_bool() && operand.get_bool()));
                }
                if (!is_number(operand)) {
                    return nullptr;
                }
                return number(-as_double(operand), !operand.is_double());
            }
            case Node::Kind::kBinary:
                return binary(node);
            case Node::Kind::kTernary: {
                const json::value condition = eval(*node.children[0]);
                return eval(*node.children[condition.is_bool() && condition.get_bool() ? 1 : 2]);
            }
            case Node::Kind::kCall:
                return call(node);
            case Node::Kind::kMethod:
                return method(node);
            case Node::Kind::kList: {
                json::array list;
                for (const auto& child : node.children) {
                    list.push_back(eval(*child));
                }
                return list;
            }
            case Node::Kind::kMap: {
                json::object map;
                for (std::size_t i = 0; i + 1 < node.children.size(); i += 2) {
                    const json::value key = eval(*node.children[i]);
                    if (!key.is_string()) {
                        throw EvalError{"map keys must be strings"};
                    }
                    map[key.get_string()] = eval(*node.children[i + 1]);
                }
                return map;
            }
        }
        return nullptr;
    }

private:
    static json::value index(const json::value& base, const json::value& key) {
        if (const auto* object = base.if_object(); object != nullptr && key.is_string()) {
            const auto* field = object->if_contains(key.get_string());
            return field != nullptr ? *field : json::value(nullptr);
        }
        if (const auto* array = base.if_array(); array != nullptr && is_number(key)) {
            const double i = as_double(key);
            // Compared as doubles: converting an index past size_t (1e30) is undefined.
            if (i >= 0 && i < static_cast<double>(array->size())) {
                return (*array)[static_cast<std::size_t>(i)];
            }
        }
        return nullptr;
    }

    json::value binary(const Node& node) const {
        const std::string& op = node.name;
        if (op == "&&" || op == "||") {
            const json::value left = eval(*node.children[0]);
            const bool l = left.is_bool() && left.get_bool();
            if (op == "&&" && !l) {
                return json::value(false);
            }
            if (op == "||" && l) {
                return json::value(true);
            }
            const json::value right = eval(*node.children[1]);
            return json::value(right.is_bool() && right.get_bool());
        }
        const json::value a = eval(*node.children[0]);
        const json::value b = eval(*node.children[1]);
        if (op == "==") {
            return json::value(loosely_equal(a, b));
        }
        if (op == "!=") {
            return json::value(!loosely_equal(a, b));
        }
        if (op == "<" || op == "<=" || op == ">" || op == ">=") {
            const auto c = compare(a, b);
            if (!c) {
                return json::value(false);
            }
            const bool result = op == "<"    ? *c < 0
                                : op == "<=" ? *c <= 0
                                : op == ">"  ? *c > 0
                                             : *c >= 0;
            return json::value(result);
        }
        if (op == "in") {
            if (const auto* list = b.if_array()) {
                for (const auto& item : *list) {
                    if (loosely_equal(a, item)) {
                        return json::value(true);
                    }
                }
                return json::value(false);
            }
            if (const auto* map = b.if_object(); map != nullptr && a.is_string()) {
                return json::value(map->contains(a.get_string()));
            }
            if (a.is_string() && b.is_string()) {
                return json::value(std::string_view(b.get_string()).find(a.get_string()) !=
                                   std::string_view::npos);
            }
            return json::value(false);
        }
        if (op == "+" && a.is_string() && b.is_string()) {
            return json::value(std::string(a.get_string()) + std::string(b.get_string()));
        }
        if (op == "+" && a.is_array() && b.is_array()) {
            json::array joined = a.get_array();
            for (const auto& item : b.get_array()) {
                joined.push_back(item);
            }
            return joined;
        }
        if (!is_number(a) || !is_number(b)) {
            return nullptr;
        }
        const bool integral = !a.is_double() && !b.is_double();
        const double x = as_double(a);
        const double y = as_double(b);
        if (op == "+") {
            return number(x + y, integral);
        }
        if (op == "-") {
            return number(x - y, integral);
        }
        if (op == "*") {
            return number(x * y, integral);
        }
        if (y == 0) {
            throw EvalError{"division by zero"};
        }
        if (op == "/") {
            return integral ? number(std::trunc(x / y), true) : json::value(x / y);
        }
        return number(std::fmod(x, y), integral);
    }

    static json::value size_of(const json::value& v) {
        if (v.is_string()) {
            return json::value(static_cast<std::int64_t>(v.get_string().size()));
        }
        if (v.is_array()) {
            return json::value(static_cast<std::int64_t>(v.get_array().size()));
        }
        if (v.is_object()) {
            return json::value(static_cast<std::int64_t>(v.get_object().size()));
        }
        return json::value(0);
    }

    json::value call(const Node& node) const {
        if (node.name == "has") {
            const Node& field = *node.children[0];
            const json::value base = eval(*field.children[0]);
            return json::value(base.is_object() && base.get_object().contains(field.name));
        }
        const json::value arg = eval(*node.children[0]);
        if (node.name == "size") {
            return size_of(arg);
        }
        if (node.name == "int" || node.name == "uint") {
            if (is_number(arg)) {
                // Converting a double past int64 is undefined: an error, as stoll's is below.
                const double x = as_double(arg);
                if (!(x > -9.2e18 && x < 9.2e18)) {
                    throw EvalError{"int(): out of range"};
                }
                return json::value(static_cast<std::int64_t>(x));
            }
            if (arg.is_string()) {
                try {
                    return json::value(
                        static_cast<std::int64_t>(std::stoll(std::string(arg.get_string()))));
                } catch (const std::exception&) {
                    throw EvalError{"int(): not a number"};
                }
            }
            return nullptr;
        }
        if (node.name == "double") {
            if (is_number(arg)) {
                return json::value(as_double(arg));
            }
            if (arg.is_string()) {
                try {
                    return json::value(std::stod(std::string(arg.get_string())));
                } catch (const std::exception&) {
                    throw EvalError{"double(): not a number"};
                }
            }
            return nullptr;
        }
        // string()
        if (arg.is_string()) {
            return arg;
        }
        if (arg.is_int64()) {
            return json::value(std::to_string(arg.get_int64()));
        }
        if (arg.is_bool()) {
            return json::value(arg.get_bool() ? "true" : "false");
        }
        return json::value(json::serialize(arg));
    }

    json::value method(const Node& node) const {
        const json::value target = eval(*node.children[0]);
        if (node.name == "size") {
            return size_of(target);
        }
        if (node.children.size() != 2) {
            throw EvalError{node.name + "() takes one argument"};
        }
        const json::value arg = eval(*node.children[1]);
        if (!target.is_string() || !arg.is_string()) {
            return json::value(false);
        }
        const std::string_view text = target.get_string();
        const std::string_view part = arg.get_string();
        if (node.name == "startsWith") {
            return json::value(text.starts_with(part));
        }
        if (node.name == "endsWith") {
            return json::value(text.ends_with(part));
        }
        return json::value(text.find(part) != std::string_view::npos);
    }

    const json::object& variables_;
};

}  // namespace

Result<Expression> Expression::compile(std::string_view source) {
    try {
        Expression expression;
        expression.root_ = Parser(source).parse();
        expression.source_ = std::make_shared<const std::string>(source);
        return expression;
    } catch (const CompileError& error) {
        return Error{ErrorCode::kInvalidArgument,
                     "expression '" + std::string(source) + "': " + error.message};
    }
}

Result<boost::json::value> Expression::evaluate(const boost::json::object& variables) const {
    try {
        return Evaluator(variables).eval(*root_);
    } catch (const EvalError& error) {
        return Error{ErrorCode::kInvalidArgument,
                     "expression '" + *source_ + "': " + error.message};
    }
}

bool Expression::matches(const boost::json::object& variables) const {
    const auto result = evaluate(variables);
    return result.has_value() && result->is_bool() && result->get_bool();
}

const std::string& Expression::source() const noexcept {
    return *source_;
}

std::vector<std::string> Expression::variables() const {
    std::vector<std::string> names;
    std::vector<const Node*> pending{root_.get()};
    while (!pending.empty()) {
        const Node* node = pending.back();
        pending.pop_back();
        if (node->kind == Node::Kind::kVariable &&
            std::find(names.begin(), names.end(), node->name) == names.end()) {
            names.push_back(node->name);
        }
        // Children in reverse, so the walk meets them left to right.
        for (auto child = node->children.rbegin(); child != node->children.rend(); ++child) {
            pending.push_back(child->get());
        }
    }
    return names;
}

}  // namespace inngest::local
