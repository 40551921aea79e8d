#include "local/flow_control.hpp"

#include "protocol/json_writer.hpp"
#include "time_format.hpp"

#include <algorithm>

namespace inngest::local::internal {
namespace {

namespace json = boost::json;

Error invalid(const std::string& slug, const std::string& what) {
    return Error{ErrorCode::kInvalidArgument, slug + ": " + what};
}

// An optional CEL field of `object`; an error when present and not a compilable string.
Result<std::optional<Expression>> expression_field(const std::string& slug,
                                                   const json::object& object,
                                                   const char* field,
                                                   const char* owner) {
    const auto* value = object.if_contains(field);
    if (value == nullptr || value->is_null()) {
        return std::optional<Expression>{};
    }
    if (!value->is_string()) {
        return invalid(slug, std::string(owner) + "." + field + " must be a string");
    }
    auto compiled = Expression::compile(value->get_string());
    if (!compiled) {
        return invalid(slug, std::string(owner) + "." + field + ": " + compiled.error().message);
    }
    return std::optional<Expression>(std::move(*compiled));
}

Result<milliseconds> duration_field(const std::string& slug,
                                    const json::object& object,
                                    const char* field,
                                    const char* owner) {
    const auto* value = object.if_contains(field);
    std::optional<milliseconds> parsed;
    if (value != nullptr && value->is_string()) {
        parsed = detail::parse_time_string(value->get_string());
    }
    if (!parsed || parsed->count() <= 0) {
        return invalid(slug, std::string(owner) + "." + field + " must be a positive duration");
    }
    return *parsed;
}

int int_field(const json::object& object, const char* field, int fallback) {
    const auto* value = object.if_contains(field);
    if (value == nullptr || !value->is_number()) {
        return fallback;
    }
    return static_cast<int>(std::clamp<std::int64_t>(value->to_number<std::int64_t>(), 0, 1 << 30));
}

const json::object* object_field(const json::object& config, const char* field) {
    const auto* value = config.if_contains(field);
    return value != nullptr && value->is_object() ? &value->get_object() : nullptr;
}

Result<ConcurrencyLimit> concurrency_limit(const std::string& slug, const json::value& value) {
    ConcurrencyLimit limit;
    if (value.is_number()) {
        limit.limit = static_cast<int>(value.to_number<std::int64_t>());
        return limit;
    }
    if (!value.is_object()) {
        return invalid(slug, "concurrency must be a number or {limit, key?, scope?}");
    }
    const auto& object = value.get_object();
    limit.limit = int_field(object, "limit", 0);
    auto key = expression_field(slug, object, "key", "concurrency");
    if (!key) {
        return key.error();
    }
    limit.key = std::move(*key);
    if (const auto* scope = object.if_contains("scope"); scope != nullptr && scope->is_string()) {
        const std::string_view name = scope->get_string();
        if (name == "env") {
            limit.scope = ConcurrencyScope::kEnvironment;
        } else if (name == "account") {
            limit.scope = ConcurrencyScope::kAccount;
        } else if (name != "fn") {
            return invalid(slug, "concurrency.scope must be fn, env or account");
        }
    }
    if (limit.scope != ConcurrencyScope::kFunction && !limit.key) {
        return invalid(slug, "an env or account concurrency limit needs a key");
    }
    return limit;
}

}  // namespace

Result<FlowControl> compile_flow_control(const std::string& slug, const json::object& config) {
    FlowControl flow;
    if (const auto* limits = config.if_contains("concurrency"); limits != nullptr) {
        std::vector<const json::value*> entries;
        if (limits->is_array()) {
            for (const auto& entry : limits->get_array()) {
                entries.push_back(&entry);
            }
        } else if (limits->is_object() && limits->get_object().contains("fn")) {
            // Go's newer form, {"fn": [...], "step": [...]}: the function's limits count here.
            if (const auto* fn = limits->get_object().if_contains("fn"); fn && fn->is_array()) {
                for (const auto& entry : fn->get_array()) {
                    entries.push_back(&entry);
                }
            }
        } else if (!limits->is_null()) {
            entries.push_back(limits);
        }
        if (entries.size() > 2) {
            return invalid(slug, "at most two concurrency limits");
        }
        for (const auto* entry : entries) {
            auto limit = concurrency_limit(slug, *entry);
            if (!limit) {
                return limit.error();
            }
            if (limit->limit > 0) {
                flow.concurrency.push_back(std::move(*limit));
            }
        }
    }
    if (const auto* throttle = object_field(config, "throttle")) {
        ThrottleRule rule;
        rule.limit = std::max(1, int_field(*throttle, "limit", 1));
        rule.burst = std::max(1, int_field(*throttle, "burst", 1));
        auto period = duration_field(slug, *throttle, "period", "throttle");
        auto key = expression_field(slug, *throttle, "key", "throttle");
        if (!period || !key) {
            return period ? key.error() : period.error();
        }
        rule.period = *period;
        rule.key = std::move(*key);
        flow.throttle = std::move(rule);
    }
    if (const auto* rate = object_field(config, "rateLimit")) {
        RateLimitRule rule;
        rule.limit = int_field(*rate, "limit", 0);
        if (rule.limit <= 0) {
            return invalid(slug, "rateLimit.limit must be positive");
        }
        auto period = duration_field(slug, *rate, "period", "rateLimit");
        auto key = expression_field(slug, *rate, "key", "rateLimit");
        if (!period || !key) {
            return period ? key.error() : period.error();
        }
        if (*period > std::chrono::hours(24)) {
            return invalid(slug, "rateLimit.period must be at most 24h");
        }
        rule.period = *period;
        rule.key = std::move(*key);
        flow.rate_limit = std::move(rule);
    }
    if (const auto* debounce = object_field(config, "debounce")) {
        DebounceRule rule;
        auto period = duration_field(slug, *debounce, "period", "debounce");
        auto key = expression_field(slug, *debounce, "key", "debounce");
        if (!period || !key) {
            return period ? key.error() : period.error();
        }
        if (*period < std::chrono::seconds(1) || *period > std::chrono::hours(24 * 7)) {
            return invalid(slug, "debounce.period must be between 1s and 7d");
        }
        rule.period = *period;
        rule.key = std::move(*key);
        if (debounce->contains("timeout")) {
            auto timeout = duration_field(slug, *debounce, "timeout", "debounce");
            if (!timeout) {
                return timeout.error();
            }
            rule.timeout = *timeout;
        }
        flow.debounce = std::move(rule);
    }
    if (const auto* batch = object_field(config, "batchEvents")) {
        BatchRule rule;
        rule.max_size = int_field(*batch, "maxSize", 0);
        if (rule.max_size < 2) {
            return invalid(slug, "batchEvents.maxSize must be at least 2");
        }
        auto timeout = duration_field(slug, *batch, "timeout", "batchEvents");
        auto key = expression_field(slug, *batch, "key", "batchEvents");
        auto condition = expression_field(slug, *batch, "if", "batchEvents");
        if (!timeout || !key || !condition) {
            return !timeout ? timeout.error() : !key ? key.error() : condition.error();
        }
        if (*timeout < std::chrono::seconds(1)) {
            return invalid(slug, "batchEvents.timeout must be at least 1s");
        }
        rule.timeout = *timeout;
        rule.key = std::move(*key);
        rule.condition = std::move(*condition);
        flow.batch = std::move(rule);
    }
    if (const auto* singleton = object_field(config, "singleton")) {
        SingletonRule rule;
        const auto* mode = singleton->if_contains("mode");
        if (mode == nullptr || !mode->is_string() ||
            (mode->get_string() != "skip" && mode->get_string() != "cancel")) {
            return invalid(slug, "singleton.mode must be skip or cancel");
        }
        rule.cancel = mode->get_string() == "cancel";
        auto key = expression_field(slug, *singleton, "key", "singleton");
        if (!key) {
            return key.error();
        }
        rule.key = std::move(*key);
        flow.singleton = std::move(rule);
    }
    if (const auto* priority = object_field(config, "priority")) {
        auto run = expression_field(slug, *priority, "run", "priority");
        if (!run) {
            return run.error();
        }
        flow.priority = std::move(*run);
    }
    if (flow.batch && (flow.debounce || flow.singleton || flow.priority ||
                       (config.contains("cancel") && !config.at("cancel").is_null()))) {
        return invalid(slug,
                       "batchEvents cannot be combined with cancel, debounce, singleton or "
                       "priority.run");
    }
    return flow;
}

std::string key_of(const std::optional<Expression>& key, const json::object& event) {
    if (!key) {
        return {};
    }
    const auto value = key->evaluate(json::object{{"event", event}});
    if (!value) {
        return {};
    }
    return value->is_string() ? std::string(value->get_string()) : detail::to_json(*value);
}

std::string concurrency_bucket(const std::string& slug,
                               const ConcurrencyLimit& limit,
                               const json::object& event) {
    switch (limit.scope) {
        case ConcurrencyScope::kEnvironment:
            return "env\n" + key_of(limit.key, event);
        case ConcurrencyScope::kAccount:
            return "account\n" + key_of(limit.key, event);
        case ConcurrencyScope::kFunction:
            break;
    }
    return "fn\n" + slug + "\n" + key_of(limit.key, event);
}

std::int64_t priority_of(const std::optional<Expression>& priority, const json::object& event) {
    if (!priority) {
        return 0;
    }
    const auto value = priority->evaluate(json::object{{"event", event}});
    if (!value || !value->is_number()) {
        return 0;
    }
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(value->to_number<double>()), -43200,
                                    43200);
}

ThrottleSlot throttle_slot(const ThrottleRule& rule,
                           std::optional<TimePoint> arrival,
                           TimePoint now) {
    const auto interval = rule.period / rule.limit;
    const TimePoint due = arrival.value_or(now);
    const TimePoint start = std::max(now, due - interval * (rule.burst - 1));
    return {start, std::max(due, start) + interval};
}

}  // namespace inngest::local::internal
