#include "modules/schedules/service.hpp"

#include "core/db/unique.hpp"
#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/found.hpp"
#include "core/http/host_allow_list.hpp"
#include "core/http/outbound.hpp"
#include "core/json/fields.hpp"
#include "core/json/request_fields.hpp"
#include "core/log/logger.hpp"
#include "core/outbox/outbox.hpp"
#include "core/text/storable.hpp"
#include "core/text/utf8.hpp"

#include <inngest/client.hpp>
#include <inngest/errors.hpp>

#include <boost/json/serialize.hpp>

#include <limits>
#include <regex>
#include <set>

namespace riveredge::schedules {
namespace {

namespace json = boost::json;
using core::DomainError;
using core::db::Transaction;

constexpr std::chrono::seconds kReconcileGrace{60};
constexpr std::size_t kMaxOutputBytes = 16 * 1024;
Trigger trigger_from(const json::value* given, TimePoint now, json::object& problems) {
    Trigger trigger;
    if (given == nullptr || !given->is_object()) {
        problems["trigger"] = "required: {kind: cron|interval|once, ...}";
        return trigger;
    }
    const auto& t = given->as_object();
    const std::string kind = core::string_field(t, "kind");
    if (const auto* zone = t.if_contains("time_zone"); zone != nullptr && !zone->is_null()) {
        trigger.time_zone = zone->is_string() ? std::string(zone->as_string()) : "";
    }
    if (kind == "cron") {
        trigger.kind = TriggerKind::kCron;
        trigger.cron = core::string_field(t, "cron");
        if (trigger.cron.empty()) {
            problems["trigger.cron"] = "required: 5 fields (minute hour day month weekday)";
        }
    } else if (kind == "interval") {
        trigger.kind = TriggerKind::kInterval;
        const auto* every = t.if_contains("every_seconds");
        if (every == nullptr || !every->is_int64()) {
            problems["trigger.every_seconds"] = "required, an integer number of seconds";
        } else {
            trigger.every = std::chrono::seconds(every->as_int64());
        }
        trigger.anchor =
            core::time_field(t, "anchor_at", problems, "trigger.anchor_at").value_or(now);
    } else if (kind == "once") {
        trigger.kind = TriggerKind::kOnce;
        const auto at = core::time_field(t, "at", problems, "trigger.at");
        if (!at && !problems.contains("trigger.at")) {
            problems["trigger.at"] = "required, an RFC 3339 time";  // absent or null
        }
        trigger.once_at = at.value_or(TimePoint{});
    } else {
        problems["trigger.kind"] = "cron, interval or once";
        return trigger;
    }
    trigger.start_at = core::time_field(t, "start_at", problems, "trigger.start_at");
    trigger.end_at = core::time_field(t, "end_at", problems, "trigger.end_at");
    if (problems.empty()) {
        if (const auto problem = check_trigger(trigger)) {
            problems["trigger." + problem->field] = problem->message;
        }
    }
    return trigger;
}

// What a fire keeps of its action's output: the output, storable (a NUL or bytes that are not
// UTF-8 from a receiver or script as U+FFFD, which jsonb refuses), or past kMaxOutputBytes a
// preview of it cut between two characters.
json::value capped(const json::value& output) {
    json::value storable = core::storable_json(output);
    const std::string text = json::serialize(storable);
    if (text.size() <= kMaxOutputBytes) {
        return storable;
    }
    return json::object{{"truncated", true},
                        {"preview", core::utf8_prefix(text, kMaxOutputBytes / 2)}};
}

}  // namespace

TimePoint Service::now() const {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(with_.now());
}

ScheduleDefinition Service::definition_from(const core::TenantId& tenant,
                                            const boost::json::object& request) const {
    json::object problems;
    ScheduleDefinition d;
    d.name = core::required_text(request, "name", 200, problems);
    d.code = core::required_text(request, "code", 100, problems);
    d.trigger = trigger_from(request.if_contains("trigger"), now(), problems);
    d.overlap_policy =
        core::choice_field(request, "overlap_policy", {"skip", "queue_one", "allow"}, problems)
            .value_or("skip");
    d.misfire_policy =
        core::choice_field(request, "misfire_policy", {"skip", "fire_once"}, problems)
            .value_or("skip");
    d.misfire_window_seconds = static_cast<int>(
        core::int_field(request, "misfire_window_seconds", 60, 7 * 24 * 3600, problems)
            .value_or(3600));
    d.timeout_seconds = static_cast<int>(
        core::int_field(request, "timeout_seconds", 1, 24 * 3600, problems).value_or(300));
    d.retries = static_cast<int>(core::int_field(request, "retries", 0, 10, problems).value_or(0));

    const auto* action = request.if_contains("action");
    if (action == nullptr || !action->is_object()) {
        problems["action"] = "required: {type: message|script|event|http, ...}";
    } else {
        const auto& a = action->as_object();
        // Read like a body of its own; the problems are filed under action.<field>.
        json::object nested;
        core::require_fields(a, {"type"}, nested);
        const auto type =
            core::choice_field(a, "type", {"message", "script", "event", "http"}, nested);
        if (type == "message") {
            core::text_list_field(
                a, "recipients",
                {.min = 1, .max = 1000, .item = {.max = 200, .min = 1}, .required = true}, nested);
            core::text_field(a, "subject", {.max = 500, .min = 1, .required = true}, nested);
            core::text_field(a, "body", {.max = 64 * 1024, .min = 1, .required = true}, nested);
        } else if (type == "script") {
            core::require_fields(a, {"script_id"}, nested);
            if (const auto script = core::int_field(
                    a, "script_id", 1, std::numeric_limits<std::int64_t>::max(), nested)) {
                try {
                    with_.scripts.get(tenant, *script);
                } catch (const DomainError&) {
                    nested["script_id"] = "no such script";
                }
            }
            core::object_field(a, "arguments", nested);
        } else if (type == "event") {
            const auto name = core::text_field(
                a, "name", {.max = 200, .min = 1, .required = true, .single_line = true}, nested);
            if (name && core::is_reserved_event_name(*name)) {
                nested["name"] =
                    "names under messages/, schedules/, scripts/, approvals/, records/, print/, "
                    "inngest/, riveredge/ and tenants/ are the app's own; the event is sent as "
                    "tenants/<your tenant>/<name>";
            }
            core::object_field(a, "data", nested);
        } else if (type == "http") {
            const std::string host = core::http_host(core::string_field(a, "url"));
            if (host.empty()) {
                nested["url"] = "an http(s) URL of at most 8192 bytes";
            } else if (!core::host_allowed(host, with_.scripts.http_allow_list(tenant))) {
                nested["url"] = "host " + host +
                                " is not on the tenant's allow-list (PUT /api/v1/scripts/settings)";
            }
            if (const auto* method = a.if_contains("method");  // "" is the default, POST
                method != nullptr && !(method->is_string() && method->as_string().empty())) {
                core::choice_field(a, "method", {"GET", "POST", "PUT", "PATCH", "DELETE"}, nested);
            }
        }
        core::file_under(problems, "action", nested);
        if (json::serialize(a).size() > 64 * 1024) {
            problems["action"] = "at most 64 KiB";
        }
        d.action = a;
    }
    core::refuse_if_any(problems);
    return d;
}

namespace {

inngest::Event fire_event(const core::TenantId& tenant,
                          std::int64_t schedule_id,
                          TimePoint when,
                          int version,
                          const std::string& kind,
                          const std::string& id_suffix) {
    const std::int64_t ms = when.time_since_epoch().count();
    return inngest::Event{.name = kFireDue,
                          .data = {{"tenant_id", tenant.value()},
                                   {"schedule_id", schedule_id},
                                   {"scheduled_for", ms},
                                   {"version", version},
                                   {"kind", kind}},
                          .id = "sched:" + tenant.value() + ":" + std::to_string(schedule_id) +
                                ":" + std::to_string(ms) + ":v" + std::to_string(version) +
                                id_suffix,
                          .ts = ms};
}

}  // namespace

void Service::arm_fire(Transaction& tx,
                       const core::TenantId& tenant,
                       std::int64_t schedule_id,
                       TimePoint when,
                       int version,
                       const std::string& kind,
                       const std::string& id_suffix) {
    core::outbox::add(tx, tenant, fire_event(tenant, schedule_id, when, version, kind, id_suffix));
}

void Service::rearm(Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t schedule_id,
                    const std::optional<TimePoint>& next,
                    int version) {
    repository_.arm(tx, tenant, schedule_id, next, version);
    if (next) {
        arm_fire(tx, tenant, schedule_id, *next, version, "scheduled");
    }
}

bool Service::resend_fire(const core::TenantId& tenant,
                          std::int64_t schedule_id,
                          TimePoint when,
                          int version) {
    const auto sent =
        with_.inngest.send(fire_event(tenant, schedule_id, when, version, "scheduled", {}));
    if (!sent) {
        core::log(core::LogLevel::kWarn, "could not re-send a schedule fire",
                  {{"tenant_id", tenant.value()},
                   {"schedule_id", schedule_id},
                   {"error", sent.error().message}});
        return false;
    }
    return true;
}

Schedule Service::create(const core::Principal& author, const boost::json::object& request) {
    const auto definition = definition_from(author.tenant, request);
    json::object problems;
    const bool enabled = core::bool_field(request, "enabled", problems).value_or(true);
    core::refuse_if_any(problems);
    const auto id = core::db::transact(repository_.pool(), author.tenant, [&](Transaction& tx) {
        const auto inserted =
            repository_.insert(tx, author.tenant, definition, enabled, author.user_id);
        if (!inserted) {
            throw DomainError::conflict("a schedule with code '" + definition.code +
                                        "' exists already");
        }
        const auto next = enabled ? next_fire(definition.trigger, now()) : std::nullopt;
        rearm(tx, author.tenant, *inserted, next, 1);
        return *inserted;
    });
    return get(author.tenant, id);
}

Schedule Service::update(const core::Principal& author,
                         std::int64_t id,
                         const boost::json::object& request) {
    const auto definition = definition_from(author.tenant, request);
    core::db::transact(repository_.pool(), author.tenant, [&](Transaction& tx) {
        const auto current = must_find(tx, author.tenant, id, true);
        core::db::unique_or_conflict(
            "a schedule with code '" + definition.code + "' exists already",
            [&] { repository_.replace(tx, author.tenant, id, definition); });
        const int version = current.version + 1;
        const auto next = current.enabled ? next_fire(definition.trigger, now()) : std::nullopt;
        rearm(tx, author.tenant, id, next, version);
    });
    return get(author.tenant, id);
}

void Service::remove(const core::Principal& who, std::int64_t id) {
    core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        must_find(tx, who.tenant, id, true);
        repository_.mark_deleted(tx, who.tenant, id);
    });
}

Schedule Service::must_find(Transaction& tx,
                            const core::TenantId& tenant,
                            std::int64_t id,
                            bool lock) {
    return core::found(repository_.find(tx, tenant, id, lock), "schedule " + std::to_string(id));
}

Schedule Service::get(const core::TenantId& tenant, std::int64_t id) {
    return core::db::transact(repository_.pool(), tenant,
                              [&](Transaction& tx) { return must_find(tx, tenant, id, false); });
}

Schedule Service::pause(const core::Principal& who,
                        std::int64_t id,
                        const boost::json::object& request) {
    json::object problems;
    const auto reason = core::text_field(request, "reason", {.max = 500}, problems)
                            .value_or("paused by " + who.user_id);
    core::refuse_if_any(problems);
    core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto current = must_find(tx, who.tenant, id, true);
        repository_.set_enabled(tx, who.tenant, id, false, reason);
        repository_.arm(tx, who.tenant, id, std::nullopt, current.version + 1);
    });
    return get(who.tenant, id);
}

Schedule Service::resume(const core::Principal& who, std::int64_t id) {
    core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto current = must_find(tx, who.tenant, id, true);
        const int version = current.version + 1;
        repository_.set_enabled(tx, who.tenant, id, true, std::nullopt);
        // From now on: fires missed while paused are not made up.
        const auto next = next_fire(current.definition.trigger, now());
        rearm(tx, who.tenant, id, next, version);
    });
    return get(who.tenant, id);
}

boost::json::object Service::run_now(const core::Principal& who, std::int64_t id) {
    const auto at = now();
    return core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto current = must_find(tx, who.tenant, id, true);
        const auto fire_id = core::db::unique_or_conflict(
            "a manual fire of this schedule at this instant exists", [&] {
                return repository_.insert_manual_fire(tx, who.tenant, id, at, current.version);
            });
        arm_fire(tx, who.tenant, id, at, current.version, "manual",
                 ":manual-" + std::to_string(fire_id));
        return json::object{{"fire_id", fire_id}, {"scheduled_for", format_utc(at)}};
    });
}

boost::json::object Service::preview(const core::TenantId& tenant, std::int64_t id, int count) {
    return fires_of(get(tenant, id).definition.trigger, count);
}

boost::json::object Service::fires_of(const Trigger& trigger, int count) {
    json::array fires;
    for (const auto& t : upcoming_fires(trigger, now(), count)) {
        fires.push_back(
            json::object{{"utc", format_utc(t)}, {"local", format_local(t, trigger.time_zone)}});
    }
    return json::object{{"time_zone", trigger.time_zone}, {"fires", std::move(fires)}};
}

boost::json::object Service::preview_trigger(const boost::json::object& request, int count) {
    json::object problems;
    const auto trigger = trigger_from(request.if_contains("trigger"), now(), problems);
    core::refuse_if_any(problems);
    return fires_of(trigger, count);
}

boost::json::object Service::claim(const core::TenantId& tenant,
                                   std::int64_t schedule_id,
                                   std::int64_t scheduled_for_ms,
                                   int version,
                                   const std::string& kind,
                                   const std::string& run_id) {
    const TimePoint when{std::chrono::milliseconds(scheduled_for_ms)};
    const auto at = now();
    const auto skip = [](const std::string& reason, std::int64_t fire_id = 0) {
        return json::object{{"decision", "skip"}, {"fire_id", fire_id}, {"reason", reason}};
    };
    return core::db::transact(
        repository_.pool(), tenant, [&](Transaction& tx) -> boost::json::object {
            const auto schedule = repository_.find(tx, tenant, schedule_id, true, true);
            const auto fire = repository_.fire(tx, tenant, schedule_id, when, kind, true);
            if (!fire) {
                return skip("no such fire");
            }
            const auto decided = [&](const std::string& decision, const std::string& reason) {
                json::object out{{"decision", decision}, {"fire_id", fire->id}, {"reason", reason}};
                if (decision == "wait" && schedule) {
                    out["check_every_ms"] = overlap_check_every(schedule->definition).count();
                }
                return out;
            };
            if (fire->status != "armed") {
                if (fire->claimed_by == run_id &&
                    (fire->status == "running" || fire->status == "waiting")) {
                    // This run claimed it already; the step's answer was lost.
                    return decided(fire->status == "running" ? "run" : "wait", "");
                }
                return skip("already " + fire->status, fire->id);  // a repeated delivery
            }
            if (fire->schedule_version != version) {
                return skip("stale: armed by an older version", fire->id);
            }
            const auto cancel = [&](const std::string& reason) {
                repository_.set_fire_status(tx, tenant, fire->id, "cancelled", reason, at);
                return skip(reason, fire->id);
            };
            if (!schedule || schedule->deleted) {
                return cancel("schedule deleted");
            }
            if (!schedule->enabled) {
                return cancel("schedule paused");
            }
            if (kind == "scheduled" &&
                (schedule->version != version || schedule->next_fire_at != std::optional(when))) {
                return cancel("stale: the schedule changed");
            }
            // Arm the next fire before this one runs, so a slow or failing action never stops the
            // chain.
            std::optional<TimePoint> next;
            if (kind == "scheduled") {
                next = next_fire(schedule->definition.trigger, std::max(when, at));
                repository_.arm(tx, tenant, schedule_id, next, schedule->version);
            }
            const auto& d = schedule->definition;
            if (kind == "scheduled" && at - when > kReconcileGrace &&
                (d.misfire_policy != "fire_once" ||
                 at - when > std::chrono::seconds(d.misfire_window_seconds))) {
                // Delivered late (the process was down at its time and the executor resumed it):
                // the misfire policy decides, as the reconciler does for a delivery that never
                // came.
                const std::string reason =
                    "missed: delivered late (misfire policy " + d.misfire_policy + ")";
                repository_.set_fire_status(tx, tenant, fire->id, "missed", reason, at);
                if (next) {
                    arm_fire(tx, tenant, schedule_id, *next, schedule->version, "scheduled");
                }
                return skip(reason, fire->id);
            }
            std::string decision = "run";
            std::string reason;
            if (d.overlap_policy != "allow" &&
                repository_.running_fires(tx, tenant, schedule_id, fire->id, at,
                                          d.timeout_seconds) > 0) {
                if (d.overlap_policy == "queue_one" &&
                    repository_.waiting_fires(tx, tenant, schedule_id, fire->id) == 0) {
                    decision = "wait";
                    repository_.set_fire_status(tx, tenant, fire->id, "waiting",
                                                "queued behind a running fire", std::nullopt);
                } else {
                    decision = "skip";
                    reason = "overlap: the previous fire is still running";
                    repository_.set_fire_status(tx, tenant, fire->id, "skipped", reason, at);
                }
            } else {
                repository_.start_fire(tx, tenant, fire->id, at);
            }
            if (decision != "skip") {
                repository_.claim_fire(tx, tenant, fire->id, run_id);
            }
            if (next) {
                arm_fire(tx, tenant, schedule_id, *next, schedule->version, "scheduled");
            }
            return decided(decision, reason);
        });
}

std::chrono::milliseconds overlap_check_every(const ScheduleDefinition& definition) {
    const std::chrono::milliseconds span =
        std::chrono::seconds(definition.timeout_seconds) * 11 / 10;
    return std::max(std::chrono::milliseconds(5000), span / kOverlapChecks);
}

boost::json::object Service::retry_waiting(const core::TenantId& tenant,
                                           std::int64_t fire_id,
                                           const std::string& run_id,
                                           bool last) {
    const auto at = now();
    return core::db::transact(
        repository_.pool(), tenant, [&](Transaction& tx) -> boost::json::object {
            const auto fire = repository_.fire_by_id(tx, tenant, fire_id, true);
            if (fire && fire->status == "running" && fire->claimed_by == run_id) {
                return json::object{{"decision", "run"}};  // started by this check; answer lost
            }
            if (!fire || fire->status != "waiting") {
                return json::object{{"decision", "skip"}};
            }
            const auto schedule = repository_.find(tx, tenant, fire->schedule_id, false, true);
            if (!schedule || schedule->deleted || !schedule->enabled) {
                repository_.set_fire_status(tx, tenant, fire_id, "cancelled",
                                            "schedule paused or deleted", at);
                return json::object{{"decision", "skip"}};
            }
            const int timeout = schedule->definition.timeout_seconds;
            if (repository_.running_fires(tx, tenant, fire->schedule_id, fire_id, at, timeout) ==
                0) {
                repository_.start_fire(tx, tenant, fire_id, at);
                return json::object{{"decision", "run"}};
            }
            if (last || at - fire->scheduled_for > std::chrono::seconds(timeout)) {
                repository_.set_fire_status(tx, tenant, fire_id, "skipped",
                                            "overlap: waited longer than the timeout", at);
                return json::object{{"decision", "skip"}};
            }
            return json::object{{"decision", "wait"}};
        });
}

boost::json::object Service::run_action(const core::TenantId& tenant,
                                        std::int64_t schedule_id,
                                        std::int64_t fire_id,
                                        int attempt,
                                        const ScheduleDefinition& definition) {
    const auto& a = definition.action;
    const std::string type = core::string_field(a, "type");
    const std::string origin = "schedule:" + std::to_string(schedule_id);
    // Idempotency keys tie a retried action to its fire: a retry sends no second message.
    const std::string key = "schedule-fire-" + std::to_string(fire_id);
    if (type == "message") {
        std::vector<std::string> users;
        for (const auto& r : a.at("recipients").as_array()) {
            users.emplace_back(r.as_string());
        }
        const auto message =
            with_.notifier.notify(tenant, origin, users, core::string_field(a, "subject"),
                                  core::string_field(a, "body"), key);
        return json::object{{"message_id", message}};
    }
    if (type == "script") {
        const auto* args = a.if_contains("arguments");
        const auto run = with_.scripts.run_to_success(tenant, origin, a.at("script_id").as_int64(),
                                                      args ? *args : nullptr, "schedule", key);
        return json::object{{"script_run_id", run.at("id")}, {"result", run.at("result")}};
    }
    if (type == "event") {
        json::object data;
        if (const auto* d = a.if_contains("data"); d != nullptr && d->is_object()) {
            data = d->as_object();
        }
        // The tenant comes from the schedule, never from the data the author wrote.
        data["tenant_id"] = tenant.value();
        const auto sent = with_.inngest.send(
            inngest::Event{.name = core::tenant_event_name(tenant, core::string_field(a, "name")),
                           .data = std::move(data),
                           .id = key});
        if (!sent) {
            throw std::runtime_error("could not send the event: " + sent.error().message);
        }
        json::array ids;
        for (const auto& id : sent->ids) {
            ids.emplace_back(id);
        }
        return json::object{{"event_ids", std::move(ids)}};
    }
    if (type == "http") {
        // The allow-list may have changed since the schedule was saved.
        if (!core::host_allowed(core::http_host(core::string_field(a, "url")),
                                with_.scripts.http_allow_list(tenant))) {
            throw inngest::NonRetriableError("the URL's host is no longer on the allow-list");
        }
        // Each attempt calls under a key of its own (the first under the fire's): a receiver
        // that keeps its answer per key would give a retry the failure it answered before. A
        // crash in an attempt keeps its number, and so its key.
        try {
            return core::call_http(with_.outbound, a, definition.timeout_seconds,
                                   core::attempt_key(key, attempt));
        } catch (const core::OutboundRefused& refused) {
            throw inngest::NonRetriableError(refused.what());  // no retry would pass
        }
    }
    throw inngest::NonRetriableError("unknown action type " + type);
}

boost::json::object Service::perform(const core::TenantId& tenant,
                                     std::int64_t fire_id,
                                     int attempt,
                                     int max_attempts) {
    std::optional<Fire> fire;
    std::optional<Schedule> schedule;
    {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            fire = repository_.fire_by_id(tx, tenant, fire_id, false);
            if (fire) {
                schedule = repository_.find(tx, tenant, fire->schedule_id, false, true);
            }
        });
    }
    if (!fire || !schedule) {
        throw inngest::NonRetriableError("fire " + std::to_string(fire_id) + " does not exist");
    }
    if (fire->status != "running") {
        return json::object{{"fire_id", fire_id}, {"status", fire->status}};
    }
    json::value output = nullptr;
    std::optional<std::string> error;
    bool final_failure = false;
    try {
        output =
            capped(run_action(tenant, schedule->id, fire_id, fire->attempt, schedule->definition));
    } catch (const inngest::RetryAfterError&) {
        // Another attempt still carries out the action's script run: the step is retried after
        // it and finds the run by its key; not a failed attempt of the fire.
        throw;
    } catch (const inngest::NonRetriableError& e) {
        error = core::storable_text(e.what());
        final_failure = true;
    } catch (const std::exception& e) {
        error = core::storable_text(e.what());
    }
    const int tries = std::min(schedule->definition.retries + 1, max_attempts);
    if (error && !final_failure && attempt + 1 < tries) {
        // The fire's attempt is the one that runs next: its number keys that attempt's call.
        // (Not saved, the database gone, the retry calls under this attempt's key again, as
        // after a crash in it.)
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            repository_.finish_fire(
                tx, tenant, fire_id,
                {.status = "running", .output = nullptr, .error = error, .attempt = attempt + 2},
                now());
        });
        throw std::runtime_error(*error);  // Inngest retries the step
    }
    // The action's end, memoized by this step; record_outcome saves it in a step of its own.
    json::object outcome{{"fire_id", fire_id},
                         {"outcome", error ? "failed" : "succeeded"},
                         {"output", std::move(output)},
                         {"attempt", attempt + 1}};
    if (error) {
        outcome["error"] = *error;
    }
    return outcome;
}

boost::json::object Service::record_outcome(const core::TenantId& tenant,
                                            const boost::json::object& outcome) {
    const std::int64_t fire_id = outcome.at("fire_id").to_number<std::int64_t>();
    FireOutcome end{.status = std::string(outcome.at("outcome").as_string()),
                    .output = outcome.contains("output") ? outcome.at("output") : nullptr,
                    .error = std::nullopt,
                    .attempt = outcome.at("attempt").to_number<int>()};
    if (const auto* error = outcome.if_contains("error"); error != nullptr && error->is_string()) {
        end.error = std::string(error->as_string());
    }
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto fire = repository_.fire_by_id(tx, tenant, fire_id, true);
        if (!fire) {
            throw inngest::NonRetriableError("fire " + std::to_string(fire_id) + " does not exist");
        }
        // Saved by an attempt of this step whose answer was lost, or ended otherwise (the run's
        // failure handler): that stands.
        if (fire->status != "running") {
            return json::object{{"fire_id", fire_id}, {"status", fire->status}};
        }
        repository_.finish_fire(tx, tenant, fire_id, end, now());
        return json::object{{"fire_id", fire_id}, {"status", end.status}};
    });
}

boost::json::object Service::fail_unfinished(const core::TenantId& tenant,
                                             std::int64_t schedule_id,
                                             std::int64_t scheduled_for_ms,
                                             const std::string& kind,
                                             const std::string& run_id,
                                             const std::string& why) {
    const TimePoint when{std::chrono::milliseconds(scheduled_for_ms)};
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto fire = repository_.fire(tx, tenant, schedule_id, when, kind, true);
        // Another run's fire (this run was turned away), or one that ended: left as it is.
        if (!fire || fire->claimed_by != run_id ||
            (fire->status != "running" && fire->status != "waiting")) {
            return json::object{{"fire_id", fire ? fire->id : 0}, {"failed", false}};
        }
        repository_.finish_fire(tx, tenant, fire->id,
                                {.status = "failed",
                                 .output = nullptr,
                                 .error = core::storable_text(why),
                                 .attempt = fire->attempt},
                                now());
        return json::object{{"fire_id", fire->id}, {"failed", true}};
    });
}

boost::json::object Service::reconcile() {
    const auto at = now();
    int rearmed = 0;
    int missed = 0;
    int refired = 0;
    if (!rearmed_after_start_.exchange(true)) {
        // Same ids as before: an executor that still has them drops them, one that lost them
        // (a restart of the embedded executor) gets them back.
        for (const auto& armed : repository_.armed_from(at - kReconcileGrace)) {
            rearmed += resend_fire(core::TenantId::trusted(armed.tenant_id), armed.schedule_id,
                                   armed.next_fire_at, armed.version)
                           ? 1
                           : 0;
        }
    }
    for (const auto& due : repository_.due_before(at - kReconcileGrace)) {
        const auto tenant = core::TenantId::trusted(due.tenant_id);
        // What became of one overdue schedule: left alone, fired again, or marked missed.
        enum class Outcome { kNone, kRefired, kMissed };
        const auto outcome = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            const auto s = repository_.find(tx, tenant, due.schedule_id, true);
            if (!s || !s->enabled || !s->next_fire_at || *s->next_fire_at >= at - kReconcileGrace) {
                return Outcome::kNone;
            }
            const auto fire =
                repository_.fire(tx, tenant, s->id, *s->next_fire_at, "scheduled", true);
            if (fire && fire->status != "armed") {
                return Outcome::kNone;  // it ran; the claim moved next_fire_at on
            }
            const auto& d = s->definition;
            if (d.misfire_policy == "fire_once" &&
                at - *s->next_fire_at <= std::chrono::seconds(d.misfire_window_seconds)) {
                // A new id: the lost event's id may still be remembered by a recovered executor.
                const auto minute =
                    std::chrono::duration_cast<std::chrono::minutes>(at.time_since_epoch()).count();
                arm_fire(tx, tenant, s->id, *s->next_fire_at, s->version, "scheduled",
                         ":r" + std::to_string(minute));
                return Outcome::kRefired;
            }
            if (fire) {
                repository_.set_fire_status(
                    tx, tenant, fire->id, "missed",
                    "missed: not delivered at its time (misfire policy " + d.misfire_policy + ")",
                    at);
            }
            const auto next = next_fire(d.trigger, at);
            rearm(tx, tenant, s->id, next, s->version);
            return Outcome::kMissed;
        });
        refired += outcome == Outcome::kRefired ? 1 : 0;
        missed += outcome == Outcome::kMissed ? 1 : 0;
    }
    return json::object{{"rearmed", rearmed}, {"missed", missed}, {"refired", refired}};
}

boost::json::object Service::prune(std::chrono::hours keep) {
    return json::object{{"deleted", repository_.prune_fires(now() - keep)}};
}

}  // namespace riveredge::schedules
