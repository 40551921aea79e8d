#include "fixture_functions.hpp"

#include <inngest/inngest.hpp>

#include <boost/describe/class.hpp>
#include <boost/json.hpp>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>

namespace inngest_fixture {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using inngest::Context;

// Per-run counters: state that must survive between calls of one run is keyed by run id, so a
// scenario can be repeated against the same process (conformance-fixture.md §1).
class RunCounters {
public:
    int next(const std::string& run_id, const std::string& what) {
        const std::lock_guard lock(mutex_);
        return ++counts_[run_id + "/" + what];
    }

private:
    std::mutex mutex_;
    std::map<std::string, int> counts_;
};

RunCounters& counters() {
    static RunCounters instance;
    return instance;
}

json::value name_and_ok(const Context& ctx) {
    return json::object{{"name", ctx.event.name}, {"body", "ok"}};
}

void register_base(inngest::Client& client) {
    client.create_function(
        {.id = "test-suite-simple-fn", .triggers = {inngest::EventTrigger{"tests/function.test"}}},
        [](Context& ctx) { return name_and_ok(ctx); });

    client.create_function(
        {.id = "test-suite-step-test", .triggers = {inngest::EventTrigger{"tests/step.test"}}},
        [](Context& ctx) {
            const std::string first =
                ctx.step.run("first step", [] { return std::string("first step"); });
            ctx.step.sleep("sleep", 2s);
            ctx.step.run("second step", [&] {
                return json::object{{"first", first}, {"second", true}};
            });
            return name_and_ok(ctx);
        });

    client.create_function(
        {.id = "test-suite-retry-test", .triggers = {inngest::EventTrigger{"tests/retry.test"}}},
        [](Context& ctx) {
            ctx.step.run("first step", [&] {
                if (counters().next(ctx.run.run_id, "step") == 1) {
                    throw std::runtime_error("broken");
                }
                return std::string("yes: 2");
            });
            if (counters().next(ctx.run.run_id, "body") == 1) {
                throw std::runtime_error("broken func");
            }
            return name_and_ok(ctx);
        });

    client.create_function(
        {.id = "test-suite-cancel-test",
         .triggers = {inngest::EventTrigger{"tests/cancel.test"}},
         .cancel_on = {{.event = "cancel/please",
                        .if_expression = "async.data.request_id == event.data.request_id"}}},
        [](Context& ctx) {
            ctx.step.sleep("sleep", 10s);
            ctx.step.run("After the sleep", [] {
                return std::string(
                    "This should be cancelled if a matching cancel event is received");
            });
            return name_and_ok(ctx);
        });

    client.create_function(
        {.id = "test-suite-wait-for-event", .triggers = {inngest::EventTrigger{"tests/wait.test"}}},
        [](Context& ctx) -> json::value {
            const auto got = ctx.step.wait_for_event(
                "wait", {.event = "test/resume",
                         .timeout = 10s,
                         .if_expression = "async.data.resume == true && async.data.id == "
                                          "event.data.id"});
            if (!got) {
                return json::object{};
            }
            return json::object{{"result", got->data}};
        });
}

void register_extras(inngest::Client& client) {
    client.create_function(
        {.id = "parallel-steps", .triggers = {inngest::EventTrigger{"conformance/parallel.test"}}},
        [](Context& ctx) {
            auto [a, b, c] = ctx.step.parallel(
                [&] { return ctx.step.run("parallel-a", [] { return std::string("a"); }); },
                [&] { return ctx.step.run("parallel-b", [] { return std::string("b"); }); },
                [&] { return ctx.step.run("parallel-c", [] { return std::string("c"); }); });
            const std::string joined =
                ctx.step.run("after-parallel", [&] { return a + "+" + b + "+" + c; });
            return json::object{
                {"results", json::array{json::value(a), json::value(b), json::value(c)}},
                {"joined", joined}};
        });

    client.create_function(
        {.id = "send-event", .triggers = {inngest::EventTrigger{"conformance/sendevent.test"}}},
        [](Context& ctx) {
            json::object data;
            if (const auto* value = ctx.event.data.if_contains("value")) {
                data["value"] = *value;
            } else {
                data["value"] = nullptr;
            }
            const auto sent = ctx.step.send_event(
                "send-it", inngest::Event{.name = "conformance/sendevent.sent", .data = data});
            json::array ids;
            for (const auto& id : sent.ids) {
                ids.emplace_back(id);
            }
            return json::object{{"sent_ids", std::move(ids)}};
        });

    client.create_function({.id = "send-event-receiver",
                            .triggers = {inngest::EventTrigger{"conformance/sendevent.sent"}}},
                           [](Context& ctx) {
                               const auto* value = ctx.event.data.if_contains("value");
                               return json::object{{"received", value ? *value : json::value()}};
                           });

    client.create_function(
        {.id = "invoke-parent", .triggers = {inngest::EventTrigger{"conformance/invoke.test"}}},
        [](Context& ctx) {
            const auto* n = ctx.event.data.if_contains("n");
            const json::value child = ctx.step.invoke(
                "call-child", {.function_id = "invoke-child",
                               .data = json::object{{"n", n ? *n : json::value(0)}}});
            return json::object{{"child", child}};
        });

    client.create_function(
        {.id = "invoke-child", .triggers = {inngest::EventTrigger{"conformance/invoke.child"}}},
        [](Context& ctx) {
            const auto* n = ctx.event.data.if_contains("n");
            const std::int64_t value = n != nullptr ? json::value_to<std::int64_t>(*n) : 0;
            return json::object{{"doubled", value * 2}};
        });

    client.create_function(
        {.id = "sleep-until", .triggers = {inngest::EventTrigger{"conformance/sleepuntil.test"}}},
        [](Context& ctx) {
            const auto& until = ctx.event.data.at("until").as_string();
            ctx.step.sleep_until("wait-until", std::string_view(until));
            const std::string after =
                ctx.step.run("after-sleep-until", [] { return std::string("woke"); });
            return json::object{{"after", after}};
        });

    client.create_function({.id = "wait-for-event-timeout",
                            .triggers = {inngest::EventTrigger{"conformance/waittimeout.test"}}},
                           [](Context& ctx) {
                               const auto got = ctx.step.wait_for_event(
                                   "wait-timeout",
                                   {.event = "conformance/never.sent",
                                    .timeout = 5s,
                                    .if_expression = "async.data.id == event.data.id"});
                               return json::object{{"timed_out", !got.has_value()}};
                           });

    client.create_function(
        {.id = "non-retriable",
         .triggers = {inngest::EventTrigger{"conformance/nonretriable.test"}}},
        [](Context&) -> json::value { throw inngest::NonRetriableError("do not retry me"); });

    client.create_function(
        {.id = "non-retriable-step",
         .triggers = {inngest::EventTrigger{"conformance/nonretriable.step.test"}}},
        [](Context& ctx) {
            ctx.step.run("nr-step", []() -> json::value {
                throw inngest::NonRetriableError("step says do not retry");
            });
            return json::object{{"unreachable", true}};
        });

    client.create_function(
        {.id = "step-error-final",
         .triggers = {inngest::EventTrigger{"conformance/steperror.test"}},
         .retries = 1},
        [](Context& ctx) -> json::value {
            try {
                ctx.step.run("always-fails", []() -> json::value {
                    throw std::runtime_error("step always fails");
                });
                return json::object{{"caught", false}};
            } catch (const inngest::StepError& e) {
                return json::object{{"caught", true}, {"name", e.name()}, {"message", e.what()}};
            }
        });

    client.create_function(
        {.id = "retry-after", .triggers = {inngest::EventTrigger{"conformance/retryafter.test"}}},
        [](Context& ctx) -> json::value {
            if (ctx.run.attempt == 0) {
                throw inngest::RetryAfterError("slow down", 7s);
            }
            return json::object{{"attempt", ctx.run.attempt}};
        });

    client.create_function({.id = "cron-fn", .triggers = {inngest::CronTrigger{"0 0 1 1 *"}}},
                           [](Context& ctx) {
                               return json::object{{"cron", true}, {"name", ctx.event.name}};
                           });

    client.create_function(
        {.id = "large-state", .triggers = {inngest::EventTrigger{"conformance/largestate.test"}}},
        [](Context& ctx) {
            const auto size =
                static_cast<std::size_t>(json::value_to<std::int64_t>(ctx.event.data.at("size")));
            const std::string a = ctx.step.run("big-1", [&] { return std::string(size, '1'); });
            ctx.step.sleep("big-nap", 1s);
            const std::string b = ctx.step.run("big-2", [&] { return std::string(size, '2'); });
            const std::string c = ctx.step.run("big-3", [&] { return std::string(size, '3'); });
            const auto head = [](const std::string& s) {
                return s.empty() ? std::string() : s.substr(0, 1);
            };
            const auto* marker = ctx.event.data.if_contains("marker");
            return json::object{{"lengths", json::array{a.size(), b.size(), c.size()}},
                                {"heads", json::array{json::value(head(a)), json::value(head(b)),
                                                      json::value(head(c))}},
                                {"marker", marker ? *marker : json::value()}};
        });
}

void register_parity(inngest::Client& client) {
    client.create_function(
        {.id = "repeated-steps", .triggers = {inngest::EventTrigger{"conformance/repeat.test"}}},
        [](Context& ctx) {
            json::array items;
            for (int i = 0; i < 3; ++i) {
                items.emplace_back(ctx.step.run("item", [i] { return i; }));
            }
            return json::object{{"items", std::move(items)}};
        });

    client.create_function(
        {.id = "flow-control-config",
         .triggers = {inngest::EventTrigger{"conformance/config.test"}},
         .retries = 7,
         .concurrency = {{.limit = 2, .key = "event.data.tenant"},
                         {.limit = 5,
                          .key = "\"global\"",
                          .scope = inngest::ConcurrencyScope::kAccount}},
         .throttle =
             inngest::Throttle{.limit = 10, .period = 1min, .burst = 2, .key = "event.data.tenant"},
         .rate_limit = inngest::RateLimit{.limit = 100, .period = 1h, .key = "event.data.user"},
         .debounce = inngest::Debounce{.period = 5s, .key = "event.data.id", .timeout = 1min},
         .priority = inngest::Priority{"event.data.priority"},
         .timeouts = inngest::Timeouts{.start = 10s, .finish = 1h}},
        [](Context&) {
            return json::object{{"ok", true}};
        });

    client.create_function({.id = "flow-control-idempotency",
                            .triggers = {inngest::EventTrigger{"conformance/config.test"}},
                            .idempotency = "event.data.id"},
                           [](Context&) {
                               return json::object{{"ok", true}};
                           });

    client.create_function(
        {.id = "batch-fn",
         .triggers = {inngest::EventTrigger{"conformance/batch.test"}},
         .batch_events = inngest::BatchEvents{.max_size = 3, .timeout = 5s}},
        [](Context& ctx) {
            json::array ns;
            for (const auto& event : ctx.events) {
                const auto* n = event.data.if_contains("n");
                ns.emplace_back(n ? *n : json::value());
            }
            return json::object{{"count", ctx.events.size()}, {"ns", std::move(ns)}};
        });

    client.create_function({.id = "singleton-fn",
                            .triggers = {inngest::EventTrigger{"conformance/singleton.test"}},
                            .singleton = inngest::Singleton{.mode = inngest::SingletonMode::kSkip,
                                                            .key = "event.data.user"}},
                           [](Context&) {
                               return json::object{{"ok", true}};
                           });

    client.create_function(
        {.id = "on-failure-fn",
         .triggers = {inngest::EventTrigger{"conformance/onfailure.test"}},
         .retries = 0,
         .on_failure = [](Context& ctx) -> json::value {
             json::value message;
             if (const auto* error = ctx.event.data.if_contains("error");
                 error != nullptr && error->is_object()) {
                 if (const auto* text = error->as_object().if_contains("message")) {
                     message = *text;
                 }
             }
             return json::object{{"handled", true}, {"message", message}};
         }},
        [](Context&) -> json::value { throw inngest::NonRetriableError("boom"); });

    client.create_function(
        {.id = "multi-trigger",
         .triggers = {inngest::EventTrigger{"conformance/multi.a"},
                      inngest::EventTrigger{"conformance/multi.b", "event.data.ok == true"},
                      inngest::CronTrigger{"TZ=Asia/Shanghai 0 9 * * 1-5"}}},
        [](Context& ctx) {
            return json::object{{"name", ctx.event.name}};
        });

    client.create_function(
        {.id = "typed-result", .triggers = {inngest::EventTrigger{"conformance/typed.test"}}},
        [](Context& ctx) {
            const json::value typed = ctx.step.run("typed", [] {
                return json::value{{"名字", "张三"},
                                   {"amount", 1234.5},
                                   {"count", 3},
                                   {"ok", true},
                                   {"none", nullptr},
                                   {"list", json::array{1, "二", 2.5}},
                                   {"nested", {{"k", json::array{json::object{{"a", 1}}}}}}};
            });
            ctx.step.sleep("typed-nap", 1s);
            return json::object{{"step", typed}, {"echo", ctx.event.data}};
        });
}

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

json::value data_field(const Context& ctx, const char* name) {
    const auto* value = ctx.event.data.if_contains(name);
    return value != nullptr ? *value : json::value();
}

// Flow control, driven by the executor (conformance-fixture.md has the list; these extend it).
void register_flow_control(inngest::Client& client) {
    client.create_function(
        {.id = "debounce-fn",
         .triggers = {inngest::EventTrigger{"conformance/debounce.test"}},
         .debounce = inngest::Debounce{.period = 5s, .key = "event.data.user", .timeout = 20s}},
        [](Context& ctx) {
            return json::object{{"n", data_field(ctx, "n")}, {"count", ctx.events.size()}};
        });

    client.create_function(
        {.id = "throttle-fn",
         .triggers = {inngest::EventTrigger{"conformance/throttle.test"}},
         .throttle = inngest::Throttle{.limit = 1, .period = 10s, .key = "event.data.user"}},
        [](Context& ctx) {
            return json::object{{"n", data_field(ctx, "n")}};
        });

    client.create_function(
        {.id = "ratelimit-fn",
         .triggers = {inngest::EventTrigger{"conformance/ratelimit.test"}},
         .rate_limit = inngest::RateLimit{.limit = 2, .period = 60s, .key = "event.data.user"}},
        [](Context& ctx) {
            return json::object{{"n", data_field(ctx, "n")}};
        });

    client.create_function(
        {.id = "batch-keyed-fn",
         .triggers = {inngest::EventTrigger{"conformance/batchkeyed.test"}},
         .batch_events =
             inngest::BatchEvents{.max_size = 2, .timeout = 5s, .key = "event.data.user"}},
        [](Context& ctx) {
            json::array ns;
            for (const auto& event : ctx.events) {
                const auto* n = event.data.if_contains("n");
                ns.emplace_back(n ? *n : json::value());
            }
            return json::object{{"ns", std::move(ns)}};
        });

    client.create_function(
        {.id = "priority-fn",
         .triggers = {inngest::EventTrigger{"conformance/priority.test"}},
         .concurrency = {inngest::Concurrency{.limit = 1}},
         .priority = inngest::Priority{.run = "event.data.vip == true ? 100 : 0"}},
        [](Context& ctx) {
            const auto at = ctx.step.run("work", [] {
                std::this_thread::sleep_for(600ms);
                return wall_ms();
            });
            return json::object{{"n", data_field(ctx, "n")}, {"at", at}};
        });

    for (const char* id : {"concurrency-env-a", "concurrency-env-b"}) {
        client.create_function({.id = id,
                                .triggers = {inngest::EventTrigger{"conformance/envlimit.test"}},
                                .concurrency = {inngest::Concurrency{
                                    .limit = 1,
                                    .key = "event.data.group",
                                    .scope = inngest::ConcurrencyScope::kEnvironment}}},
                               [](Context& ctx) {
                                   return ctx.step.run("work", [] {
                                       const auto start = wall_ms();
                                       std::this_thread::sleep_for(400ms);
                                       return json::object{{"start", start}, {"end", wall_ms()}};
                                   });
                               });
    }

    for (const auto& [id, event, mode] :
         {std::tuple{"singleton-skip-fn", "conformance/singleton.skip",
                     inngest::SingletonMode::kSkip},
          std::tuple{"singleton-cancel-fn", "conformance/singleton.cancel",
                     inngest::SingletonMode::kCancel}}) {
        client.create_function(
            {.id = id,
             .triggers = {inngest::EventTrigger{event}},
             .singleton = inngest::Singleton{.mode = mode, .key = "event.data.user"}},
            [](Context& ctx) {
                ctx.step.wait_for_event("release",
                                        {.event = "conformance/singleton.release",
                                         .timeout = 1h,
                                         .if_expression = "async.data.user == event.data.user"});
                return json::object{{"n", data_field(ctx, "n")}};
            });
    }

    client.create_function(
        {.id = "cancel-timeout-fn",
         .triggers = {inngest::EventTrigger{"conformance/canceltimeout.test"}},
         .cancel_on = {inngest::CancelOn{.event = "conformance/canceltimeout.stop",
                                         .if_expression = "async.data.id == event.data.id",
                                         .timeout = 60s}}},
        [](Context& ctx) {
            ctx.step.sleep("nap", 1h);
            return json::object{{"woke", true}};
        });
}

}  // namespace

void register_fixture_functions(inngest::Client& client) {
    register_base(client);
    register_extras(client);
    register_parity(client);
    register_flow_control(client);
}

}  // namespace inngest_fixture
