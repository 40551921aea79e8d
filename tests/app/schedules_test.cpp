// Scheduled tasks end to end: a real PostgreSQL, the embedded executor on a ManualClock (minutes
// pass in milliseconds), REST over real HTTP.

#include "app/app_under_test.hpp"
#include "core/db/database.hpp"
#include "modules/schedules/schedule_math.hpp"
#include "modules/schedules/service.hpp"

#include <inngest/http_server.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

using riveredge_test::AppUnderTest;
using riveredge_test::AppUnderTestOptions;
namespace json = boost::json;
using namespace std::chrono_literals;
using riveredge::schedules::format_utc;
using riveredge::schedules::parse_time;

namespace {

std::shared_ptr<inngest::local::ManualClock> clock_at(const char* rfc3339) {
    return std::make_shared<inngest::local::ManualClock>(
        std::chrono::system_clock::time_point(parse_time(rfc3339)->time_since_epoch()));
}

// Moves the clock on in steps of at most a minute, letting the executor finish what each step
// makes due (fires, the reconciler's ticks) before the next.
void advance(AppUnderTest& t, inngest::local::ManualClock& clock, std::chrono::seconds by) {
    // What was announced before the clock moves reaches the executor first.
    REQUIRE(t.app().wait_settled(20s));
    while (by.count() > 0) {
        const auto step = std::min<std::chrono::seconds>(by, 60s);
        clock.advance(step);
        t.app().executor()->poke();
        REQUIRE(t.app().wait_settled(20s));
        by -= step;
    }
}

std::string schedule_body(
    const std::string& code,
    const std::string& trigger,
    const std::string& extra = "",
    const std::string& action =
        R"({"type":"message","recipients":["bob"],"subject":"Daily report","body":"It is ready."})") {
    return R"({"name":"Schedule )" + code + R"(","code":")" + code + R"(","trigger":)" + trigger +
           R"(,"action":)" + action + (extra.empty() ? "" : "," + extra) + "}";
}

json::array fires(const AppUnderTest& t,
                  const std::string& token,
                  std::int64_t id,
                  const std::string& query = "") {
    const auto r =
        t.call("GET", "/api/v1/schedules/" + std::to_string(id) + "/fires" + query, token);
    REQUIRE(r.status == 200);
    return r.body.at("items").as_array();
}

// The signed call Inngest makes for schedule `id`'s next armed fire, as run `run_id`; replayed,
// it runs the function's first step that is not memoized.
inngest_test::CallBuilder fire_call(const AppUnderTest& t,
                                    const std::string& token,
                                    std::int64_t id,
                                    const std::string& run_id) {
    const auto schedule = t.call("GET", "/api/v1/schedules/" + std::to_string(id), token);
    const auto at = parse_time(std::string(schedule.body.at("next_fire_at").as_string()));
    REQUIRE(at.has_value());
    inngest_test::CallBuilder call;
    call.fn_slug = "riveredge-flow-schedules-fire";
    call.run_id = run_id;
    call.event = json::object{
        {"name", "schedules/fire.due"},
        {"data",
         json::object{{"tenant_id", "acme"},
                      {"schedule_id", id},
                      {"scheduled_for",
                       std::chrono::duration_cast<std::chrono::milliseconds>(at->time_since_epoch())
                           .count()},
                      {"version", schedule.body.at("version")},
                      {"kind", "scheduled"}}}};
    return call;
}

// The one step a replayed call ran: its data.
json::value step_data(const AppUnderTest& t, const inngest_test::CallBuilder& call) {
    const auto [status, reply] = t.replay(call);
    REQUIRE(status == 206);
    REQUIRE(reply.as_array().size() == 1);
    return reply.as_array()[0].at("data");
}

std::vector<std::string> fired_times(const AppUnderTest& t,
                                     const std::string& token,
                                     std::int64_t id) {
    std::vector<std::string> out;
    for (const auto& fire : fires(t, token, id, "?status=succeeded")) {
        out.emplace_back(fire.at("scheduled_for").as_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("a schedule fires on time through Inngest and its history grows", "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto created =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("every-minute", R"({"kind":"cron","cron":"* * * * *"})"));
    REQUIRE(created.status == 201);
    const auto id = created.body.at("id").as_int64();
    CHECK(created.body.at("next_fire_at") == "2026-11-23T10:01:00.000Z");
    CHECK(created.body.at("version") == 1);

    advance(t, *clock, 29s);  // 10:00:59: not yet
    CHECK(fired_times(t, alice, id).empty());
    advance(t, *clock, 1s);
    CHECK(fired_times(t, alice, id) == std::vector<std::string>{"2026-11-23T10:01:00.000Z"});
    REQUIRE(t.wait_unread(bob, 1));
    advance(t, *clock, 120s);
    CHECK(fired_times(t, alice, id) == std::vector<std::string>{"2026-11-23T10:01:00.000Z",
                                                                "2026-11-23T10:02:00.000Z",
                                                                "2026-11-23T10:03:00.000Z"});
    REQUIRE(t.wait_unread(bob, 3));
    const auto history = fires(t, alice, id);
    CHECK(history.at(0).at("status") == "armed");  // the next one, 10:04
    const auto& latest = history.at(1).as_object();
    CHECK(latest.at("status") == "succeeded");
    CHECK(latest.at("attempt") == 1);
    CHECK(latest.at("started_at") == "2026-11-23T10:03:00.000Z");
    CHECK(latest.at("output").at("message_id").is_int64());
    CHECK(t.call("GET", "/api/v1/schedules/" + std::to_string(id), alice).body.at("next_fire_at") ==
          "2026-11-23T10:04:00.000Z");

    // Run now: a manual fire beside the schedule's own.
    REQUIRE(t.call("POST", "/api/v1/schedules/" + std::to_string(id) + "/run", alice).status ==
            202);
    advance(t, *clock, 1s);
    CHECK(fires(t, alice, id, "?status=succeeded").size() == 4);
    REQUIRE(t.wait_unread(bob, 4));

    // Preview in the zone and in UTC, for a saved schedule and for a trigger not saved yet.
    const auto preview = t.call(
        "POST", "/api/v1/schedules/preview?count=3", alice,
        R"({"trigger":{"kind":"cron","cron":"0 9 * * MON-FRI","time_zone":"Asia/Shanghai"}})");
    REQUIRE(preview.status == 200);
    CHECK(preview.body.at("fires").at(0) ==
          json::parse(
              R"({"utc":"2026-11-24T01:00:00.000Z","local":"2026-11-24T09:00:00.000+08:00"})"));
    CHECK(preview.body.at("fires").as_array().size() == 3);
    CHECK(t.call("GET", "/api/v1/schedules/" + std::to_string(id) + "/preview?count=2", alice)
              .body.at("fires")
              .as_array()
              .size() == 2);
}

TEST_CASE("an edit stops the old timing and pause, resume and delete take effect at once",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id = t.call("POST", "/api/v1/schedules", alice,
                           schedule_body("report", R"({"kind":"cron","cron":"* * * * *"})"))
                        .body.at("id")
                        .as_int64();
    const auto path = "/api/v1/schedules/" + std::to_string(id);
    // Every 5 minutes instead: the fire armed for 10:01 must not run.
    const auto edited = t.call("PUT", path, alice,
                               schedule_body("report", R"({"kind":"cron","cron":"*/5 * * * *"})"));
    REQUIRE(edited.status == 200);
    CHECK(edited.body.at("version") == 2);
    CHECK(edited.body.at("next_fire_at") == "2026-11-23T10:05:00.000Z");
    advance(t, *clock, 270s);  // to 10:05:00
    CHECK(fired_times(t, alice, id) == std::vector<std::string>{"2026-11-23T10:05:00.000Z"});
    CHECK(fires(t, alice, id, "?status=cancelled").size() == 1);  // the 10:01 one

    const auto paused = t.call("POST", path + "/pause", alice, R"({"reason":"month-end freeze"})");
    REQUIRE(paused.status == 200);
    CHECK(paused.body.at("enabled") == false);
    CHECK(paused.body.at("paused_reason") == "month-end freeze");
    CHECK(paused.body.at("next_fire_at").is_null());
    advance(t, *clock, 600s);  // to 10:15: 10:10 and 10:15 pass while paused
    CHECK(fired_times(t, alice, id).size() == 1);

    const auto resumed = t.call("POST", path + "/resume", alice);
    CHECK(resumed.body.at("next_fire_at") == "2026-11-23T10:20:00.000Z");
    advance(t, *clock, 300s);
    CHECK(fired_times(t, alice, id).back() == "2026-11-23T10:20:00.000Z");
    CHECK(fired_times(t, alice, id).size() == 2);

    REQUIRE(t.call("DELETE", path, alice).status == 200);
    advance(t, *clock, 600s);
    CHECK(t.call("GET", path, alice).status == 404);
    CHECK(t.call("GET", "/api/v1/schedules", alice).body.at("items").as_array().empty());
    // No fire ran after the delete: every fire recorded is from before it.
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::core::db::Transaction tx(pool, riveredge::core::TenantId::trusted("acme"));
    const auto late = tx.exec(
        "SELECT count(*) AS n FROM schedule_fires WHERE status = 'succeeded' AND scheduled_for > "
        "'2026-11-23T10:20:00Z'");
    CHECK(late.integer(0, "n") == 0);
    // The code is free again.
    CHECK(t.call("POST", "/api/v1/schedules", alice,
                 schedule_body("report", R"({"kind":"cron","cron":"0 * * * *"})"))
              .status == 201);
}

TEST_CASE("after an outage the reconciler applies the misfire policy and nothing runs twice",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    std::string database;
    std::int64_t skip_id = 0;
    std::int64_t once_id = 0;
    std::int64_t future_id = 0;
    {
        AppUnderTest first(AppUnderTestOptions{.clock = clock});
        database = first.settings().database_url;
        const auto alice = first.token("acme", "alice", {"admin"});
        skip_id = first
                      .call("POST", "/api/v1/schedules", alice,
                            schedule_body("skipper", R"({"kind":"cron","cron":"*/5 * * * *"})"))
                      .body.at("id")
                      .as_int64();
        once_id =
            first
                .call("POST", "/api/v1/schedules", alice,
                      schedule_body("catcher", R"({"kind":"cron","cron":"*/5 * * * *"})",
                                    R"("misfire_policy":"fire_once","misfire_window_seconds":900)"))
                .body.at("id")
                .as_int64();
        future_id =
            first
                .call("POST", "/api/v1/schedules", alice,
                      schedule_body("later", R"({"kind":"once","at":"2026-11-23T10:30:00.000Z"})"))
                .body.at("id")
                .as_int64();
    }  // the process and its embedded executor go away with the armed events

    clock->advance(std::chrono::minutes(8));  // 10:08:30: the 10:05 fires were missed
    AppUnderTest second(AppUnderTestOptions{.clock = clock, .database_url = database});
    const auto alice = second.token("acme", "alice", {"admin"});
    advance(second, *clock, 90s);  // reconciler ticks at 10:09 and 10:10 (and the 10:10 fires)

    CHECK(fired_times(second, alice, skip_id) ==
          std::vector<std::string>{"2026-11-23T10:10:00.000Z"});
    CHECK(fires(second, alice, skip_id, "?status=missed").size() == 1);
    CHECK(fires(second, alice, skip_id, "?status=missed").at(0).at("scheduled_for") ==
          "2026-11-23T10:05:00.000Z");
    // fire_once: the missed 10:05 ran once, late, then the regular 10:10.
    CHECK(fired_times(second, alice, once_id) ==
          std::vector<std::string>{"2026-11-23T10:05:00.000Z", "2026-11-23T10:10:00.000Z"});
    // An armed fire still in the future was re-sent after the restart and runs on time.
    advance(second, *clock, 20 * 60s);
    CHECK(fired_times(second, alice, future_id) ==
          std::vector<std::string>{"2026-11-23T10:30:00.000Z"});
    CHECK(second.call("GET", "/api/v1/schedules/" + std::to_string(future_id), alice)
              .body.at("next_fire_at")
              .is_null());
    // Every (schedule, time) ran at most once.
    riveredge::core::db::Pool pool(database, 1);
    riveredge::core::db::Transaction tx(pool, riveredge::core::TenantId::trusted("acme"));
    CHECK(tx.exec("SELECT count(*) AS n FROM (SELECT schedule_id, scheduled_for FROM "
                  "schedule_fires WHERE status = 'succeeded' GROUP BY 1, 2 HAVING count(*) > 1) d")
              .integer(0, "n") == 0);
}

TEST_CASE("overlap skip: a fire does not start while the previous one still runs",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto admin = t.token("acme", "root", {"admin"});
    std::mutex mutex;
    std::condition_variable released;
    bool release = false;
    int calls = 0;
    std::string idempotency_key;
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes =
        [&](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        std::unique_lock lock(mutex);
        ++calls;
        idempotency_key = request.header("Idempotency-Key");
        released.wait_for(lock, 20s, [&] { return release; });
        return inngest::HttpResponse{200, {}, "{\"ok\":true}"};
    };
    inngest::HttpServer hook(options);
    hook.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    const auto created = t.call(
        "POST", "/api/v1/schedules", alice,
        schedule_body("slow", R"({"kind":"cron","cron":"* * * * *"})", R"("timeout_seconds":600)",
                      R"({"type":"http","url":"http://127.0.0.1:)" + std::to_string(hook.port()) +
                          R"(/slow","method":"POST","body":{"x":1}})"));
    REQUIRE(created.status == 201);
    const auto id = created.body.at("id").as_int64();
    const auto wait_for = [&](const std::string& status, std::size_t count) {
        for (int i = 0; i < 400; ++i) {
            if (fires(t, alice, id, "?status=" + status).size() >= count) {
                return true;
            }
            std::this_thread::sleep_for(25ms);
        }
        return false;
    };
    clock->advance(30s);  // 10:01: the first fire starts and hangs in its HTTP call
    t.app().executor()->poke();
    REQUIRE(wait_for("running", 1));
    clock->advance(60s);  // 10:02: the second finds the first still running
    t.app().executor()->poke();
    REQUIRE(wait_for("skipped", 1));
    CHECK(fires(t, alice, id, "?status=skipped").at(0).at("reason").as_string().find("overlap") !=
          json::string::npos);
    {
        std::lock_guard lock(mutex);
        release = true;
    }
    released.notify_all();
    REQUIRE(wait_for("succeeded", 1));
    CHECK(calls == 1);
    // The fire's key goes with the call, so a receiver can tell a retry from a new fire.
    const auto fired = fires(t, alice, id, "?status=succeeded").at(0).at("id").as_int64();
    {
        std::lock_guard lock(mutex);
        CHECK(idempotency_key == "schedule-fire-" + std::to_string(fired));
    }
    hook.stop();
}

TEST_CASE("a claim re-run after its answer was lost goes on with the fire it claimed",
          "[app][schedules]") {
    // Inngest runs a step again when the process died after the step committed but before its
    // answer arrived. The claim must then answer as before, not take its own fire for another
    // run's ("already running"), which left the fire running for ever with its action never run.
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto created =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("claimed", R"({"kind":"cron","cron":"* * * * *"})", "",
                             R"({"type":"event","name":"claimed.tick","data":{}})"));
    REQUIRE(created.status == 201);
    const auto id = created.body.at("id").as_int64();
    // The 10:01 fire is armed; its run starts only when the clock gets there.
    const auto base = fire_call(t, alice, id, "");
    const auto claim = [&](const std::string& run_id) {
        auto call = base;
        call.run_id = run_id;
        return step_data(t, call);
    };
    const std::string run = "01JCLAIMRUN000000000000001";
    const auto first = claim(run);
    CHECK(first.at("decision") == "run");
    CHECK(fires(t, alice, id, "?status=running").size() == 1);
    // The same run again: its answer was lost, it goes on.
    const auto again = claim(run);
    CHECK(again.at("decision") == "run");
    CHECK(again.at("fire_id") == first.at("fire_id"));
    // Another run (a second delivery of the same fire) is turned away.
    const auto other = claim("01JCLAIMRUN000000000000002");
    CHECK(other.at("decision") == "skip");
    CHECK(other.at("reason") == "already running");
}

TEST_CASE("a queued fire that still cannot run at its last check is skipped, not left waiting",
          "[app][schedules]") {
    // A queue_one fire looks again kOverlapChecks times. Before, it gave up after a fixed number
    // of looks and stayed 'waiting', and every later queue_one fire of the schedule was skipped
    // behind it. The run is replayed through the signed serve endpoint with its earlier checks
    // memoized, so the last check is reached without 800 real steps.
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto created =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("queued", R"({"kind":"cron","cron":"* * * * *"})",
                             R"("overlap_policy":"queue_one","timeout_seconds":600)",
                             R"({"type":"event","name":"queued.tick","data":{}})"));
    REQUIRE(created.status == 201);
    const auto id = created.body.at("id").as_int64();
    // 10:01 claims and runs (its action is not replayed, so it stays running); 10:02 queues.
    REQUIRE(step_data(t, fire_call(t, alice, id, "01JQUEUERUN000000000000001")).at("decision") ==
            "run");
    auto queued = fire_call(t, alice, id, "01JQUEUERUN000000000000002");
    const auto claim = step_data(t, queued);
    REQUIRE(claim.at("decision") == "wait");
    REQUIRE(fires(t, alice, id, "?status=waiting").size() == 1);
    queued.data("claim", claim);
    const auto checks_up_to = [&](int last) {
        auto call = queued;
        for (int i = 0; i < last; ++i) {
            call.data("overlap-wait-" + std::to_string(i), nullptr);
            call.data("overlap-check-" + std::to_string(i), json::object{{"decision", "wait"}});
        }
        call.data("overlap-wait-" + std::to_string(last), nullptr);
        return call;
    };
    // A check before the last, with the other fire still running: it waits on.
    CHECK(step_data(t, checks_up_to(riveredge::schedules::kOverlapChecks - 2)).at("decision") ==
          "wait");
    CHECK(fires(t, alice, id, "?status=waiting").size() == 1);
    // The last check, the other fire still running and the timeout not yet passed: skipped.
    CHECK(step_data(t, checks_up_to(riveredge::schedules::kOverlapChecks - 1)).at("decision") ==
          "skip");
    CHECK(fires(t, alice, id, "?status=waiting").empty());
    const auto skipped = fires(t, alice, id, "?status=skipped");
    REQUIRE(skipped.size() == 1);
    CHECK(skipped.at(0).at("reason") == "overlap: waited longer than the timeout");
}

TEST_CASE("a failing action is retried as often as the schedule says and then recorded failed",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto admin = t.token("acme", "root", {"admin"});
    std::atomic<int> calls{0};
    std::mutex mutex;
    std::vector<std::string> flaky_keys;
    std::map<std::string, inngest::HttpResponse> answered;
    inngest::HttpServerOptions options;
    options.port = 0;
    // The first call of each pair fails: a retry succeeds, no retry means failure. /flaky is an
    // idempotent receiver: a key it has answered gets the same answer again.
    options.routes =
        [&](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        const std::string key(request.header("Idempotency-Key"));
        std::lock_guard lock(mutex);
        if (request.path == "/flaky") {
            flaky_keys.push_back(key);
            if (const auto stored = answered.find(key); stored != answered.end()) {
                return stored->second;
            }
        }
        const int n = ++calls;
        const auto response = request.path == "/always-down" || n % 2 == 1
                                  ? inngest::HttpResponse{503, {}, "{\"error\":\"busy\"}"}
                                  : inngest::HttpResponse{200, {}, "{\"ok\":true}"};
        if (request.path == "/flaky") {
            answered.emplace(key, response);
        }
        return response;
    };
    inngest::HttpServer hook(options);
    hook.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    const auto url = "http://127.0.0.1:" + std::to_string(hook.port());
    const auto retried =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("retried", R"({"kind":"once","at":"2026-11-23T10:01:00.000Z"})",
                             R"("retries":2)", R"({"type":"http","url":")" + url + R"(/flaky"})"));
    REQUIRE(retried.status == 201);
    advance(t, *clock, 30s);
    advance(t, *clock, 60s);  // the executor's retry backoff runs on the same clock
    const auto ok = fires(t, alice, retried.body.at("id").as_int64()).at(0);
    CHECK(ok.at("status") == "succeeded");
    CHECK(ok.at("attempt") == 2);
    CHECK(ok.at("output").at("status") == 200);
    // Each attempt calls under a key of its own: the receiver's stored 503 is not the retry's.
    {
        const auto key = "schedule-fire-" + std::to_string(ok.at("id").as_int64());
        std::lock_guard lock(mutex);
        CHECK(flaky_keys == std::vector<std::string>{key, key + "/2"});
    }

    const auto down = t.call(
        "POST", "/api/v1/schedules", alice,
        schedule_body("down", R"({"kind":"once","at":"2026-11-23T10:03:00.000Z"})",
                      R"("retries":1)", R"({"type":"http","url":")" + url + R"(/always-down"})"));
    REQUIRE(down.status == 201);
    const int before = calls;
    advance(t, *clock, 120s);
    advance(t, *clock, 120s);
    const auto failed = fires(t, alice, down.body.at("id").as_int64()).at(0);
    CHECK(failed.at("status") == "failed");
    CHECK(failed.at("attempt") == 2);
    CHECK(failed.at("error").as_string().find("503") != json::string::npos);
    CHECK(calls - before == 2);
    hook.stop();
}

TEST_CASE(
    "a script action still carried out by an earlier attempt is waited for, not recorded "
    "as a failed attempt of the fire",
    "[app][schedules]") {
    // The executor gave up on the fire's step (its call timeout) while the action's script run
    // went on; the step's retry meets that run, still leased by its carrier, and is answered
    // retry-after. Recorded as the fire's failure, a fire with no retries would end failed while
    // its script succeeds.
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto script = t.call("POST", "/api/v1/scripts", alice,
                               R"({"name":"report","code":"function main() { return 7; }"})");
    REQUIRE(script.status == 201);
    const auto script_id = script.body.at("id").as_int64();
    const auto created =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("scripted", R"({"kind":"once","at":"2026-11-23T10:01:00.000Z"})", "",
                             R"({"type":"script","script_id":)" + std::to_string(script_id) + "}"));
    REQUIRE(created.status == 201);
    const auto id = created.body.at("id").as_int64();
    // The earlier attempt's run of the schedule's first fire, its carrier alive (a fresh lease).
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    const auto tenant = riveredge::core::TenantId::trusted("acme");
    const auto holder =
        riveredge::core::db::exec_once(
            owner, tenant,
            "INSERT INTO script_runs (tenant_id, script_id, version, mode, trigger, status, "
            "arguments, run_by, idempotency_key, started_at, lease_until) VALUES ($1, $2, 1, "
            "'sync', 'schedule', 'running', '{}', $3, 'schedule-fire-1', now(), now() + "
            "interval '5 minutes') RETURNING id",
            {tenant, script_id, "schedule:" + std::to_string(id)})
            .integer(0, "id");
    const auto runs = [&] {
        return t.call("GET", "/api/v1/scripts/" + std::to_string(script_id) + "/runs", alice)
            .body.at("total")
            .as_int64();
    };
    // The fire's step waits for the run (20 s), then is answered retry-after.
    REQUIRE(t.app().wait_settled(20s));
    clock->advance(30s);
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(45s));
    auto fire = fires(t, alice, id).at(0);
    INFO(json::serialize(fire));
    REQUIRE(fire.at("id") == 1);
    CHECK(fire.at("status") == "running");
    CHECK(fire.at("error").is_null());
    CHECK(runs() == 1);
    // The earlier attempt's run ends; the step, retried after it, gets it by its key.
    REQUIRE(riveredge::core::db::exec_once(
                owner, tenant,
                "UPDATE script_runs SET status = 'succeeded', result = '7', console = '[]', "
                "console_truncated = false, duration_ms = 1, memory_bytes = 1, finished_at = "
                "now(), lease_until = NULL WHERE id = $1",
                {holder})
                .affected() == 1);
    advance(t, *clock, 120s);
    fire = fires(t, alice, id).at(0);
    INFO(json::serialize(fire));
    CHECK(fire.at("status") == "succeeded");
    CHECK(fire.at("output").at("script_run_id") == holder);
    CHECK(fire.at("output").at("result") == 7);
    CHECK(runs() == 1);
}

TEST_CASE("an action whose answer PostgreSQL cannot store as it is runs once and succeeds",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto admin = t.token("acme", "root", {"admin"});
    std::string han;
    while (han.size() < 20'000) {
        han += "汉";  // 20,001 bytes: the 16 KiB an answer keeps ends inside a character
    }
    std::mutex mutex;
    std::map<std::string, int> calls;
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes =
        [&](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        std::lock_guard lock(mutex);
        ++calls[request.path];
        return inngest::HttpResponse{
            200, {}, request.path == "/nul" ? std::string("{\"a\":\"x\0y\"}", 11) : han};
    };
    inngest::HttpServer hook(options);
    hook.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    const auto url = "http://127.0.0.1:" + std::to_string(hook.port());
    std::map<std::string, std::int64_t> ids;
    for (const std::string path : {"/nul", "/han"}) {
        const auto created = t.call(
            "POST", "/api/v1/schedules", alice,
            schedule_body(path.substr(1), R"({"kind":"once","at":"2026-11-23T10:01:00.000Z"})",
                          R"("retries":10)", R"({"type":"http","url":")" + url + path + "\"}"));
        REQUIRE(created.status == 201);
        ids[path] = created.body.at("id").as_int64();
    }
    advance(t, *clock, 30s);
    advance(t, *clock, 600s);  // time for every retry a failure would have had
    const auto nul = fires(t, alice, ids["/nul"]).at(0);
    INFO(json::serialize(nul));
    CHECK(nul.at("status") == "succeeded");
    CHECK(nul.at("attempt") == 1);
    CHECK(nul.at("output").at("status") == 200);
    CHECK(nul.at("output").at("body") == "{\"a\":\"x\xEF\xBF\xBDy\"}");
    const auto cut = fires(t, alice, ids["/han"]).at(0);
    CHECK(cut.at("status") == "succeeded");
    CHECK(cut.at("attempt") == 1);
    // Too long to keep whole: a preview, cut between two characters.
    CHECK(cut.at("output").at("truncated") == true);
    const std::string preview(cut.at("output").at("preview").as_string());
    CHECK(preview.size() <= 8192);
    CHECK(preview.size() > 8000);
    CHECK(preview.find("\xEF\xBF\xBD") == std::string::npos);
    CHECK(preview.ends_with("汉"));
    std::lock_guard lock(mutex);
    CHECK(calls == std::map<std::string, int>{{"/han", 1}, {"/nul", 1}});
}

TEST_CASE("an action whose end cannot be saved at first is called once: the save is retried alone",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto admin = t.token("acme", "root", {"admin"});
    std::atomic<int> calls{0};
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes = [&](const inngest::HttpRequest&) -> std::optional<inngest::HttpResponse> {
        ++calls;
        return inngest::HttpResponse{200, {}, "{\"ok\":true}"};
    };
    inngest::HttpServer hook(options);
    hook.start();
    REQUIRE(t.call("PUT", "/api/v1/scripts/settings", admin, R"({"http_allow_list":["127.0.0.1"]})")
                .status == 200);
    // Saving a fire's success fails the first time, after the action was called (a sequence
    // counts the tries: it is not rolled back with the failed save).
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    riveredge::core::db::transact(owner, std::nullopt, [](riveredge::core::db::Transaction& tx) {
        tx.exec("CREATE SEQUENCE fire_saves");
        tx.exec(
            "CREATE FUNCTION refuse_first_fire_save() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF nextval('fire_saves') = 1 THEN RAISE EXCEPTION 'test: the save fails'; "
            "END IF; RETURN NEW; END $$");
        tx.exec("GRANT USAGE ON SEQUENCE fire_saves TO riveredge");
        tx.exec(
            "CREATE TRIGGER refuse_first_fire_save BEFORE UPDATE ON schedule_fires FOR EACH ROW "
            "WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION refuse_first_fire_save()");
    });
    const auto created =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("saved-late", R"({"kind":"once","at":"2026-11-23T10:01:00.000Z"})", "",
                             R"({"type":"http","url":"http://127.0.0.1:)" +
                                 std::to_string(hook.port()) + R"(/once"})"));
    REQUIRE(created.status == 201);
    advance(t, *clock, 30s);
    advance(t, *clock, 60s);  // the retry's backoff
    const auto fire = fires(t, alice, created.body.at("id").as_int64()).at(0);
    INFO(json::serialize(fire));
    CHECK(fire.at("status") == "succeeded");
    CHECK(fire.at("attempt") == 1);
    CHECK(fire.at("output").at("status") == 200);
    CHECK(calls == 1);
    // The save did fail once, then passed.
    const auto saves = riveredge::core::db::transact(
        owner, std::nullopt, [](riveredge::core::db::Transaction& tx) {
            return tx.exec("SELECT last_value FROM fire_saves").integer(0, "last_value");
        });
    CHECK(saves == 2);
    hook.stop();
}

TEST_CASE("a fire run whose action step saved its end itself (the code before) ends as it was",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto created =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("older", R"({"kind":"once","at":"2026-11-23T10:01:00.000Z"})"));
    REQUIRE(created.status == 201);
    const auto id = created.body.at("id").as_int64();
    auto call = fire_call(t, alice, id, "run-older");
    const auto claim = step_data(t, call);
    REQUIRE(claim.at("decision") == "run");
    call.data("claim", claim);
    // Its one step "action" ran the action and saved the end: {fire_id, status}.
    const json::value ended{{"fire_id", claim.at("fire_id")}, {"status", "succeeded"}};
    call.data("action", ended);
    const auto [status, reply] = t.replay(call);
    CHECK(status == 200);
    CHECK(reply == ended);
    // Nothing ran again: the fire is still as the claim left it.
    CHECK(fires(t, alice, id).at(0).at("status") == "running");
}

TEST_CASE("a fire whose run failed through its retries ends failed, not running",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto created =
        t.call("POST", "/api/v1/schedules", alice,
               schedule_body("stuck", R"({"kind":"once","at":"2026-11-23T10:01:00.000Z"})"));
    REQUIRE(created.status == 201);
    const auto id = created.body.at("id").as_int64();
    // The run claims the fire, then dies through its retries before the action records
    // anything (the database gone for the whole of them, say).
    auto call = fire_call(t, alice, id, "run-stuck");
    CHECK(step_data(t, call).at("decision") == "run");
    REQUIRE(fires(t, alice, id).at(0).at("status") == "running");
    // Another run's failure leaves this run's fire alone.
    for (const std::string run : {"run-other", "run-stuck"}) {
        inngest_test::CallBuilder failed;
        failed.fn_slug = "riveredge-flow-schedules-fire-failure";
        failed.run_id = run + "-failure";
        failed.event = json::object{
            {"name", "inngest/function.failed"},
            {"data", json::object{{"function_id", "riveredge-flow-schedules-fire"},
                                  {"run_id", run},
                                  {"event", call.event},
                                  {"error", json::object{{"message", "database gone"}}}}}};
        const auto [status, reply] = t.replay(failed);
        INFO(json::serialize(reply));
        CHECK(status == 206);
        if (run == "run-other") {
            CHECK(fires(t, alice, id).at(0).at("status") == "running");
        }
    }
    const auto fire = fires(t, alice, id).at(0);
    INFO(json::serialize(fire));
    CHECK(fire.at("status") == "failed");
    CHECK(fire.at("error").as_string().find("database gone") != json::string::npos);
    CHECK(!fire.at("finished_at").is_null());
}

TEST_CASE("DST through the API: the repeated hour fires once and the skipped hour not at all",
          "[app][schedules]") {
    auto clock = clock_at("2026-11-01T05:25:00.000Z");  // 01:25 EDT, the night New York falls back
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto id =
        t.call(
             "POST", "/api/v1/schedules", alice,
             schedule_body("night",
                           R"({"kind":"cron","cron":"30 1 * * *","time_zone":"America/New_York"})"))
            .body.at("id")
            .as_int64();
    advance(t, *clock, 6 * 60s);
    CHECK(fired_times(t, alice, id) == std::vector<std::string>{"2026-11-01T05:30:00.000Z"});
    advance(t, *clock, 65 * 60s);  // through 06:30Z, which is 01:30 again (EST)
    CHECK(fired_times(t, alice, id).size() == 1);
    const auto schedule = t.call("GET", "/api/v1/schedules/" + std::to_string(id), alice);
    CHECK(schedule.body.at("next_fire_at") == "2026-11-02T06:30:00.000Z");
    CHECK(schedule.body.at("next_fire_local") == "2026-11-02T01:30:00.000-05:00");

    // Spring: 02:30 does not exist in New York on 2027-03-14; the first fire is the 15th.
    const auto spring = t.call(
        "POST", "/api/v1/schedules/preview?count=2", alice,
        R"({"trigger":{"kind":"cron","cron":"30 2 * * *","time_zone":"America/New_York","start_at":"2027-03-14T00:00:00.000Z"}})");
    CHECK(spring.body.at("fires").at(0).at("utc") == "2027-03-15T06:30:00.000Z");
}

TEST_CASE("schedules: field-level errors and tenant isolation", "[app][schedules]") {
    auto clock = clock_at("2026-11-23T10:00:30.000Z");
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto mallory = t.token("globex", "mallory", {"admin"});
    const auto field_errors = [&](const std::string& body) {
        const auto r = t.call("POST", "/api/v1/schedules", alice, body);
        CHECK(r.status == 422);
        return r.body.at("error").at("details").at("fields").as_object();
    };
    CHECK(field_errors(schedule_body("a", R"({"kind":"cron","cron":"61 * * * *"})"))
              .contains("trigger.cron"));
    CHECK(field_errors(
              schedule_body("a", R"({"kind":"cron","cron":"0 * * * *","time_zone":"Mars/Base"})"))
              .contains("trigger.time_zone"));
    CHECK(
        field_errors(
            schedule_body(
                "a",
                R"({"kind":"interval","every_seconds":60,"start_at":"2026-12-01T00:00:00.000Z","end_at":"2026-11-01T00:00:00.000Z"})"))
            .contains("trigger.end_at"));
    CHECK(field_errors(schedule_body("a", R"({"kind":"once","at":"tomorrow"})"))
              .contains("trigger.at"));
    CHECK(field_errors(schedule_body("a", R"({"kind":"weekly"})")).contains("trigger.kind"));
    // A once trigger with a null time would never fire.
    CHECK(field_errors(schedule_body("a", R"({"kind":"once","at":null})")).contains("trigger.at"));
    const auto action_errors =
        field_errors(schedule_body("a", R"({"kind":"cron","cron":"0 * * * *"})", "",
                                   R"({"type":"message","recipients":[],"subject":""})"));
    CHECK(action_errors.contains("action.recipients"));
    CHECK(action_errors.contains("action.subject"));
    CHECK(action_errors.contains("action.body"));
    CHECK(field_errors(schedule_body("a", R"({"kind":"cron","cron":"0 * * * *"})", "",
                                     R"({"type":"http","url":"http://127.0.0.1/","method":"GOT"})"))
              .contains("action.method"));
    CHECK(field_errors(schedule_body("a", R"({"kind":"cron","cron":"0 * * * *"})",
                                     R"("overlap_policy":"cancel")"))
              .contains("overlap_policy"));
    CHECK(field_errors(schedule_body("a", R"({"kind":"cron","cron":"0 * * * *"})", "",
                                     R"({"type":"http","url":"http://internal.example/x"})"))
              .contains("action.url"));
    CHECK(field_errors(schedule_body("a", R"({"kind":"cron","cron":"0 * * * *"})", "",
                                     R"({"type":"script","script_id":12345})"))
              .contains("action.script_id"));
    CHECK(t.call("POST", "/api/v1/schedules", alice, "[1,2").status == 400);
    CHECK(t.call("GET", "/api/v1/schedules", alice).body.at("items").as_array().empty());

    const auto id = t.call("POST", "/api/v1/schedules", alice,
                           schedule_body("mine", R"({"kind":"cron","cron":"* * * * *"})"))
                        .body.at("id")
                        .as_int64();
    CHECK(t.call("POST", "/api/v1/schedules", alice,
                 schedule_body("mine", R"({"kind":"cron","cron":"* * * * *"})"))
              .status == 409);
    advance(t, *clock, 30s);
    const auto path = "/api/v1/schedules/" + std::to_string(id);
    for (const auto& [method, target, body] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"GET", path, ""},
             {"PUT", path, schedule_body("stolen", R"({"kind":"cron","cron":"* * * * *"})")},
             {"DELETE", path, ""},
             {"POST", path + "/pause", "{}"},
             {"POST", path + "/resume", ""},
             {"POST", path + "/run", ""},
             {"GET", path + "/preview", ""},
             {"GET", path + "/fires", ""}}) {
        CAPTURE(method, target);
        CHECK(t.call(method, target, mallory, body).status == 404);
    }
    CHECK(t.call("GET", "/api/v1/schedules", mallory).body.at("items").as_array().empty());
    // acme's schedule is untouched and kept firing.
    const auto mine = t.call("GET", path, alice);
    CHECK(mine.body.at("enabled") == true);
    CHECK(mine.body.at("version") == 1);
    CHECK(fired_times(t, alice, id).size() == 1);
}
