// The workflows module's Inngest function: one interpreter for both kinds of definition, on the
// app's Inngest client like the approvals engine (no thread or timer of its own).
//
// A DAG runs level by level (its parallel groups): the nodes of a level are parallel steps,
// each attempt of a node a step "node:<id>#<attempt>" with a sleep between attempts. A state
// machine enters its initial state, then applies the events REST accepted, in order: the exit
// actions, the transition's action, the event marked applied, the entry actions; between
// events it waits for a wake. On a failure that outlives its retries, the completed nodes (or
// entered states) with a `compensate` action are compensated newest first, then the
// workflow's `on_error` handler runs. Pauses and cancels take effect between levels or events.

#include "core/events.hpp"
#include "modules/workflows/definition.hpp"
#include "modules/workflows/service.hpp"

#include <inngest/inngest.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace riveredge::workflows {

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// The longest wait between looks at the database (a wake event ends it at once): a safety net
// for a wake that was lost, each costing two of the run's steps.
constexpr auto kLongWait = std::chrono::hours(24 * 7);
// The wait of a run that a wake is due to already (it was sent before the wait was set up).
constexpr auto kRecheckWait = std::chrono::seconds(1);

// The waits each run has got past, by run id: their results are memoized, so the look before a
// wait (Run::wait_for_wake) is not made again for them each time the run replays. An
// optimisation only: forgetting (a restart, the bound) costs a look per wait once.
class PassedWaits {
public:
    bool passed(const std::string& run_id, int wait) const {
        const std::lock_guard lock(mutex_);
        const auto found = last_.find(run_id);
        return found != last_.end() && found->second >= wait;
    }
    void pass(const std::string& run_id, int wait) {
        const std::lock_guard lock(mutex_);
        if (last_.size() >= kRunsKept && !last_.contains(run_id)) {
            last_.clear();
        }
        auto& last = last_[run_id];
        last = std::max(last, wait);
    }

private:
    static constexpr std::size_t kRunsKept = 10000;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, int> last_;
};

struct Run {
    inngest::Context& ctx;
    Service& service;
    PassedWaits& passed;
    core::TenantId tenant;
    std::int64_t id;
    int waits = 0;

    json::object attempt(StepCall call, int retries, int delay_seconds) {
        call.max_attempts = retries + 1;
        json::object result;
        for (int attempt = 1; attempt <= call.max_attempts; ++attempt) {
            call.attempt = attempt;
            const std::string tag = call.key + "#" + std::to_string(attempt);
            result = ctx.step.run(tag, [&] { return service.run_step(tenant, id, call); });
            if (result.at("ok").as_bool() || result.contains("cancelled")) {
                return result;
            }
            if (attempt < call.max_attempts && delay_seconds > 0) {
                ctx.step.sleep("retry:" + tag, std::chrono::seconds(delay_seconds));
            }
        }
        return result;
    }

    // Waits for a wake; `due` says whether one is due already (what the look before the wait
    // saw has changed). A wait only gets wakes sent after it is set up, and the call that sets
    // it up may be held for long while the tenant's slots are busy: the event REST accepted
    // meanwhile and all its wakes would find no wait, and the run would sleep for a week. So the
    // call that sets the wait up looks again, and with a wake due waits a moment only. (The
    // timeout matters to that call alone: a replay gets what the wait got.)
    void wait_for_wake(const std::function<bool()>& due) {
        const int n = waits++;
        const bool recheck = !passed.passed(ctx.run.run_id, n) && due();
        ctx.step.wait_for_event(
            "wait:" + std::to_string(n),
            {.event = kExecutionWake,
             .timeout = recheck ? inngest::Duration(kRecheckWait) : inngest::Duration(kLongWait),
             .if_expression = "async.data.execution_id == " + std::to_string(id)});
        passed.pass(ctx.run.run_id, n);
    }

    // Running, or stopped (cancelled or ended); waits out a pause.
    bool may_continue(const std::string& where) {
        for (int i = 0;; ++i) {
            const std::string status = ctx.step.run("gate:" + where + ":" + std::to_string(i),
                                                    [&] { return service.gate(tenant, id); });
            if (status == "running") {
                return true;
            }
            if (status != "paused") {
                return false;
            }
            wait_for_wake([&] { return service.gate(tenant, id) != "paused"; });
        }
    }

    json::value fail(const json::object& model,
                     const std::string& element,
                     const std::string& error) {
        // A cancel wins over the failure it interrupted: nothing is compensated.
        if (!may_continue("failure")) {
            return json::object{{"stopped", true}};
        }
        const auto plan = ctx.step.run("compensation-plan",
                                       [&] { return service.compensation_plan(tenant, id); });
        bool undone = false;
        for (const auto& item : plan) {
            const auto& o = item.as_object();
            // A compensation that fails is recorded and the older ones still run.
            const auto compensated =
                attempt(StepCall{.key = "compensate:" + std::string(o.at("key").as_string()),
                                 .node = std::string(o.at("node").as_string()),
                                 .phase = "compensate",
                                 .actions = o.at("actions").as_array()},
                        2, 0);
            undone = undone || compensated.at("ok").as_bool();
        }
        if (model.contains("on_error")) {
            attempt(StepCall{.key = "on_error",
                             .node = element,
                             .phase = "on_error",
                             .actions = actions_of(model, "on_error"),
                             .event = json::object{{"name", "error"},
                                                   {"data", json::object{{"node", element},
                                                                         {"error", error}}}}},
                    0, 0);
        }
        const std::string why = element + " failed: " + error;
        return ctx.step.run("finish:failed",
                            [&] { return service.finish(tenant, id, "failed", why, undone); });
    }

    json::value finish_completed() {
        return ctx.step.run("finish:completed", [&] {
            return service.finish(tenant, id, "completed", std::nullopt, false);
        });
    }

    json::value dag(const json::object& model) {
        const auto groups = parallel_groups(model);
        std::map<std::string, const json::object*> nodes;
        for (const auto& n : model.at("nodes").as_array()) {
            nodes[std::string(n.at("id").as_string())] = &n.as_object();
        }
        for (std::size_t level = 0; level < groups.size(); ++level) {
            if (!may_continue("level" + std::to_string(level))) {
                return json::object{{"stopped", true}};
            }
            const auto& group = groups[level].as_array();
            std::vector<std::function<json::value()>> branches;
            for (const auto& id_value : group) {
                const std::string node_id(id_value.as_string());
                const auto& node = *nodes.at(node_id);
                branches.emplace_back([this, node_id, &node]() -> json::value {
                    return attempt(StepCall{.key = "node:" + node_id,
                                            .node = node_id,
                                            .phase = "node",
                                            .actions = actions_of(node, "action"),
                                            .keeps_output = true},
                                   int_of(node, "retries"), int_of(node, "retry_delay_seconds"));
                });
            }
            // The nodes of a level run as parallel steps; a lone node needs no fan-out.
            const auto results = branches.size() == 1 ? std::vector<json::value>{branches.front()()}
                                                      : ctx.step.parallel(branches);
            for (std::size_t i = 0; i < results.size(); ++i) {
                const auto& r = results[i].as_object();
                if (!r.at("ok").as_bool()) {
                    return fail(model, "node '" + std::string(group[i].as_string()) + "'",
                                std::string(r.at("error").as_string()));
                }
            }
        }
        return finish_completed();
    }

    json::value state_machine(const json::object& model, const json::object& plan) {
        const auto& states = model.at("states").as_object();
        std::map<std::string, int> visits;
        const auto state_of = [&](const std::string& name) -> const json::object& {
            return states.at(name).as_object();
        };
        // Entering a state: its entry actions (possibly none) as one recorded step.
        const auto enter = [&](const std::string& state, const json::value& event) {
            const int visit = ++visits[state];
            const auto& s = state_of(state);
            return attempt(StepCall{.key = "entry:" + state + "#" + std::to_string(visit),
                                    .node = state,
                                    .phase = "entry",
                                    .actions = actions_of(s, "on_entry"),
                                    .event = event,
                                    .enters_state = true},
                           int_of(s, "retries"), int_of(s, "retry_delay_seconds"));
        };
        std::string current;
        if (const auto& current_state = plan.at("current_state"); current_state.is_string()) {
            // A run picking up an execution another run began (a rerun): it goes on from the
            // state entered last, counting visits from the history so that step keys stay unique.
            current = std::string(current_state.as_string());
            if (const auto* seen = plan.if_contains("visits");
                seen != nullptr && seen->is_object()) {
                for (const auto& [name, count] : seen->get_object()) {
                    visits[std::string(name)] = static_cast<int>(count.to_number<std::int64_t>());
                }
            }
            visits[current] = std::max(visits[current], 1);
        } else {
            if (!may_continue("start")) {
                return json::object{{"stopped", true}};
            }
            current = std::string(model.at("initial").as_string());
            const auto entered = enter(current, nullptr);
            if (!entered.at("ok").as_bool()) {
                return fail(model, "state '" + current + "' on_entry",
                            std::string(entered.at("error").as_string()));
            }
        }
        for (int n = 0;; ++n) {
            if (is_final(model, current)) {
                return finish_completed();
            }
            const auto next = ctx.step.run("next:" + std::to_string(n),
                                           [&] { return service.next_event(tenant, id); });
            const std::string status(next.at("status").as_string());
            if (status != "running" && status != "paused") {
                return json::object{{"stopped", true}};
            }
            if (!next.contains("event")) {
                wait_for_wake([&] {
                    const auto now = service.next_event(tenant, id);
                    return now.contains("event") || now.at("status") != next.at("status");
                });
                continue;
            }
            const auto& event = next.at("event").as_object();
            const auto event_id = event.at("id").as_int64();
            const std::string name(event.at("name").as_string());
            const std::string target(event.at("to_state").as_string());
            const json::object event_scope{{"name", name}, {"data", event.at("data")}};
            const auto& from = state_of(current);
            if (from.contains("on_exit")) {
                const auto left = attempt(
                    StepCall{.key = "exit:" + current + "#" + std::to_string(visits[current]),
                             .node = current,
                             .phase = "exit",
                             .actions = actions_of(from, "on_exit"),
                             .event = event_scope},
                    int_of(from, "retries"), int_of(from, "retry_delay_seconds"));
                if (!left.at("ok").as_bool()) {
                    return fail(model, "state '" + current + "' on_exit",
                                std::string(left.at("error").as_string()));
                }
            }
            const auto& transition =
                from.at("transitions")
                    .as_array()
                    .at(static_cast<std::size_t>(event.at("transition").to_number<std::int64_t>()))
                    .as_object();
            if (transition.contains("action")) {
                const auto moved =
                    attempt(StepCall{.key = "transition:" + std::to_string(event_id),
                                     .node = current + "->" + target,
                                     .phase = "transition",
                                     .actions = actions_of(transition, "action"),
                                     .event = event_scope},
                            int_of(from, "retries"), int_of(from, "retry_delay_seconds"));
                if (!moved.at("ok").as_bool()) {
                    return fail(model, "transition '" + name + "' from '" + current + "'",
                                std::string(moved.at("error").as_string()));
                }
            }
            ctx.step.run("apply:" + std::to_string(event_id),
                         [&] { return service.apply_event(tenant, id, event_id); });
            current = target;
            const auto entered = enter(current, event_scope);
            if (!entered.at("ok").as_bool()) {
                return fail(model, "state '" + current + "' on_entry",
                            std::string(entered.at("error").as_string()));
            }
        }
    }
};

}  // namespace

void register_functions(inngest::Client& client, Service& service, int tenant_concurrency) {
    client.create_function(
        {.id = "workflows-execution",
         .name = "Run a workflow execution",
         .triggers = {inngest::EventTrigger{kExecutionStarted}},
         // Node failures are handled inside (retries, compensation, on_error): these retries
         // are for the database or the process failing under a step.
         .retries = 5,
         // The per-tenant quota: at most this many executions of a tenant run steps at once.
         .concurrency = {{.limit = tenant_concurrency, .key = "event.data.tenant_id"}},
         .priority = inngest::Priority{.run = "event.data.priority"},
         // A run that fails through its retries (the database gone, say) ends its execution
         // as failed rather than leaving it running.
         .on_failure = [&service](inngest::Context& ctx) -> json::value {
             const auto* data = core::failed_event_data(ctx.event.data);
             if (data == nullptr) {
                 return nullptr;
             }
             const auto tenant = core::event_tenant(*data);
             const auto id = data->at("execution_id").to_number<std::int64_t>();
             std::string why = "the run failed through its retries";
             if (const auto message = core::failure_message(ctx.event.data)) {
                 why += ": " + *message;
             }
             return ctx.step.run("mark-failed",
                                 [&] { return service.finish(tenant, id, "failed", why, false); });
         }},
        [&service, passed = std::make_shared<PassedWaits>()](inngest::Context& ctx) -> json::value {
            const auto tenant = core::event_tenant(ctx.event.data);
            const auto id = ctx.event.data.at("execution_id").to_number<std::int64_t>();
            Run run{ctx, service, *passed, tenant, id};
            const auto plan = ctx.step.run("begin", [&] { return service.begin(tenant, id); });
            const std::string status(plan.at("status").as_string());
            if (status != "running" && status != "paused") {
                return json::object{{"stopped", true}, {"status", status}};
            }
            const auto& model = plan.at("model").as_object();
            if (plan.at("kind") == "dag") {
                return run.dag(model);
            }
            return run.state_machine(model, plan);
        });
}

}  // namespace riveredge::workflows
