#include "protocol/function_config.hpp"

#include <inngest/client.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

inngest::Client make_client() {
    return inngest::Client({.app_id = "app",
                            .dev = true,
                            .log_sink =
                                [](auto, auto) {
                                }},
                           inngest::Environment::none());
}

json::value noop(inngest::Context&) {
    return nullptr;
}

}  // namespace

TEST_CASE("durations format as Inngest time strings", "[unit]") {
    CHECK(inngest::format_duration(0s) == "0s");
    CHECK(inngest::format_duration(2s) == "2s");
    CHECK(inngest::format_duration(90s) == "1m30s");
    CHECK(inngest::format_duration(24h) == "1d");
    CHECK(inngest::format_duration(7 * 24h + 1h) == "1w1h");
    CHECK(inngest::format_duration(1500ms) == "1s500ms");
    // Under a second rounds up to one, as the TS SDK.
    CHECK(inngest::format_duration(1ms) == "1s");
    CHECK(inngest::format_duration(999ms) == "1s");
    CHECK(inngest::detail::format_go_duration(48h) == "48h");
}

TEST_CASE("every flow-control option serialises to the sync JSON", "[unit]") {
    auto client = make_client();
    const auto& function = client.create_function(
        {.id = "flow",
         .name = "Flow",
         .triggers = {inngest::EventTrigger{"a/b", "event.data.x == 1"},
                      inngest::CronTrigger{"TZ=Europe/Paris 0 9 * * 1-5", 30s}},
         .retries = 7,
         .concurrency = {{.limit = 2, .key = "event.data.tenant"},
                         {.limit = 5,
                          .key = "\"global\"",
                          .scope = inngest::ConcurrencyScope::kAccount}},
         .throttle = inngest::Throttle{.limit = 10, .period = 1min, .burst = 2, .key = "k"},
         .rate_limit = inngest::RateLimit{.limit = 100, .period = 1h, .key = "event.data.user"},
         .debounce = inngest::Debounce{.period = 5s, .key = "event.data.id", .timeout = 1min},
         .priority = inngest::Priority{"event.data.priority"},
         .idempotency = "event.data.id",
         .cancel_on = {{.event = "a/cancel",
                        .if_expression = "async.data.id == event.data.id",
                        .timeout = 7 * 24h}},
         .timeouts = inngest::Timeouts{.start = 10s, .finish = 1h},
         .singleton = inngest::Singleton{.mode = inngest::SingletonMode::kCancel, .key = "k"}},
        noop);
    const json::value config =
        inngest::detail::function_config(function, "http://127.0.0.1:3000/api/inngest");
    const json::value expected = json::parse(R"({
        "id": "app-flow", "name": "Flow",
        "triggers": [{"event": "a/b", "expression": "event.data.x == 1"},
                     {"cron": "TZ=Europe/Paris 0 9 * * 1-5", "jitter": "30s"}],
        "steps": {"step": {"id": "step", "name": "step",
                  "runtime": {"type": "http",
                              "url": "http://127.0.0.1:3000/api/inngest?fnId=app-flow&stepId=step"},
                  "retries": {"attempts": 7}}},
        "concurrency": [{"limit": 2, "key": "event.data.tenant"},
                        {"limit": 5, "key": "\"global\"", "scope": "account"}],
        "throttle": {"limit": 10, "period": "1m", "burst": 2, "key": "k"},
        "rateLimit": {"limit": 100, "period": "1h", "key": "event.data.user"},
        "idempotency": "event.data.id",
        "debounce": {"period": "5s", "key": "event.data.id", "timeout": "1m"},
        "priority": {"run": "event.data.priority"},
        "cancel": [{"event": "a/cancel", "if": "async.data.id == event.data.id", "timeout": "1w"}],
        "timeouts": {"start": "10s", "finish": "1h"},
        "singleton": {"mode": "cancel", "key": "k"}
    })");
    CHECK(config == expected);
}

TEST_CASE("unset options are left out of the sync JSON", "[unit]") {
    auto client = make_client();
    const auto& function =
        client.create_function({.id = "plain", .triggers = {inngest::EventTrigger{"x/y"}}}, noop);
    const json::object config =
        inngest::detail::function_config(function, "http://h/api/inngest?x=1");
    CHECK(config.size() == 4);  // id, name, triggers, steps
    CHECK(config.at("name") == "plain");
    CHECK(config.at("steps").at("step").at("runtime").at("url") ==
          "http://h/api/inngest?x=1&fnId=app-plain&stepId=step");
    CHECK_FALSE(config.at("steps").at("step").as_object().contains("retries"));
}

TEST_CASE("batch timeouts use Go duration syntax", "[unit]") {
    auto client = make_client();
    const auto& function = client.create_function(
        {.id = "batch",
         .triggers = {inngest::EventTrigger{"x/y"}},
         .batch_events =
             inngest::BatchEvents{
                 .max_size = 3, .timeout = 5s, .key = "k", .if_expression = "event.data.ok"}},
        noop);
    const json::object config = inngest::detail::function_config(function, "http://h/");
    CHECK(config.at("batchEvents") ==
          json::parse(R"({"maxSize":3,"timeout":"5s","key":"k","if":"event.data.ok"})"));
}

TEST_CASE("an on_failure handler is synced as a second function", "[unit]") {
    auto client = make_client();
    client.create_function({.id = "risky",
                            .name = "Risky",
                            .triggers = {inngest::EventTrigger{"x/y"}},
                            .on_failure = noop},
                           noop);
    REQUIRE(client.functions().size() == 2);
    const json::object config =
        inngest::detail::function_config(*client.functions()[1], "http://h/api/inngest");
    CHECK(config.at("id") == "app-risky-failure");
    CHECK(config.at("name") == "Risky (failure)");
    CHECK(config.at("triggers") == json::parse(R"([{"event":"inngest/function.failed",
        "expression":"event.data.function_id == 'app-risky'"}])"));
    CHECK(config.at("steps").at("step").at("retries").at("attempts") == 1);
}

TEST_CASE("invalid function options are rejected at registration", "[unit]") {
    auto client = make_client();
    const auto rejects = [&](inngest::FunctionOptions options) {
        CHECK_THROWS_AS(client.create_function(std::move(options), noop), inngest::ConfigError);
    };
    rejects({.id = "", .triggers = {inngest::EventTrigger{"x"}}});
    rejects({.id = "no-trigger"});
    rejects({.id = "bad id", .triggers = {inngest::EventTrigger{"x"}}});
    rejects({.id = "cron6", .triggers = {inngest::CronTrigger{"* * * * * *"}}});
    rejects({.id = "cron-at", .triggers = {inngest::CronTrigger{"@daily"}}});
    rejects({.id = "dup", .triggers = {inngest::EventTrigger{"x"}, inngest::EventTrigger{"x"}}});
    rejects({.id = "retries", .triggers = {inngest::EventTrigger{"x"}}, .retries = 21});
    rejects({.id = "conc3",
             .triggers = {inngest::EventTrigger{"x"}},
             .concurrency = {{.limit = 1}, {.limit = 1}, {.limit = 1}}});
    rejects({.id = "scope",
             .triggers = {inngest::EventTrigger{"x"}},
             .concurrency = {{.limit = 1, .scope = inngest::ConcurrencyScope::kAccount}}});
    rejects({.id = "batch1",
             .triggers = {inngest::EventTrigger{"x"}},
             .batch_events = inngest::BatchEvents{.max_size = 1, .timeout = 5s}});
    rejects({.id = "batch-cancel",
             .triggers = {inngest::EventTrigger{"x"}},
             .batch_events = inngest::BatchEvents{.max_size = 2, .timeout = 5s},
             .cancel_on = {{.event = "y"}}});
    rejects({.id = "debounce",
             .triggers = {inngest::EventTrigger{"x"}},
             .debounce = inngest::Debounce{.period = 8 * 24h}});
    rejects({.id = "rate",
             .triggers = {inngest::EventTrigger{"x"}},
             .rate_limit = inngest::RateLimit{.limit = 0, .period = 1h}});
    client.create_function({.id = "once", .triggers = {inngest::EventTrigger{"x"}}}, noop);
    rejects({.id = "once", .triggers = {inngest::EventTrigger{"x"}}});
    CHECK(client.functions().size() == 1);
}

TEST_CASE("the step URL percent-encodes the function's id", "[unit]") {
    CHECK(inngest::detail::step_url("http://h/api/inngest", "my app-fn a&b=c#d") ==
          "http://h/api/inngest?fnId=my%20app-fn%20a%26b%3Dc%23d&stepId=step");
    CHECK(inngest::detail::step_url("http://h/api/inngest?x=1", "app-fn") ==
          "http://h/api/inngest?x=1&fnId=app-fn&stepId=step");
}
