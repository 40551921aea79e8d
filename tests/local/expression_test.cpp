#include <inngest/local/expression.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

namespace json = boost::json;
using inngest::local::Expression;

namespace {

json::value eval(const std::string& source, const json::object& vars) {
    const auto compiled = Expression::compile(source);
    REQUIRE(compiled.has_value());
    const auto result = compiled->evaluate(vars);
    REQUIRE(result.has_value());
    return *result;
}

const json::object kVars = json::parse(R"({
    "event": {"name": "shop/order", "data": {"total": 150, "vip": true, "plan": "pro",
              "id": "o-1", "tags": ["a", "b"], "ratio": 0.5, "user": {"email": "x@y.z"}}},
    "async": {"name": "shop/paid", "data": {"id": "o-1", "resume": true}}
})")
                               .as_object();

}  // namespace

TEST_CASE("expressions cover the CEL subset Inngest uses", "[unit]") {
    CHECK(eval("event.data.total > 100 && event.data.vip == true", kVars) == true);
    CHECK(eval("async.data.id == event.data.id", kVars) == true);
    CHECK(eval("async.data.resume == true && async.data.id == event.data.id", kVars) == true);
    CHECK(eval("event.data.plan in ['pro', 'team']", kVars) == true);
    CHECK(eval("event.data.plan in [\"free\"]", kVars) == false);
    CHECK(eval("'a' in event.data.tags", kVars) == true);
    CHECK(eval("size(event.data.tags) == 2 && event.data.tags.size() == 2", kVars) == true);
    CHECK(eval("event.name.startsWith('shop/') && event.name.endsWith('order')", kVars) == true);
    CHECK(eval("event.data.user.email.contains('@')", kVars) == true);
    CHECK(eval("!(event.data.total < 100) || false", kVars) == true);
    CHECK(eval("event.data.total * 2 + 1", kVars) == 301);
    CHECK(eval("event.data.total / 4", kVars) == 37);
    CHECK(eval("event.data.ratio * 4", kVars) == 2.0);
    CHECK(eval("event.data.vip ? 120 : 0", kVars) == 120);
    CHECK(eval("event.data['plan']", kVars) == "pro");
    CHECK(eval("event.data.tags[1]", kVars) == "b");
    CHECK(eval("has(event.data.total) && !has(event.data.nothing)", kVars) == true);
    CHECK(eval("int('42') + double(1)", kVars) == 43.0);
    CHECK(eval("string(event.data.total) == '150'", kVars) == true);
    CHECK(eval("\"global\"", kVars) == "global");
}

TEST_CASE("expressions are loosely typed: missing fields and mixed types do not error", "[unit]") {
    CHECK(eval("event.data.missing.deeper == null", kVars) == true);
    CHECK(eval("event.data.missing > 3", kVars) == false);
    CHECK(eval("event.data.plan == 3", kVars) == false);
    CHECK(eval("event.data.total == 150.0", kVars) == true);
    CHECK(eval("event.data.plan < 5", kVars) == false);
}

TEST_CASE("unsupported or malformed expressions fail to compile with a position", "[unit]") {
    for (const char* bad : {"event.data.x ==", "matches(event.name, 'x')", "event.data.x.map(y, y)",
                            "(event.data.x", "'unterminated", "event.data.x === 1", "1 +* 2"}) {
        CAPTURE(bad);
        const auto compiled = Expression::compile(bad);
        REQUIRE_FALSE(compiled.has_value());
        CHECK(compiled.error().message.find("position") != std::string::npos);
    }
}

TEST_CASE("runtime errors are reported, not thrown", "[unit]") {
    const auto compiled = Expression::compile("event.data.total / 0");
    REQUIRE(compiled.has_value());
    CHECK_FALSE(compiled->evaluate(kVars).has_value());
    CHECK_FALSE(compiled->matches(kVars));
}

TEST_CASE("an expression names the top-level variables it reads, once each, in order",
          "[expression]") {
    const auto expression = inngest::local::Expression::compile(
        "event.data.total > limits['max'] && size(event.data.items) < 3 ? secret.key : "
        "[context.a, 'event.x']");
    REQUIRE(expression.has_value());
    CHECK(expression->variables() ==
          std::vector<std::string>{"event", "limits", "secret", "context"});
    CHECK(inngest::local::Expression::compile("1 + 2")->variables().empty());
}
