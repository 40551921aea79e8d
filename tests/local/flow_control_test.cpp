// Flow-control configs as the executor compiles them: what the server would refuse is refused
// with the field named, and the throttle's cell-rate arithmetic.

#include "local/flow_control.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using inngest::local::internal::compile_flow_control;
using inngest::local::internal::concurrency_bucket;
using inngest::local::internal::priority_of;
using inngest::local::internal::throttle_slot;
using inngest::local::internal::ThrottleRule;
using inngest::local::internal::TimePoint;

namespace {

std::string refusal(const char* config) {
    const auto compiled = compile_flow_control("app-fn", boost::json::parse(config).as_object());
    return compiled ? std::string() : compiled.error().message;
}

}  // namespace

TEST_CASE("flow-control options the server refuses are refused, naming the field",
          "[local][flow]") {
    CHECK(refusal(R"({"batchEvents":{"maxSize":1,"timeout":"5s"}})").find("batchEvents.maxSize") !=
          std::string::npos);
    CHECK(
        refusal(R"({"batchEvents":{"maxSize":3,"timeout":"500ms"}})").find("batchEvents.timeout") !=
        std::string::npos);
    CHECK(refusal(R"({"batchEvents":{"maxSize":3,"timeout":"5s"},"debounce":{"period":"5s"}})")
              .find("cannot be combined") != std::string::npos);
    CHECK(refusal(R"({"debounce":{"period":"500ms"}})").find("debounce.period") !=
          std::string::npos);
    CHECK(refusal(R"({"debounce":{"period":"8d"}})").find("debounce.period") != std::string::npos);
    CHECK(refusal(R"({"rateLimit":{"limit":0,"period":"1m"}})").find("rateLimit.limit") !=
          std::string::npos);
    CHECK(refusal(R"({"rateLimit":{"limit":1,"period":"25h"}})").find("rateLimit.period") !=
          std::string::npos);
    CHECK(refusal(R"({"throttle":{"limit":1,"period":"soon"}})").find("throttle.period") !=
          std::string::npos);
    CHECK(refusal(R"({"singleton":{"mode":"queue"}})").find("singleton.mode") != std::string::npos);
    CHECK(refusal(R"({"concurrency":[{"limit":1,"scope":"env"}]})").find("needs a key") !=
          std::string::npos);
    CHECK(refusal(R"({"concurrency":[{"limit":1},{"limit":2},{"limit":3}]})").find("at most two") !=
          std::string::npos);
    CHECK(refusal(R"({"priority":{"run":"event.data.(("}})").find("priority.run") !=
          std::string::npos);
    CHECK(
        refusal(
            R"({"concurrency":[{"limit":2,"key":"event.data.a"},{"limit":5,"scope":"account","key":"\"g\""}],"throttle":{"limit":10,"period":"1m","burst":2},"rateLimit":{"limit":100,"period":"1h"},"debounce":{"period":"5s","timeout":"1m"},"priority":{"run":"event.data.p"},"singleton":{"mode":"cancel"}})")
            .empty());
}

TEST_CASE("concurrency buckets: function scope is the function's, env and account are shared",
          "[local][flow]") {
    const auto flow = compile_flow_control(
        "app-a",
        boost::json::parse(
            R"({"concurrency":[{"limit":1,"key":"event.data.g"},{"limit":1,"key":"event.data.g","scope":"env"}]})")
            .as_object());
    REQUIRE(flow.has_value());
    const boost::json::object event{{"name", "x"}, {"data", {{"g", "7"}}}};
    CHECK(concurrency_bucket("app-a", flow->concurrency[0], event) !=
          concurrency_bucket("app-b", flow->concurrency[0], event));
    CHECK(concurrency_bucket("app-a", flow->concurrency[1], event) ==
          concurrency_bucket("app-b", flow->concurrency[1], event));
    const boost::json::object other{{"name", "x"}, {"data", {{"g", "8"}}}};
    CHECK(concurrency_bucket("app-a", flow->concurrency[1], event) !=
          concurrency_bucket("app-a", flow->concurrency[1], other));
}

TEST_CASE("priority is the expression's seconds, clamped as the server clamps it",
          "[local][flow]") {
    const auto flow = compile_flow_control(
        "f", boost::json::parse(R"({"priority":{"run":"event.data.p"}})").as_object());
    REQUIRE(flow.has_value());
    const auto with = [&](boost::json::value p) {
        return priority_of(flow->priority, boost::json::object{{"data", {{"p", p}}}});
    };
    CHECK(with(120) == 120);
    CHECK(with(-50000) == -43200);
    CHECK(with(99999) == 43200);
    CHECK(with("high") == 0);
}

TEST_CASE("throttle: runs start period/limit apart, the first `burst` at once", "[local][flow]") {
    const TimePoint t0{std::chrono::seconds(1000)};
    ThrottleRule rule{.limit = 2, .period = 10s, .burst = 1, .key = std::nullopt};
    auto slot = throttle_slot(rule, std::nullopt, t0);
    CHECK(slot.start == t0);
    slot = throttle_slot(rule, slot.next_arrival, t0);
    CHECK(slot.start == t0 + 5s);
    slot = throttle_slot(rule, slot.next_arrival, t0);
    CHECK(slot.start == t0 + 10s);
    // Idle long enough, the bucket is fresh again.
    CHECK(throttle_slot(rule, slot.next_arrival, t0 + 60s).start == t0 + 60s);

    rule.burst = 3;
    slot = throttle_slot(rule, std::nullopt, t0);
    std::vector<TimePoint> starts{slot.start};
    for (int i = 0; i < 4; ++i) {
        slot = throttle_slot(rule, slot.next_arrival, t0);
        starts.push_back(slot.start);
    }
    CHECK(starts == std::vector<TimePoint>{t0, t0, t0, t0 + 5s, t0 + 10s});
}
