#include <inngest/metrics.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <mutex>

namespace inngest {
namespace {

struct Series {
    Metrics::Labels labels;
    double value = 0;
    std::vector<std::uint64_t> bucket_counts;  // per upper bound, not cumulative
    double sum = 0;
    std::uint64_t count = 0;
};

struct Family {
    std::string help;
    MetricType type = MetricType::kGauge;
    bool declared = false;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // by the label text
};

std::string number(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    char buffer[64];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    return ec == std::errc() ? std::string(buffer, end) : std::string("0");
}

// A label value with `\`, `"` and newlines escaped, as the format requires.
std::string escaped(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string label_text(const Metrics::Labels& labels,
                       std::string_view extra_name = {},
                       std::string_view extra_value = {}) {
    std::string out;
    for (const auto& [name, value] : labels) {
        out += out.empty() ? "" : ",";
        out += name + "=\"" + escaped(value) + "\"";
    }
    if (!extra_name.empty()) {
        out += out.empty() ? "" : ",";
        out += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
    }
    return out.empty() ? std::string() : "{" + out + "}";
}

// Help text may not hold raw newlines or backslashes.
std::string help_text(std::string_view help) {
    std::string out;
    for (const char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

const char* type_name(MetricType type) {
    switch (type) {
        case MetricType::kCounter:
            return "counter";
        case MetricType::kHistogram:
            return "histogram";
        case MetricType::kGauge:
            break;
    }
    return "gauge";
}

}  // namespace

struct Metrics::Impl {
    mutable std::mutex mutex;
    std::vector<std::string> order;
    std::map<std::string, Family, std::less<>> families;

    Family& family(std::string_view name) {
        auto it = families.find(name);
        if (it == families.end()) {
            order.emplace_back(name);
            it = families.emplace(std::string(name), Family{}).first;
        }
        return it->second;
    }

    static Series& series(Family& family, const Labels& labels) {
        Labels sorted = labels;
        std::sort(sorted.begin(), sorted.end());
        auto [it, added] = family.series.try_emplace(label_text(sorted));
        if (added) {
            it->second.labels = std::move(sorted);
            it->second.bucket_counts.assign(family.buckets.size(), 0);
        }
        return it->second;
    }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::describe(std::string name,
                       std::string help,
                       MetricType type,
                       std::vector<double> buckets) {
    const std::lock_guard lock(impl_->mutex);
    Family& family = impl_->family(name);
    family.help = std::move(help);
    family.type = type;
    family.declared = true;
    std::sort(buckets.begin(), buckets.end());
    family.buckets = std::move(buckets);
}

void Metrics::add(std::string_view name, const Labels& labels, double by) {
    const std::lock_guard lock(impl_->mutex);
    Impl::series(impl_->family(name), labels).value += by;
}

void Metrics::set(std::string_view name, const Labels& labels, double value) {
    const std::lock_guard lock(impl_->mutex);
    Impl::series(impl_->family(name), labels).value = value;
}

void Metrics::observe(std::string_view name, const Labels& labels, double value) {
    const std::lock_guard lock(impl_->mutex);
    Family& family = impl_->family(name);
    Series& series = Impl::series(family, labels);
    for (std::size_t i = 0; i < family.buckets.size(); ++i) {
        if (value <= family.buckets[i]) {
            ++series.bucket_counts[i];
            break;
        }
    }
    series.sum += value;
    ++series.count;
}

std::string Metrics::text() const {
    const std::lock_guard lock(impl_->mutex);
    std::string out;
    for (const auto& name : impl_->order) {
        const Family& family = impl_->families.at(name);
        if (family.declared) {
            out += "# HELP " + name + " " + help_text(family.help) + "\n";
            out += "# TYPE " + name + " " + type_name(family.type) + "\n";
        }
        for (const auto& [labels, series] : family.series) {
            if (family.type != MetricType::kHistogram) {
                out += name + labels + " " + number(series.value) + "\n";
                continue;
            }
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < family.buckets.size(); ++i) {
                cumulative += series.bucket_counts[i];
                out += name + "_bucket" +
                       label_text(series.labels, "le", number(family.buckets[i])) + " " +
                       std::to_string(cumulative) + "\n";
            }
            out += name + "_bucket" + label_text(series.labels, "le", "+Inf") + " " +
                   std::to_string(series.count) + "\n";
            out += name + "_sum" + labels + " " + number(series.sum) + "\n";
            out += name + "_count" + labels + " " + std::to_string(series.count) + "\n";
        }
    }
    return out;
}

std::vector<double> Metrics::duration_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace inngest
