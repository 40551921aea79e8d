#include "protocol/function_config.hpp"

#include "transport/url.hpp"

#include <inngest/errors.hpp>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>

namespace inngest::detail {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

[[noreturn]] void invalid(const FunctionOptions& options, const std::string& what) {
    throw ConfigError("function '" + options.id + "': " + what);
}

std::vector<std::string_view> split_fields(std::string_view text) {
    std::vector<std::string_view> fields;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ') {
            ++i;
        }
        const std::size_t start = i;
        while (i < text.size() && text[i] != ' ') {
            ++i;
        }
        if (i > start) {
            fields.push_back(text.substr(start, i - start));
        }
    }
    return fields;
}

// Protocol §15: 5 fields with ranges, lists, steps and names; optional TZ= prefix; no @daily.
bool valid_cron(std::string_view cron) {
    if (cron.empty() || cron.size() > 255) {
        return false;
    }
    auto fields = split_fields(cron);
    if (!fields.empty() &&
        (fields.front().starts_with("TZ=") || fields.front().starts_with("CRON_TZ="))) {
        if (fields.front().find('=') + 1 >= fields.front().size()) {
            return false;
        }
        fields.erase(fields.begin());
    }
    if (fields.size() != 5) {
        return false;
    }
    for (const auto field : fields) {
        for (const char c : field) {
            const bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '*' ||
                            c == ',' || c == '-' || c == '/' || c == '?';
            if (!ok) {
                return false;
            }
        }
    }
    return true;
}

std::string scope_name(ConcurrencyScope scope) {
    switch (scope) {
        case ConcurrencyScope::kFunction:
            return "fn";
        case ConcurrencyScope::kEnvironment:
            return "env";
        case ConcurrencyScope::kAccount:
            return "account";
    }
    return "fn";
}

}  // namespace

std::string format_go_duration(Duration duration) {
    auto ms = duration.count();
    if (ms <= 0) {
        return "0s";
    }
    std::string out;
    const auto emit = [&](long long unit, const char* suffix) {
        if (ms >= unit) {
            out += std::to_string(ms / unit) + suffix;
            ms %= unit;
        }
    };
    emit(3600LL * 1000, "h");
    emit(60LL * 1000, "m");
    emit(1000, "s");
    emit(1, "ms");
    return out;
}

void validate_function_options(const FunctionOptions& options) {
    if (options.id.empty()) {
        throw ConfigError("a function needs a non-empty id");
    }
    for (const char c : options.id) {
        if (std::isspace(static_cast<unsigned char>(c)) != 0 || c == '?' || c == '&' || c == '#' ||
            c == '/') {
            invalid(options, "id may not contain whitespace, '/', '?', '&' or '#'");
        }
    }
    if (options.name && options.name->empty()) {
        invalid(options, "name, when given, must not be empty");
    }
    if (options.triggers.empty()) {
        invalid(options, "at least one trigger is required");
    }
    if (options.triggers.size() > 10) {
        invalid(options, "at most 10 triggers are allowed");
    }
    std::set<std::string> seen;
    for (const auto& trigger : options.triggers) {
        std::string key;
        if (const auto* event = std::get_if<EventTrigger>(&trigger)) {
            if (event->event.empty() || event->event.size() > 255) {
                invalid(options, "an event trigger needs an event name of 1..255 characters");
            }
            key = "event:" + event->event + "|" + event->expression.value_or("");
        } else {
            const auto& cron = std::get<CronTrigger>(trigger);
            if (!valid_cron(cron.cron)) {
                invalid(options, "invalid cron expression '" + cron.cron +
                                     "' (5 fields, optional TZ= prefix, no @ descriptors)");
            }
            if (cron.jitter && (*cron.jitter < Duration::zero() ||
                                (*cron.jitter > Duration::zero() && *cron.jitter < seconds(1)) ||
                                *cron.jitter > std::chrono::minutes(5))) {
                invalid(options, "cron jitter must be 0 or between 1s and 5m");
            }
            key = "cron:" + cron.cron;
        }
        if (!seen.insert(key).second) {
            invalid(options, "duplicate trigger");
        }
    }
    if (options.retries && (*options.retries < 0 || *options.retries > 20)) {
        invalid(options, "retries must be between 0 and 20");
    }
    if (options.concurrency.size() > 2) {
        invalid(options, "at most 2 concurrency limits are allowed");
    }
    for (const auto& limit : options.concurrency) {
        if (limit.limit < 0) {
            invalid(options, "concurrency limit must not be negative");
        }
        if (limit.scope && *limit.scope != ConcurrencyScope::kFunction && !limit.key) {
            invalid(options, "an env or account concurrency scope needs a key");
        }
    }
    if (options.throttle) {
        if (options.throttle->limit < 1) {
            invalid(options, "throttle limit must be at least 1");
        }
        if (options.throttle->period < seconds(1)) {
            invalid(options, "throttle period must be at least 1s");
        }
        if (options.throttle->burst && *options.throttle->burst < 0) {
            invalid(options, "throttle burst must not be negative");
        }
    }
    if (options.rate_limit) {
        if (options.rate_limit->limit < 1) {
            invalid(options, "rate limit must be greater than 0");
        }
        if (options.rate_limit->period < seconds(1) || options.rate_limit->period > hours(24)) {
            invalid(options, "rate limit period must be between 1s and 24h");
        }
    }
    if (options.debounce) {
        if (options.debounce->period < seconds(1) || options.debounce->period > hours(24 * 7)) {
            invalid(options, "debounce period must be between 1s and 7d");
        }
        if (options.debounce->timeout && *options.debounce->timeout < seconds(1)) {
            invalid(options, "debounce timeout must be at least 1s");
        }
    }
    if (options.batch_events) {
        if (options.batch_events->max_size < 2) {
            invalid(options, "batch max_size must be at least 2");
        }
        if (options.batch_events->timeout < seconds(1)) {
            invalid(options, "batch timeout must be at least 1s");
        }
        if (!options.cancel_on.empty() || options.debounce || options.singleton ||
            options.priority) {
            invalid(options,
                    "batch_events cannot be combined with cancel_on, debounce, "
                    "singleton or priority");
        }
    }
    if (options.priority && options.priority->run.empty()) {
        invalid(options, "priority.run must be a non-empty expression");
    }
    if (options.idempotency && options.idempotency->empty()) {
        invalid(options, "idempotency must be a non-empty expression");
    }
    if (options.cancel_on.size() > 5) {
        invalid(options, "at most 5 cancel_on rules are allowed");
    }
    for (const auto& cancel : options.cancel_on) {
        if (cancel.event.empty()) {
            invalid(options, "a cancel_on rule needs an event name");
        }
    }
}

std::string step_url(std::string_view serve_url, std::string_view slug) {
    std::string url(serve_url);
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += "fnId=";
    url += percent_encode(slug);
    url += "&stepId=step";
    return url;
}

boost::json::object function_config(const Function& function, std::string_view serve_url) {
    const FunctionOptions& options = function.options();
    boost::json::object config;
    config["id"] = function.slug();
    config["name"] = function.name();

    boost::json::array triggers;
    for (const auto& trigger : options.triggers) {
        boost::json::object entry;
        if (const auto* event = std::get_if<EventTrigger>(&trigger)) {
            entry["event"] = event->event;
            if (event->expression) {
                entry["expression"] = *event->expression;
            }
        } else {
            const auto& cron = std::get<CronTrigger>(trigger);
            entry["cron"] = cron.cron;
            if (cron.jitter) {
                entry["jitter"] = format_duration(*cron.jitter);
            }
        }
        triggers.emplace_back(std::move(entry));
    }
    config["triggers"] = std::move(triggers);

    boost::json::object step{
        {"id", "step"},
        {"name", "step"},
        {"runtime", {{"type", "http"}, {"url", step_url(serve_url, function.slug())}}},
    };
    if (options.retries) {
        step["retries"] = {{"attempts", *options.retries}};
    }
    config["steps"] = {{"step", std::move(step)}};

    if (!options.concurrency.empty()) {
        boost::json::array limits;
        for (const auto& limit : options.concurrency) {
            boost::json::object entry{{"limit", limit.limit}};
            if (limit.key) {
                entry["key"] = *limit.key;
            }
            if (limit.scope) {
                entry["scope"] = scope_name(*limit.scope);
            }
            limits.emplace_back(std::move(entry));
        }
        config["concurrency"] = std::move(limits);
    }
    if (options.throttle) {
        boost::json::object throttle{{"limit", options.throttle->limit},
                                     {"period", format_duration(options.throttle->period)}};
        if (options.throttle->burst) {
            throttle["burst"] = *options.throttle->burst;
        }
        if (options.throttle->key) {
            throttle["key"] = *options.throttle->key;
        }
        config["throttle"] = std::move(throttle);
    }
    if (options.rate_limit) {
        boost::json::object rate{{"limit", options.rate_limit->limit},
                                 {"period", format_duration(options.rate_limit->period)}};
        if (options.rate_limit->key) {
            rate["key"] = *options.rate_limit->key;
        }
        config["rateLimit"] = std::move(rate);
    }
    if (options.idempotency) {
        config["idempotency"] = *options.idempotency;
    }
    if (options.debounce) {
        boost::json::object debounce{{"period", format_duration(options.debounce->period)}};
        if (options.debounce->key) {
            debounce["key"] = *options.debounce->key;
        }
        if (options.debounce->timeout) {
            debounce["timeout"] = format_duration(*options.debounce->timeout);
        }
        config["debounce"] = std::move(debounce);
    }
    if (options.batch_events) {
        boost::json::object batch{{"maxSize", options.batch_events->max_size},
                                  {"timeout", format_go_duration(options.batch_events->timeout)}};
        if (options.batch_events->key) {
            batch["key"] = *options.batch_events->key;
        }
        if (options.batch_events->if_expression) {
            batch["if"] = *options.batch_events->if_expression;
        }
        config["batchEvents"] = std::move(batch);
    }
    if (options.priority) {
        config["priority"] = {{"run", options.priority->run}};
    }
    if (!options.cancel_on.empty()) {
        boost::json::array rules;
        for (const auto& cancel : options.cancel_on) {
            boost::json::object rule{{"event", cancel.event}};
            if (cancel.if_expression) {
                rule["if"] = *cancel.if_expression;
            }
            if (cancel.timeout) {
                rule["timeout"] = format_duration(*cancel.timeout);
            }
            rules.emplace_back(std::move(rule));
        }
        config["cancel"] = std::move(rules);
    }
    if (options.timeouts && (options.timeouts->start || options.timeouts->finish)) {
        boost::json::object timeouts;
        if (options.timeouts->start) {
            timeouts["start"] = format_duration(*options.timeouts->start);
        }
        if (options.timeouts->finish) {
            timeouts["finish"] = format_duration(*options.timeouts->finish);
        }
        config["timeouts"] = std::move(timeouts);
    }
    if (options.singleton) {
        boost::json::object singleton{
            {"mode", options.singleton->mode == SingletonMode::kSkip ? "skip" : "cancel"}};
        if (options.singleton->key) {
            singleton["key"] = *options.singleton->key;
        }
        config["singleton"] = std::move(singleton);
    }
    return config;
}

boost::json::array function_configs(const std::vector<std::unique_ptr<Function>>& functions,
                                    std::string_view serve_url) {
    boost::json::array configs;
    configs.reserve(functions.size());
    for (const auto& function : functions) {
        configs.emplace_back(function_config(*function, serve_url));
    }
    return configs;
}

}  // namespace inngest::detail
