#pragma once

/// @file
/// Counters, gauges and histograms, written in the Prometheus text exposition format (0.0.4).
/// The local executor serves its own at `/metrics`; a service embedding the SDK can keep one for
/// its own figures and serve `text()` the same way.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace inngest {

enum class MetricType { kCounter, kGauge, kHistogram };

/// A set of metric families. Every member function is thread-safe.
class Metrics {
public:
    using Labels = std::vector<std::pair<std::string, std::string>>;

    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    /// Declares a family (its HELP and TYPE lines); a histogram's upper bounds ascend. A family
    /// used without being declared is an untyped one.
    void describe(std::string name,
                  std::string help,
                  MetricType type,
                  std::vector<double> buckets = {});
    /// Adds to a counter (or a gauge).
    void add(std::string_view name, const Labels& labels = {}, double by = 1);
    /// Sets a gauge.
    void set(std::string_view name, const Labels& labels, double value);
    /// Records one observation in a histogram.
    void observe(std::string_view name, const Labels& labels, double value);

    /// Every family, in the order they were declared, then its series in label order.
    std::string text() const;

    /// Upper bounds for request and step durations, in seconds (5 ms to 60 s).
    static std::vector<double> duration_buckets();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace inngest
