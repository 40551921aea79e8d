#include "modules/approvals/engine.hpp"

#include "core/errors.hpp"
#include "core/found.hpp"
#include "core/http/host_allow_list.hpp"
#include "core/http/outbound.hpp"
#include "core/json/fields.hpp"
#include "core/json/request_fields.hpp"
#include "core/log/logger.hpp"
#include "core/text/storable.hpp"
#include "core/time/rfc3339.hpp"
#include "modules/approvals/decision_table.hpp"

#include <inngest/client.hpp>
#include <inngest/errors.hpp>
#include <inngest/local/expression.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;
using core::DomainError;
using namespace std::chrono_literals;

// A run reads the database (park) and then waits for a wake event; Inngest drops an event that
// arrives between the two, as it keeps no events for waits that do not exist yet. So every wake
// is sent again after each of these delays, longer than that gap, and a lost wake costs seconds;
// a spare one costs the run one more park.
const std::vector<std::chrono::milliseconds> kWakeEchoes{2s, 15s};
// How long a wait lasts before the run re-reads the database anyway, should every wake be lost
// (the executor stalled for longer than the echoes): weighed against the run's step budget.
constexpr auto kRecheck = std::chrono::milliseconds(15min);
/// A held instance waits for its resume's (or retry's) wake, and its echoes; a day bounds how
/// long a lost one could hold it.
constexpr auto kHeldRecheck = std::chrono::milliseconds(24h);

/// Suspended by an administrator, or failed at a task and waiting for a retry.
bool held(const std::string& status) {
    return status == "suspended" || status == "failed";
}

bool alive(const std::string& status) {
    return status == "running" || held(status);
}

// The event that starts a new instance's run; its id is the instance's, so a resend is one run.
inngest::Event started_event(const core::TenantId& tenant, std::int64_t id) {
    return inngest::Event{
        .name = kInstanceStarted,
        .data = {{"tenant_id", tenant.value()}, {"instance_id", id}, {"generation", 0}},
        .id = "approval-instance-" + tenant.value() + "-" + std::to_string(id)};
}

inngest::Event wake_event(const core::TenantId& tenant, std::int64_t id, const std::string& why) {
    return inngest::Event{
        .name = kInstanceWake,
        .data = {{"tenant_id", tenant.value()}, {"instance_id", id}, {"why", why}}};
}

/// The error boundary event of a task or sub-process that catches `code`: the one naming that
/// code, else the one with no code (it catches any error).
const FlowNode* error_boundary(const ProcessDefinition& definition,
                               const std::string& task,
                               const std::string& code = {}) {
    const FlowNode* any = nullptr;
    for (const auto* b : definition.boundaries(task)) {
        if (boundary_of(*b).kind != "error") {
            continue;
        }
        const auto filter = error_code_of(*b);
        if (filter.empty() && any == nullptr) {
            any = b;
        } else if (!filter.empty() && filter == code) {
            return b;
        }
    }
    return any;
}

/// Who catches an error (with its code, if it has one) that leaves `node` past its own
/// boundaries: the nearest enclosing sub-process's error boundary that matches.
const FlowNode* enclosing_error_catcher(const ProcessDefinition& definition,
                                        const FlowNode& node,
                                        const std::string& code = {}) {
    for (const FlowNode* scope = definition.node(node.parent); scope != nullptr;
         scope = definition.node(scope->parent)) {
        if (const auto* b = error_boundary(definition, scope->id, code)) {
            return b;
        }
    }
    return nullptr;
}

/// Who catches a failed service, script or business rule task's error (it has no code): its
/// own error boundary, else the nearest enclosing sub-process's that catches any error.
const FlowNode* task_error_catcher(const ProcessDefinition& definition, const FlowNode& task) {
    if (const auto* own = error_boundary(definition, task.id)) {
        return own;
    }
    return enclosing_error_catcher(definition, task);
}

/// Whether a failed call activity's error (with the code its child threw) is caught: by its
/// own error boundary or an enclosing sub-process's.
bool call_failure_caught(const ProcessDefinition& definition,
                         const std::string& call,
                         const std::string& code) {
    const FlowNode* node = definition.node(call);
    return node != nullptr && (error_boundary(definition, call, code) != nullptr ||
                               enclosing_error_catcher(definition, *node, code) != nullptr);
}

/// Who catches a cancel end event: the cancel boundary of the nearest enclosing transaction (a
/// cancel concerns only that one), or nothing.
const FlowNode* cancel_catcher(const ProcessDefinition& definition, const FlowNode& node) {
    for (const FlowNode* scope = definition.node(node.parent); scope != nullptr;
         scope = definition.node(scope->parent)) {
        if (!is_transaction(*scope)) {
            continue;
        }
        for (const auto* b : definition.boundaries(scope->id)) {
            if (boundary_of(*b).kind == "cancel") {
                return b;
            }
        }
        return nullptr;
    }
    return nullptr;
}

constexpr int kMaxReminders = 3;
// Instances started by call activities, one inside the other, at most.
constexpr int kMaxCallDepth = 10;

bool is_expression(const std::string& text) {
    return text.size() >= 3 && text.rfind("${", 0) == 0 && text.back() == '}';
}

// Input and output mappings: "${expr}" strings are evaluated over `scope` without side
// effects; other values are literals.
json::value map_value(const json::value& value, const json::object& scope) {
    if (value.is_string() && is_expression(std::string(value.as_string()))) {
        const auto expression =
            inngest::local::Expression::compile(unwrap_expression(std::string(value.as_string())));
        if (!expression) {
            throw inngest::NonRetriableError("mapping " + std::string(value.as_string()) +
                                             " does not compile: " + expression.error().message);
        }
        const auto result = expression->evaluate(scope);
        return result ? *result : json::value(nullptr);
    }
    if (value.is_object()) {
        json::object out;
        for (const auto& [key, v] : value.as_object()) {
            out[key] = map_value(v, scope);
        }
        return out;
    }
    if (value.is_array()) {
        json::array out;
        for (const auto& v : value.as_array()) {
            out.push_back(map_value(v, scope));
        }
        return out;
    }
    return value;
}

json::object scope_of(const json::object& variables, const std::string& initiator) {
    json::object scope = variables;
    scope["initiator"] = initiator;
    return scope;
}

bool holds(const FlowEdge& edge, const json::object& scope) {
    if (!edge.condition) {
        return true;
    }
    const auto expression = inngest::local::Expression::compile(unwrap_expression(*edge.condition));
    return expression && expression->matches(scope);
}

json::object next_of(std::vector<std::string> targets) {
    json::array next;
    for (auto& t : targets) {
        next.emplace_back(std::move(t));
    }
    return json::object{{"next", std::move(next)}};
}

ApprovalRule rule_of(const json::object& config) {
    ApprovalRule rule;
    if (const auto mode = core::string_field(config, "mode"); !mode.empty()) {
        rule.mode = mode;
    }
    if (const auto* ratio = config.if_contains("ratio"); ratio != nullptr && ratio->is_number()) {
        rule.ratio = ratio->to_number<double>();
    }
    if (const auto* veto = config.if_contains("veto"); veto != nullptr) {
        if (veto->is_bool() && veto->as_bool()) {
            rule.veto.emplace_back("*");
        } else if (veto->is_array()) {
            for (const auto& v : veto->as_array()) {
                if (v.is_string()) {
                    rule.veto.emplace_back(v.as_string());
                }
            }
        }
    }
    return rule;
}

std::string tag_of(const std::string& node, int visit) {
    return node + "#" + std::to_string(visit);
}

TimePoint time_of(std::string_view text) {
    const auto parsed = core::parse_time(text);
    if (!parsed) {
        throw inngest::NonRetriableError("not an RFC 3339 time: " + std::string(text));
    }
    return TimePoint(*parsed);
}

/// When a timer catch event falls due: its `date`, or its `duration` after `from`.
TimePoint timer_due(const FlowNode& timer, TimePoint from) {
    const auto duration = core::string_field(timer.config, "duration");
    return duration.empty() ? time_of(core::string_field(timer.config, "date"))
                            : from + iso_duration(duration).value_or(0ms);
}

}  // namespace

// ---- REST ------------------------------------------------------------------------------

boost::json::object Engine::start(const core::Principal& initiator,
                                  const boost::json::object& request) {
    json::object problems;
    core::require_fields(request, {"definition_id"}, problems);
    const auto definition_id = core::int_field(request, "definition_id", 1,
                                               std::numeric_limits<std::int64_t>::max(), problems);
    const auto business_key =
        core::text_field(request, "business_key", {.max = 200, .min = 1}, problems);
    auto variables = core::object_field(request, "variables", problems).value_or(json::object{});
    if (json::serialize(variables).size() > 256 * 1024) {
        problems["variables"] = "at most 256 KiB";
    }
    core::refuse_if_any(problems);
    const auto id = *definition_id;
    const auto definition = core::found(p_.definitions.find(initiator.tenant, id),
                                        "process definition " + std::to_string(id));
    if (definition.archived_at) {
        throw DomainError::conflict("process definition " + std::to_string(id) + " is archived");
    }
    const int version = definition.latest_version;
    if (version == 0) {
        throw DomainError::conflict("process definition " + std::to_string(id) +
                                    " has no published version");
    }
    // The instance and its start event in one transaction (the outbox): a started instance
    // always runs.
    const auto instance =
        p_.instances.create(initiator.tenant,
                            {.definition_id = id,
                             .version = version,
                             .business_key = business_key,
                             .variables = variables,
                             .initiator = initiator.user_id,
                             .parent = std::nullopt},
                            [&initiator](std::int64_t instance_id) {
                                return started_event(initiator.tenant, instance_id);
                            });
    if (!instance) {
        throw DomainError::conflict("an instance with business key '" + business_key.value_or("") +
                                    "' exists already");
    }
    return get(initiator.tenant, *instance);
}

boost::json::object Engine::get(const core::TenantId& tenant, std::int64_t id) {
    auto out =
        core::found(p_.instances.find(tenant, id), "instance " + std::to_string(id)).to_json();
    out["tasks"] = p_.tasks.tasks_of(tenant, id);
    return out;
}

boost::json::object Engine::act(const core::Principal& who,
                                const core::RequestOrigin& from,
                                std::int64_t task_id,
                                const std::string& action,
                                const boost::json::object& request) {
    json::object problems;
    const auto text = [&](const char* key, bool required, std::size_t max) {
        return core::text_field(request, key, {.max = max, .min = 1, .required = required},
                                problems);
    };
    const auto comment = text("comment", action == "comment", 2000);
    const auto changes =
        core::object_field(request, "variables", problems).value_or(json::object{});
    std::optional<std::string> to;
    if (action == "transfer" || action == "delegate") {
        to = text("to", true, 200);
    }
    std::optional<std::string> return_to;
    if (action == "return") {
        return_to = text("return_to", true, 200);
    }
    std::optional<std::string> signer;
    bool before = false;
    if (action == "add-signer") {
        signer = text("user", true, 200);
        const auto position = core::string_field(request, "position");
        if (position != "before" && position != "after") {
            problems["position"] = "before or after";
        }
        before = position == "before";
    }
    const json::object* signature = nullptr;
    std::optional<std::string> signing_reason;
    if (const auto* v = request.if_contains("signature"); v != nullptr && !v->is_null()) {
        signature = v->if_object();
        if (action != "approve" || signature == nullptr) {
            problems["signature"] =
                "an object {password, user_id, reason}, given when approving a signing step";
        } else if (const auto* reason = signature->if_contains("reason");
                   reason == nullptr || !reason->is_string() || reason->get_string().empty() ||
                   reason->get_string().size() > 1000) {
            problems["signature.reason"] = "required: why you sign, 1 to 1000 bytes";
        } else {
            signing_reason = std::string(reason->get_string());
        }
    }
    core::refuse_if_any(problems);
    ActionResult result;
    if (action == "approve" && signature != nullptr) {
        // Re-authentication first, in its own transaction (a wrong password is counted even
        // though nothing is decided); the seal then commits with the decision.
        const auto authenticated = p_.signer.authenticate(who, from, *signature);
        result = p_.tasks.decide(who, task_id, {action, comment, return_to, changes}, p_.now(),
                                 [&](core::db::Transaction& tx, const SignatureStep& step) {
                                     p_.signer.sign(tx, authenticated, step.record_id, step.meaning,
                                                    *signing_reason, step.step_key);
                                 });
    } else if (action == "approve" || action == "reject" || action == "return") {
        result = p_.tasks.decide(who, task_id, {action, comment, return_to, changes}, p_.now());
    } else if (action == "transfer" || action == "delegate") {
        result = p_.tasks.reassign(who, task_id, *to, action == "delegate", comment);
    } else if (action == "resolve") {
        result = p_.tasks.resolve(who, task_id, comment);
    } else if (action == "add-signer") {
        result = p_.tasks.add_signer(who, task_id, *signer, before, comment);
    } else if (action == "claim") {
        result = p_.tasks.claim(who, task_id);
    } else if (action == "comment") {
        result = p_.tasks.comment(who, task_id, *comment);
    } else {
        throw DomainError::not_found("task action " + action);
    }
    notify_tasks(who.tenant, result.instance_id, result.node_id, result.new_work,
                 action == "approve" ? "it is your turn" : action, false);
    if (result.visit_status != "active" || action == "approve") {
        wake(who.tenant, result.instance_id, action);
    }
    return json::object{{"task_id", task_id},
                        {"instance_id", result.instance_id},
                        {"node_id", result.node_id},
                        {"action", action},
                        {"step_status", result.visit_status}};
}

void Engine::withdraw(const core::Principal& who, std::int64_t id) {
    const auto children = p_.instances.withdraw(who, id);
    wake(who.tenant, id, "withdrawn");
    wake_related(who.tenant, id, children);
}

namespace {

// A request's optional `data`: an object merged into the process variables.
json::object data_field(const boost::json::object& request, json::object& problems) {
    return core::object_field(request, "data", problems).value_or(json::object{});
}

std::string required_reason(const boost::json::object& request, json::object& problems) {
    return core::required_text(request, "reason", 1000, problems);
}

}  // namespace

void Engine::terminate(const core::Principal& admin,
                       std::int64_t id,
                       const boost::json::object& request) {
    json::object problems;
    const auto reason = required_reason(request, problems);
    core::refuse_if_any(problems);
    const auto children = p_.instances.terminate(admin, id, reason);
    wake(admin.tenant, id, "terminated");
    wake_related(admin.tenant, id, children);
}

void Engine::change_hold(const core::Principal& admin,
                         std::int64_t id,
                         HoldChange change,
                         const boost::json::object& request) {
    json::object problems;
    const auto reason = required_reason(request, problems);
    core::refuse_if_any(problems);
    // A resume or retry wakes the held run in the same transaction: it never waits a day.
    std::optional<inngest::Event> wake_up;
    if (change != HoldChange::kSuspend) {
        wake_up =
            wake_event(admin.tenant, id, change == HoldChange::kResume ? "resumed" : "retried");
    }
    p_.instances.change_hold(admin, id, change, reason, wake_up, kWakeEchoes);
}

boost::json::object Engine::reassign(const core::Principal& admin,
                                     std::int64_t task_id,
                                     const boost::json::object& request) {
    json::object problems;
    const auto reason = required_reason(request, problems);
    const auto to = core::required_text(request, "to", 200, problems);
    core::refuse_if_any(problems);
    const auto result = p_.tasks.reassign_stuck(admin, task_id, to, reason);
    notify_tasks(admin.tenant, result.instance_id, result.node_id, result.new_work,
                 "reassigned to you", false);
    return json::object{{"task_id", task_id},
                        {"instance_id", result.instance_id},
                        {"node_id", result.node_id},
                        {"action", "reassign"},
                        {"step_status", result.visit_status}};
}

void Engine::signal(const core::Principal& who,
                    std::int64_t id,
                    const boost::json::object& request) {
    json::object problems;
    const auto name = core::required_text(request, "name", 200, problems);
    if (name.starts_with(kMessagePrefix)) {
        // Messages are kept beside signals under this prefix, and sent by administrators only:
        // a signal so named would pass for one.
        problems["name"] = std::string("a signal's name does not start with \"") + kMessagePrefix +
                           "\" (messages are sent to POST /approvals/messages)";
    }
    const auto data = data_field(request, problems);
    core::refuse_if_any(problems);
    p_.instances.signal(who, id, name, data);
    wake(who.tenant, id, "signal");
}

boost::json::object Engine::diagram(const core::TenantId& tenant, std::int64_t id) {
    const auto instance =
        core::found(p_.instances.find(tenant, id), "instance " + std::to_string(id));
    const auto version =
        core::found(p_.definitions.version(tenant, instance.definition_id, instance.version),
                    "the instance's definition version");
    std::map<std::string, std::pair<std::string, int>> latest;
    const auto visits = p_.tasks.visits_of(tenant, id);
    json::array visits_json;
    for (const auto& v : visits) {
        auto& entry = latest[v.node_id];
        entry.first = v.status;
        ++entry.second;
        visits_json.push_back(v.to_json());
    }
    const auto definition = ProcessDefinition::from_json(version.compiled);
    json::array nodes;
    for (const auto& n : definition.nodes) {
        const auto found = latest.find(n.id);
        nodes.push_back(json::object{
            {"id", n.id},
            {"type", n.type},
            {"name", n.name},
            {"status", found == latest.end() ? "pending" : found->second.first},
            {"visits", found == latest.end() ? 0 : found->second.second},
            {"parent", n.parent.empty() ? json::value(nullptr) : json::value(n.parent)}});
    }
    return json::object{{"instance_id", id},
                        {"status", instance.status},
                        {"current_nodes", instance.current_nodes},
                        {"nodes", std::move(nodes)},
                        {"visits", std::move(visits_json)},
                        {"source", version.source}};
}

// ---- Steps -----------------------------------------------------------------------------

boost::json::object Engine::load(const core::TenantId& tenant, std::int64_t id, int generation) {
    const auto instance = p_.instances.find(tenant, id);
    if (!instance) {
        throw inngest::NonRetriableError("instance " + std::to_string(id) + " does not exist");
    }
    if (!alive(instance->status) || instance->generation != generation) {
        return json::object{{"stop", true}};
    }
    const auto version = p_.definitions.version(tenant, instance->definition_id, instance->version);
    if (!version) {
        throw inngest::NonRetriableError("the instance's definition version is missing");
    }
    return json::object{{"definition", version->compiled},
                        {"state", json::value_from(instance->engine_state)}};
}

boost::json::object Engine::visit(const core::TenantId& tenant,
                                  std::int64_t id,
                                  const ProcessDefinition& definition,
                                  const boost::json::object& token) {
    const std::string node_id(token.at("node").as_string());
    const FlowNode* node = definition.node(node_id);
    bool listened = node != nullptr && !node_listeners(*node).empty();
    for (const auto* e : definition.outgoing(node_id)) {
        listened = listened || !e->listeners.empty();
    }
    if (!listened) {
        return visit_node(tenant, id, definition, token);
    }
    const auto tag = tag_of(node_id, static_cast<int>(token.at("visit").to_number<std::int64_t>()));
    const auto running = [&]() -> std::optional<boost::json::object> {
        const auto instance = p_.instances.find(tenant, id);
        if (!instance || instance->status != "running") {
            return std::nullopt;
        }
        return scope_of(instance->variables, instance->initiator);
    };
    // A service task's retry (`attempt` 2 and on) is the same visit: the node started once.
    if (const auto scope = running(); scope && !token.contains("attempt")) {
        run_listeners(tenant, id, node_listeners(*node), "start", node_id, *scope, tag);
    }
    auto result = visit_node(tenant, id, definition, token);
    if (result.contains("next")) {
        if (const auto scope = running()) {
            // The token leaves a node that did its work at once.
            run_listeners(tenant, id, node_listeners(*node), "end", node_id, *scope, tag);
            for (const auto& next : result.at("next").as_array()) {
                for (const auto* e : definition.outgoing(node_id)) {
                    if (e->target == next.as_string()) {
                        run_listeners(tenant, id, e->listeners, "take", e->id, *scope, tag);
                    }
                }
            }
        }
    }
    return result;
}

boost::json::object Engine::compensate(const core::TenantId& tenant,
                                       std::int64_t id,
                                       const ProcessDefinition& definition,
                                       const boost::json::object& item) {
    const std::string handler_id(item.at("handler").as_string());
    const std::string node_id(item.at("node").as_string());
    const int visit = static_cast<int>(item.at("visit").to_number<std::int64_t>());
    const FlowNode* handler = definition.node(handler_id);
    const auto instance = p_.instances.find(tenant, id);
    json::object entry{{"tag", tag_of(node_id, visit)}, {"handler", handler_id}};
    if (handler == nullptr || !instance) {
        return entry;
    }
    const auto scope = scope_of(instance->variables, instance->initiator);
    const auto& c = handler->config;
    const auto key = "approval-" + std::to_string(id) + "-compensate-" + tag_of(node_id, visit);
    // Best effort, like listeners: a handler's failure is recorded and the others still run.
    try {
        if (handler->type == "scriptTask") {
            const auto* args = c.if_contains("arguments");
            entry["result"] =
                p_.scripts
                    .run_to_success(tenant, "approvals",
                                    c.at("script_id").to_number<std::int64_t>(),
                                    args ? map_value(*args, scope) : nullptr, "approval", key)
                    .at("result");
        } else {
            json::value input = json::object{};
            if (const auto* mapping = c.if_contains("input_mapping")) {
                input = map_value(*mapping, scope);
            }
            entry["result"] = call_activity(tenant, c, input, key);
        }
    } catch (const inngest::RetryAfterError&) {
        // Another attempt still carries out the handler's script run: the step is retried after
        // it and finds the run by its key.
        throw;
    } catch (const std::exception& error) {
        entry["error"] = error.what();
    }
    p_.instances.log(tenant, id, entry.contains("error") ? "compensation_failed" : "compensated",
                     entry, "compensate:" + tag_of(node_id, visit) + ">" + handler_id);
    return entry;
}

std::string first_target(const ProcessDefinition& definition,
                         const std::string& node,
                         std::string_view what) {
    const auto out = definition.outgoing(node);
    if (out.empty()) {
        throw inngest::NonRetriableError(std::string(what) + " '" + node +
                                         "' has no outgoing flow");
    }
    return out.front()->target;
}

boost::json::object Engine::complete_scope(const core::TenantId& tenant,
                                           std::int64_t id,
                                           const ProcessDefinition& definition,
                                           const std::string& node_id,
                                           int visit) {
    const auto next = first_target(definition, node_id, "sub-process");
    p_.tasks.close_visit({tenant, id, node_id, visit}, "completed", p_.now());
    leave(tenant, id, definition, node_id, visit, next);
    return next_of({next});
}

boost::json::object Engine::leave(const core::TenantId& tenant,
                                  std::int64_t id,
                                  const ProcessDefinition& definition,
                                  const std::string& node_id,
                                  int visit,
                                  const std::string& target) {
    const auto instance = p_.instances.find(tenant, id);
    const FlowNode* node = definition.node(node_id);
    if (!instance || node == nullptr) {
        return json::object{{"left", false}};
    }
    const auto scope = scope_of(instance->variables, instance->initiator);
    const auto tag = tag_of(node_id, visit);
    run_listeners(tenant, id, node_listeners(*node), "end", node_id, scope, tag);
    for (const auto* e : definition.outgoing(node_id)) {
        if (e->target == target) {
            run_listeners(tenant, id, e->listeners, "take", e->id, scope, tag);
        }
    }
    return json::object{{"left", true}};
}

void Engine::run_listeners(const core::TenantId& tenant,
                           std::int64_t id,
                           const boost::json::array& listeners,
                           const std::string& event,
                           const std::string& element,
                           const boost::json::object& scope,
                           const std::string& tag) {
    int position = 0;
    for (auto listener : listeners_of(listeners, event)) {
        // Each listener's call and entry are its own, however many share the event.
        const auto key = event + "-" + element + "-" + tag + "-" + std::to_string(++position);
        if (const auto activity = core::string_field(listener, "activity"); !activity.empty()) {
            listener["activity_name"] = activity;
        }
        json::value input = json::object{{"event", event}, {"element", element}};
        if (const auto* mapping = listener.if_contains("input_mapping")) {
            input = map_value(*mapping, scope);
        }
        // Best effort: a listener observes the flow and does not stop it; what it did is logged.
        json::object entry{{"event", event}, {"element", element}};
        try {
            entry["result"] = call_activity(tenant, listener, input,
                                            "approval-" + std::to_string(id) + "-listener-" + key);
        } catch (const inngest::RetryAfterError&) {
            // Its script run is still carried out by an earlier attempt: the step is retried
            // after it and gets the run by its key, as the other callers let it.
            throw;
        } catch (const std::exception& error) {
            entry["error"] = error.what();
        }
        p_.instances.log(tenant, id, entry.contains("error") ? "listener_failed" : "listener",
                         entry, "listener:" + key);
    }
}

boost::json::object Engine::visit_node(const core::TenantId& tenant,
                                       std::int64_t id,
                                       const ProcessDefinition& definition,
                                       const boost::json::object& token) {
    const std::string node_id(token.at("node").as_string());
    const int visit = static_cast<int>(token.at("visit").to_number<std::int64_t>());
    const FlowNode* node = definition.node(node_id);
    if (node == nullptr) {
        throw inngest::NonRetriableError("node " + node_id + " is not in the definition");
    }
    const VisitRef here{tenant, id, *node, visit};
    const auto instance = p_.instances.find(tenant, id);
    if (instance && held(instance->status)) {
        if (instance->status == "failed") {
            const auto vs = p_.tasks.visit_state(here.key());
            const auto reason =
                p_.instances.failure_reason(tenant, id, "failed:" + tag_of(node_id, visit));
            if (reason && !(vs && vs->status == "failed")) {
                // This visit's step ended the instance failed (no approver, an element that
                // cannot run: no task held for a retry) and runs again: it ends it the same way.
                return finish(tenant, id, "failed", node_id, "failed:" + tag_of(node_id, visit),
                              *reason);
            }
            // This visit's task failed the instance and its step runs again (the attempt died
            // after the mark, perhaps before its notice): the notice goes out as that attempt's
            // would.
            if (reason) {
                tell_failed(tenant, id, node_id, visit, *reason);
            }
        }
        // Nothing happens at a node while an administrator holds the instance: the token
        // waits here and visits it afresh once the instance runs again.
        return json::object{{"wait", "held"}};
    }
    if (instance && instance->status == "completed" && node->type == "endEvent") {
        // The end event's step again after its finish committed (the attempt died, or its
        // answer was lost): finish ends nothing twice, but wakes whom that attempt may not have.
        return finish(tenant, id, "completed", node_id, "finish:" + tag_of(node_id, visit));
    }
    if (!instance || instance->status != "running") {
        return json::object{{"end", instance ? instance->status : std::string("missing")}};
    }
    const auto& variables = instance->variables;
    const std::string& initiator = instance->initiator;
    const auto scope = scope_of(variables, initiator);
    const auto now = p_.now();
    const std::string tag = tag_of(node_id, visit);
    const auto pass = [&](std::vector<std::string> next, const std::string& kind) {
        p_.tasks.record_visit(here.key(), kind, "completed", now);
        copy_to(here, variables, initiator);
        return next_of(std::move(next));
    };
    const auto single_next = [&] {
        return std::vector<std::string>{first_target(definition, node_id)};
    };

    if (node->type == "startEvent") {
        if (visit == 1) {
            return pass(single_next(), "event");
        }
        // Returned to the start: the initiator resubmits.
        return enter_user_task(here, variables, initiator, true);
    }
    if (node->type == "endEvent" && !end_throws(*node).empty()) {
        return throw_from(here, definition);
    }
    if (node->type == "subProcess") {
        // Its inner start event begins; the run keeps the sub-process waiting until every
        // inner token has ended.
        const auto* inner = definition.inner_start(node_id);
        if (inner == nullptr) {
            return finish(tenant, id, "failed", node_id, "failed:" + tag,
                          "sub-process '" + node_id + "' has no start event");
        }
        p_.tasks.open_visit(tenant, id,
                            VisitOpening{node_id, visit, "subprocess", {}, {}, {}, std::nullopt},
                            now, "enter:" + tag);
        copy_to(here, variables, initiator);
        return json::object{{"wait", "scope"}, {"start", inner->id}};
    }
    if (node->type == "endEvent") {
        if (!token.at("last").as_bool()) {
            return pass({}, "event");
        }
        p_.tasks.record_visit(here.key(), "event", "completed", now);
        copy_to(here, variables, initiator);
        return finish(tenant, id, "completed", node_id, "finish:" + tag);
    }
    if (node->type == "exclusiveGateway") {
        auto chosen = choose(definition, *node, scope);
        if (!chosen) {
            // As an inclusive gateway does: the instance ends failed and its initiator is told.
            return finish(
                tenant, id, "failed", node_id, "failed:" + tag,
                "no condition of gateway '" + node_id + "' holds and it has no default flow");
        }
        return pass({std::move(*chosen)}, "gateway");
    }
    if (node->type == "boundaryEvent") {
        return pass(single_next(), "event");
    }
    if (node->type == "parallelGateway" || node->type == "inclusiveGateway") {
        const auto out = definition.outgoing(node_id);
        std::vector<std::string> next;
        const FlowEdge* fallback = nullptr;
        for (const auto* e : out) {
            if (e->is_default) {
                fallback = e;
            } else if (node->type == "parallelGateway" || holds(*e, scope)) {
                next.push_back(e->target);
            }
        }
        if (next.empty() && fallback != nullptr) {
            next.push_back(fallback->target);
        }
        if (next.empty()) {
            return finish(tenant, id, "failed", node_id, "failed:" + tag,
                          "no flow out of gateway '" + node_id + "' holds and it has no default");
        }
        return pass(std::move(next), "gateway");
    }
    if (node->type == "userTask" || node->type == "manualTask") {
        return enter_user_task(here, variables, initiator, false);
    }
    const bool catcher = node->type == "timerCatchEvent" || node->type == "signalCatchEvent" ||
                         node->type == "messageCatchEvent" || node->type == "receiveTask";
    if (catcher && token.contains("caught")) {
        // Won an event-based gateway's race: its event has happened already.
        return pass(single_next(), "event");
    }
    if (node->type == "eventBasedGateway") {
        std::optional<TimePoint> due;  // the first of its timers, shown on the visit
        for (const auto* e : definition.outgoing(node_id)) {
            const FlowNode* target = definition.node(e->target);
            if (target == nullptr || target->type != "timerCatchEvent") {
                continue;
            }
            const TimePoint at = timer_due(*target, now);
            due = std::min(due.value_or(at), at);
        }
        p_.tasks.open_visit(tenant, id, VisitOpening{node_id, visit, "race", {}, {}, due, {}}, now,
                            "enter:" + tag);
        return json::object{{"wait", "race"}};
    }
    if (node->type == "compensationThrowEvent") {
        // Every completed task with a compensation handler, not compensated yet, newest first:
        // the run calls each handler in that order (a step each), then goes on.
        auto compensate =
            owed_compensations(tenant, id, definition, [](const std::string&) { return true; });
        auto out = pass(single_next(), "event");
        out["compensate"] = std::move(compensate);
        return out;
    }
    if (node->type == "signalThrowEvent" || node->type == "messageThrowEvent") {
        throw_event(here, scope);
        return pass(single_next(), "event");
    }
    if (node->type == "timerCatchEvent") {
        const TimePoint due = timer_due(*node, now);
        p_.tasks.open_visit(tenant, id,
                            VisitOpening{node_id, visit, "timer", {}, {}, due, std::nullopt}, now,
                            "enter:" + tag);
        return json::object{{"wait", "timer"}};
    }
    if (node->type == "signalCatchEvent" || node->type == "messageCatchEvent" ||
        node->type == "receiveTask") {
        std::optional<TimePoint> due;
        if (const auto timeout = iso_duration(core::string_field(node->config, "timeout"))) {
            due = now + *timeout;
        }
        p_.tasks.open_visit(tenant, id,
                            VisitOpening{node_id, visit, "signal", {}, {}, due, std::nullopt}, now,
                            "enter:" + tag);
        return json::object{{"wait", "signal"}};
    }
    const FlowNode* on_error = task_error_catcher(definition, *node);
    const auto settle_task = [&](json::object outcome, const std::string& kind) {
        if (outcome.contains("next") && !outcome.contains("caught")) {
            return pass(single_next(), kind);
        }
        if (outcome.contains("caught") && boundary_of(*on_error).attached_to != node_id) {
            // Caught by an enclosing sub-process: it ends with everything in it.
            return escape(tenant, id, definition, *node, on_error, "task '" + node_id + "' failed",
                          "failed");
        }
        return outcome;
    };
    if (node->type == "serviceTask") {
        const int attempt =
            token.contains("attempt") ? static_cast<int>(token.at("attempt").as_int64()) : 1;
        return settle_task(run_service(here, attempt, scope, on_error), "service");
    }
    if (node->type == "callActivity") {
        return call_child(here, scope, *instance);
    }
    if (node->type == "businessRuleTask") {
        return settle_task(run_rules(here, scope, on_error), "rule");
    }
    if (node->type == "scriptTask") {
        return settle_task(run_script(here, scope, on_error), "script");
    }
    return finish(tenant, id, "failed", node_id, "failed:" + tag,
                  "element type " + node->type + " cannot run");
}

boost::json::object Engine::enter_user_task(const VisitRef& here,
                                            const boost::json::object& variables,
                                            const std::string& initiator,
                                            bool resubmit) {
    const auto& [tenant, id, node, visit] = here;
    const auto now = p_.now();
    const std::string tag = tag_of(node.id, visit);
    VisitOpening opening{
        node.id, visit, resubmit ? "resubmit" : node.type == "manualTask" ? "manual" : "task",
        {},      {},    {},
        {}};
    if (resubmit) {
        opening.assignees = {initiator};
    } else {
        opening.rule = rule_of(node.config);
        opening.assignees = resolve_assignees(tenant, node, variables, initiator);
        if (const auto* deadline = node.config.if_contains("deadline");
            deadline != nullptr && deadline->is_object()) {
            opening.deadline = deadline->as_object();
            opening.due_at =
                now + iso_duration(core::string_field(deadline->as_object(), "duration"))
                          .value_or(std::chrono::milliseconds(24h));
        } else if (const auto due = iso_duration(core::string_field(node.config, "due_date"))) {
            opening.due_at = now + *due;  // shown to the assignee; no action when it passes
        }
    }
    if (opening.assignees.empty()) {
        return finish(tenant, id, "failed", node.id, "failed:" + tag,
                      "user task '" + node.id + "' resolved to no approver");
    }
    const auto tasks = p_.tasks.open_visit(tenant, id, opening, now, "enter:" + tag);
    std::vector<TaskRef> pending;
    std::copy_if(tasks.begin(), tasks.end(), std::back_inserter(pending),
                 [](const TaskRef& t) { return t.status == "pending"; });
    notify_tasks(tenant, id, node.id, pending,
                 resubmit ? "returned to you for resubmission" : "awaits your approval", true);
    copy_to(here, variables, initiator);
    return json::object{{"wait", "task"}};
}

json::value Engine::call_activity(const core::TenantId& tenant,
                                  const boost::json::object& c,
                                  const json::value& input,
                                  const std::string& call_key) {
    const int timeout = static_cast<int>(
        std::chrono::duration_cast<std::chrono::seconds>(
            iso_duration(core::string_field(c, "timeout")).value_or(std::chrono::seconds(30)))
            .count());
    const auto call = [&](const json::object& target) {
        const auto host = core::http_host(core::string_field(target, "url"));
        if (host.empty() || !core::host_allowed(host, p_.scripts.http_allow_list(tenant))) {
            throw inngest::NonRetriableError("host '" + host +
                                             "' is not on the tenant's allow-list");
        }
        json::object request = target;
        request["body"] = input;
        json::object response;
        try {
            response = core::call_http(p_.outbound, request, std::max(1, timeout), call_key);
        } catch (const core::OutboundRefused& refused) {
            throw inngest::NonRetriableError(refused.what());  // no retry would pass
        }
        boost::system::error_code ec;
        const auto parsed = json::parse(response.at("body").as_string(), ec);
        // A parsed "\u0000" is a NUL again, which the variables' jsonb cannot hold.
        return ec ? response.at("body") : core::storable_json(parsed);
    };
    if (c.contains("url")) {
        return call(c);
    }
    const auto activity = !core::string_field(c, "activity_name").empty()
                              ? core::string_field(c, "activity_name")
                              : core::string_field(c, "action");
    if (activity == "set_variables") {
        return input;
    }
    if (activity == "notify") {
        std::vector<std::string> users;
        std::string subject;
        std::string body;
        if (input.is_object()) {
            const auto& in = input.as_object();
            if (const auto* r = in.if_contains("recipients"); r && r->is_array()) {
                for (const auto& u : r->as_array()) {
                    if (u.is_string()) {
                        users.emplace_back(u.as_string());
                    }
                }
            }
            subject = core::string_field(in, "subject");
            body = core::string_field(in, "body");
        }
        notify(tenant, users, subject, body, call_key);
        return json::object{{"notified", users.size()}};
    }
    const auto binding = p_.activities.find(tenant, activity);
    if (!binding) {
        throw inngest::NonRetriableError("activity '" + activity +
                                         "' is not bound: PUT /api/v1/approvals/activities/" +
                                         activity);
    }
    if (binding->kind == "http") {
        return call(binding->config);
    }
    // A failed run's message is the script's own, for whoever retries the task.
    return p_.scripts
        .run_to_success(tenant, "approvals",
                        binding->config.at("script_id").to_number<std::int64_t>(), input,
                        "approval", call_key)
        .at("result");
}

boost::json::object Engine::run_service(const VisitRef& here,
                                        int attempt,
                                        const boost::json::object& scope,
                                        const FlowNode* on_error) {
    const auto& [tenant, id, node, visit] = here;
    const auto& c = node.config;
    json::value input = json::object{};
    if (const auto* mapping = c.if_contains("input_mapping")) {
        input = map_value(*mapping, scope);
    } else if (const auto* body = c.if_contains("body")) {
        input = map_value(*body, scope);
    }
    std::string activity = core::string_field(c, "url");
    if (activity.empty()) {
        activity = !core::string_field(c, "activity_name").empty()
                       ? core::string_field(c, "activity_name")
                       : core::string_field(c, "action");
    }
    json::value result;
    try {
        // Each of the task's own retry attempts is a new call (a new key); a step re-run of the
        // same attempt is the same call.
        result = call_activity(
            tenant, c, input,
            core::attempt_key("approval-" + std::to_string(id) + "-" + tag_of(node.id, visit),
                              attempt));
    } catch (const inngest::RetryAfterError&) {
        // Another attempt of this task attempt still carries out its script run: the step is
        // retried after it, under the same key, and finds the run; not a failed task attempt
        // (whose retry, under a key of its own, would run the script again meanwhile).
        throw;
    } catch (const std::exception& error) {
        const bool final = dynamic_cast<const inngest::NonRetriableError*>(&error) != nullptr;
        json::object policy;
        for (const char* key : {"retry_policy", "retry"}) {
            if (const auto* p = c.if_contains(key); p != nullptr && p->is_object()) {
                policy = p->as_object();
            }
        }
        const auto* max = policy.if_contains("max_attempts");
        const int max_attempts =
            max != nullptr && max->is_int64() ? static_cast<int>(max->as_int64()) : 1;
        p_.instances.log(tenant, id, "service_failed",
                         json::object{{"node_id", node.id},
                                      {"attempt", attempt},
                                      {"activity", activity},
                                      {"error", error.what()}},
                         "service:" + tag_of(node.id, visit) + "/" + std::to_string(attempt));
        if (!final && attempt < max_attempts) {
            auto interval = iso_duration(core::string_field(policy, "initial_interval"))
                                .value_or(iso_duration(core::string_field(policy, "interval"))
                                              .value_or(std::chrono::milliseconds(1s)));
            const auto* coefficient = policy.if_contains("backoff_coefficient");
            const double factor = coefficient != nullptr && coefficient->is_number()
                                      ? std::pow(coefficient->to_number<double>(), attempt - 1)
                                      : 1.0;
            auto delay = std::chrono::milliseconds(
                static_cast<std::int64_t>(static_cast<double>(interval.count()) * factor));
            if (const auto cap = iso_duration(core::string_field(policy, "maximum_interval"))) {
                delay = std::min(delay, *cap);
            }
            return json::object{{"retry_in_ms", delay.count()}, {"attempt", attempt + 1}};
        }
        return fail_task(here, "service", "service task '" + node.id + "' failed: " + error.what(),
                         on_error);
    }
    json::object changes;
    if (const auto* outputs = c.if_contains("output_mapping"); outputs && outputs->is_object()) {
        auto with_result = scope;
        with_result["result"] = result;
        changes = map_value(*outputs, with_result).as_object();
    } else if (const auto name = core::string_field(c, "result_variable"); !name.empty()) {
        changes[name] = result;
    } else if (activity == "set_variables" && result.is_object()) {
        // What it is for: its mapped input becomes variables.
        changes = result.as_object();
    }
    p_.instances.merge(tenant, id, changes, "system", "service:" + tag_of(node.id, visit));
    return json::object{{"next", json::array{}}};
}

boost::json::object Engine::run_rules(const VisitRef& here,
                                      const boost::json::object& scope,
                                      const FlowNode* on_error) {
    const auto& [tenant, id, node, visit] = here;
    const auto key = core::string_field(node.config, "decision");
    std::optional<int> pinned;
    if (const auto* v = node.config.if_contains("version"); v != nullptr && v->is_int64()) {
        pinned = static_cast<int>(v->as_int64());
    }
    json::value result;
    int version = 0;
    try {
        const auto table = p_.definitions.decision(tenant, key, pinned);
        if (!table) {
            throw std::runtime_error("decision table '" + key + "'" +
                                     (pinned ? " version " + std::to_string(*pinned) : "") +
                                     " does not exist");
        }
        version = table->version;
        result = evaluate_decision(table->source, scope);
    } catch (const std::exception& error) {
        return fail_task(here, "rule",
                         "business rule task '" + node.id + "' failed: " + error.what(), on_error);
    }
    p_.instances.log(
        tenant, id, "decision",
        json::object{
            {"node_id", node.id}, {"decision", key}, {"version", version}, {"result", result}},
        "decision:" + tag_of(node.id, visit));
    // An object's outputs become variables; a list (collect) or no match goes to one variable.
    json::object changes;
    if (const auto name = core::string_field(node.config, "result_variable"); !name.empty()) {
        changes[name] = result;
    } else if (result.is_object()) {
        changes = result.as_object();
    } else {
        changes[node.id + "_result"] = result;
    }
    p_.instances.merge(tenant, id, changes, "system", "rule:" + tag_of(node.id, visit));
    return json::object{{"next", json::array{}}};
}

boost::json::object Engine::run_script(const VisitRef& here,
                                       const boost::json::object& scope,
                                       const FlowNode* on_error) {
    const auto& [tenant, id, node, visit] = here;
    const auto& c = node.config;
    const auto* args = c.if_contains("arguments");
    json::object run;
    try {
        run = p_.scripts.run_to_success(
            tenant, "approvals", c.at("script_id").to_number<std::int64_t>(),
            args ? map_value(*args, scope) : nullptr, "approval",
            "approval-" + std::to_string(id) + "-" + tag_of(node.id, visit));
    } catch (const DomainError& refused) {  // the run could not start
        return fail_task(here, "script", "script task '" + node.id + "' refused: " + refused.what(),
                         on_error);
    } catch (const core::ScriptRunFailed& failed) {
        return fail_task(here, "script", "script task '" + node.id + "': " + failed.what(),
                         on_error);
    }
    if (const auto name = core::string_field(c, "result_variable"); !name.empty()) {
        p_.instances.merge(tenant, id, json::object{{name, run.at("result")}}, "system",
                           "script:" + tag_of(node.id, visit));
    }
    return json::object{{"next", json::array{}}};
}

void Engine::throw_event(const VisitRef& here, const boost::json::object& scope) {
    const auto& [tenant, id, node, visit] = here;
    json::object data;
    if (const auto* mapped = node.config.if_contains("data")) {
        const auto value = map_value(*mapped, scope);
        if (value.is_object()) {
            data = value.as_object();
        }
    }
    const std::string sender = "approval:" + std::to_string(id);
    // Once per throwing visit: a retried step delivers nothing again, but wakes again whom the
    // delivery reached (the attempt that delivered may have died before it woke them).
    const std::string once = "throw:" + std::to_string(id) + ":" + tag_of(node.id, visit);
    std::vector<std::int64_t> reached;
    if (node.type == "signalThrowEvent") {
        reached = p_.instances.broadcast_signal(tenant, core::string_field(node.config, "signal"),
                                                data, sender, once);
    } else {
        const auto key =
            map_value(json::value(core::string_field(node.config, "business_key")), scope);
        reached = p_.instances
                      .deliver_message(
                          tenant, core::string_field(node.config, "message"),
                          key.is_string() ? std::string(key.as_string()) : json::serialize(key),
                          data, sender, once, true)
                      .reached;
    }
    json::array reached_json;
    for (const auto other : reached) {
        reached_json.emplace_back(other);
    }
    p_.instances.log(
        tenant, id, node.type == "signalThrowEvent" ? "signal_thrown" : "message_thrown",
        json::object{{"node_id", node.id}, {"reached", std::move(reached_json)}}, once);
    for (const auto other : reached) {
        wake(tenant, other, node.type == "signalThrowEvent" ? "signal" : "message", once);
    }
}

boost::json::object Engine::correlate(const core::TenantId& tenant,
                                      const std::string& sender,
                                      const boost::json::object& request,
                                      bool again) {
    json::object problems;
    const auto name = core::required_text(request, "name", 200, problems);
    const auto key = core::required_text(request, "business_key", 200, problems);
    const auto message_id =
        core::text_field(request, "message_id", {.max = 200}, problems).value_or("");
    const auto data = data_field(request, problems);
    core::refuse_if_any(problems);
    const auto delivery = p_.instances.deliver_message(
        tenant, name, key, data, sender,
        message_id.empty() ? std::nullopt : std::optional("message:" + message_id), again);
    json::array delivered;
    for (const auto id : delivery.reached) {
        delivered.emplace_back(id);
        wake(tenant, id, "message",
             message_id.empty() ? std::nullopt : std::optional("message:" + message_id));
    }
    return json::object{{"matched", delivery.matched}, {"delivered", std::move(delivered)}};
}

boost::json::object Engine::fail_task(const VisitRef& here,
                                      const std::string& kind,
                                      const std::string& reason,
                                      const FlowNode* on_error) {
    p_.tasks.record_visit(here.key(), kind, "failed", p_.now());
    if (on_error != nullptr) {
        caught_error(here, *on_error, reason);
        return json::object{{"next", json::array{json::value(on_error->id)}}, {"caught", true}};
    }
    failed_at(here, reason);
    return json::object{{"wait", "failed"}};
}

void Engine::caught_error(const VisitRef& here,
                          const FlowNode& boundary,
                          const std::string& reason,
                          const std::string& code) {
    const auto& [tenant, id, node, visit] = here;
    // The token leaves through the error boundary, the error in a variable.
    const auto variable = core::string_field(boundary.config, "error_variable");
    json::object error{{"node_id", node.id}, {"message", reason}};
    json::object logged{
        {"node_id", node.id}, {"visit", visit}, {"boundary", boundary.id}, {"error", reason}};
    if (!code.empty()) {
        error["code"] = code;
        logged["code"] = code;
    }
    p_.instances.merge(tenant, id, json::object{{variable.empty() ? "error" : variable, error}},
                       "system", "error:" + tag_of(node.id, visit));
    p_.instances.log(tenant, id, "error_caught", logged,
                     "caught:" + tag_of(node.id, visit) + ">" + boundary.id);
}

boost::json::object Engine::throw_from(const VisitRef& here, const ProcessDefinition& definition) {
    const auto& [tenant, id, node, visit] = here;
    const auto now = p_.now();
    const auto kind = end_throws(node);
    const auto code = kind == "error" ? error_code_of(node) : std::string();
    const auto message = core::string_field(node.config, "error_message");
    const auto reason = kind == "error" ? "error '" + code + "' thrown at '" + node.id + "'" +
                                              (message.empty() ? "" : ": " + message)
                                        : "cancelled at '" + node.id + "'";
    p_.tasks.record_visit(here.key(), "event", "completed", now);
    const FlowNode* catcher = kind == "error" ? enclosing_error_catcher(definition, node, code)
                                              : cancel_catcher(definition, node);
    p_.instances.log(tenant, id, kind == "error" ? "error_thrown" : "cancel_thrown",
                     json::object{{"node_id", node.id},
                                  {"visit", visit},
                                  {"code", code},
                                  {"message", message},
                                  {"caught_by", catcher != nullptr ? catcher->id : ""}},
                     "thrown:" + tag_of(node.id, visit));
    auto thrown = escape(tenant, id, definition, node, catcher, reason,
                         kind == "error" ? "failed" : "cancelled");
    // A cancel is no error: its boundary's path gets no error variable.
    if (catcher != nullptr && kind == "error") {
        caught_error(here, *catcher, reason, code);
    }
    return thrown;
}

boost::json::object Engine::escape(const core::TenantId& tenant,
                                   std::int64_t id,
                                   const ProcessDefinition& definition,
                                   const FlowNode& origin,
                                   const FlowNode* catcher,
                                   const std::string& reason,
                                   const std::string& scope_ends) {
    const auto until = catcher != nullptr ? boundary_of(*catcher).attached_to : std::string();
    // Every transaction it leaves is compensated (up to the catching sub-process, or all of
    // them when nothing catches it).
    std::vector<std::string> left;
    for (const FlowNode* scope = definition.node(origin.parent); scope != nullptr;
         scope = definition.node(scope->parent)) {
        if (is_transaction(*scope)) {
            left.push_back(scope->id);
        }
        if (scope->id == until) {
            break;
        }
    }
    auto compensate = owed_compensations(tenant, id, definition, [&](const std::string& n) {
        return std::any_of(left.begin(), left.end(),
                           [&](const std::string& t) { return definition.inside(n, t); });
    });
    if (!until.empty()) {
        cancel_inside(tenant, id, definition, until, reason);
        for (const auto& v : p_.tasks.visits_of(tenant, id)) {
            if (v.node_id == until && v.status == "active") {
                p_.tasks.settle_by_system({tenant, id, until, v.visit}, scope_ends, reason,
                                          p_.now());
            }
        }
    }
    return json::object{{"thrown", json::object{{"scope", until},
                                                {"boundary", catcher != nullptr ? catcher->id : ""},
                                                {"reason", reason}}},
                        {"compensate", std::move(compensate)}};
}

void Engine::cancel_inside(const core::TenantId& tenant,
                           std::int64_t id,
                           const ProcessDefinition& definition,
                           const std::string& scope,
                           const std::string& reason) {
    const auto now = p_.now();
    for (const auto& v : p_.tasks.visits_of(tenant, id)) {
        // A call activity's visit this step's earlier attempt cancelled (it died before ending
        // the child or before waking it, transactions of their own) still does both below.
        const bool cancelled_call = v.kind == "child" && v.status == "cancelled";
        if ((v.status != "active" && !cancelled_call) || !definition.inside(v.node_id, scope)) {
            continue;
        }
        p_.tasks.settle_by_system({tenant, id, v.node_id, v.visit}, "cancelled", reason, now);
        if (v.kind != "child") {
            continue;
        }
        // A call activity's child ends with the interrupted sub-process.
        const auto step = "call:" + tag_of(v.node_id, v.visit);
        const auto child = p_.instances.child_of(tenant, id, step);
        if (!child) {
            continue;
        }
        const bool live = alive(child->status);
        // Cancelled, but its wake never logged: this step's earlier attempt ended it and died
        // before the wake (a transaction of its own), and its run sleeps until its re-check (a
        // day when it was held). It is woken now; the wake's key logs it once.
        if (!live && (child->status != "cancelled" ||
                      p_.instances.logged(tenant, child->id, "wake:parent-ended"))) {
            continue;
        }
        // Suspended or held failed too: nothing is left to resume it. Run again, finish ends
        // nothing twice and answers the descendants that attempt cancelled.
        const auto ending = p_.instances.finish(tenant, child->id, "cancelled", v.node_id,
                                                "interrupted:" + step, reason, true);
        if (!live && !ending.ended) {
            continue;  // cancelled otherwise (an administrator's terminate), and woken by it
        }
        for (const auto d : ending.cancelled) {
            wake(tenant, d, "parent ended", "parent-ended");
        }
        wake(tenant, child->id, "parent ended", "parent-ended");
    }
}

boost::json::array Engine::owed_compensations(
    const core::TenantId& tenant,
    std::int64_t id,
    const ProcessDefinition& definition,
    const std::function<bool(const std::string&)>& within) {
    std::set<std::string> done;
    for (const auto& e : p_.instances.events(tenant, id)) {
        if (e.at("name") == "compensated" || e.at("name") == "compensation_failed") {
            done.insert(std::string(e.at("data").at("tag").as_string()));
        }
    }
    json::array compensate;
    auto visits = p_.tasks.visits_of(tenant, id);
    // Newest completion first (the visits come oldest first; ties keep that order reversed).
    std::reverse(visits.begin(), visits.end());
    std::stable_sort(visits.begin(), visits.end(), [](const auto& a, const auto& b) {
        return a.left_at.value_or("") > b.left_at.value_or("");
    });
    for (const auto& v : visits) {
        const auto* handler = compensation_handler(definition, v.node_id);
        if (handler != nullptr && (v.status == "completed" || v.status == "approved") &&
            done.count(tag_of(v.node_id, v.visit)) == 0 && within(v.node_id)) {
            compensate.push_back(
                json::object{{"handler", handler->id}, {"node", v.node_id}, {"visit", v.visit}});
        }
    }
    return compensate;
}

void Engine::failed_at(const VisitRef& here, const std::string& reason) {
    const auto& [tenant, id, node, visit] = here;
    if (p_.instances.mark_failed(tenant, id, node.id, "failed:" + tag_of(node.id, visit), reason)) {
        core::log(core::LogLevel::kWarn, "approval instance failed at a task",
                  {{"tenant", tenant.value()}, {"instance", id}, {"reason", reason}});
        tell_failed(tenant, id, node.id, visit, reason);
    }
}

void Engine::tell_failed(const core::TenantId& tenant,
                         std::int64_t id,
                         const std::string& node_id,
                         int visit,
                         const std::string& reason) {
    if (const auto instance = p_.instances.find(tenant, id)) {
        notify(tenant, {instance->initiator},
               "Your approval request #" + std::to_string(id) + " is failed",
               reason + " An administrator can retry it.",
               "approval-failed-" + std::to_string(id) + "-" + tag_of(node_id, visit));
    }
}

boost::json::object Engine::call_child(const VisitRef& here,
                                       const boost::json::object& scope,
                                       const InstanceRow& parent) {
    const auto& [tenant, id, node, visit] = here;
    const auto tag = tag_of(node.id, visit);
    const std::string step = "call:" + tag;
    const auto key = core::string_field(node.config, "called_element");
    // Processes calling each other (A calls B calls A) would start children without end.
    int depth = 1;
    for (auto above = parent.parent_id; above && depth <= kMaxCallDepth; ++depth) {
        const auto ancestor = p_.instances.find(tenant, *above);
        above = ancestor ? ancestor->parent_id : std::nullopt;
    }
    if (depth > kMaxCallDepth) {
        return fail_task(here, "call",
                         "call activity '" + node.id + "': processes call each other more than " +
                             std::to_string(kMaxCallDepth) + " deep",
                         nullptr);
    }
    const auto called = p_.definitions.find_key(tenant, key);
    if (!called || called->latest_version == 0) {
        return fail_task(here, "call",
                         "call activity '" + node.id + "': no published process '" + key + "'",
                         nullptr);
    }
    json::object variables;
    if (const auto* inputs = node.config.if_contains("input_mapping");
        inputs != nullptr && inputs->is_object()) {
        variables = map_value(*inputs, scope).as_object();
    }
    std::optional<std::string> business_key;
    if (const auto* k = node.config.if_contains("business_key"); k != nullptr) {
        const auto value = map_value(*k, scope);
        if (value.is_string() && !value.as_string().empty()) {
            business_key = std::string(value.as_string());
        }
    }
    // The child and its start event commit together, once per visit (a retried step finds
    // the child it started).
    const auto child = p_.instances.create(
        tenant,
        {.definition_id = called->id,
         .version = called->latest_version,
         .business_key = business_key,
         .variables = variables,
         .initiator = parent.initiator,
         .parent = InstanceRepository::Parent{id, step}},
        [&tenant](std::int64_t child_id) { return started_event(tenant, child_id); });
    const auto started = child ? child : [&]() -> std::optional<std::int64_t> {
        const auto earlier = p_.instances.child_of(tenant, id, step);
        return earlier ? std::optional(earlier->id) : std::nullopt;
    }();
    if (!started) {
        return fail_task(here, "call",
                         "call activity '" + node.id + "': business key '" +
                             business_key.value_or("") + "' is taken in process '" + key + "'",
                         nullptr);
    }
    p_.instances.log(tenant, id, "child_started",
                     json::object{{"node_id", node.id}, {"visit", visit}, {"child_id", *started}},
                     "child:" + tag);
    p_.tasks.open_visit(tenant, id, VisitOpening{node.id, visit, "child", {}, {}, {}, {}}, p_.now(),
                        "enter:" + tag);
    return json::object{{"wait", "child"}};
}

void Engine::wake_related(const core::TenantId& tenant,
                          std::int64_t id,
                          const std::vector<std::int64_t>& cancelled_children) {
    // Each ends once: its wake is logged once, however often a step sends it.
    for (const auto child : cancelled_children) {
        wake(tenant, child, "parent ended", "parent-ended");
    }
    if (const auto instance = p_.instances.find(tenant, id); instance && instance->parent_id) {
        wake(tenant, *instance->parent_id, "child ended", "child-ended:" + std::to_string(id));
    }
}

boost::json::object Engine::park(const core::TenantId& tenant,
                                 std::int64_t id,
                                 int generation,
                                 const ProcessDefinition& definition,
                                 const boost::json::object& state) {
    const auto& waiting = state.at("waiting").as_array();
    json::array current;
    for (const auto& w : waiting) {
        current.push_back(w.at("node"));
    }
    if (!p_.instances.save_state(tenant, id, generation, state, current)) {
        return json::object{{"stop", true}};
    }
    const auto instance = p_.instances.find(tenant, id);
    if (!instance) {
        return json::object{{"stop", true}};
    }
    if (held(instance->status)) {
        if (instance->status == "failed") {
            hold_failed_calls(tenant, id, generation, definition, state, current, *instance);
        }
        // Held: deadlines, timers and signals wait too; a resume or retry wakes the run.
        return json::object{{"resolved", json::array{}}, {"sleep_ms", kHeldRecheck.count()}};
    }
    const auto now = p_.now();
    std::optional<TimePoint> next_due;
    json::array resolved;
    const auto boundaries_of = [&](const std::string& node) {
        return definition.boundaries(node);
    };
    // Sub-processes first: one that a boundary interrupts takes its inner work with it, which
    // is then not settled on its own.
    std::vector<std::size_t> order;
    for (int pass = 0; pass < 2; ++pass) {
        for (std::size_t i = 0; i < waiting.size(); ++i) {
            if ((waiting[i].at("kind") == "scope") == (pass == 0)) {
                order.push_back(i);
            }
        }
    }
    std::vector<std::string> interrupted_scopes;
    for (const auto i : order) {
        const auto& w = waiting[i].as_object();
        const std::string node(w.at("node").as_string());
        const int visit = static_cast<int>(w.at("visit").to_number<std::int64_t>());
        const std::string kind(w.at("kind").as_string());
        if (std::any_of(interrupted_scopes.begin(), interrupted_scopes.end(),
                        [&](const std::string& s) { return definition.inside(node, s); })) {
            continue;
        }
        const VisitKey at{tenant, id, node, visit};
        if (kind == "held" || kind == "failed") {
            // The instance runs again: the node is visited afresh.
            resolved.push_back(json::object{{"index", i}, {"outcome", "resume"}});
            continue;
        }
        auto vs = p_.tasks.visit_state(at);
        if (!vs) {
            continue;
        }
        const bool due = vs->status == "active" && vs->due_at && *vs->due_at <= now;
        json::object entry{{"index", i}};
        if (kind == "task" || kind == "scope") {
            if (due && vs->deadline) {
                apply_deadline(at, *vs);
                vs = p_.tasks.visit_state(at);
            }
            // A decision settled the visit after it was read active here (an interrupting
            // boundary found it closed): the decision stands, and is settled below.
            bool decided_first = false;
            if (vs->status == "active") {
                if (vs->due_at && vs->deadline) {
                    next_due = std::min(next_due.value_or(*vs->due_at), *vs->due_at);
                }
                const auto* fired = w.if_contains("fired");
                for (const auto* b : boundaries_of(node)) {
                    const auto boundary = boundary_of(*b);
                    if (!boundary.interrupting && fired != nullptr && fired->is_array() &&
                        std::find(fired->as_array().begin(), fired->as_array().end(),
                                  json::value(b->id)) != fired->as_array().end()) {
                        continue;  // a non-interrupting boundary fires once per visit
                    }
                    if (!boundary_happened(at, *b, *vs, now, next_due)) {
                        continue;
                    }
                    if (boundary.interrupting) {
                        // The task is cancelled and the token leaves through the boundary; a
                        // sub-process's inner work is cancelled with it.
                        const auto why = "boundary " + boundary.kind + " '" + b->id + "' fired";
                        if (!p_.tasks.settle_by_system(at, "cancelled", why, now)) {
                            decided_first = true;
                            break;
                        }
                        // (A retry that finds the visit cancelled does this again, below.)
                        if (kind == "scope") {
                            cancel_inside(tenant, id, definition, node, why);
                            interrupted_scopes.push_back(node);
                        }
                        resolved.push_back(
                            json::object{{"index", i}, {"outcome", "boundary"}, {"target", b->id}});
                        break;
                    }
                    // The task stays open; a second token starts on the boundary's path.
                    p_.instances.log(tenant, id, "boundary_" + boundary.kind,
                                     json::object{{"node_id", node},
                                                  {"visit", visit},
                                                  {"boundary", b->id},
                                                  {"interrupting", false}},
                                     "boundary:" + tag_of(node, visit) + ">" + b->id);
                    resolved.push_back(
                        json::object{{"index", i}, {"outcome", "spawn"}, {"target", b->id}});
                }
                if (!decided_first) {
                    continue;
                }
                vs = p_.tasks.visit_state(at);
            }
            if (vs->status == "cancelled") {
                // Cancelled by an interrupting boundary timer in an earlier attempt of this
                // step (its answer was lost): leave through that boundary again.
                std::optional<TimePoint> ignored;
                const FlowNode* interrupted = nullptr;
                for (const auto* b : boundaries_of(node)) {
                    if (boundary_of(*b).interrupting &&
                        boundary_happened(at, *b, *vs, now, ignored)) {
                        interrupted = b;
                        break;
                    }
                }
                if (interrupted != nullptr) {
                    if (kind == "scope") {
                        cancel_inside(tenant, id, definition, node,
                                      "boundary '" + interrupted->id + "' fired");
                        interrupted_scopes.push_back(node);
                    }
                    resolved.push_back(json::object{
                        {"index", i}, {"outcome", "boundary"}, {"target", interrupted->id}});
                    continue;
                }
            }
            if (kind == "scope") {
                continue;  // a sub-process ends when its tokens do (the run sees that)
            }
            entry["outcome"] = vs->status;
            if (vs->return_target) {
                entry["target"] = *vs->return_target;
            }
        } else if (kind == "child") {
            // A call activity: done when its child instance ends.
            const auto* call = definition.node(node);
            const auto child = p_.instances.child_of(tenant, id, "call:" + tag_of(node, visit));
            const auto thrown_code = thrown_by(tenant, child);
            const bool thrown = thrown_code.has_value();
            const std::string code = thrown_code.value_or("");
            if (vs->status == "failed") {
                // Closed failed by an earlier attempt of this step. Caught by a boundary: the
                // catch below is done again (its writes touch only what is still open). Not
                // caught: the instance was held and an administrator retried it, so a fresh
                // child starts.
                if (!call_failure_caught(definition, node, code)) {
                    entry["outcome"] = "resume";
                    resolved.push_back(std::move(entry));
                    continue;
                }
            }
            if (call == nullptr || !child || (alive(child->status) && !thrown)) {
                continue;
            }
            if (child->status == "completed") {
                json::object changes;
                if (const auto* outputs = call->config.if_contains("output_mapping");
                    outputs != nullptr && outputs->is_object()) {
                    changes = map_value(*outputs, child->variables).as_object();
                }
                p_.instances.merge(tenant, id, changes, "system", "call:" + tag_of(node, visit));
                p_.tasks.close_visit(at, "completed", now);
                entry["outcome"] = "completed";
            } else {
                // The child did not complete: the call activity failed.
                p_.tasks.close_visit(at, "failed", now);
                const auto reason =
                    "call activity '" + node + "': instance " + std::to_string(child->id) +
                    " ended " + child->status +
                    (child->status_reason ? " (" + *child->status_reason + ")" : std::string());
                if (const auto* on_error = error_boundary(definition, node, code)) {
                    caught_error(VisitRef{tenant, id, *call, visit}, *on_error, reason, code);
                    entry["outcome"] = "boundary";
                    entry["target"] = on_error->id;
                } else if (const auto* outer = enclosing_error_catcher(definition, *call, code)) {
                    // Caught by an enclosing sub-process: it ends with everything in it, the
                    // transactions it leaves compensating first (the run's steps).
                    auto left = escape(tenant, id, definition, *call, outer, reason, "failed");
                    caught_error(VisitRef{tenant, id, *call, visit}, *outer, reason, code);
                    entry["outcome"] = "thrown";
                    entry["scope"] = left.at("thrown").at("scope");
                    entry["target"] = outer->id;
                    entry["compensate"] = std::move(left.at("compensate"));
                } else {
                    failed_at(VisitRef{tenant, id, *call, visit}, reason);
                    // Stored held at once, so a retry need not wait for the next park.
                    auto held_state = state;
                    held_state["waiting"].as_array()[i].as_object()["kind"] = "failed";
                    p_.instances.save_state(tenant, id, generation, held_state, current);
                    entry["outcome"] = "failed";
                }
            }
        } else if (kind == "race") {
            // An event-based gateway: the first of its events wins, the others are withdrawn.
            const auto winner = race_winner(at, definition, *vs, now, next_due);
            if (!winner) {
                continue;
            }
            p_.tasks.close_visit(at, "completed", now);
            entry["outcome"] = "race";
            entry["target"] = *winner;
        } else if (kind == "timer") {
            // Completed by an earlier attempt of this step (its answer was lost): it fired, and
            // does so again here, or the run would wait for a due time that never comes.
            if (!due && vs->status != "completed") {
                next_due = std::min(next_due.value_or(*vs->due_at), *vs->due_at);
                continue;
            }
            p_.tasks.close_visit(at, "completed", now);
            entry["outcome"] = "fired";
        } else {
            const auto* name = w.if_contains("signal");
            // Cancelled by an earlier attempt of this step: it timed out then, whatever arrived
            // since (a catch below would consume a signal the flow never takes).
            const bool timed_out = vs->status == "cancelled";
            const bool caught =
                !timed_out && name != nullptr &&
                p_.instances.catch_signal(tenant, id, std::string(name->as_string()),
                                          tag_of(node, visit));
            if (caught) {
                p_.tasks.close_visit(at, "completed", now);
                entry["outcome"] = "signalled";
            } else if (due || timed_out) {
                p_.tasks.close_visit(at, "cancelled", now);
                entry["outcome"] = "timeout";
            } else {
                if (vs->due_at) {
                    next_due = std::min(next_due.value_or(*vs->due_at), *vs->due_at);
                }
                continue;
            }
        }
        resolved.push_back(std::move(entry));
    }
    auto sleep = kRecheck;
    if (next_due) {
        sleep = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(*next_due - now),
                           std::chrono::milliseconds(1000), kRecheck);
    }
    return json::object{{"resolved", std::move(resolved)}, {"sleep_ms", sleep.count()}};
}

std::optional<std::string> Engine::thrown_by(const core::TenantId& tenant,
                                             const std::optional<InstanceRow>& child) {
    std::optional<std::string> code;
    if (child && child->status == "failed") {
        for (const auto& e : p_.instances.events(tenant, child->id)) {
            if (e.at("name") == "error_thrown" && e.at("data").at("caught_by") == "") {
                code = std::string(e.at("data").at("code").as_string());
            }
        }
    }
    return code;
}

void Engine::hold_failed_calls(const core::TenantId& tenant,
                               std::int64_t id,
                               int generation,
                               const ProcessDefinition& definition,
                               const boost::json::object& state,
                               const boost::json::array& current,
                               const InstanceRow& instance) {
    // A park that failed the instance at a call activity stored the token held there
    // ('failed', what an administrator's retry looks for). If that attempt died before its
    // answer was stored, its retry saved the snapshot's 'child' over it: hold it again, or no
    // retry would ever be accepted.
    auto again = state;
    bool changed = false;
    for (auto& item : again["waiting"].as_array()) {
        auto& w = item.as_object();
        if (w.at("kind") != "child") {
            continue;
        }
        const std::string node(w.at("node").as_string());
        const int visit = static_cast<int>(w.at("visit").to_number<std::int64_t>());
        const auto vs = p_.tasks.visit_state({tenant, id, node, visit});
        if (!vs || vs->status != "failed") {
            continue;
        }
        const auto child = p_.instances.child_of(tenant, id, "call:" + tag_of(node, visit));
        if (!call_failure_caught(definition, node, thrown_by(tenant, child).value_or(""))) {
            w["kind"] = "failed";
            changed = true;
            // That attempt may have died before its notice, too. It told only of the failure
            // that failed the instance (the one whose reason the instance keeps), not of a
            // second call failing in the same park.
            const auto reason =
                p_.instances.failure_reason(tenant, id, "failed:" + tag_of(node, visit));
            if (reason && reason == instance.status_reason) {
                tell_failed(tenant, id, node, visit, *reason);
            }
        }
    }
    if (changed) {
        p_.instances.save_state(tenant, id, generation, again, current);
    }
}

std::optional<std::string> Engine::race_winner(const VisitKey& gateway,
                                               const ProcessDefinition& definition,
                                               const VisitState& state,
                                               TimePoint now,
                                               std::optional<TimePoint>& next_due) {
    std::vector<const FlowNode*> targets;
    for (const auto* e : definition.outgoing(gateway.node_id)) {
        if (const auto* target = definition.node(e->target)) {
            targets.push_back(target);
        }
    }
    // What arrived wins over a timer that fell due while it waited.
    for (const auto* target : targets) {
        const auto awaited = awaited_signal(*target);
        if (!awaited.empty() &&
            p_.instances.catch_signal(gateway.tenant, gateway.instance_id, awaited,
                                      tag_of(gateway.node_id, gateway.visit) + ">" + target->id)) {
            return target->id;
        }
    }
    for (const auto* target : targets) {
        if (target->type != "timerCatchEvent" || !state.entered_at) {
            continue;
        }
        const TimePoint due = timer_due(*target, *state.entered_at);
        if (due <= now) {
            return target->id;
        }
        next_due = std::min(next_due.value_or(due), due);
    }
    return std::nullopt;
}

bool Engine::boundary_happened(const VisitKey& task,
                               const FlowNode& boundary_node,
                               const VisitState& state,
                               TimePoint now,
                               std::optional<TimePoint>& next_due) {
    const auto boundary = boundary_of(boundary_node);
    if (boundary.kind == "timer") {
        if (!boundary.duration || !state.entered_at) {
            return false;
        }
        const auto at = *state.entered_at + *boundary.duration;
        if (at > now) {
            next_due = std::min(next_due.value_or(at), at);
            return false;
        }
        return true;
    }
    if (boundary.kind == "signal" || boundary.kind == "message") {
        // Caught once for this visit and boundary: a retried step finds the same one.
        return !boundary.awaited.empty() &&
               p_.instances
                   .catch_signal(task.tenant, task.instance_id, boundary.awaited,
                                 tag_of(task.node_id, task.visit) + ">" + boundary_node.id)
                   .has_value();
    }
    return false;
}

void Engine::apply_deadline(const VisitKey& at, const VisitState& state) {
    const auto& [tenant, id, node_id, visit] = at;
    const auto& deadline = *state.deadline;
    std::string action = core::string_field(deadline, "action").empty()
                             ? "remind"
                             : core::string_field(deadline, "action");
    const auto* max = deadline.if_contains("max_reminders");
    const int limit =
        max != nullptr && max->is_int64() ? static_cast<int>(max->as_int64()) : kMaxReminders;
    const std::string then = core::string_field(deadline, "then");
    // Reminders, then (optionally) a final action once they are used up.
    if (action == "remind" && state.reminders >= limit && !then.empty()) {
        action = then;
    }
    // Once per reminder round: a retried step neither logs nor reminds twice.
    p_.instances.log(tenant, id, "deadline",
                     json::object{{"node_id", node_id}, {"visit", visit}, {"action", action}},
                     "deadline:" + tag_of(node_id, visit) + "/" + std::to_string(state.reminders));
    if (action == "approve" || action == "reject") {
        p_.tasks.settle_by_system(at, action == "approve" ? "approved" : "rejected",
                                  "deadline passed", p_.now());
        return;
    }
    if (action == "remind") {
        const auto pending = p_.tasks.pending_tasks(at);
        std::vector<std::string> assignees;
        for (const auto& t : pending) {
            assignees.push_back(t.assignee);
        }
        notify(tenant, recipients(tenant, assignees),
               "Reminder: approval request #" + std::to_string(id),
               "An approval step (" + node_id + ") is waiting for you and is overdue.",
               "approval-remind-" + std::to_string(state.id) + "-" +
                   std::to_string(state.reminders + 1));
        const auto every = iso_duration(core::string_field(deadline, "remind_every"))
                               .value_or(iso_duration(core::string_field(deadline, "duration"))
                                             .value_or(std::chrono::milliseconds(24h)));
        const bool more = state.reminders + 1 < limit || !then.empty();
        p_.tasks.postpone(tenant, state.id,
                          more ? std::optional(*state.due_at + every) : std::nullopt, true);
        return;
    }
    std::string initiator;
    if (const auto instance = p_.instances.find(tenant, id)) {
        initiator = instance->initiator;
    }
    const auto moved = p_.tasks.reassign_pending(
        at,
        [&](const std::string& assignee) -> std::optional<std::string> {
            if (action == "transfer") {
                const auto to = core::string_field(deadline, "transfer_to");
                return to.empty() ? std::nullopt : std::optional(to);
            }
            // Escalate: the assignee's manager; a group task goes to the initiator's.
            return p_.directory.manager_of(at.tenant, group_role(assignee) ? initiator : assignee);
        },
        action == "transfer" ? "deadline_transferred" : "escalated");
    // The move happens once (its timeline entries); the due time is cleared only once the
    // notices are out, so a step that dies before sends them on its retry.
    notify_tasks(tenant, id, node_id, moved, "was escalated to you (deadline passed)", true);
    p_.tasks.postpone(tenant, state.id, std::nullopt, false);
}

boost::json::object Engine::hand_over(const core::TenantId& tenant,
                                      std::int64_t id,
                                      int generation,
                                      const boost::json::object& state) {
    // The next generation and the event that continues it commit together (the outbox).
    auto next = p_.instances.next_generation(
        tenant, id, generation, state, [&tenant, id](std::int64_t next_generation) {
            return inngest::Event{.name = kInstanceContinued,
                                  .data = {{"tenant_id", tenant.value()},
                                           {"instance_id", id},
                                           {"generation", next_generation}},
                                  .id = "approval-" + tenant.value() + "-" + std::to_string(id) +
                                        "-g" + std::to_string(next_generation)};
        });
    if (!next) {
        // A retried step whose hand-over committed: its event went with it.
        const auto instance = p_.instances.find(tenant, id);
        if (!instance || !alive(instance->status) || instance->generation != generation + 1) {
            return json::object{{"stop", true}};
        }
        next = generation + 1;
    }
    return json::object{{"generation", *next}};
}

boost::json::object Engine::finish(const core::TenantId& tenant,
                                   std::int64_t id,
                                   const std::string& status,
                                   const std::string& node_id,
                                   const std::string& step_key,
                                   const std::optional<std::string>& reason) {
    const auto ending = p_.instances.finish(tenant, id, status, node_id, step_key, reason);
    wake_related(tenant, id, ending.cancelled);
    if (!ending.ended) {
        // It ended otherwise first (an administrator terminated it): nothing to tell.
        return json::object{{"end", status}};
    }
    tell_ended(tenant, id, status, node_id, reason);
    return json::object{{"end", status}};
}

boost::json::object Engine::fail_run(const core::TenantId& tenant,
                                     std::int64_t id,
                                     int generation,
                                     const std::string& error) {
    const std::string reason = "the run failed: " + error;
    const auto ending = p_.instances.fail_run(tenant, id, generation,
                                              "run-failed:g" + std::to_string(generation), reason);
    wake_related(tenant, id, ending.cancelled);
    if (ending.ended) {
        tell_ended(tenant, id, "failed", "", reason);
    }
    return json::object{{"instance_id", id}, {"failed", ending.ended}};
}

void Engine::tell_ended(const core::TenantId& tenant,
                        std::int64_t id,
                        const std::string& status,
                        const std::string& node_id,
                        const std::optional<std::string>& reason) {
    if (reason) {
        core::log(core::LogLevel::kWarn, "approval instance ended",
                  {{"tenant", tenant.value()},
                   {"instance", id},
                   {"status", status},
                   {"reason", *reason}});
    }
    if (const auto instance = p_.instances.find(tenant, id)) {
        notify(tenant, {instance->initiator},
               "Your approval request #" + std::to_string(id) + " is " + status,
               reason ? *reason : "The process ended at " + node_id + ".",
               "approval-finished-" + std::to_string(id));
    }
}

// ---- Helpers ---------------------------------------------------------------------------

std::optional<std::string> Engine::choose(const ProcessDefinition& definition,
                                          const FlowNode& gateway,
                                          const boost::json::object& variables) const {
    const FlowEdge* fallback = nullptr;
    for (const auto* e : definition.outgoing(gateway.id)) {
        if (e->is_default) {
            fallback = e;  // a default flow's own condition is not evaluated
            continue;
        }
        if (holds(*e, variables)) {
            return e->target;
        }
    }
    if (fallback == nullptr) {
        return std::nullopt;
    }
    return fallback->target;
}

std::vector<std::string> Engine::resolve_assignees(const core::TenantId& tenant,
                                                   const FlowNode& node,
                                                   const boost::json::object& variables,
                                                   const std::string& initiator) {
    std::vector<std::string> out;
    const auto add = [&](const std::string& who) {
        if (!who.empty() && std::find(out.begin(), out.end(), who) == out.end()) {
            out.push_back(who);
        }
    };
    const auto expand = [&](const std::string& value) -> std::string {
        if (!is_expression(value)) {
            return value;
        }
        const auto v = map_value(json::value(value), scope_of(variables, initiator));
        return v.is_string() ? std::string(v.as_string()) : std::string();
    };
    const auto& c = node.config;
    if (const auto assignee = core::string_field(c, "assignee"); !assignee.empty()) {
        add(expand(assignee));
    }
    if (const auto* approvers = c.if_contains("approvers"); approvers && approvers->is_array()) {
        for (const auto& a : approvers->as_array()) {
            const auto& o = a.as_object();
            const std::string type = core::string_field(o, "type");
            const std::string value = core::string_field(o, "value");
            if (type == "user") {
                add(expand(value));
            } else if (type == "initiator") {
                add(initiator);
            } else if (type == "role") {
                add(group_assignee(value));
            } else if (type == "form_field") {
                const auto* field = variables.if_contains(value);
                if (field != nullptr && field->is_string()) {
                    add(std::string(field->as_string()));
                } else if (field != nullptr && field->is_array()) {
                    for (const auto& f : field->as_array()) {
                        if (f.is_string()) {
                            add(std::string(f.as_string()));
                        }
                    }
                }
            } else if (type == "manager") {
                const int levels = value.empty() ? 1 : std::max(1, std::atoi(value.c_str()));
                if (const auto manager = p_.directory.manager_of(tenant, initiator, levels)) {
                    add(*manager);
                }
            }
        }
    }
    for (const char* key : {"candidate_users", "candidate_groups"}) {
        if (const auto* list = c.if_contains(key); list && list->is_array()) {
            for (const auto& v : list->as_array()) {
                if (v.is_string()) {
                    const std::string name(v.as_string());
                    add(std::string(key) == "candidate_groups" ? group_assignee(name) : name);
                }
            }
        }
    }
    return out;
}

void Engine::copy_to(const VisitRef& here,
                     const boost::json::object& variables,
                     const std::string& initiator) {
    const auto& [tenant, id, node, visit] = here;
    const auto* cc = node.config.if_contains("cc");
    if (cc == nullptr || !cc->is_array() || cc->as_array().empty()) {
        return;
    }
    FlowNode sources{node.id, node.type, node.name, json::object{{"approvers", *cc}}};
    const auto users = recipients(tenant, resolve_assignees(tenant, sources, variables, initiator));
    // Keyed per visit: a retried step finds whom its earlier attempt copied, and tells them
    // (that attempt may have died before its notice).
    const auto added =
        p_.instances.add_cc(tenant, id, node.id, users, "cc:" + tag_of(node.id, visit));
    notify(tenant, added, "Copied: approval request #" + std::to_string(id),
           "You were copied on an approval request at step " + node.name + ".",
           // Per visit: a node entered again may copy people its first visit did not.
           "approval-cc-" + std::to_string(id) + "-" + tag_of(node.id, visit));
}

void Engine::notify_tasks(const core::TenantId& tenant,
                          std::int64_t id,
                          const std::string& node_id,
                          const std::vector<TaskRef>& tasks,
                          const std::string& why,
                          bool from_step) {
    for (const auto& task : tasks) {
        // A group task goes to every member the directory lists. From a step, each key is per
        // task and member, so a retried step notifies nobody twice. A REST action is no step
        // and sends its own notice unkeyed: under that key the same user may have been told of
        // the same task before (a delegated task resolved back to its owner, a task queued
        // behind a signer added before it, a second delegation to the same person).
        for (const auto& user : recipients(tenant, {task.assignee})) {
            notify(tenant, {user}, "Approval request #" + std::to_string(id) + ": " + why,
                   "Task " + std::to_string(task.id) + " at step " + node_id + " " + why + ".",
                   from_step
                       ? std::optional("approval-task-" + std::to_string(task.id) + "-" + user)
                       : std::nullopt);
        }
    }
}

std::vector<std::string> Engine::recipients(const core::TenantId& tenant,
                                            const std::vector<std::string>& assignees) {
    std::vector<std::string> users;
    const auto add = [&users](const std::string& user) {
        if (std::find(users.begin(), users.end(), user) == users.end()) {
            users.push_back(user);
        }
    };
    for (const auto& assignee : assignees) {
        const auto role = group_role(assignee);
        if (!role) {
            add(assignee);
            continue;
        }
        for (const auto& member : p_.directory.members_of(tenant, *role)) {
            add(member);
        }
    }
    return users;
}

void Engine::notify(const core::TenantId& tenant,
                    const std::vector<std::string>& users,
                    const std::string& subject,
                    const std::string& body,
                    const std::optional<std::string>& key) {
    if (users.empty()) {
        return;
    }
    // A notification is best effort: a failure is logged, never a reason to stop a process.
    try {
        p_.notifier.notify(tenant, "approvals", users, subject, body, key);
    } catch (const std::exception& error) {
        core::log(core::LogLevel::kWarn, "approval notification failed",
                  {{"tenant", tenant.value()}, {"error", error.what()}});
    }
}

void Engine::wake(const core::TenantId& tenant,
                  std::int64_t id,
                  const std::string& why,
                  const std::optional<std::string>& once) {
    // Through the outbox like every announcement, with its echoes (see kWakeEchoes). The key is
    // in the woken instance's log, beside its own steps' keys: "wake:" keeps them apart.
    p_.instances.announce(tenant, id, wake_event(tenant, id, why), kWakeEchoes,
                          once ? std::optional("wake:" + *once) : std::nullopt);
}

}  // namespace riveredge::approvals
