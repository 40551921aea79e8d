#include "modules/workflows/service.hpp"

#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/found.hpp"
#include "core/http/host_allow_list.hpp"
#include "core/json/request_fields.hpp"
#include "core/outbox/outbox.hpp"
#include "core/text/storable.hpp"
#include "modules/workflows/definition.hpp"

#include <inngest/errors.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <set>

namespace riveredge::workflows {

namespace json = boost::json;
using core::DomainError;

namespace {

constexpr std::size_t kMaxSource = 256 * 1024;

DomainError invalid_definition(const std::vector<Problem>& problems) {
    json::object fields;
    json::array list;
    for (const auto& p : problems) {
        fields[p.element] = p.reason;
        list.push_back(json::object{{"element", p.element}, {"reason", p.reason}});
    }
    const auto& first = problems.front();
    std::string message = "the definition is invalid: " + first.element + " " + first.reason;
    if (problems.size() > 1) {
        message += " (and " + std::to_string(problems.size() - 1) + " more)";
    }
    return {DomainError::Kind::kInvalid, "invalid_definition", message,
            json::object{{"fields", std::move(fields)}, {"problems", std::move(list)}}};
}

const json::object* find_node(const json::object& model, const std::string& id) {
    for (const auto& n : model.at("nodes").as_array()) {
        if (n.at("id").as_string() == id) {
            return &n.as_object();
        }
    }
    return nullptr;
}

std::string kinds_of(const json::array& actions) {
    if (actions.empty()) {
        return "none";
    }
    std::string out;
    for (const auto& a : actions) {
        out += (out.empty() ? "" : ",") + std::string(a.at("kind").as_string());
    }
    return out;
}

// The events a state takes, in definition order, each once.
json::array events_of(const json::object& model, const std::string& state) {
    json::array out;
    const auto* s = model.at("states").as_object().if_contains(state);
    if (s == nullptr) {
        return out;
    }
    if (const auto* transitions = s->as_object().if_contains("transitions")) {
        std::set<std::string> seen;
        for (const auto& t : transitions->as_array()) {
            const std::string event(t.at("event").as_string());
            if (seen.insert(event).second) {
                out.emplace_back(event);
            }
        }
    }
    return out;
}

json::object as_object_or_empty(const json::value& value) {
    return value.is_object() ? value.get_object() : json::object{};
}

}  // namespace

Service::Read Service::read_source(const std::string& content_type, const std::string& body) {
    if (body.size() > kMaxSource) {
        throw DomainError::bad_request("a definition is at most 256 KiB");
    }
    std::string type = core::lower_ascii(content_type);
    const bool yaml = type.find("yaml") != std::string::npos;
    json::value parsed;
    if (yaml) {
        try {
            parsed = yaml_to_json(body);
        } catch (const SourceError& error) {
            throw DomainError::bad_request(std::string("the YAML cannot be read: ") + error.what());
        }
    } else {
        boost::system::error_code ec;
        parsed = json::parse(body, ec);
        if (ec) {
            throw DomainError::bad_request("the body is not JSON (send YAML as application/yaml)");
        }
    }
    const auto problems = validate(parsed);
    if (!problems.empty()) {
        throw invalid_definition(problems);
    }
    return {parsed.as_object(), yaml ? "yaml" : "json"};
}

json::object Service::summary(const json::object& model) {
    json::object out{{"valid", true},
                     {"key", model.at("key")},
                     {"name", model.contains("name") ? model.at("name") : model.at("key")},
                     {"kind", model.at("kind")}};
    if (model.at("kind") == "dag") {
        out["parallel_groups"] = parallel_groups(model);
    } else {
        json::object states;
        for (const auto& [name, value] : model.at("states").as_object()) {
            states[name] = json::object{{"final", is_final(model, std::string(name))},
                                        {"events", events_of(model, std::string(name))}};
        }
        out["initial"] = model.at("initial");
        out["states"] = std::move(states);
    }
    return out;
}

json::object Service::import(const core::Principal& who,
                             const std::string& content_type,
                             const std::string& body) {
    const auto read = read_source(content_type, body);
    const std::string key(read.model.at("key").as_string());
    const std::string name =
        read.model.contains("name") ? std::string(read.model.at("name").as_string()) : key;
    const std::string kind(read.model.at("kind").as_string());
    const auto groups =
        kind == "dag" ? std::optional(parallel_groups(read.model)) : std::optional<json::array>();
    const auto [id, version] =
        repository_.add_version(who, key, name, kind, read.format, body, read.model, groups);
    auto out = get(who.tenant, id).to_json();
    out["version"] = version;
    out["validation"] = summary(read.model);
    return out;
}

DefinitionRow Service::get(const core::TenantId& tenant, std::int64_t id) {
    return core::found(repository_.definition(tenant, id),
                       "workflow definition " + std::to_string(id));
}

json::object Service::publish(const core::Principal& who, std::int64_t id, int version) {
    get(who.tenant, id);
    if (!repository_.publish(who.tenant, id, version)) {
        throw DomainError::not_found("version " + std::to_string(version) +
                                     " of workflow definition " + std::to_string(id));
    }
    return get(who.tenant, id).to_json();
}

json::object Service::start(const core::Principal& who, const json::object& body) {
    json::object problems;
    std::optional<DefinitionRow> named;
    if (const auto* id = body.if_contains("definition_id"); id != nullptr && id->is_int64()) {
        named = repository_.definition(who.tenant, id->get_int64());
    } else if (const auto* key = body.if_contains("definition_key");
               key != nullptr && key->is_string()) {
        named = repository_.definition_by_key(who.tenant, std::string(key->get_string()));
    } else {
        problems["definition_id"] = "a definition's id (or definition_key) is required";
    }
    const auto input = core::object_field(body, "input", problems).value_or(json::object{});
    // Seconds ahead in the queue.
    const auto priority = core::int_field(body, "priority", -600, 600, problems).value_or(0);
    const auto pinned = core::int_field(body, "version", 1, 1 << 30, problems);
    core::refuse_if_any(problems);
    const auto definition = core::found(std::move(named), "workflow definition");
    const int number = pinned.value_or(definition.published_version.value_or(0));
    const auto version = number > 0 ? repository_.version(who.tenant, definition.id, number)
                                    : std::optional<VersionRow>();
    if (!version || !version->published_at) {
        throw DomainError::conflict(pinned ? "version " + std::to_string(number) + " of '" +
                                                 definition.key + "' is not published"
                                           : "definition '" + definition.key +
                                                 "' has no published version");
    }
    const auto& model = version->model.as_object();
    json::object context;
    if (const auto* defaults = model.if_contains("context")) {
        context = defaults->as_object();
    }
    for (const auto& [k, v] : input) {
        context[k] = v;
    }
    const auto initial = definition.kind == "state_machine"
                             ? std::optional(std::string(model.at("initial").as_string()))
                             : std::nullopt;
    const auto id = core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto created = repository_.insert_execution(tx, who, definition, number, input,
                                                          context, initial, priority);
        auto event = core::row_event(kExecutionStarted, who.tenant, "execution_id", created,
                                     "workflow-execution");
        event.data["priority"] = priority;
        core::outbox::add(tx, who.tenant, event);
        return created;
    });
    return execution(who.tenant, id);
}

json::object Service::model_of(const core::TenantId& tenant, const ExecutionRow& execution) {
    return core::found(repository_.version(tenant, execution.definition_id, execution.version),
                       "workflow definition version")
        .model.as_object();
}

void Service::require_execution(const core::TenantId& tenant, std::int64_t id) {
    execution_or_404({repository_.pool(), tenant}, tenant, id);
}

json::object Service::execution(const core::TenantId& tenant, std::int64_t id) {
    const auto row = execution_or_404({repository_.pool(), tenant}, tenant, id);
    auto out = row.to_json();
    const auto model = model_of(tenant, row);
    if (row.kind == "dag") {
        out["parallel_groups"] = parallel_groups(model);
    } else {
        const std::string target = row.target_state.value_or("");
        const bool ended =
            row.status == "completed" || row.status == "failed" || row.status == "cancelled";
        out["final"] = is_final(model, row.current_state.value_or(""));
        out["allowed_events"] = ended ? json::array{} : events_of(model, target);
    }
    return out;
}

void Service::wake(Transaction& tx, const core::TenantId& tenant, std::int64_t id) {
    // A wake that lands between the run's last look and its wait is lost (Inngest keeps no
    // event for a wait that does not exist yet), so it is sent again after 2 s and 15 s.
    inngest::Event event{.name = kExecutionWake,
                         .data = json::object{{"tenant_id", tenant.value()}, {"execution_id", id}}};
    core::outbox::add(tx, tenant, event);
    for (const auto after : {std::chrono::milliseconds(2000), std::chrono::milliseconds(15000)}) {
        core::outbox::add(tx, tenant, event, after);
    }
}

json::object Service::send_event(const core::Principal& who,
                                 std::int64_t id,
                                 const json::object& body) {
    json::object problems;
    const auto name = core::required_text(body, "event", 1000, problems);
    const auto data = core::object_field(body, "data", problems).value_or(json::object{});
    core::refuse_if_any(problems);
    // The model first, outside the transaction (its version never changes), so that the
    // transaction holds one pooled connection only.
    const auto peek = execution_or_404({repository_.pool(), who.tenant}, who.tenant, id);
    const auto model = model_of(who.tenant, peek);
    return core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) -> json::object {
        const auto row = execution_or_404(tx, who.tenant, id, true);
        if (row.kind != "state_machine") {
            throw DomainError::conflict("execution " + std::to_string(id) +
                                        " runs a DAG, which takes no events");
        }
        if (row.status == "completed" || row.status == "failed" || row.status == "cancelled") {
            throw DomainError::conflict("execution " + std::to_string(id) + " is " + row.status +
                                        ": it takes no event '" + name + "'");
        }
        const std::string state = row.target_state.value_or("");
        const json::object details{{"state", state}, {"event", name}};
        if (is_final(model, state)) {
            throw DomainError(DomainError::Kind::kConflict, "event_not_allowed",
                              "state '" + state + "' is final: it takes no event '" + name + "'",
                              details);
        }
        const auto& transitions =
            model.at("states").at(state).as_object().at("transitions").as_array();
        const json::object scope{{"event", json::object{{"name", name}, {"data", data}}},
                                 {"context", row.context},
                                 {"input", row.input}};
        bool known = false;
        json::array refused;
        for (std::size_t i = 0; i < transitions.size(); ++i) {
            const auto& t = transitions[i].as_object();
            if (t.at("event").as_string() != name) {
                continue;
            }
            known = true;
            if (const auto* guard = t.if_contains("guard")) {
                if (!compile_expression(guard->as_string()).matches(scope)) {
                    refused.push_back(*guard);
                    continue;
                }
            }
            const auto count = tx.exec(
                                     "SELECT count(*) AS n FROM workflow_events WHERE tenant_id = "
                                     "$1 AND execution_id = $2",
                                     {who.tenant, id})
                                   .integer(0, "n");
            // Its run takes every event in one Inngest run, of at most 1000 steps.
            if (const int most = max_events(model); count >= most) {
                throw DomainError::conflict("execution " + std::to_string(id) + " took its " +
                                            std::to_string(most) +
                                            " events, the most one run of its definition takes");
            }
            const std::string target(t.at("target").as_string());
            const auto event_id = repository_.insert_event(
                tx, who.tenant, id, name, data, state, target, static_cast<int>(i), who.user_id);
            repository_.set_target_state(tx, who.tenant, id, target);
            wake(tx, who.tenant, id);
            return json::object{{"id", event_id},       {"execution_id", id},
                                {"event", name},        {"from_state", state},
                                {"to_state", target},   {"transition", i},
                                {"status", "accepted"}, {"execution_status", row.status}};
        }
        if (!known) {
            auto with_allowed = details;
            with_allowed["allowed_events"] = events_of(model, state);
            throw DomainError(DomainError::Kind::kConflict, "event_not_allowed",
                              "event '" + name + "' is not allowed in state '" + state + "'",
                              std::move(with_allowed));
        }
        auto with_guards = details;
        with_guards["guards"] = refused;
        throw DomainError(DomainError::Kind::kConflict, "guard_refused",
                          "event '" + name + "' in state '" + state + "': the guard " +
                              json::serialize(refused.front()) + " does not hold",
                          std::move(with_guards));
    });
}

ExecutionRow Service::execution_or_404(const core::db::ReadIn& in,
                                       const core::TenantId& tenant,
                                       std::int64_t id,
                                       bool for_update) {
    return core::found(repository_.execution(in, tenant, id, for_update),
                       "workflow execution " + std::to_string(id));
}

json::object Service::change_status(const core::Principal& who,
                                    std::int64_t id,
                                    const StatusChange& change) {
    core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto row = execution_or_404(tx, who.tenant, id, true);
        if (!repository_.set_status(tx, who.tenant, id, change.to, change.from, change.error)) {
            throw DomainError::conflict("execution " + std::to_string(id) + " is " + row.status +
                                        change.refused);
        }
        if (change.wake) {
            wake(tx, who.tenant, id);
        }
    });
    return execution(who.tenant, id);
}

json::object Service::pause(const core::Principal& who, std::int64_t id) {
    return change_status(who, id,
                         {.to = "paused",
                          .from = {"queued", "running"},
                          .refused = ": only a queued or running one pauses"});
}

json::object Service::resume(const core::Principal& who, std::int64_t id) {
    return change_status(
        who, id, {.to = "running", .from = {"paused"}, .refused = ", not paused", .wake = true});
}

json::object Service::cancel(const core::Principal& who,
                             std::int64_t id,
                             const json::object& body) {
    json::object problems;
    const auto reason = core::text_field(body, "reason", {.max = 500}, problems).value_or("");
    core::refuse_if_any(problems);
    return change_status(
        who, id,
        {.to = "cancelled",
         .from = {"queued", "running", "paused"},
         .refused = ": it cannot be cancelled",
         .wake = true,
         .error = "cancelled by " + who.user_id + (reason.empty() ? "" : ": " + reason)});
}

json::object Service::begin(const core::TenantId& tenant, std::int64_t id) {
    const auto found = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        auto row = repository_.execution(tx, tenant, id, true);
        if (!row) {
            throw inngest::NonRetriableError("no workflow execution " + std::to_string(id));
        }
        if (repository_.set_status(tx, tenant, id, "running", {"queued"})) {
            row->status = "running";
        }
        return std::move(*row);
    });
    const auto version = repository_.version(tenant, found.definition_id, found.version);
    if (!version) {
        throw inngest::NonRetriableError("execution " + std::to_string(id) +
                                         " has no definition version");
    }
    json::object plan{
        {"status", found.status},
        {"kind", found.kind},
        {"model", version->model},
        {"current_state", found.current_state ? json::value(*found.current_state) : json::value()}};
    if (found.current_state) {
        // A run picking up a state machine another run began: the visits so far, so that its
        // entry steps go on numbering each state's visits (entry:<state>#<visit>) where the
        // history left off instead of reusing a key, which would overwrite that history row
        // and pass a notify action's once-only key.
        json::object visits;
        for (const auto& [state, count] : repository_.entry_visits(tenant, id)) {
            visits[state] = count;
        }
        plan["visits"] = std::move(visits);
    }
    return plan;
}

std::string Service::gate(const core::TenantId& tenant, std::int64_t id) {
    const auto found = repository_.execution({repository_.pool(), tenant}, tenant, id);
    return found ? found->status : "cancelled";
}

json::object Service::run_step(const core::TenantId& tenant,
                               std::int64_t id,
                               const StepCall& call) {
    const auto found = repository_.execution({repository_.pool(), tenant}, tenant, id);
    if (!found) {
        throw inngest::NonRetriableError("no workflow execution " + std::to_string(id));
    }
    if (found->status == "cancelled") {
        // Cancelled while this step waited (a retry's sleep, a level under way): run nothing.
        return json::object{{"ok", false}, {"cancelled", true}, {"error", "cancelled"}};
    }
    // This attempt's end already committed (its answer was lost): running the actions again
    // would apply its `set`s twice to the context they were merged into, and rewrite its history.
    if (const auto done = repository_.node_run(tenant, id, call.key);
        done && done->status == "succeeded" && done->attempts >= call.attempt) {
        return json::object{
            {"ok", true}, {"output", done->output.value_or(nullptr)}, {"attempt", call.attempt}};
    }
    json::object context = as_object_or_empty(found->context);
    json::object scope{{"event", call.event}, {"context", context}, {"input", found->input}};
    json::object recorded{{"context", context}};
    if (!call.event.is_null()) {
        recorded["event"] = call.event;
    }
    repository_.begin_node_run(tenant, id, call.key, call.node, call.phase, kinds_of(call.actions),
                               recorded, call.attempt);
    json::object changes;
    json::array outputs;
    try {
        for (std::size_t i = 0; i < call.actions.size(); ++i) {
            // An output is stored as given but for a NUL or bytes that are not UTF-8 (an http
            // node's answer, a script's result), which jsonb refuses, as U+FFFD: refused, the
            // node's end would fail after its action ran, and the action run again.
            outputs.push_back(core::storable_json(
                run_action(tenant, id, call, call.actions[i].as_object(), i, scope, changes)));
            // A later action of the list sees what an earlier one set.
            for (const auto& [k, v] : changes) {
                scope["context"].as_object()[k] = v;
            }
        }
    } catch (const inngest::RetryAfterError&) {
        // Another attempt still carries out a script action's run: the step is retried after
        // it and finds the run by its key; not a failed attempt of the node.
        throw;
    } catch (const std::exception& error) {
        const bool last = call.attempt >= call.max_attempts;
        const std::string message = core::storable_text(error.what());
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            repository_.end_node_run(tx, tenant, id, call.key, last ? "failed" : "retrying",
                                     std::nullopt, message);
        });
        return json::object{{"ok", false}, {"error", message}, {"attempt", call.attempt}};
    }
    const json::value output =
        outputs.size() == 1 ? outputs.front() : json::value(std::move(outputs));
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        repository_.end_node_run(tx, tenant, id, call.key, "succeeded", output, std::nullopt);
        if (!changes.empty()) {
            repository_.merge_context(tx, tenant, id, changes);
        }
        if (call.keeps_output) {
            repository_.set_node_output(tx, tenant, id, call.node, output);
        }
        if (call.enters_state) {
            repository_.set_current_state(tx, tenant, id, call.node);
        }
    });
    return json::object{{"ok", true}, {"output", output}, {"attempt", call.attempt}};
}

json::object Service::next_event(const core::TenantId& tenant, std::int64_t id) {
    const auto status = gate(tenant, id);
    if (status != "running") {
        return json::object{{"status", status}};
    }
    const auto next = repository_.next_event(tenant, id);
    if (!next) {
        return json::object{{"status", status}};
    }
    return json::object{{"status", status}, {"event", next->to_json()}};
}

json::object Service::apply_event(const core::TenantId& tenant,
                                  std::int64_t id,
                                  std::int64_t event_id) {
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        repository_.mark_applied(tx, tenant, event_id, id);
    });
    return json::object{{"applied", event_id}};
}

json::array Service::compensation_plan(const core::TenantId& tenant, std::int64_t id) {
    const auto found = repository_.execution({repository_.pool(), tenant}, tenant, id);
    if (!found) {
        return {};
    }
    const auto model = model_of(tenant, *found);
    const bool dag = found->kind == "dag";
    json::array plan;
    for (const auto& run : repository_.completed_runs(tenant, id, dag ? "node" : "entry")) {
        const json::object* owner = nullptr;
        if (dag) {
            owner = find_node(model, run.node);
        } else if (const auto* s = model.at("states").as_object().if_contains(run.node)) {
            owner = &s->as_object();
        }
        if (owner == nullptr || !owner->contains("compensate")) {
            continue;
        }
        plan.push_back(json::object{{"key", run.step_key},
                                    {"node", run.node},
                                    {"actions", actions_of(*owner, "compensate")}});
    }
    return plan;
}

json::object Service::finish(const core::TenantId& tenant,
                             std::int64_t id,
                             const std::string& status,
                             const std::optional<std::string>& error,
                             bool compensated) {
    if (compensated) {
        repository_.mark_compensated(tenant, id);
    }
    const auto found = repository_.execution({repository_.pool(), tenant}, tenant, id);
    // "queued" too: a run that fails before its begin step ever succeeded ends here (through
    // on_failure) with its execution never moved to running.
    const bool changed = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        return repository_.set_status(tx, tenant, id, status, {"queued", "running", "paused"},
                                      error, found ? std::optional(found->context) : std::nullopt);
    });
    return json::object{{"status", changed ? status : (found ? found->status : "unknown")}};
}

}  // namespace riveredge::workflows
