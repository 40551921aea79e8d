// The local executor's expressions (inngest/local/expression.hpp): compile, then evaluate.
//
// Input: the expression, a newline, then JSON for the variables (an object; anything else
// means a fixed sample event). Compiling and evaluating report errors as kInvalidArgument
// results; neither throws, and `matches` agrees with `evaluate`.

#include "fuzz_target.hpp"

#include <inngest/local/expression.hpp>

#include <boost/json/parse.hpp>

#include <string>

namespace {

const boost::json::object& sample_variables() {
    static const boost::json::object variables = boost::json::parse(R"({
        "event": {"name": "app/order.created", "ts": 1760000000000,
                  "data": {"id": "o-1", "total": 120.5, "count": 3, "tags": ["a", "b"],
                           "customer": {"id": 7, "vip": true}, "note": null}},
        "async": {"name": "app/order.paid", "data": {"id": "o-1", "amount": -4}}
    })")
                                                     .as_object();
    return variables;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view source;
    std::string_view variables_text;
    inngest::fuzz::split_once(inngest::fuzz::as_text(data, size), '\n', source, variables_text);
    const std::string source_copy(source);
    const auto expression = inngest::local::Expression::compile(source_copy);
    if (!expression) {
        FUZZ_CHECK(expression.error().code == inngest::ErrorCode::kInvalidArgument);
        FUZZ_CHECK(!expression.error().message.empty());
        return 0;
    }
    FUZZ_CHECK(expression->source() == source);

    boost::system::error_code ec;
    const boost::json::value parsed = boost::json::parse(variables_text, ec);
    const boost::json::object& variables =
        !ec && parsed.is_object() ? parsed.get_object() : sample_variables();
    const auto value = expression->evaluate(variables);
    if (!value) {
        FUZZ_CHECK(value.error().code == inngest::ErrorCode::kInvalidArgument);
    }
    const bool matched = value && value->is_bool() && value->get_bool();
    FUZZ_CHECK(expression->matches(variables) == matched);
    return 0;
}
