// The executor, driven through ServeHandler::handle with executor-shaped call requests.

#include "support/call_builder.hpp"

#include <inngest/inngest.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
using inngest_test::CallBuilder;
using inngest_test::step_hash;

namespace {

struct Harness {
    Harness()
        : client({.app_id = "app", .dev = true, .log_sink = sink()}, inngest::Environment::none()) {
    }

    inngest::LogSink sink() {
        return [this](inngest::LogLevel, std::string_view message) {
            const std::lock_guard lock(mutex);
            logs.emplace_back(message);
        };
    }

    inngest::HttpResponse call(const CallBuilder& builder) {
        inngest::ServeHandler handler(client);
        return handler.handle(builder.request());
    }

    CallBuilder builder(const std::string& id) {
        CallBuilder b;
        b.fn_slug = "app-" + id;
        return b;
    }

    std::mutex mutex;
    std::vector<std::string> logs;
    inngest::Client client;
};

// The body as JSON. In an op array, each op's trace fields are checked here and taken out, so
// that the cases compare what the executor acts on: `userland` is the step id the user gave
// (with its repeat index past the first), and `timing` ({a: start ns, b: duration ns}) is on
// exactly the ops whose body ran here.
json::value body_of(const inngest::HttpResponse& response) {
    json::value body = json::parse(response.body);
    if (!body.is_array()) {
        return body;
    }
    for (auto& item : body.as_array()) {
        auto& op = item.as_object();
        const auto* userland = op.if_contains("userland");
        REQUIRE(userland != nullptr);
        CHECK(userland->at("id") == op.at("displayName"));
        if (const auto* index = userland->as_object().if_contains("index")) {
            CHECK(index->as_int64() > 0);
        }
        const bool ran =
            op.at("op") == "StepRun" || op.at("op") == "StepError" || op.at("op") == "StepFailed";
        if (const auto* timing = op.if_contains("timing")) {
            CHECK(ran);
            CHECK(timing->at("a").as_int64() > std::int64_t{1'600'000'000} * 1'000'000'000);
            CHECK(timing->at("b").as_int64() >= 0);
            CHECK(timing->at("b").as_int64() < std::int64_t{60} * 1'000'000'000);
        } else {
            CHECK_FALSE(ran);
        }
        op.erase("userland");
        op.erase("timing");
    }
    return body;
}

}  // namespace

TEST_CASE("a function without steps answers 200 with its result", "[unit]") {
    Harness h;
    h.client.create_function({.id = "hello", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) {
                                 return json::object{{"name", ctx.event.name}, {"body", "ok"}};
                             });
    auto call = h.builder("hello");
    call.event = {{"name", "tests/function.test"}, {"data", {{"test", true}}}};
    const auto response = h.call(call);
    CHECK(response.status == 200);
    CHECK(response.body == R"({"name":"tests/function.test","body":"ok"})");
    CHECK(response.header("X-Inngest-SDK") == "inngest-cpp:v0.1.0");
    CHECK(response.header("X-Inngest-Req-Version") == "2");
    CHECK(response.header("Content-Type") == "application/json");
}

TEST_CASE("a lone new run step runs at once and is reported as StepRun", "[unit]") {
    Harness h;
    int executions = 0;
    h.client.create_function({.id = "one", .triggers = {inngest::EventTrigger{"x"}}},
                             [&](inngest::Context& ctx) {
                                 const auto v = ctx.step.run("first step", [&] {
                                     ++executions;
                                     return std::string("first step");
                                 });
                                 return json::value(v);
                             });
    const auto first = h.call(h.builder("one"));
    CHECK(first.status == 206);
    CHECK(body_of(first) == json::parse(R"([{"op":"StepRun",
        "id":"98bf98df193bcce7c33e6bc50927cf2ac21206cb","name":"first step",
        "displayName":"first step","data":"first step"}])"));
    CHECK(executions == 1);

    auto replay = h.builder("one");
    replay.data("first step", "first step");
    const auto second = h.call(replay);
    CHECK(second.status == 200);
    CHECK(second.body == R"("first step")");
    CHECK(executions == 1);  // memoized: the body never runs again
}

TEST_CASE("sleep, sleep_until, wait_for_event and invoke report their ops", "[unit]") {
    Harness h;
    h.client.create_function(
        {.id = "async", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            ctx.step.sleep("nap", 90s);
            ctx.step.sleep_until("until", "2030-01-01T00:00:00Z");
            const auto got = ctx.step.wait_for_event(
                "wait", {.event = "test/resume", .timeout = 10s, .if_expression = "async.data.ok"});
            const auto child = ctx.step.invoke(
                "call", {.function_id = "async", .data = {{"n", 21}}, .timeout = 1h});
            return json::object{{"got", got ? json::value(got->name) : json::value()},
                                {"child", child}};
        });
    auto call = h.builder("async");
    auto response = h.call(call);
    REQUIRE(response.status == 206);
    CHECK(body_of(response) == json::parse(R"([{"op":"Sleep","id":")" + step_hash("nap") +
                                           R"(","name":"nap","displayName":"nap",
        "opts":{"duration":"1m30s"},"data":null}])"));
    CHECK(response.body.find(R"("data":null)") != std::string::npos);

    call.memo("nap", nullptr);
    response = h.call(call);
    CHECK(body_of(response).at(0).at("opts") ==
          json::parse(R"({"duration":"2030-01-01T00:00:00Z"})"));

    call.memo("until", nullptr);
    response = h.call(call);
    const auto wait = body_of(response).at(0);
    CHECK(wait.at("op") == "WaitForEvent");
    CHECK(wait.at("name") == "wait");
    CHECK(wait.at("opts") ==
          json::parse(R"({"event":"test/resume","timeout":"10s","if":"async.data.ok"})"));

    call.memo("wait",
              json::object{{"name", "test/resume"}, {"data", {{"ok", true}}}, {"id", "e1"}});
    response = h.call(call);
    const auto invoke = body_of(response).at(0);
    CHECK(invoke.at("op") == "InvokeFunction");
    CHECK(invoke.at("opts") == json::parse(R"({"function_id":"app-async",
        "payload":{"data":{"n":21}},"timeout":"1h"})"));

    call.data("call", json::object{{"doubled", 42}});
    response = h.call(call);
    CHECK(response.status == 200);
    CHECK(body_of(response) == json::parse(R"({"got":"test/resume","child":{"doubled":42}})"));
}

TEST_CASE("invoke targets this app unless another app is named, as the TS SDK", "[unit]") {
    Harness h;
    h.client.create_function(
        {.id = "caller", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            ctx.step.invoke("unknown", {.function_id = "not-registered-here"});
            ctx.step.invoke("full", {.function_id = "app-caller"});
            ctx.step.invoke("other", {.function_id = "charge", .app_id = "billing"});
            return nullptr;
        });
    auto call = h.builder("caller");
    auto target = [&] {
        return body_of(h.call(call)).at(0).at("opts").at("function_id");
    };
    CHECK(target() == "app-not-registered-here");
    call.data("unknown", nullptr);
    CHECK(target() == "app-caller");
    call.data("full", nullptr);
    CHECK(target() == "billing-charge");
}

TEST_CASE("a timed-out wait_for_event returns nullopt", "[unit]") {
    Harness h;
    h.client.create_function(
        {.id = "wait", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            const auto got =
                ctx.step.wait_for_event("w", {.event = "e", .timeout = 5s, .match = "data.id"});
            return json::object{{"timed_out", !got}};
        });
    auto call = h.builder("wait");
    const auto first = body_of(h.call(call)).at(0);
    CHECK(first.at("opts").at("if") == "event.data.id == async.data.id");
    call.memo("w", nullptr);
    CHECK(h.call(call).body == R"({"timed_out":true})");
}

TEST_CASE("parallel branches are planned together, then run one targeted call each", "[unit]") {
    Harness h;
    std::atomic<int> runs{0};
    h.client.create_function({.id = "par", .triggers = {inngest::EventTrigger{"x"}}},
                             [&](inngest::Context& ctx) {
                                 auto [a, b] = ctx.step.parallel(
                                     [&] {
                                         return ctx.step.run("a", [&] {
                                             ++runs;
                                             return std::string("A");
                                         });
                                     },
                                     [&] {
                                         return ctx.step.run("b", [&] {
                                             ++runs;
                                             return std::string("B");
                                         });
                                     });
                                 return json::value(a + b);
                             });
    auto call = h.builder("par");
    const auto planned = h.call(call);
    REQUIRE(planned.status == 206);
    CHECK(body_of(planned) == json::parse(R"([
        {"op":"StepPlanned","id":")" + step_hash("a") +
                                          R"(","name":"a","displayName":"a","data":null},
        {"op":"StepPlanned","id":")" + step_hash("b") +
                                          R"(","name":"b","displayName":"b","data":null}])"));
    CHECK(runs == 0);

    call.disable_immediate_execution = true;
    call.step_id = step_hash("b");
    const auto ran_b = h.call(call);
    CHECK(body_of(ran_b) == json::parse(R"([{"op":"StepRun","id":")" + step_hash("b") +
                                        R"(","name":"b","displayName":"b","data":"B"}])"));
    CHECK(runs == 1);

    call.step_id = step_hash("a");
    call.data("b", "B");
    CHECK(body_of(h.call(call)).at(0).at("data") == "A");
    CHECK(runs == 2);

    call.step_id = "step";
    call.data("a", "A");
    const auto done = h.call(call);
    CHECK(done.status == 200);
    CHECK(done.body == R"("AB")");
    CHECK(runs == 2);
}

TEST_CASE("a targeted step that is never reached is a step-not-found error", "[unit]") {
    Harness h;
    h.client.create_function({.id = "t", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) {
                                 ctx.step.run("only", [] { return 1; });
                                 return json::value(nullptr);
                             });
    auto call = h.builder("t");
    call.step_id = step_hash("renamed");
    const auto response = h.call(call);
    CHECK(response.status == 500);
    CHECK(response.header("X-Inngest-No-Retry") == "false");
    CHECK(body_of(response).at("requestedStep") == json::value(step_hash("renamed")));
}

TEST_CASE("repeated step ids hash with :N suffixes in order", "[unit]") {
    Harness h;
    h.client.create_function({.id = "rep", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) {
                                 json::array items;
                                 for (int i = 0; i < 3; ++i) {
                                     items.emplace_back(ctx.step.run("item", [i] { return i; }));
                                 }
                                 return items;
                             });
    auto call = h.builder("rep");
    CHECK(body_of(h.call(call)).at(0).at("id") == json::value(step_hash("item")));
    call.data("item", 0);
    CHECK(body_of(h.call(call)).at(0).at("id") == json::value(step_hash("item:1")));
    call.data("item:1", 1);
    CHECK(body_of(h.call(call)).at(0).at("id") == json::value(step_hash("item:2")));
    call.data("item:2", 2);
    CHECK(h.call(call).body == "[0,1,2]");
}

TEST_CASE("step failures map to StepError, StepFailed and their headers", "[unit]") {
    Harness h;
    h.client.create_function({.id = "f", .triggers = {inngest::EventTrigger{"x"}}, .retries = 2},
                             [](inngest::Context& ctx) {
                                 const auto kind = ctx.event.data.at("kind").as_string();
                                 ctx.step.run("s", [&]() -> int {
                                     if (kind == "plain") {
                                         throw std::runtime_error("broken");
                                     }
                                     if (kind == "nr") {
                                         throw inngest::NonRetriableError("stop");
                                     }
                                     throw inngest::RetryAfterError("later", 30s);
                                 });
                                 return json::value(nullptr);
                             });
    auto call = h.builder("f");
    call.max_attempts = 3;
    call.event = {{"name", "x"}, {"data", {{"kind", "plain"}}}};
    auto response = h.call(call);
    auto op = body_of(response).at(0);
    CHECK(response.status == 206);
    CHECK(op.at("op") == "StepError");
    CHECK(op.at("error") == json::parse(R"({"name":"Error","message":"broken"})"));
    CHECK(op.at("data").is_null());
    CHECK(response.header("X-Inngest-No-Retry") == "false");

    call.attempt = 2;  // the final attempt
    response = h.call(call);
    CHECK(body_of(response).at(0).at("op") == "StepFailed");
    CHECK(response.header("X-Inngest-No-Retry") == "true");

    call.attempt = 0;
    call.event = {{"name", "x"}, {"data", {{"kind", "nr"}}}};
    response = h.call(call);
    CHECK(body_of(response).at(0).at("op") == "StepFailed");
    CHECK(body_of(response).at(0).at("error").at("name") == "NonRetriableError");
    CHECK(response.header("X-Inngest-No-Retry") == "true");

    call.event = {{"name", "x"}, {"data", {{"kind", "later"}}}};
    response = h.call(call);
    CHECK(body_of(response).at(0).at("op") == "StepError");
    CHECK(response.header("Retry-After") == "30");
    CHECK(response.header("X-Inngest-No-Retry") == "false");
}

TEST_CASE("a memoized step error is thrown again as StepError", "[unit]") {
    Harness h;
    h.client.create_function({.id = "c", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) -> json::value {
                                 try {
                                     ctx.step.run("s", [] { return 1; });
                                     return "not thrown";
                                 } catch (const inngest::StepError& e) {
                                     if (ctx.event.data.contains("rethrow")) {
                                         throw;
                                     }
                                     return json::object{{"step", e.step_id()},
                                                         {"name", e.name()},
                                                         {"message", e.what()}};
                                 }
                             });
    auto call = h.builder("c");
    call.memo("s", json::object{{"error", {{"name", "Error"}, {"message", "nope"}}}});
    CHECK(body_of(h.call(call)) == json::parse(R"({"step":"s","name":"Error","message":"nope"})"));

    call.event = {{"name", "x"}, {"data", {{"rethrow", true}}}};
    const auto failed = h.call(call);
    CHECK(failed.status == 400);
    CHECK(failed.header("X-Inngest-No-Retry") == "true");
    CHECK(body_of(failed).at("message") == "nope");
}

TEST_CASE("function errors map to 500, 400 and Retry-After", "[unit]") {
    Harness h;
    h.client.create_function({.id = "e", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) -> json::value {
                                 const auto kind = ctx.event.data.at("kind").as_string();
                                 if (kind == "plain") {
                                     throw std::runtime_error("broken func");
                                 }
                                 if (kind == "nr") {
                                     throw inngest::NonRetriableError("do not retry me");
                                 }
                                 throw inngest::RetryAfterError("slow down", 7s);
                             });
    auto call = h.builder("e");
    call.event = {{"name", "x"}, {"data", {{"kind", "plain"}}}};
    auto response = h.call(call);
    CHECK(response.status == 500);
    CHECK(body_of(response) == json::parse(R"({"name":"Error","message":"broken func"})"));
    CHECK(response.header("X-Inngest-No-Retry") == "false");
    CHECK(response.header("X-Inngest-SDK") == "inngest-cpp:v0.1.0");

    call.event = {{"name", "x"}, {"data", {{"kind", "nr"}}}};
    response = h.call(call);
    CHECK(response.status == 400);
    CHECK(response.header("X-Inngest-No-Retry") == "true");

    call.event = {{"name", "x"}, {"data", {{"kind", "later"}}}};
    response = h.call(call);
    CHECK(response.status == 500);
    CHECK(response.header("Retry-After") == "7");
}

TEST_CASE("the attempt number and max attempts are visible to the function", "[unit]") {
    Harness h;
    h.client.create_function({.id = "a", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) {
                                 return json::object{{"attempt", ctx.run.attempt},
                                                     {"max", ctx.run.max_attempts},
                                                     {"run", ctx.run.run_id}};
                             });
    auto call = h.builder("a");
    call.attempt = 3;
    call.max_attempts = 4;
    CHECK(body_of(h.call(call)) ==
          json::parse(R"({"attempt":3,"max":4,"run":")" + call.run_id + R"("})"));
}

TEST_CASE("swallowing the step interruption with catch (...) is reported, not mis-run", "[unit]") {
    Harness h;
    h.client.create_function({.id = "bad", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) {
                                 try {
                                     ctx.step.sleep("nap", 1s);
                                 } catch (...) {  // the bug the SDK must catch
                                 }
                                 return json::value("finished anyway");
                             });
    const auto response = h.call(h.builder("bad"));
    CHECK(response.status == 400);
    CHECK(response.header("X-Inngest-No-Retry") == "true");
    CHECK(body_of(response).at("name") == "InterruptSwallowedError");
}

TEST_CASE(
    "an exception thrown in a parallel branch after another branch planned a step is the "
    "function's error, not a swallowed interruption",
    "[unit]") {
    Harness h;
    h.client.create_function(
        {.id = "throws", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            auto [a, b] =
                ctx.step.parallel([&] { return ctx.step.run("planned", [] { return 1; }); },
                                  [&]() -> int { throw std::runtime_error("branch broke"); });
            return json::value(a + b);
        });
    h.client.create_function(
        {.id = "later", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            auto [a, b] =
                ctx.step.parallel([&] { return ctx.step.run("planned", [] { return 1; }); },
                                  [&]() -> int { throw inngest::RetryAfterError("not yet", 9s); });
            return json::value(a + b);
        });
    h.client.create_function(
        {.id = "failed", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            auto [a, b] =
                ctx.step.parallel([&] { return ctx.step.run("planned", [] { return 1; }); },
                                  [&] { return ctx.step.run("gone", [] { return 2; }); });
            return json::value(a + b);
        });

    const auto plain = h.call(h.builder("throws"));
    CHECK(plain.status == 500);
    CHECK(plain.header("X-Inngest-No-Retry") == "false");
    CHECK(body_of(plain).at("name") == "Error");
    CHECK(body_of(plain).at("message") == "branch broke");

    const auto retry = h.call(h.builder("later"));
    CHECK(retry.status == 500);
    CHECK(retry.header("X-Inngest-No-Retry") == "false");
    CHECK(retry.header("Retry-After") == "9");
    CHECK(body_of(retry).at("name") == "RetryAfterError");
    CHECK(body_of(retry).at("message") == "not yet");

    auto call = h.builder("failed");
    call.memo(
        "gone",
        json::object{{"error", json::object{{"name", "TypeError"}, {"message", "bad input"}}}});
    const auto escaped = h.call(call);
    CHECK(escaped.status == 400);
    CHECK(escaped.header("X-Inngest-No-Retry") == "true");
    CHECK(body_of(escaped).at("name") == "TypeError");
    CHECK(body_of(escaped).at("message") == "bad input");
}

TEST_CASE(
    "an interruption swallowed in one parallel branch is reported even after another branch's "
    "was handled",
    "[unit]") {
    Harness h;
    h.client.create_function(
        {.id = "swallow", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            auto [a, b, c] = ctx.step.parallel(
                [&] {
                    try {
                        ctx.step.sleep("nap", 1s);
                    } catch (...) {  // the bug the SDK must catch
                    }
                    return 1;
                },
                [&] { return ctx.step.run("planned", [] { return 2; }); },
                [&]() -> int { throw std::runtime_error("after the swallow"); });
            return json::value(a + b + c);
        });
    const auto response = h.call(h.builder("swallow"));
    CHECK(response.status == 400);
    CHECK(response.header("X-Inngest-No-Retry") == "true");
    CHECK(body_of(response).at("name") == "InterruptSwallowedError");
}

TEST_CASE("steps called inside a step body fail that step", "[unit]") {
    Harness h;
    h.client.create_function(
        {.id = "nested", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            ctx.step.run("outer", [&] { return ctx.step.run("inner", [] { return 1; }); });
            return json::value(nullptr);
        });
    const auto op = body_of(h.call(h.builder("nested"))).at(0);
    CHECK(op.at("op") == "StepError");
    CHECK(op.at("error").at("message").as_string().find("nested") != json::string::npos);
}

TEST_CASE("the step logger writes once per run, not on every replay", "[unit]") {
    Harness h;
    h.client.create_function({.id = "log", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) {
                                 ctx.log.info("before first");
                                 ctx.step.run("one", [] { return 1; });
                                 ctx.log.info("between");
                                 ctx.step.run("two", [] { return 2; });
                                 return json::value(nullptr);
                             });
    auto call = h.builder("log");
    h.call(call);
    call.data("one", 1);
    h.call(call);
    call.data("two", 2);
    h.call(call);
    const auto count = [&](const std::string& line) {
        return std::count(h.logs.begin(), h.logs.end(), line);
    };
    CHECK(count("before first") == 1);
    CHECK(count("between") == 1);
}

TEST_CASE("typed step results round-trip through Boost.JSON", "[unit]") {
    Harness h;
    h.client.create_function(
        {.id = "typed", .triggers = {inngest::EventTrigger{"x"}}}, [](inngest::Context& ctx) {
            const std::vector<int> values = ctx.step.run("v", [] {
                return std::vector<int>{1, 2, 3};
            });
            const double total = ctx.step.run("d", [] { return 2.5; });
            ctx.step.run("void", [] {});
            return json::object{{"values", json::value_from(values)}, {"total", total}};
        });
    auto call = h.builder("typed");
    CHECK(body_of(h.call(call)).at(0).at("data") == json::parse("[1,2,3]"));
    call.data("v", json::parse("[1,2,3]"));
    CHECK(body_of(h.call(call)).at(0).at("data") == 2.5);
    call.data("d", 2.5);
    CHECK(body_of(h.call(call)).at(0).at("data").is_null());
    call.data("void", nullptr);
    CHECK(h.call(call).body == R"({"values":[1,2,3],"total":2.5})");
}

TEST_CASE(
    "ops carry the user's step id and repeat index, run steps their timing, and "
    "send_event steps the official name",
    "[unit]") {
    inngest::Client client(
        {.app_id = "app", .dev = true, .event_api_base_url = "http://127.0.0.1:1"},
        inngest::Environment::none());
    client.create_function({.id = "traced", .triggers = {inngest::EventTrigger{"x"}}},
                           [](inngest::Context& ctx) {
                               ctx.step.run("item", [] { return 1; });
                               ctx.step.run("item", [] {
                                   std::this_thread::sleep_for(20ms);
                                   return 2;
                               });
                               ctx.step.send_event("notify", inngest::Event{.name = "y/z"});
                               return json::value(nullptr);
                           });
    const inngest::ServeHandler handler(client);
    CallBuilder call;
    call.fn_slug = "app-traced";
    call.data("item", 1);

    // The repeat: userland names the id the user wrote and its index; its body's 20 ms show.
    const auto started = std::chrono::system_clock::now();
    auto response = handler.handle(call.request());
    REQUIRE(response.status == 206);
    auto op = json::parse(response.body).at(0).as_object();
    CHECK(op.at("id") == json::value(step_hash("item:1")));
    CHECK(op.at("displayName") == "item");
    CHECK(op.at("userland") == json::parse(R"({"id":"item","index":1})"));
    const auto start_ns = op.at("timing").at("a").as_int64();
    const auto took_ns = op.at("timing").at("b").as_int64();
    const auto started_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch()).count();
    CHECK(start_ns >= started_ns);
    CHECK(start_ns < started_ns + std::int64_t{5} * 1'000'000'000);
    CHECK(took_ns >= 20'000'000);
    CHECK(took_ns < 5'000'000'000);

    // Every response says the SDK handled it and how long that took.
    CHECK(response.header("X-Inngest-SDK-Handled") == "true");
    CHECK(response.header("Server-Timing").rfind("handler;dur=", 0) == 0);

    // send_event: named and typed as the official SDKs report it, the user's id as display
    // name. (The event API here refuses connections, so the step reports its error.)
    call.data("item:1", 2);
    response = handler.handle(call.request());
    REQUIRE(response.status == 206);
    op = json::parse(response.body).at(0).as_object();
    CHECK(op.at("id") == json::value(step_hash("notify")));
    CHECK(op.at("name") == "sendEvent");
    CHECK(op.at("opts") == json::parse(R"({"type":"step.sendEvent"})"));
    CHECK(op.at("displayName") == "notify");
    CHECK(op.at("userland") == json::parse(R"({"id":"notify"})"));
    CHECK(op.at("op") == "StepError");
    CHECK(op.contains("timing"));
}

TEST_CASE("a 401 says only that the SDK handled it", "[unit]") {
    inngest::Client client(
        {.app_id = "app",
         .signing_key =
             "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         .dev = false},
        inngest::Environment::none());
    client.create_function({.id = "f", .triggers = {inngest::EventTrigger{"x"}}},
                           [](inngest::Context&) { return json::value(nullptr); });
    const inngest::ServeHandler handler(client);
    CallBuilder call;
    call.fn_slug = "app-f";
    const auto response = handler.handle(call.request());  // unsigned
    REQUIRE(response.status == 401);
    CHECK(response.header("X-Inngest-SDK-Handled") == "true");
    CHECK(response.header("Server-Timing").empty());
    CHECK(response.header("X-Inngest-SDK").empty());
    CHECK(response.header("User-Agent").empty());
}

TEST_CASE(
    "a parallel group left with one new run step runs it at once, unless immediate "
    "execution is off",
    "[unit]") {
    Harness h;
    std::atomic<int> bodies{0};
    std::atomic<int> branch_entries{0};
    h.client.create_function(
        {.id = "lone", .triggers = {inngest::EventTrigger{"x"}}}, [&](inngest::Context& ctx) {
            auto [a, x, third] =
                ctx.step.parallel([&] { return ctx.step.run("a", [] { return 1; }); },
                                  [&] {
                                      ++branch_entries;
                                      ctx.step.run("x", [] { return 2; });
                                      // The second "x" hashes as "x:1" however often the branch is
                                      // entered.
                                      return ctx.step.run("x", [&] {
                                          ++bodies;
                                          return 3;
                                      });
                                  },
                                  [&] { return ctx.step.run("x", [] { return 4; }) * 0; });
            return json::value(a + x + third);
        });
    auto call = h.builder("lone");
    call.data("a", 1);
    call.data("x", 2);
    call.data("x:2", 0);  // the third branch's "x", reached after the second branch's two

    const auto response = h.call(call);
    REQUIRE(response.status == 206);
    const auto ops = body_of(response);
    REQUIRE(ops.as_array().size() == 1);
    CHECK(ops.at(0).at("op") == "StepRun");
    CHECK(ops.at(0).at("id") == json::value(step_hash("x:1")));
    CHECK(ops.at(0).at("data") == 3);
    CHECK(bodies == 1);
    CHECK(branch_entries == 2);  // discovered, then entered again to run its step

    // With immediate execution off (after an earlier parallel group) it is only planned.
    call.disable_immediate_execution = true;
    const auto planned = h.call(call);
    REQUIRE(planned.status == 206);
    CHECK(body_of(planned).at(0).at("op") == "StepPlanned");
    CHECK(body_of(planned).at(0).at("id") == json::value(step_hash("x:1")));
    CHECK(bodies == 1);

    // Two new steps are both planned, as before.
    auto two = h.builder("lone");
    two.data("a", 1);
    const auto both = h.call(two);
    REQUIRE(both.status == 206);
    CHECK(body_of(both).as_array().size() == 2);
    CHECK(body_of(both).at(0).at("op") == "StepPlanned");
    CHECK(bodies == 1);
}
