#include "modules/scripts/service.hpp"

#include "core/db/unique.hpp"
#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/found.hpp"
#include "core/json/request_fields.hpp"
#include "core/log/logger.hpp"

#include <inngest/client.hpp>
#include <inngest/errors.hpp>
#include <inngest/metrics.hpp>

#include <cmath>
#include <condition_variable>
#include <mutex>
#include <regex>
#include <set>
#include <stop_token>
#include <thread>

namespace riveredge::scripts {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxCode = 256 * 1024;
constexpr std::size_t kMaxParameters = 50;
// Synchronous runs hold a REST handler slot each (the app has 8): at most 4 at once per
// process, and 2 per tenant, so REST always has free slots and no tenant takes them all.
constexpr int kMaxSyncRuns = 4;
constexpr int kMaxSyncRunsPerTenant = 2;
constexpr int kDefaultTimeoutMs = 5000;
constexpr int kDefaultMemoryMb = 32;
constexpr int kMinTimeoutMs = 10;
// Beyond a run's own time limit: the worker's start and the run's record.
constexpr auto kRunOverhead = std::chrono::seconds(30);

const std::set<std::string>& parameter_types() {
    static const std::set<std::string> types{"string",  "number", "integer",
                                             "boolean", "object", "array"};
    return types;
}

bool has_type(const json::value& value, const std::string& type) {
    if (type == "string")
        return value.is_string();
    if (type == "number")
        return value.is_number();
    if (type == "integer") {
        return value.is_int64() || value.is_uint64() ||
               (value.is_double() && std::trunc(value.as_double()) == value.as_double());
    }
    if (type == "boolean")
        return value.is_bool();
    if (type == "object")
        return value.is_object();
    if (type == "array")
        return value.is_array();
    return false;
}
// Declared parameters, checked: names are identifiers, types known, defaults of their type.
json::array checked_parameters(const json::value& value, json::object& problems) {
    if (!value.is_array() || value.as_array().size() > kMaxParameters) {
        problems["parameters"] = "an array of at most 50 parameter declarations";
        return {};
    }
    static const std::regex identifier("[A-Za-z_][A-Za-z0-9_]{0,63}");
    std::set<std::string> seen;
    json::array out;
    for (std::size_t i = 0; i < value.as_array().size(); ++i) {
        const auto& entry = value.as_array()[i];
        const std::string where = "parameters[" + std::to_string(i) + "]";
        if (!entry.is_object()) {
            problems[where] = "an object {name, type, required, default, description}";
            continue;
        }
        const auto& p = entry.as_object();
        const auto* name = p.if_contains("name");
        if (name == nullptr || !name->is_string() ||
            !std::regex_match(std::string(name->as_string()), identifier)) {
            problems[where + ".name"] = "an identifier (letters, digits, _)";
            continue;
        }
        if (!seen.insert(std::string(name->as_string())).second) {
            problems[where + ".name"] = "declared twice";
            continue;
        }
        const auto* type = p.if_contains("type");
        if (type == nullptr || !type->is_string() ||
            parameter_types().count(std::string(type->as_string())) == 0) {
            problems[where + ".type"] = "string, number, integer, boolean, object or array";
            continue;
        }
        json::object declared{{"name", *name}, {"type", *type}, {"required", false}};
        if (const auto* required = p.if_contains("required"); required && !required->is_null()) {
            if (!required->is_bool()) {
                problems[where + ".required"] = "true or false";
                continue;
            }
            declared["required"] = *required;
        }
        if (const auto* fallback = p.if_contains("default"); fallback && !fallback->is_null()) {
            if (!has_type(*fallback, std::string(type->as_string()))) {
                problems[where + ".default"] = "must be of type " + std::string(type->as_string());
                continue;
            }
            declared["default"] = *fallback;
        }
        if (const auto* description = p.if_contains("description");
            description && description->is_string()) {
            declared["description"] = *description;
        }
        out.push_back(std::move(declared));
    }
    return out;
}

json::object error_json(const std::optional<ScriptError>& error) {
    if (!error) {
        return {};
    }
    return json::object{{"message", error->message},
                        {"line", error->line ? json::value(*error->line) : json::value(nullptr)},
                        // Duktape reports the line of a syntax error but not the column.
                        {"column", nullptr}};
}

// While a run is carried out: its lease renewed through the pool every `times.heartbeat`, on a
// thread of its own. Stopped and joined when it goes.
class Heartbeat {
public:
    Heartbeat(Repository& repository,
              const core::TenantId& tenant,
              std::int64_t run_id,
              const CarrierTimes& times)
        : thread_([this, &repository, tenant, run_id, times](const std::stop_token& stop) {
              beat(stop, repository, tenant, run_id, times);
          }) {}
    Heartbeat(const Heartbeat&) = delete;
    Heartbeat& operator=(const Heartbeat&) = delete;
    ~Heartbeat() { thread_.request_stop(); }

private:
    void beat(const std::stop_token& stop,
              Repository& repository,
              const core::TenantId& tenant,
              std::int64_t run_id,
              const CarrierTimes& times) {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait_for(lock, stop, times.heartbeat, [] { return false; });
            if (stop.stop_requested()) {
                return;
            }
            try {
                if (!repository.renew_lease(tenant, run_id, times.lease)) {
                    core::log(core::LogLevel::kWarn,
                              "script run no longer running while carried out",
                              {{"tenant_id", tenant.value()}, {"run_id", run_id}});
                }
            } catch (const std::exception& error) {
                core::log(
                    core::LogLevel::kWarn, "script run lease not renewed",
                    {{"tenant_id", tenant.value()}, {"run_id", run_id}, {"error", error.what()}});
            }
        }
    }

    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::jthread thread_;  // last: started once the members it uses are
};

}  // namespace

boost::json::object bind_arguments(const boost::json::array& parameters,
                                   const boost::json::value& arguments,
                                   boost::json::object& problems) {
    if (!arguments.is_null() && !arguments.is_object()) {
        problems["arguments"] = "an object of named arguments";
        return {};
    }
    const json::object given = arguments.is_object() ? arguments.as_object() : json::object{};
    json::object bound;
    std::set<std::string> declared;
    for (const auto& entry : parameters) {
        const auto& p = entry.as_object();
        const std::string name(p.at("name").as_string());
        const std::string type(p.at("type").as_string());
        declared.insert(name);
        const auto* value = given.if_contains(name);
        if (value == nullptr || value->is_null()) {
            if (const auto* fallback = p.if_contains("default")) {
                bound[name] = *fallback;
            } else if (p.at("required").as_bool()) {
                problems[name] = "required (" + type + ")";
            }
            continue;
        }
        if (!has_type(*value, type)) {
            problems[name] = "must be of type " + type;
            continue;
        }
        bound[name] = *value;
    }
    for (const auto& [name, value] : given) {
        if (declared.count(std::string(name)) == 0) {
            problems[name] = "is not a declared parameter";
        }
    }
    return bound;
}

ScriptVersion Service::version_from(const core::TenantId& tenant,
                                    const boost::json::object& request,
                                    const std::optional<ScriptVersion>& base,
                                    boost::json::object& problems) const {
    const auto limits = repository_.settings(tenant);
    ScriptVersion version =
        base.value_or(ScriptVersion{"",
                                    {},
                                    std::min(kDefaultTimeoutMs, limits.max_timeout_ms),
                                    std::min(kDefaultMemoryMb, limits.max_memory_mb)});
    if (const auto code = core::text_field(
            request, "code", {.max = kMaxCode, .min = !base ? 1U : 0U, .required = !base},
            problems)) {
        version.code = *code;
        const auto check = runner_.validate(version.code);
        if (!check.valid) {
            problems["code"] = check.error ? check.error->message : "does not compile";
        }
    }
    if (const auto* parameters = request.if_contains("parameters");
        parameters != nullptr && !parameters->is_null()) {
        version.parameters = checked_parameters(*parameters, problems);
    }
    if (const auto timeout = core::int_field(request, "timeout_ms", kMinTimeoutMs,
                                             limits.max_timeout_ms, problems)) {
        version.timeout_ms = *timeout;
    }
    if (const auto memory =
            core::int_field(request, "memory_limit_mb", 1, limits.max_memory_mb, problems)) {
        version.memory_limit_mb = *memory;
    }
    return version;
}

Script Service::create(const core::Principal& author, const boost::json::object& request) {
    json::object problems;
    const auto name =
        core::text_field(request, "name", {.max = 100, .min = 1, .required = true}, problems);
    const auto description = core::text_field(request, "description", {.max = 2000}, problems);
    const auto enabled = core::bool_field(request, "enabled", problems);
    core::choice_field(request, "language", {"javascript"}, problems);
    const auto version = version_from(author.tenant, request, std::nullopt, problems);
    core::refuse_if_any(problems);
    const auto id = repository_.create(author.tenant, *name, description.value_or(""),
                                       enabled.value_or(true), version, author.user_id);
    if (!id) {
        throw core::DomainError::conflict("a script named '" + *name + "' exists already");
    }
    return get(author.tenant, *id);
}

Script Service::update(const core::Principal& author,
                       std::int64_t script_id,
                       const boost::json::object& request) {
    const auto current = get(author.tenant, script_id);
    json::object problems;
    const auto name = core::text_field(request, "name", {.max = 100, .min = 1}, problems);
    const auto description = core::text_field(request, "description", {.max = 2000}, problems);
    const auto enabled = core::bool_field(request, "enabled", problems);
    const ScriptVersion base = current.latest.runnable();
    const auto version = version_from(author.tenant, request, base, problems);
    core::refuse_if_any(problems);
    // Only a change to what runs makes a version; renaming or disabling does not.
    const bool changed = version.code != base.code || version.parameters != base.parameters ||
                         version.timeout_ms != base.timeout_ms ||
                         version.memory_limit_mb != base.memory_limit_mb;
    core::db::unique_or_conflict("a script named '" + name.value_or("") + "' exists already", [&] {
        repository_.update(author.tenant, script_id, name, description, enabled,
                           changed ? std::optional<ScriptVersion>(version) : std::nullopt,
                           author.user_id);
    });
    return get(author.tenant, script_id);
}

Script Service::get(const core::TenantId& tenant, std::int64_t script_id) {
    return core::found(repository_.find(tenant, script_id), "script " + std::to_string(script_id));
}

boost::json::object Service::validate(const boost::json::object& request) const {
    json::object problems;
    const auto code =
        core::text_field(request, "code", {.max = kMaxCode, .min = 1, .required = true}, problems);
    core::refuse_if_any(problems);
    const auto check = runner_.validate(*code);
    json::object out{{"valid", check.valid}};
    out["error"] = check.valid ? json::value(nullptr) : json::value(error_json(check.error));
    return out;
}

boost::json::object Service::start_run(const core::Principal& who,
                                       std::int64_t script_id,
                                       const boost::json::object& request,
                                       const std::string& trigger,
                                       const std::optional<std::string>& idempotency_key) {
    json::object problems;
    const auto mode =
        core::choice_field(request, "mode", {"sync", "async"}, problems).value_or("sync");
    const auto pinned = core::int_field(request, "version", 1, 1 << 30, problems);
    core::refuse_if_any(problems);
    const auto script = get(who.tenant, script_id);
    if (!script.row.enabled) {
        throw core::DomainError::conflict("script " + std::to_string(script_id) + " is disabled");
    }
    const int number = pinned.value_or(script.row.latest_version);
    const auto version = core::found(
        repository_.runnable_version(who.tenant, script_id, number),
        "version " + std::to_string(number) + " of script " + std::to_string(script_id));
    const json::value given_arguments =
        request.if_contains("arguments") ? request.at("arguments") : json::value(nullptr);
    json::object argument_problems;
    const auto arguments = bind_arguments(version.parameters, given_arguments, argument_problems);
    core::file_under(problems, "arguments", argument_problems);  // empty until here
    core::refuse_if_any(problems);
    const NewRun run{script_id, number, mode, trigger, arguments, who.user_id, idempotency_key};
    if (mode == "async") {
        // Queued and announced in one transaction (the outbox): a queued run always runs.
        const auto recorded =
            repository_.create_run(who.tenant, run, "queued", [&who](std::int64_t id) {
                return core::row_event(kRunRequested, who.tenant, "run_id", id, "script-run");
            });
        return repository_.run(who.tenant, recorded.id)->to_json();
    }
    if (idempotency_key) {
        // The step's earlier attempt recorded this run: it succeeded (or is queued), so it is the
        // answer. One still running was left by a process that died; it runs again below.
        if (const auto earlier =
                repository_.run_with_key(who.tenant, who.user_id, script_id, *idempotency_key);
            earlier && earlier->status != "running") {
            return earlier->to_json();
        }
    }
    {
        const std::lock_guard lock(sync_mutex_);
        const auto found = sync_runs_by_tenant_.find(who.tenant.value());
        const int tenant_runs = found == sync_runs_by_tenant_.end() ? 0 : found->second;
        if (sync_runs_ >= kMaxSyncRuns || tenant_runs >= kMaxSyncRunsPerTenant) {
            throw core::DomainError(
                core::DomainError::Kind::kTooMany, "too_many_runs",
                std::string("too many synchronous script runs in progress ") +
                    (tenant_runs >= kMaxSyncRunsPerTenant ? "for this tenant" : "") +
                    "; retry, or use mode=async");
        }
        ++sync_runs_;
        ++sync_runs_by_tenant_[who.tenant.value()];
    }
    struct Release {
        Service& service;
        const std::string& tenant;
        ~Release() {
            const std::lock_guard lock(service.sync_mutex_);
            --service.sync_runs_;
            if (--service.sync_runs_by_tenant_[tenant] == 0) {
                service.sync_runs_by_tenant_.erase(tenant);
            }
        }
    } release{*this, who.tenant.value()};
    // The fence's connection is opened before the run is recorded: a run recorded running that
    // then could not be fenced (no connection to be had) would stay running for ever.
    auto session = repository_.fence_session();
    const auto recorded = repository_.create_run(who.tenant, run, "running");
    // Met the run holding the key: an earlier attempt's, left running by a process that died,
    // or still carried out by an attempt the caller gave up on. It runs as it was recorded, and
    // only if nobody carries it out any more.
    const auto earlier =
        recorded.fresh ? std::nullopt : repository_.run_plan(who.tenant, recorded.id);
    const auto& runs = earlier ? earlier->version : version;
    // Only a durable step's run (it has a key) can meet another attempt carrying it out: that
    // one is waited for as the step of an async run waits, well within the executor's call
    // timeout and holding a sync-run slot no longer than that; then inngest::RetryAfterError
    // (after the run's time limit), and the retried step finds the run that succeeded by its
    // key. A REST run has no key: its run is new, and no other attempt holds its fence.
    const auto fenced = fence(std::move(session), who.tenant, recorded.id, runs, times_.fence_wait);
    if (!fenced) {
        return repository_.run(who.tenant, recorded.id)->to_json();  // another attempt ran it
    }
    return run_now(*fenced, who.tenant, recorded.id, runs,
                   earlier ? earlier->run.arguments : arguments);
}

std::unique_ptr<core::db::Connection> Service::fence(std::unique_ptr<core::db::Connection> session,
                                                     const core::TenantId& tenant,
                                                     std::int64_t run_id,
                                                     const ScriptVersion& version,
                                                     std::chrono::milliseconds wait) {
    // The holder's run is over by its time limit (and the worker's start and its record).
    const auto holder_done =
        std::chrono::ceil<std::chrono::seconds>(std::chrono::milliseconds(
            std::min(version.timeout_ms, repository_.settings(tenant).max_timeout_ms))) +
        kRunOverhead;
    const auto give_up =
        std::chrono::steady_clock::now() +
        std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(holder_done));
    bool fenced = false;
    for (;;) {
        // The fence, once taken, is kept while the lease of an attempt that lost its own is
        // waited out.
        fenced = fenced || repository_.try_fence(*session, tenant, run_id);
        if (fenced) {
            switch (repository_.start_run(tenant, run_id, times_.lease)) {
                case Start::kStarted:
                    return session;
                case Start::kFinished:
                    return nullptr;
                case Start::kCarried:
                    break;
            }
        }
        if (std::chrono::steady_clock::now() >= give_up) {
            // Retried after that, the step finds the run finished (or, its holder gone, carries
            // it out).
            throw inngest::RetryAfterError(
                "script run " + std::to_string(run_id) + " is being carried out by another attempt",
                holder_done);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(fenced ? 250 : 100));
    }
}

boost::json::object Service::run_now(core::db::Connection& fence,
                                     const core::TenantId& tenant,
                                     std::int64_t run_id,
                                     const ScriptVersion& version,
                                     const boost::json::value& arguments) {
    const auto settings = repository_.settings(tenant);
    ScriptRequest request;
    request.code = version.code;
    request.arguments = arguments;
    request.context = {{"tenant_id", tenant.value()}, {"run_id", run_id}};
    request.http_allow_list = settings.http_allow_list;
    request.outbound_policy = outbound_.to_text();
    // A maximum lowered after the script was saved applies from the next run on.
    request.limits.timeout =
        std::chrono::milliseconds(std::min(version.timeout_ms, settings.max_timeout_ms));
    request.limits.memory_bytes =
        static_cast<std::size_t>(std::min(version.memory_limit_mb, settings.max_memory_mb)) * 1024 *
        1024;
    ScriptOutcome outcome;
    bool fence_held = true;
    try {
        const Heartbeat heartbeat(repository_, tenant, run_id, times_);
        outcome = runner_.run(request);
        // Looked at while the lease is still renewed: a connection that hangs (its peer gone)
        // until its keepalives give up holds no other attempt's run of the script.
        fence_held = repository_.fence_held(fence);
    } catch (const std::exception& error) {
        // The worker could not be started: the run ends failed instead of staying 'running'.
        // The cause names the worker's path, so it goes to the log, not into the tenant's run.
        core::log(core::LogLevel::kError, "script worker did not start",
                  {{"tenant_id", tenant.value()}, {"run_id", run_id}, {"error", error.what()}});
        ScriptOutcome failed;
        failed.error =
            ScriptError{"the script worker could not be started", std::nullopt, std::nullopt};
        repository_.finish_run(tenant, run_id, failed.to_json());
        throw;
    }
    // Recorded under the run's lease, which was this attempt's all along (renewed while the
    // worker ran): another attempt that took the fence once its connection was lost waited.
    if (!fence_held) {
        core::log(core::LogLevel::kWarn,
                  "script run fence lost while its script ran (its connection dropped); the run's "
                  "lease kept other attempts from running it again",
                  {{"tenant_id", tenant.value()}, {"run_id", run_id}});
    }
    repository_.finish_run(tenant, run_id, outcome.to_json());
    if (metrics_ != nullptr) {
        metrics_->add("riveredge_script_runs_total", {{"outcome", to_string(outcome.status)}});
    }
    core::log(core::LogLevel::kInfo, "script run finished",
              {{"tenant_id", tenant.value()},
               {"run_id", run_id},
               {"status", to_string(outcome.status)},
               {"duration_ms", static_cast<std::int64_t>(outcome.duration.count())}});
    return repository_.run(tenant, run_id)->to_json();
}

boost::json::object Service::execute_run(const core::TenantId& tenant, std::int64_t run_id) {
    const auto plan = repository_.run_plan(tenant, run_id);
    if (!plan) {
        throw inngest::NonRetriableError("script run " + std::to_string(run_id) +
                                         " does not exist");
    }
    if (plan->run.status != "queued" && plan->run.status != "running") {
        return plan->run.to_json();  // finished before: never run twice
    }
    // An attempt the executor gave up on (its call timeout) may still be running the script:
    // only the holder of the run's fence carries it out, and only when no other attempt holds a
    // fresh lease on it.
    const auto fenced =
        fence(repository_.fence_session(), tenant, run_id, plan->version, times_.fence_wait);
    if (!fenced) {
        return repository_.run(tenant, run_id)->to_json();  // finished meanwhile
    }
    return run_now(*fenced, tenant, run_id, plan->version, plan->run.arguments);
}

boost::json::object Service::settings(const core::TenantId& tenant) {
    return core::db::row_json(repository_.settings(tenant));
}

boost::json::object Service::save_settings(const core::Principal& who,
                                           const boost::json::object& request) {
    json::object problems;
    TenantScriptSettings settings = repository_.settings(who.tenant);
    if (const auto* hosts = request.if_contains("http_allow_list");
        hosts != nullptr && !hosts->is_null()) {
        static const std::regex host_pattern(
            R"((\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)");
        settings.http_allow_list.clear();
        if (!hosts->is_array() || hosts->as_array().size() > 100) {
            problems["http_allow_list"] = "an array of at most 100 host names";
        } else {
            for (const auto& host : hosts->as_array()) {
                if (!host.is_string() || host.as_string().size() > 253 ||
                    !std::regex_match(std::string(host.as_string()), host_pattern)) {
                    problems["http_allow_list"] =
                        "host names only (api.example.com or *.example.com), no schemes, "
                        "ports or paths";
                    break;
                }
                settings.http_allow_list.emplace_back(host.as_string());
            }
        }
    }
    if (const auto timeout =
            core::int_field(request, "max_timeout_ms", kMinTimeoutMs, 300000, problems)) {
        settings.max_timeout_ms = *timeout;
    }
    if (const auto memory = core::int_field(request, "max_memory_mb", 1, 1024, problems)) {
        settings.max_memory_mb = *memory;
    }
    core::refuse_if_any(problems);
    repository_.save_settings(who.tenant, settings);
    return this->settings(who.tenant);
}

}  // namespace riveredge::scripts
