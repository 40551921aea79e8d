#include "protocol/call_request.hpp"

#include "support/call_builder.hpp"

#include <catch2/catch.hpp>

using inngest::detail::parse_call_request;

TEST_CASE("a call request parses event, events, steps and ctx", "[unit]") {
    inngest_test::CallBuilder call;
    call.event = boost::json::object{{"name", "shop/order"}, {"data", {{"id", 7}}}, {"ts", 1}};
    call.attempt = 2;
    call.max_attempts = 3;
    call.disable_immediate_execution = true;
    call.data("first", "one").memo("nap", nullptr);
    const std::string body = call.body();  // the parsed request refers into the body
    const auto parsed = parse_call_request(body);
    REQUIRE(parsed.has_value());
    CHECK(parsed->event.name == "shop/order");
    CHECK(parsed->event.data.at("id") == 7);
    CHECK(parsed->events.size() == 1);
    CHECK(parsed->attempt == 2);
    CHECK(parsed->max_attempts == 3);
    CHECK(parsed->disable_immediate_execution);
    CHECK(parsed->run_id == call.run_id);
    CHECK(parsed->steps.size() == 2);
    const auto* nap = parsed->steps.find(inngest_test::step_hash("nap"));
    REQUIRE(nap != nullptr);
    CHECK(nap->raw == "null");
    CHECK(parsed->steps.find(inngest_test::step_hash("absent")) == nullptr);
    CHECK(parsed->stack.size() == 2);
}

TEST_CASE("missing ctx fields default and unknown fields are ignored", "[unit]") {
    const auto parsed =
        parse_call_request(R"({"event":{"name":"x"},"future_field":[1,2],"ctx":{"new":true}})");
    REQUIRE(parsed.has_value());
    CHECK(parsed->attempt == 0);
    CHECK(parsed->events.size() == 1);
    CHECK(parsed->steps.empty());
}

TEST_CASE("malformed call requests are errors that name the problem", "[unit]") {
    const char* bodies[] = {
        "",
        "not json",
        "[]",
        "null",
        "{}",
        R"({"ctx":{"attempt":0}})",
        R"({"event":"x"})",
        R"({"event":{"name":1}})",
        R"({"events":{}})",
        R"({"steps":[]})",
        R"({"ctx":[]})",
        R"({"ctx":{"attempt":"1"}})",
        R"({"ctx":{"attempt":-1}})",
        R"({"ctx":{"stack":{"stack":[1]}}})",
        R"({"event":{"name":"x","data":[]}})",
    };
    for (const char* body : bodies) {
        CAPTURE(body);
        const auto parsed = parse_call_request(body);
        REQUIRE_FALSE(parsed.has_value());
        CHECK(parsed.error().code == inngest::ErrorCode::kMalformedRequest);
        CHECK_FALSE(parsed.error().message.empty());
    }
}

TEST_CASE("every truncation of a valid call request is rejected without crashing", "[unit]") {
    inngest_test::CallBuilder call;
    call.data("a", boost::json::object{{"k", "v"}}).memo("b", nullptr);
    const std::string body = call.body();
    for (std::size_t length = 0; length < body.size(); ++length) {
        const auto parsed = parse_call_request(std::string_view(body).substr(0, length));
        CHECK_FALSE(parsed.has_value());
    }
    CHECK(parse_call_request(body).has_value());
}
