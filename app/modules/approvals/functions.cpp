// The approvals module's Inngest function: one generic interpreter of an instance's pinned
// definition. Tokens move through nodes; each node visit is a step "visit:<node>#<visit>", each
// wait a pair "park:<round>" / "wake:<round>", so replays, retries and revisits are exact.
// The interpreter's own state (tokens, visit counts, join counters) is rebuilt from memoized
// step results on every call and stored at each wait, which a hand-over or resume continues.

#include "core/events.hpp"
#include "core/json/fields.hpp"
#include "modules/approvals/engine.hpp"

#include <inngest/inngest.hpp>

#include <boost/json/value_from.hpp>

#include <algorithm>
#include <deque>
#include <map>

namespace riveredge::approvals {

namespace {

namespace json = boost::json;

struct Token {
    std::string node;
    /// Direct resubmission: where the flow goes back once this returned-to node completes.
    std::optional<std::string> resume_at;
    /// Already counted at its join (a token held there and resumed).
    bool joined = false;
    /// A catch event whose event has happened (it won an event-based gateway's race).
    bool caught = false;
};

struct Waiting {
    std::string node;
    int visit = 0;
    std::string kind;
    std::optional<std::string> resume_at;
    std::optional<std::string> signal;
    /// Non-interrupting boundary timers that have fired for this visit (each fires once).
    std::vector<std::string> fired;
};

struct Join {
    int arrived = 0;
    int expected = 0;
};

struct RunState {
    /// Tokens that can move now; always empty when the state is stored (at a wait).
    std::deque<Token> ready;
    std::vector<Waiting> waiting;
    std::map<std::string, int> visits;
    std::map<std::string, Join> joins;
    int round = 0;

    json::object to_json() const {
        json::array w;
        for (const auto& item : waiting) {
            json::object o{{"node", item.node}, {"visit", item.visit}, {"kind", item.kind}};
            if (item.resume_at) {
                o["resume_at"] = *item.resume_at;
            }
            if (item.signal) {
                o["signal"] = *item.signal;
            }
            if (!item.fired.empty()) {
                o["fired"] = json::value_from(item.fired);
            }
            w.push_back(std::move(o));
        }
        json::object j;
        for (const auto& [node, join] : joins) {
            j[node] = json::object{{"arrived", join.arrived}, {"expected", join.expected}};
        }
        return json::object{{"waiting", std::move(w)},
                            {"visits", json::value_from(visits)},
                            {"joins", std::move(j)},
                            {"round", round}};
    }

    static std::optional<std::string> text(const json::object& o, const char* key) {
        const auto* v = o.if_contains(key);
        return v != nullptr && v->is_string() ? std::optional(std::string(v->as_string()))
                                              : std::nullopt;
    }

    static RunState from_json(const json::object& o) {
        RunState s;
        for (const auto& item : o.at("waiting").as_array()) {
            const auto& w = item.as_object();
            Waiting waiting{std::string(w.at("node").as_string()),
                            static_cast<int>(w.at("visit").to_number<std::int64_t>()),
                            std::string(w.at("kind").as_string()),
                            text(w, "resume_at"),
                            text(w, "signal"),
                            {}};
            if (const auto* fired = w.if_contains("fired"); fired != nullptr && fired->is_array()) {
                for (const auto& b : fired->as_array()) {
                    waiting.fired.emplace_back(b.as_string());
                }
            }
            s.waiting.push_back(std::move(waiting));
        }
        for (const auto& [node, count] : o.at("visits").as_object()) {
            s.visits[node] = static_cast<int>(count.to_number<std::int64_t>());
        }
        for (const auto& [node, join] : o.at("joins").as_object()) {
            s.joins[node] = {static_cast<int>(join.at("arrived").to_number<std::int64_t>()),
                             static_cast<int>(join.at("expected").to_number<std::int64_t>())};
        }
        s.round = static_cast<int>(o.at("round").to_number<std::int64_t>());
        return s;
    }
};

/// Drops every token inside a sub-process (and its own wait) when an error or an interrupting
/// boundary ends it; the engine has cancelled their visits. Answers the waiting indices gone.
std::vector<std::size_t> drop_scope(RunState& state,
                                    const ProcessDefinition& definition,
                                    const std::string& scope,
                                    bool with_itself) {
    std::vector<std::size_t> gone;
    for (std::size_t i = 0; i < state.waiting.size(); ++i) {
        const auto& node = state.waiting[i].node;
        if (definition.inside(node, scope) || (with_itself && node == scope)) {
            gone.push_back(i);
        }
    }
    std::erase_if(state.ready, [&](const Token& t) { return definition.inside(t.node, scope); });
    std::erase_if(state.joins,
                  [&](const auto& join) { return definition.inside(join.first, scope); });
    return gone;
}

bool is_join(const ProcessDefinition& definition, const FlowNode& node) {
    return (node.type == "parallelGateway" || node.type == "inclusiveGateway") &&
           definition.incoming(node.id) > 1;
}

}  // namespace

void register_functions(inngest::Client& client, Engine& engine, int step_budget) {
    // Events of a tenant's namespace (`tenants/<tenant>/<name>`, sent only by the app for that
    // tenant) that carry a business key are messages for that tenant's instances.
    client.create_function(
        {.id = "approvals-message-from-event",
         .name = "Correlate a tenant event to approval instances",
         .triggers = {inngest::EventTrigger{"tenants/*"}}},
        [&engine](inngest::Context& ctx) -> boost::json::value {
            const std::string name = ctx.event.name;
            const auto slash = name.find('/', 8);  // after "tenants/"
            const auto* key = ctx.event.data.if_contains("business_key");
            if (slash == std::string::npos || key == nullptr || !key->is_string()) {
                return json::object{{"skipped", "no business_key"}};
            }
            const auto tenant = core::TenantId::trusted(name.substr(8, slash - 8));
            json::object message{{"name", name.substr(slash + 1)},
                                 {"business_key", *key},
                                 {"message_id", "event:" + ctx.event.id.value_or(ctx.run.run_id)}};
            if (const auto* data = ctx.event.data.if_contains("data"); data && data->is_object()) {
                message["data"] = *data;
            }
            // A retry finds the delivery its earlier attempt committed (the event's id keys it)
            // and still answers and wakes whom it reached, as that attempt may not have.
            return ctx.step.run("correlate", [&] {
                return engine.correlate(tenant, "event:" + name.substr(slash + 1), message, true);
            });
        });

    client.create_function(
        {.id = "approvals-instance",
         .name = "Run an approval instance",
         .triggers = {inngest::EventTrigger{kInstanceStarted},
                      inngest::EventTrigger{kInstanceContinued}},
         .retries = 5,
         // A run that fails for good (a step through its retries, an element that cannot run)
         // leaves no instance running for ever with nobody told: the instance it owned ends
         // failed with the run's error.
         .on_failure = [&engine](inngest::Context& ctx) -> boost::json::value {
             const auto* data = core::failed_event_data(ctx.event.data);
             if (data == nullptr) {
                 return nullptr;
             }
             const auto tenant = core::event_tenant(*data);
             const auto id = data->at("instance_id").to_number<std::int64_t>();
             const int generation =
                 data->contains("generation")
                     ? static_cast<int>(data->at("generation").to_number<std::int64_t>())
                     : 0;
             const auto error = core::failure_message(ctx.event.data).value_or("no error given");
             return ctx.step.run("fail-instance",
                                 [&] { return engine.fail_run(tenant, id, generation, error); });
         }},
        [&engine, step_budget](inngest::Context& ctx) -> boost::json::value {
            const auto& data = ctx.event.data;
            const auto tenant = core::event_tenant(data);
            const std::int64_t id = data.at("instance_id").to_number<std::int64_t>();
            const int generation =
                data.contains("generation")
                    ? static_cast<int>(data.at("generation").to_number<std::int64_t>())
                    : 0;
            int steps = 1;
            const auto plan =
                ctx.step.run("load", [&] { return engine.load(tenant, id, generation); });
            if (plan.contains("stop")) {
                return json::object{{"stopped", true}};
            }
            const auto definition = ProcessDefinition::from_json(plan.at("definition").as_object());
            RunState state;
            if (plan.at("state").is_object()) {
                state = RunState::from_json(plan.at("state").as_object());
            } else {
                for (const auto& node : definition.nodes) {
                    if (node.type == "startEvent" && node.parent.empty()) {
                        state.ready.push_back({node.id, std::nullopt, false});
                    }
                }
            }

            const auto end = [&](const std::string& status, const Waiting& at) {
                const std::string key =
                    "finish:" + status + ":" + at.node + "#" + std::to_string(at.visit);
                return ctx.step.run(
                    key, [&] { return engine.finish(tenant, id, status, at.node, key); });
            };
            // The compensations a left transaction owes, one step each, keyed under `owner`
            // (the node visit that left it) so replays and retries run each once.
            const auto compensate = [&](const json::array& items, const std::string& owner) {
                for (const auto& item : items) {
                    const std::string key = "compensate:" + owner + ":" +
                                            std::string(item.at("node").as_string()) + "#" +
                                            std::to_string(item.at("visit").as_int64());
                    ++steps;
                    ctx.step.run(key, [&] {
                        return engine.compensate(tenant, id, definition, item.as_object());
                    });
                }
            };

            for (int hops = 0; hops < 100000; ++hops) {
                while (!state.ready.empty()) {
                    const Token token = state.ready.front();
                    state.ready.pop_front();
                    const FlowNode* node = definition.node(token.node);
                    if (node == nullptr) {
                        throw inngest::NonRetriableError("no node " + token.node);
                    }
                    if (!token.joined && is_join(definition, *node)) {
                        auto& join = state.joins[node->id];
                        ++join.arrived;
                        const int expected =
                            join.expected > 0 ? join.expected : definition.incoming(node->id);
                        if (join.arrived < expected) {
                            continue;  // wait for the other branches
                        }
                        state.joins.erase(node->id);
                    }
                    const int visit = ++state.visits[node->id];
                    const std::string tag = node->id + "#" + std::to_string(visit);
                    json::object token_json{{"node", node->id},
                                            {"visit", visit},
                                            {"last", state.ready.empty() && state.waiting.empty()}};
                    if (token.caught) {
                        token_json["caught"] = true;
                    }
                    ++steps;
                    auto result = ctx.step.run("visit:" + tag, [&] {
                        return engine.visit(tenant, id, definition, token_json);
                    });
                    while (result.contains("retry_in_ms")) {
                        const auto attempt = result.at("attempt").as_int64();
                        const std::string suffix = ":" + std::to_string(attempt);
                        ctx.step.sleep(
                            "retry:" + tag + suffix,
                            std::chrono::milliseconds(result.at("retry_in_ms").as_int64()));
                        token_json["attempt"] = attempt;
                        steps += 2;
                        result = ctx.step.run("visit:" + tag + suffix, [&] {
                            return engine.visit(tenant, id, definition, token_json);
                        });
                    }
                    if (result.contains("end")) {
                        return result;
                    }
                    if (const auto* items = result.if_contains("compensate")) {
                        compensate(items->as_array(), tag);
                    }
                    if (const auto* thrown = result.if_contains("thrown")) {
                        // An error or cancel end event: its catcher's sub-process ends with
                        // everything in it and the token leaves through the boundary; with no
                        // catcher the instance fails.
                        const std::string boundary(thrown->at("boundary").as_string());
                        if (boundary.empty()) {
                            const std::string reason(thrown->at("reason").as_string());
                            return ctx.step.run("failed:" + tag, [&] {
                                return engine.finish(tenant, id, "failed", node->id,
                                                     "failed:" + tag, reason);
                            });
                        }
                        auto gone = drop_scope(state, definition,
                                               std::string(thrown->at("scope").as_string()), true);
                        std::sort(gone.rbegin(), gone.rend());
                        for (const auto index : gone) {
                            state.waiting.erase(state.waiting.begin() + static_cast<long>(index));
                        }
                        state.ready.push_back({boundary, std::nullopt, false});
                        continue;
                    }
                    if (const auto* wait = result.if_contains("wait")) {
                        Waiting waiting{
                            node->id,        visit,        std::string(wait->as_string()),
                            token.resume_at, std::nullopt, {}};
                        if (const auto awaited = awaited_signal(*node); !awaited.empty()) {
                            waiting.signal = awaited;
                        }
                        state.waiting.push_back(std::move(waiting));
                        if (const auto* start = result.if_contains("start")) {
                            // An embedded sub-process: its inner start event begins.
                            state.ready.push_back(
                                {std::string(start->as_string()), std::nullopt, false});
                        }
                        continue;
                    }
                    const auto& next = result.at("next").as_array();
                    // A fork tells its join how many branches it took (an inclusive fork may
                    // take one).
                    if ((node->type == "parallelGateway" || node->type == "inclusiveGateway") &&
                        definition.outgoing(node->id).size() > 1) {
                        if (const auto join = matching_join(definition, node->id)) {
                            state.joins[*join].expected = static_cast<int>(next.size());
                        }
                    }
                    for (const auto& n : next) {
                        state.ready.push_back({std::string(n.as_string()), std::nullopt, false});
                    }
                }
                // A sub-process none of whose tokens is left (they all ended) completes, and
                // its token leaves by its outgoing flow.
                bool completed_scope = false;
                for (std::size_t i = state.waiting.size(); i-- > 0 && !completed_scope;) {
                    const Waiting scope = state.waiting[i];
                    if (scope.kind != "scope" ||
                        std::any_of(state.waiting.begin(), state.waiting.end(),
                                    [&](const Waiting& w) {
                                        return definition.inside(w.node, scope.node);
                                    })) {
                        continue;
                    }
                    ++steps;
                    const auto left = ctx.step.run(
                        "complete:" + scope.node + "#" + std::to_string(scope.visit), [&] {
                            return engine.complete_scope(tenant, id, definition, scope.node,
                                                         scope.visit);
                        });
                    state.waiting.erase(state.waiting.begin() + static_cast<long>(i));
                    for (const auto& n : left.at("next").as_array()) {
                        state.ready.push_back({std::string(n.as_string()), std::nullopt, false});
                    }
                    completed_scope = true;
                }
                if (completed_scope) {
                    continue;
                }
                if (state.waiting.empty()) {
                    // Every token ended at an end event that was not the last one: done.
                    return ctx.step.run("finish:completed", [&] {
                        return engine.finish(tenant, id, "completed", "", "finish:completed");
                    });
                }
                const auto snapshot = state.to_json();
                const std::string round = std::to_string(state.round++);
                if (steps >= step_budget) {
                    return ctx.step.run("handover:" + round, [&] {
                        return engine.hand_over(tenant, id, generation, snapshot);
                    });
                }
                steps += 1;
                const auto parked = ctx.step.run("park:" + round, [&] {
                    return engine.park(tenant, id, generation, definition, snapshot);
                });
                if (parked.contains("stop")) {
                    return json::object{{"stopped", true}};
                }
                const auto& resolved = parked.at("resolved").as_array();
                if (resolved.empty()) {
                    steps += 1;
                    ctx.step.wait_for_event(
                        "wake:" + round,
                        {.event = kInstanceWake,
                         .timeout = std::chrono::milliseconds(parked.at("sleep_ms").as_int64()),
                         .if_expression = "async.data.instance_id == " + std::to_string(id)});
                    continue;
                }
                std::vector<std::size_t> done;
                std::vector<std::size_t> dropped;  // inside a sub-process a boundary ended
                for (const auto& r : resolved) {
                    const auto index =
                        static_cast<std::size_t>(r.at("index").to_number<std::int64_t>());
                    if (std::find(dropped.begin(), dropped.end(), index) != dropped.end()) {
                        continue;
                    }
                    const Waiting at = state.waiting.at(index);
                    done.push_back(index);
                    const std::string outcome(r.at("outcome").as_string());
                    const FlowNode* node = definition.node(at.node);
                    if (outcome == "rejected") {
                        return end("rejected", at);
                    }
                    if (outcome == "timeout" &&
                        core::string_field(node->config, "timeout_action") == "cancel") {
                        return end("cancelled", at);
                    }
                    if (outcome == "returned") {
                        const bool direct =
                            core::string_field(node->config, "return_policy") == "direct";
                        state.ready.push_back({std::string(r.at("target").as_string()),
                                               direct ? std::optional(at.node) : std::nullopt,
                                               false});
                        continue;
                    }
                    if (outcome == "cancelled") {
                        continue;
                    }
                    if (outcome == "race") {
                        // The event that happened first: its catch event passes at once.
                        state.ready.push_back(
                            {std::string(r.at("target").as_string()), std::nullopt, false, true});
                        continue;
                    }
                    if (outcome == "failed") {
                        // A call activity's child failed: the token is held at it for a retry.
                        done.pop_back();
                        state.waiting.at(index).kind = "failed";
                        continue;
                    }
                    if (outcome == "thrown") {
                        // A call activity's error caught by an enclosing sub-process: the
                        // transactions it leaves compensate, the sub-process ends with everything
                        // in it, and the token leaves through the boundary.
                        compensate(r.at("compensate").as_array(),
                                   at.node + "#" + std::to_string(at.visit));
                        for (const auto inner : drop_scope(
                                 state, definition, std::string(r.at("scope").as_string()), true)) {
                            dropped.push_back(inner);
                        }
                        state.ready.push_back(
                            {std::string(r.at("target").as_string()), std::nullopt, false});
                        continue;
                    }
                    if (outcome == "boundary") {
                        // An interrupting boundary timer: the task is gone, the token leaves.
                        if (at.kind == "scope") {
                            for (const auto inner : drop_scope(state, definition, at.node, false)) {
                                dropped.push_back(inner);
                            }
                        }
                        state.ready.push_back(
                            {std::string(r.at("target").as_string()), std::nullopt, false});
                        continue;
                    }
                    if (outcome == "spawn") {
                        // A non-interrupting one: the task stays, a second token starts.
                        done.pop_back();
                        state.waiting.at(index).fired.emplace_back(r.at("target").as_string());
                        state.ready.push_back(
                            {std::string(r.at("target").as_string()), std::nullopt, false});
                        continue;
                    }
                    if (outcome == "resume") {
                        // Held while suspended, or failed: the same node, visited afresh.
                        state.ready.push_back({at.node, at.resume_at, true});
                        continue;
                    }
                    const auto next = at.resume_at.value_or(first_target(definition, at.node));
                    bool listened = !listeners_of(node_listeners(*node), "end").empty();
                    for (const auto* e : definition.outgoing(at.node)) {
                        listened = listened || (e->target == next && !e->listeners.empty());
                    }
                    if (listened) {
                        ++steps;
                        ctx.step.run("leave:" + at.node + "#" + std::to_string(at.visit), [&] {
                            return engine.leave(tenant, id, definition, at.node, at.visit, next);
                        });
                    }
                    state.ready.push_back({next, std::nullopt, false});
                }
                done.insert(done.end(), dropped.begin(), dropped.end());
                std::sort(done.rbegin(), done.rend());
                done.erase(std::unique(done.begin(), done.end()), done.end());
                for (const auto index : done) {
                    state.waiting.erase(state.waiting.begin() + static_cast<long>(index));
                }
            }
            return ctx.step.run("stalled", [&] {
                return engine.finish(tenant, id, "failed", "", "stalled",
                                     "the process did not settle");
            });
        });
}

}  // namespace riveredge::approvals
