// /metrics on the app and on its embedded executor: closed unless the deployment configured a
// token (no tenant's token opens it), Prometheus text that parses, and counters that move with
// the work done.

#include "app/app_under_test.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <sstream>

using namespace riveredge_test;

namespace {

constexpr const char* kMetricsToken = "metrics-token-0123456789abcdef";

// Every sample line of a Prometheus text page, by its name and labels; a line that does not
// parse fails the test.
std::map<std::string, double> samples(const std::string& text) {
    static const std::regex sample(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?) (-?[0-9.eE+-]+|\+Inf|NaN)$)");
    static const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
    std::map<std::string, double> out;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::smatch match;
        if (std::regex_match(line, comment)) {
            continue;
        }
        INFO(line);
        REQUIRE(std::regex_match(line, match, sample));
        out[match[1]] = std::stod(match[5]);
    }
    return out;
}

double value(const std::map<std::string, double>& page, const std::string& series) {
    const auto it = page.find(series);
    return it == page.end() ? 0 : it->second;
}

}  // namespace

TEST_CASE("metrics: /metrics is off without a token and refuses every other bearer",
          "[app][metrics]") {
    {
        AppUnderTest off;
        CHECK(off.call("GET", "/metrics", kMetricsToken).status == 404);
    }
    AppUnderTest t(AppUnderTestOptions{.metrics_token = kMetricsToken});
    CHECK(t.call("GET", "/metrics").status == 401);
    CHECK(t.call("GET", "/metrics", "metrics-token-0123456789abcdeX").status == 401);
    CHECK(t.call("GET", "/metrics", t.token("acme", "alice", {"admin"})).status == 401);
    // The executor's page wants the executor's key, not the app's metrics token.
    CHECK(call_url("GET", t.app().executor_url() + "/metrics", kMetricsToken).status == 401);
    const auto page = t.call("GET", "/metrics", kMetricsToken);
    REQUIRE(page.status == 200);
    REQUIRE(page.body.is_string());
    CHECK(page.body.as_string().find(kMetricsToken) == json::string::npos);
}

TEST_CASE("metrics: the app's and the executor's counters move with the work done",
          "[app][metrics]") {
    AppUnderTest t(AppUnderTestOptions{.metrics_token = kMetricsToken});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto scrape = [&] {
        const auto page = t.call("GET", "/metrics", kMetricsToken);
        REQUIRE(page.status == 200);
        return samples(std::string(page.body.as_string()));
    };
    const auto scrape_executor = [&] {
        const auto page = call_url("GET", t.app().executor_url() + "/metrics", kExecutorKey);
        REQUIRE(page.status == 200);
        return samples(std::string(page.body.as_string()));
    };
    const auto before = scrape();
    const auto executor_before = scrape_executor();

    for (int i = 0; i < 2; ++i) {
        REQUIRE(t.call("POST", "/api/v1/messages/send", alice,
                       R"({"subject":"s","body":"b","channels":["in_app"],"recipients":["bob"]})")
                    .status == 201);
    }
    REQUIRE(t.wait_unread(bob, 2));
    CHECK(t.call("GET", "/api/v1/scripts/999", alice).status == 404);
    // Made-up methods and paths share one series each, however many a client invents.
    for (const char* method : {"BREW", "WHEN", "FOO"}) {
        CHECK(t.call(method, std::string("/nowhere/") + method, alice).status >= 400);
    }
    const auto script = t.call(
        "POST", "/api/v1/scripts", alice,
        R"({"name":"boom","code":"function main() { throw new Error('x'); }","timeout_ms":1000})");
    REQUIRE(script.status == 201);
    CHECK(t.call("POST",
                 "/api/v1/scripts/" + std::to_string(script.body.at("id").as_int64()) + "/run",
                 alice, "{}")
              .status == 200);
    REQUIRE(t.app().wait_settled(20s));

    const auto after = scrape();
    const auto delta = [&](const std::string& series) {
        return value(after, series) - value(before, series);
    };
    CHECK(
        delta(
            R"(riveredge_http_requests_total{method="POST",route="/api/v1/messages/send",status="201"})") ==
        2);
    // The route's pattern, not the path asked for: one series for every id.
    CHECK(
        delta(
            R"(riveredge_http_requests_total{method="GET",route="/api/v1/scripts/{id}",status="404"})") ==
        1);
    CHECK(
        delta(
            R"(riveredge_http_request_duration_seconds_count{method="POST",route="/api/v1/messages/send"})") ==
        2);
    CHECK(delta(R"(riveredge_message_deliveries_total{channel="in_app",result="sent"})") == 2);
    std::size_t made_up = 0;
    for (const auto& [series, count] : after) {
        made_up += series.find("BREW") != std::string::npos ||
                   series.find("/nowhere") != std::string::npos;
    }
    CHECK(made_up == 0);
    CHECK(
        delta(R"(riveredge_http_requests_total{method="other",route="unmatched",status="404"})") +
            delta(
                R"(riveredge_http_requests_total{method="other",route="unmatched",status="405"})") +
            delta(
                R"(riveredge_http_requests_total{method="other",route="unmatched",status="400"})") ==
        3);
    CHECK(delta(R"(riveredge_script_runs_total{outcome="failed"})") == 1);
    CHECK(value(after, R"(riveredge_db_pool_connections{state="size"})") == 4);
    CHECK(value(after, R"(riveredge_db_pool_connections{state="open"})") >= 1);
    CHECK(after.contains("riveredge_outbox_unsent"));

    const auto executor_after = scrape_executor();
    const std::string messages_fn = "riveredge-flow-messages-deliver";
    CHECK(value(executor_after,
                R"(inngest_executor_runs_started_total{function=")" + messages_fn + R"("})") -
              value(executor_before,
                    R"(inngest_executor_runs_started_total{function=")" + messages_fn + R"("})") ==
          2);
    CHECK(value(executor_after, R"(inngest_executor_runs_finished_total{function=")" + messages_fn +
                                    R"(",status="Completed"})") -
              value(executor_before, R"(inngest_executor_runs_finished_total{function=")" +
                                         messages_fn + R"(",status="Completed"})") ==
          2);
    CHECK(value(executor_after, R"(inngest_executor_call_duration_seconds_count{function=")" +
                                    messages_fn + R"("})") >= 2);
    CHECK(executor_after.contains("inngest_executor_queue_depth"));
}
