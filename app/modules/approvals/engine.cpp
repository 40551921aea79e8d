#include "modules/approvals/engine.hpp"

#include "core/http/api_error.hpp"
#include "core/json/fields.hpp"

#include <inngest/client.hpp>
#include <inngest/errors.hpp>
#include <inngest/local/expression.hpp>

#include <algorithm>
#include <set>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;
using core::ApiError;

// "${initiator}" or "${field}" from the variables; anything else is a user id.
std::string expand(const std::string& value,
                   const json::object& variables,
                   const std::string& initiator) {
    const std::string inner = unwrap_expression(value);
    if (inner == value) {
        return value;
    }
    if (inner == "initiator") {
        return initiator;
    }
    const auto* v = variables.if_contains(inner);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

std::vector<std::string> resolve_assignees(const FlowNode& node,
                                           const boost::json::object& variables,
                                           const std::string& initiator) {
    std::vector<std::string> out;
    const auto add = [&](const std::string& who) {
        if (!who.empty() && std::find(out.begin(), out.end(), who) == out.end()) {
            out.push_back(who);
        }
    };
    const auto& c = node.config;
    if (const auto assignee = core::string_field(c, "assignee"); !assignee.empty()) {
        add(expand(assignee, variables, initiator));
    }
    if (const auto* approvers = c.if_contains("approvers"); approvers && approvers->is_array()) {
        for (const auto& a : approvers->as_array()) {
            const auto& o = a.as_object();
            const std::string type = core::string_field(o, "type");
            const std::string value = core::string_field(o, "value");
            if (type == "user") {
                add(value);
            } else if (type == "initiator") {
                add(initiator);
            } else if (type == "role") {
                add("role:" + value);
            } else if (type == "form_field") {
                const auto* field = variables.if_contains(value);
                if (field != nullptr && field->is_string()) {
                    add(std::string(field->as_string()));
                }
            } else {
                throw inngest::NonRetriableError("approver source '" + type +
                                                 "' is not supported yet");
            }
        }
    }
    for (const char* key : {"candidate_users", "candidate_groups"}) {
        if (const auto* list = c.if_contains(key); list && list->is_array()) {
            for (const auto& v : list->as_array()) {
                if (v.is_string()) {
                    add((std::string(key) == "candidate_groups" ? "role:" : "") +
                        std::string(v.as_string()));
                }
            }
        }
    }
    return out;
}

boost::json::object Engine::start(const core::Principal& initiator,
                                  const boost::json::object& request) {
    json::object problems;
    const auto* definition_id = request.if_contains("definition_id");
    if (definition_id == nullptr || !definition_id->is_int64() || definition_id->as_int64() <= 0) {
        problems["definition_id"] = "required, a definition id";
    }
    std::optional<std::string> business_key;
    if (const auto* key = request.if_contains("business_key"); key && !key->is_null()) {
        if (!key->is_string() || key->as_string().empty() || key->as_string().size() > 200) {
            problems["business_key"] = "a string of 1 to 200 characters";
        } else {
            business_key = std::string(key->as_string());
        }
    }
    json::object variables;
    if (const auto* v = request.if_contains("variables"); v && !v->is_null()) {
        if (!v->is_object()) {
            problems["variables"] = "an object of form fields";
        } else {
            variables = v->as_object();
        }
    }
    if (!problems.empty()) {
        throw ApiError::validation(std::move(problems));
    }
    const auto id = definition_id->as_int64();
    const auto definition = definitions_.find(initiator.tenant, id);
    if (!definition) {
        throw ApiError::not_found("process definition " + std::to_string(id));
    }
    const int version =
        static_cast<int>(definition->at("latest_version").to_number<std::int64_t>());
    if (version == 0) {
        throw ApiError::conflict("process definition " + std::to_string(id) +
                                 " has no published version");
    }
    const auto instance = instances_.create(initiator.tenant, id, version, business_key, variables,
                                            initiator.user_id);
    if (!instance) {
        throw ApiError::conflict("an instance with business key '" + business_key.value_or("") +
                                 "' exists already");
    }
    const auto sent = inngest_.send(inngest::Event{
        .name = kInstanceStarted,
        .data = {{"tenant_id", initiator.tenant.value()}, {"instance_id", *instance}},
        .id = "approval-instance-" + initiator.tenant.value() + "-" + std::to_string(*instance)});
    if (!sent) {
        instances_.finish(initiator.tenant, *instance, "failed", std::nullopt, std::nullopt);
        throw ApiError(503, "unavailable", "the instance could not be started; try again");
    }
    return get(initiator.tenant, *instance);
}

boost::json::object Engine::get(const core::TenantId& tenant, std::int64_t id) {
    auto found = instances_.find(tenant, id);
    if (!found) {
        throw ApiError::not_found("instance " + std::to_string(id));
    }
    (*found)["tasks"] = instances_.tasks_of(tenant, id);
    return std::move(*found);
}

boost::json::object Engine::decide(const core::Principal& who,
                                   std::int64_t task_id,
                                   bool approve,
                                   const boost::json::object& request) {
    std::optional<std::string> comment;
    if (const auto* c = request.if_contains("comment"); c && !c->is_null()) {
        if (!c->is_string() || c->as_string().size() > 2000) {
            throw ApiError::validation(json::object{{"comment", "a string of at most 2000 bytes"}});
        }
        comment = std::string(c->as_string());
    }
    const auto decision = instances_.decide(who, task_id, approve, comment);
    // The instance re-reads the database when it wakes; a lost or early event costs latency.
    (void)inngest_.send(inngest::Event{.name = kTaskDecided,
                                       .data = {{"tenant_id", who.tenant.value()},
                                                {"instance_id", decision.instance_id},
                                                {"node_id", decision.node_id},
                                                {"visit", decision.visit}}});
    return json::object{{"task_id", task_id},
                        {"instance_id", decision.instance_id},
                        {"node_id", decision.node_id},
                        {"decision", approve ? "approved" : "rejected"}};
}

boost::json::object Engine::load(const core::TenantId& tenant, std::int64_t id) {
    const auto instance = instances_.find(tenant, id);
    if (!instance) {
        throw inngest::NonRetriableError("instance " + std::to_string(id) + " does not exist");
    }
    const auto version =
        definitions_.version(tenant, instance->at("definition_id").to_number<std::int64_t>(),
                             static_cast<int>(instance->at("version").to_number<std::int64_t>()));
    if (!version) {
        throw inngest::NonRetriableError("the instance's definition version is missing");
    }
    return json::object{{"definition", version->at("compiled")},
                        {"variables", instance->at("variables")},
                        {"initiator", instance->at("initiator")}};
}

boost::json::object Engine::enter_user_task(const core::TenantId& tenant,
                                            std::int64_t id,
                                            const FlowNode& node,
                                            int visit,
                                            const boost::json::object& variables,
                                            const std::string& initiator) {
    const auto assignees = resolve_assignees(node, variables, initiator);
    if (assignees.empty()) {
        throw inngest::NonRetriableError("user task '" + node.id + "' resolved to no approver");
    }
    instances_.open_node(tenant, id, node.id, visit, assignees,
                         "enter:" + node.id + "#" + std::to_string(visit));
    json::array who;
    for (const auto& a : assignees) {
        who.emplace_back(a);
    }
    return json::object{{"assignees", std::move(who)}};
}

std::string Engine::outcome(const core::TenantId& tenant,
                            std::int64_t id,
                            const std::string& node_id,
                            int visit) {
    return instances_.node_outcome(tenant, id, node_id, visit);
}

std::string Engine::choose(const ProcessDefinition& definition,
                           const FlowNode& gateway,
                           const boost::json::object& variables) const {
    std::vector<const FlowEdge*> out;
    for (const auto& e : definition.edges) {
        if (e.source == gateway.id) {
            out.push_back(&e);
        }
    }
    std::stable_sort(out.begin(), out.end(), [](const FlowEdge* a, const FlowEdge* b) {
        return a->priority < b->priority;
    });
    const FlowEdge* fallback = nullptr;
    for (const auto* e : out) {
        if (e->is_default) {
            fallback = e;
            continue;  // a default flow's own condition is not evaluated
        }
        if (!e->condition) {
            return e->target;
        }
        const auto expression =
            inngest::local::Expression::compile(unwrap_expression(*e->condition));
        if (expression && expression->matches(variables)) {
            return e->target;
        }
    }
    if (fallback == nullptr) {
        throw inngest::NonRetriableError("no condition of gateway '" + gateway.id +
                                         "' holds and it has no default flow");
    }
    return fallback->target;
}

boost::json::object Engine::finish(const core::TenantId& tenant,
                                   std::int64_t id,
                                   const std::string& status,
                                   const std::string& node_id,
                                   const std::string& step_key) {
    instances_.finish(tenant, id, status, node_id, step_key);
    return json::object{{"instance_id", id}, {"status", status}};
}

}  // namespace riveredge::approvals
