// inngest::Metrics writes the Prometheus text format: HELP and TYPE lines, escaped label
// values, counters that add up, gauges that are set, and cumulative histogram buckets.

#include <inngest/metrics.hpp>

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

TEST_CASE("metrics: counters, gauges and labels in the Prometheus text format", "[metrics]") {
    inngest::Metrics metrics;
    metrics.describe("jobs_total", "Jobs done\nby kind", inngest::MetricType::kCounter);
    metrics.describe("queue_depth", "Queued jobs", inngest::MetricType::kGauge);
    metrics.add("jobs_total", {{"kind", "print"}});
    metrics.add("jobs_total", {{"kind", "print"}}, 2);
    metrics.add("jobs_total", {{"kind", "say \"hi\"\\\n"}});
    metrics.set("queue_depth", {}, 7);
    metrics.set("queue_depth", {}, 3);
    // Labels given in any order name one series.
    metrics.add("pairs_total", {{"b", "2"}, {"a", "1"}});
    metrics.add("pairs_total", {{"a", "1"}, {"b", "2"}});
    CHECK(metrics.text() ==
          "# HELP jobs_total Jobs done\\nby kind\n"
          "# TYPE jobs_total counter\n"
          "jobs_total{kind=\"print\"} 3\n"
          "jobs_total{kind=\"say \\\"hi\\\"\\\\\\n\"} 1\n"
          "# HELP queue_depth Queued jobs\n"
          "# TYPE queue_depth gauge\n"
          "queue_depth 3\n"
          "pairs_total{a=\"1\",b=\"2\"} 2\n");
}

TEST_CASE("metrics: histogram buckets are cumulative, with +Inf, sum and count", "[metrics]") {
    inngest::Metrics metrics;
    metrics.describe("took_seconds", "Time taken", inngest::MetricType::kHistogram, {1, 0.1});
    for (const double v : {0.05, 0.5, 0.5, 7.0}) {
        metrics.observe("took_seconds", {{"fn", "a"}}, v);
    }
    CHECK(metrics.text() ==
          "# HELP took_seconds Time taken\n"
          "# TYPE took_seconds histogram\n"
          "took_seconds_bucket{fn=\"a\",le=\"0.1\"} 1\n"
          "took_seconds_bucket{fn=\"a\",le=\"1\"} 3\n"
          "took_seconds_bucket{fn=\"a\",le=\"+Inf\"} 4\n"
          "took_seconds_sum{fn=\"a\"} 8.05\n"
          "took_seconds_count{fn=\"a\"} 4\n");
}

TEST_CASE("metrics: concurrent updates are all counted", "[metrics]") {
    inngest::Metrics metrics;
    metrics.describe("hits_total", "Hits", inngest::MetricType::kCounter);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                metrics.add("hits_total", {{"route", "/x"}});
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    CHECK(metrics.text().find("hits_total{route=\"/x\"} 4000\n") != std::string::npos);
}
