// inngest/testing.hpp: functions run in process with mocked and memoized steps, virtual time,
// retries and on_failure, through the public API only.

#include <inngest/inngest.hpp>
#include <inngest/testing.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
namespace json = boost::json;
namespace testing = inngest::testing;

namespace {

// Events go to a port nobody listens on: a send that escaped the test would fail the step.
inngest::Client make_client() {
    return inngest::Client({.app_id = "shop", .dev = true, .base_url = "http://127.0.0.1:1"},
                           inngest::Environment::none());
}

}  // namespace

TEST_CASE("testing: a run goes through every kind of step on a virtual clock", "[unit]") {
    auto client = make_client();
    std::atomic<int> charges{0};
    client.create_function(
        {.id = "order", .triggers = {inngest::EventTrigger{"shop/order.placed"}}},
        [&](inngest::Context& ctx) {
            const auto order = ctx.event.data.at("order").as_int64();
            const auto total = ctx.step.run("price", [&] { return order * 10; });
            ctx.step.run("charge", [&] {
                ++charges;
                return total;
            });
            ctx.step.sleep("cool-off", 1h);
            const auto paid = ctx.step.wait_for_event(
                "paid", {.event = "shop/payment.settled", .timeout = 2h, .match = "data.order"});
            const auto late =
                ctx.step.wait_for_event("late", {.event = "shop/never", .timeout = 30min});
            const auto label =
                ctx.step.invoke("label", {.function_id = "label", .data = {{"order", order}}});
            ctx.step.send_event(
                "notify", inngest::Event{.name = "shop/order.done", .data = {{"order", order}}});
            return json::object{{"total", total},
                                {"paid", paid ? json::value(paid->data.at("amount")) : nullptr},
                                {"late", late.has_value()},
                                {"label", label}};
        });

    testing::RunOptions options;
    options.events = {inngest::Event{.name = "shop/order.placed", .data = {{"order", 7}}}};
    options.start = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    std::vector<testing::WaitRequest> waits;
    options.on_wait = [&](const testing::WaitRequest& wait) -> std::optional<inngest::Event> {
        waits.push_back(wait);
        if (wait.event == "shop/payment.settled") {
            return inngest::Event{.name = wait.event, .data = {{"order", 7}, {"amount", 70}}};
        }
        return std::nullopt;  // times out
    };
    std::vector<testing::InvokeRequest> invokes;
    options.on_invoke = [&](const testing::InvokeRequest& invoke) -> json::value {
        invokes.push_back(invoke);
        return json::value("LBL-" + std::to_string(invoke.data.at("order").as_int64()));
    };

    const auto result = testing::run(client, "order", options);
    REQUIRE(result.status == testing::Status::kCompleted);
    CHECK(result.output == json::parse(R"({"total":70,"paid":70,"late":false,"label":"LBL-7"})"));
    CHECK(charges == 1);

    // Every step, in order, with its kind and result.
    std::vector<std::string> kinds;
    for (const auto& step : result.steps) {
        kinds.push_back(step.id + "/" + step.kind);
    }
    CHECK(kinds == std::vector<std::string>{"price/run", "charge/run", "cool-off/sleep",
                                            "paid/wait_for_event", "late/wait_for_event",
                                            "label/invoke", "notify/send_event"});
    REQUIRE(result.step("charge") != nullptr);
    CHECK(result.step("charge")->data == 70);
    CHECK(result.step("charge")->attempts == 1);
    CHECK(result.step("late")->data.is_null());
    CHECK(result.step("nonexistent") == nullptr);

    // The wait saw its event, timeout and the match turned into an expression.
    REQUIRE(waits.size() == 2);
    CHECK(waits[0].step_id == "paid");
    CHECK(waits[0].timeout == "2h");
    CHECK(waits[0].if_expression == "event.data.order == async.data.order");
    REQUIRE(invokes.size() == 1);
    CHECK(invokes[0].function_id == "shop-label");

    // Virtual time: the sleep's hour and the timed-out wait's half hour, nothing waited for.
    CHECK(result.elapsed == 90min);
    CHECK(result.step("cool-off")->finished_at == *options.start + 1h);

    // The event was kept, not sent (the client's event API is unreachable).
    REQUIRE(result.sent_events.size() == 1);
    CHECK(result.sent_events[0].name == "shop/order.done");
    CHECK(result.step("notify")->data.at("ids").at(0) == "test-event-1");
}

TEST_CASE("testing: given results and failures replace step bodies", "[unit]") {
    auto client = make_client();
    std::atomic<int> bodies{0};
    client.create_function({.id = "mocked", .triggers = {inngest::EventTrigger{"x"}}},
                           [&](inngest::Context& ctx) {
                               const auto rate = ctx.step.run("fetch-rate", [&] {
                                   ++bodies;
                                   return 1.0;
                               });
                               std::string note;
                               try {
                                   ctx.step.run("risky", [&] {
                                       ++bodies;
                                       return 0;
                                   });
                               } catch (const inngest::StepError& e) {
                                   note = e.name() + ": " + e.what();
                               }
                               return json::object{{"rate", rate}, {"note", note}};
                           });
    testing::RunOptions options;
    options.step_results = {{"fetch-rate", 1.25}};
    options.step_failures = {{"risky", {"RateLimited", "slow down"}}};
    const auto result = testing::run(client, "shop-mocked", options);  // the slug works too
    REQUIRE(result.status == testing::Status::kCompleted);
    CHECK(bodies == 0);
    CHECK(result.output.at("rate") == 1.25);
    CHECK(result.output.at("note").as_string().find("RateLimited") != json::string::npos);
    CHECK(result.output.at("note").as_string().find("slow down") != json::string::npos);
    CHECK(result.steps.empty());  // nothing ran here
    CHECK(result.sent_events.empty());
}

TEST_CASE("testing: step retries, a final failure and on_failure happen as on the server",
          "[unit]") {
    auto client = make_client();
    std::atomic<int> flaky_calls{0};
    std::atomic<int> broken_calls{0};
    json::object failure_event;
    client.create_function({.id = "retrying",
                            .triggers = {inngest::EventTrigger{"x"}},
                            .retries = 2,
                            .on_failure =
                                [&](inngest::Context& ctx) {
                                    failure_event = ctx.event.data;
                                    ctx.step.send_event("page",
                                                        inngest::Event{.name = "ops/paged"});
                                    return json::value("paged");
                                }},
                           [&](inngest::Context& ctx) {
                               // Fails twice, then works: three attempts of one step.
                               ctx.step.run("flaky", [&] {
                                   if (++flaky_calls < 3) {
                                       throw std::runtime_error("try again");
                                   }
                                   return 1;
                               });
                               // Fails on every attempt: after three the step fails for good, and
                               // the run with it.
                               ctx.step.run("broken", [&]() -> int {
                                   ++broken_calls;
                                   throw std::runtime_error("disk full");
                               });
                               return json::value(nullptr);
                           });
    const auto result = testing::run(client, "retrying");
    REQUIRE(result.status == testing::Status::kFailed);
    CHECK(flaky_calls == 3);
    CHECK(result.step("flaky")->attempts == 3);
    CHECK(broken_calls == 3);
    REQUIRE(result.step("broken") != nullptr);
    CHECK(result.step("broken")->attempts == 3);
    REQUIRE(result.step("broken")->error.has_value());
    CHECK(result.step("broken")->error->message == "disk full");
    REQUIRE(result.error.has_value());
    CHECK(result.error->message.find("disk full") != std::string::npos);

    // on_failure ran with the failure event, and its event was kept.
    CHECK(result.on_failure_output == json::value("paged"));
    CHECK(failure_event.at("function_id") == "shop-retrying");
    CHECK(failure_event.at("event").at("name") == "x");
    CHECK(json::value_to<std::string>(failure_event.at("error").at("message")).find("disk full") !=
          std::string::npos);
    REQUIRE(result.sent_events.size() == 1);
    CHECK(result.sent_events[0].name == "ops/paged");
}

TEST_CASE("testing: function-level errors are retried unless non-retriable", "[unit]") {
    auto client = make_client();
    std::atomic<int> attempts{0};
    client.create_function(
        {.id = "outside", .triggers = {inngest::EventTrigger{"x"}}, .retries = 3},
        [&](inngest::Context& ctx) {
            ++attempts;
            if (ctx.event.data.contains("fatal")) {
                throw inngest::NonRetriableError("bad input");
            }
            if (attempts < 3) {
                throw std::runtime_error("flaky");
            }
            return json::value(attempts.load());
        });
    auto result = testing::run(client, "outside");
    REQUIRE(result.status == testing::Status::kCompleted);
    CHECK(result.output == 3);
    CHECK(result.function_errors == 2);
    CHECK(result.calls == 3);

    attempts = 0;
    testing::RunOptions fatal;
    fatal.events = {inngest::Event{.name = "x", .data = {{"fatal", true}}}};
    result = testing::run(client, "outside", fatal);
    REQUIRE(result.status == testing::Status::kFailed);
    CHECK(attempts == 1);
    CHECK(result.function_errors == 1);
    CHECK(result.error->name == "NonRetriableError");
    CHECK(result.error->message == "bad input");
}

TEST_CASE("testing: parallel steps run one by one, and a run can stop before a step", "[unit]") {
    auto client = make_client();
    std::atomic<int> shipped{0};
    client.create_function(
        {.id = "fan", .triggers = {inngest::EventTrigger{"x"}}}, [&](inngest::Context& ctx) {
            auto [a, b] = ctx.step.parallel([&] { return ctx.step.run("a", [] { return 1; }); },
                                            [&] { return ctx.step.run("b", [] { return 2; }); });
            ctx.step.run("ship", [&] {
                ++shipped;
                return a + b;
            });
            return json::value(a + b);
        });
    auto result = testing::run(client, "fan");
    REQUIRE(result.status == testing::Status::kCompleted);
    CHECK(result.output == 3);
    CHECK(result.steps.size() == 3);
    CHECK(shipped == 1);

    testing::RunOptions stop;
    stop.stop_before_step = "ship";
    result = testing::run(client, "fan", stop);
    CHECK(result.status == testing::Status::kStopped);
    CHECK(shipped == 1);  // its body did not run
    CHECK(result.step("a") != nullptr);
    CHECK(result.step("b") != nullptr);
    CHECK(result.step("ship") == nullptr);

    CHECK_THROWS_AS(testing::run(client, "missing"), std::invalid_argument);
}
