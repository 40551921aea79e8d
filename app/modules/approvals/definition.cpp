#include "modules/approvals/definition.hpp"

#include "core/json/fields.hpp"
#include "core/time/rfc3339.hpp"

#include <inngest/local/expression.hpp>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <regex>
#include <set>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;

const json::object* object_at(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

bool flag_of(const json::object& o, std::initializer_list<const char*> keys) {
    for (const char* key : keys) {
        if (const auto* v = o.if_contains(key); v != nullptr && v->is_bool() && v->as_bool()) {
            return true;
        }
    }
    return false;
}

// A ProFlow collection: a React Flow array, or the editor's flattened {id: item} map.
std::vector<std::pair<std::string, const json::object*>> items(const json::value* collection,
                                                               const char* what) {
    std::vector<std::pair<std::string, const json::object*>> out;
    if (collection == nullptr || collection->is_null()) {
        return out;
    }
    const std::size_t limit = std::string_view(what) == "nodes" ? kMaxNodes : kMaxEdges;
    const std::size_t count = collection->is_array()    ? collection->as_array().size()
                              : collection->is_object() ? collection->as_object().size()
                                                        : 0;
    if (count > limit) {
        throw ImportError{"a definition holds at most " + std::to_string(limit) + " " + what +
                          " (this one has " + std::to_string(count) + ")"};
    }
    if (collection->is_array()) {
        for (const auto& item : collection->as_array()) {
            if (!item.is_object()) {
                throw ImportError{std::string(what) + " must be objects"};
            }
            out.emplace_back(core::string_field(item.as_object(), "id"), &item.as_object());
        }
    } else if (collection->is_object()) {
        for (const auto& [key, item] : collection->as_object()) {
            if (!item.is_object()) {
                throw ImportError{std::string(what) + " must be objects"};
            }
            const std::string id = core::string_field(item.as_object(), "id");
            out.emplace_back(id.empty() ? std::string(key) : id, &item.as_object());
        }
    } else {
        throw ImportError{std::string(what) + " must be an array or an {id: item} map"};
    }
    return out;
}

std::string normalised_type(const std::string& type, const json::object& config);

// Element types that are another element with a setting: a transaction is a sub-process that
// compensates, an error or cancel end event an end event that throws. The container may also
// be given in the settings (`parent`).
void normalise(FlowNode& n) {
    if (n.parent.empty()) {
        n.parent = core::string_field(n.config, "parent");
    }
    if (n.type == "transaction") {
        n.type = "subProcess";
        n.config["transaction"] = true;
    } else if (n.type == "errorEndEvent") {
        n.type = "endEvent";
        if (!n.config.contains("error_code")) {
            n.config["error_code"] = core::string_field(n.config, "errorCode");
        }
    } else if (n.type == "cancelEndEvent") {
        n.type = "endEvent";
        n.config["cancel"] = true;
    }
}

ProcessDefinition import_proflow(const json::object& source) {
    ProcessDefinition d;
    d.key = core::string_field(source, "key");
    d.name = core::string_field(source, "name");
    const auto* nodes = source.if_contains("nodes") ? source.if_contains("nodes")
                                                    : source.if_contains("flattenNodes");
    const auto* edges = source.if_contains("edges") ? source.if_contains("edges")
                                                    : source.if_contains("flattenEdges");
    if (nodes == nullptr) {
        throw ImportError{"a ProFlow definition has nodes (or flattenNodes)"};
    }
    for (const auto& [id, node] : items(nodes, "nodes")) {
        FlowNode n;
        n.id = id;
        n.type = core::string_field(*node, "type");
        const json::object empty;
        const auto* data = object_at(*node, "data");
        const auto& data_ref = data != nullptr ? *data : empty;
        if (const auto* bpmn = object_at(data_ref, "bpmn")) {
            n.config = *bpmn;
        }
        n.type = normalised_type(n.type, n.config);
        // React Flow nests a node in a group through parentId (parentNode before v11.11).
        for (const char* key : {"parentId", "parentNode"}) {
            if (const auto parent = core::string_field(*node, key); !parent.empty()) {
                n.parent = parent;
                break;
            }
        }
        normalise(n);
        // The name shown in the designer, wherever this editor keeps it.
        const auto* meta = object_at(data_ref, "meta");
        for (const std::string& candidate :
             {core::string_field(n.config, "name"),
              meta != nullptr ? core::string_field(*meta, "title") : std::string(),
              core::string_field(data_ref, "title"), core::string_field(data_ref, "label"),
              core::string_field(*node, "label")}) {
            if (!candidate.empty()) {
                n.name = candidate;
                break;
            }
        }
        if (n.name.empty()) {
            n.name = n.id;
        }
        d.nodes.push_back(std::move(n));
    }
    for (const auto& [id, edge] : items(edges, "edges")) {
        FlowEdge e;
        e.id = id;
        e.source = core::string_field(*edge, "source");
        e.target = core::string_field(*edge, "target");
        if (const auto* data = object_at(*edge, "data")) {
            if (const auto condition = core::string_field(*data, "condition"); !condition.empty()) {
                e.condition = condition;
            }
            if (const auto* priority = data->if_contains("priority");
                priority != nullptr && priority->is_int64()) {
                e.priority = static_cast<int>(priority->as_int64());
            }
            e.is_default = flag_of(*data, {"isDefault", "default", "is_default"});
            e.is_return = flag_of(*data, {"isReturn", "return", "is_return"});
            if (const auto* listeners = data->if_contains("listeners");
                listeners != nullptr && listeners->is_array()) {
                e.listeners = listeners->as_array();
            }
        }
        d.edges.push_back(std::move(e));
    }
    return d;
}

std::string normalised_type(const std::string& type, const json::object& config) {
    if ((type == "intermediateThrowEvent" || type == "endEvent") &&
        flag_of(config, {"compensate", "compensation"})) {
        return type == "endEvent" ? type : "compensationThrowEvent";
    }
    if (type == "intermediateThrowEvent") {
        if (config.contains("message_ref") || config.contains("message")) {
            return "messageThrowEvent";
        }
        if (config.contains("signal_ref") || config.contains("signal")) {
            return "signalThrowEvent";
        }
    }
    if (type == "intermediateCatchEvent") {
        if (config.contains("message_ref") || config.contains("message")) {
            return "messageCatchEvent";
        }
        if (config.contains("signal_ref") || config.contains("signal")) {
            return "signalCatchEvent";
        }
        if (config.contains("duration") || config.contains("date") || config.contains("timer")) {
            return "timerCatchEvent";
        }
    }
    return type;
}

ProcessDefinition import_seed(const json::object& source) {
    ProcessDefinition d;
    if (const auto* process = object_at(source, "process")) {
        d.key = core::string_field(*process, "key").empty() ? core::string_field(*process, "id")
                                                            : core::string_field(*process, "key");
        d.name = core::string_field(*process, "name");
    }
    const auto* elements = source.if_contains("elements");
    if (elements == nullptr || !elements->is_array()) {
        throw ImportError{"a process definition has an elements array"};
    }
    if (elements->as_array().size() > kMaxNodes + kMaxEdges) {
        throw ImportError{"a definition holds at most " + std::to_string(kMaxNodes + kMaxEdges) +
                          " elements (this one has " + std::to_string(elements->as_array().size()) +
                          ")"};
    }
    std::map<std::string, const json::object*> by_id;
    for (const auto& element : elements->as_array()) {
        if (!element.is_object()) {
            throw ImportError{"elements must be objects"};
        }
        const auto& e = element.as_object();
        by_id[core::string_field(e, "id")] = &e;
    }
    for (const auto& element : elements->as_array()) {
        const auto& e = element.as_object();
        const json::object empty;
        const auto* config = object_at(e, "config");
        const auto& config_ref = config != nullptr ? *config : empty;
        if (core::string_field(e, "type") == "sequenceFlow") {
            FlowEdge edge;
            edge.id = core::string_field(e, "id");
            edge.source = core::string_field(e, "source");
            edge.target = core::string_field(e, "target");
            if (const auto condition = core::string_field(config_ref, "condition");
                !condition.empty()) {
                edge.condition = condition;
            }
            d.edges.push_back(std::move(edge));
            continue;
        }
        FlowNode node;
        node.id = core::string_field(e, "id");
        node.type = normalised_type(core::string_field(e, "type"), config_ref);
        node.name = core::string_field(e, "name").empty() ? node.id : core::string_field(e, "name");
        node.config = config_ref;
        node.parent = core::string_field(e, "parent");
        normalise(node);
        d.nodes.push_back(std::move(node));
    }
    // `outgoing` names either a sequenceFlow or, for a plain connection, the next element.
    for (const auto& element : elements->as_array()) {
        const auto& e = element.as_object();
        const std::string id = core::string_field(e, "id");
        const auto* outgoing = e.if_contains("outgoing");
        if (core::string_field(e, "type") == "sequenceFlow" || outgoing == nullptr ||
            !outgoing->is_array()) {
            continue;
        }
        int order = 0;
        if (outgoing->as_array().size() > kMaxEdges) {
            throw ImportError{"an element has at most " + std::to_string(kMaxEdges) +
                              " outgoing flows"};
        }
        for (const auto& target : outgoing->as_array()) {
            const std::string name = target.is_string() ? std::string(target.as_string()) : "";
            const auto known = by_id.find(name);
            if (known != by_id.end() &&
                core::string_field(*known->second, "type") == "sequenceFlow") {
                for (auto& edge : d.edges) {
                    if (edge.id == name && edge.source == id) {
                        edge.priority = order;
                    }
                }
            } else {
                const bool exists = std::any_of(d.edges.begin(), d.edges.end(), [&](const auto& x) {
                    return x.source == id && x.target == name;
                });
                if (!exists) {
                    d.edges.push_back(FlowEdge{
                        id + "->" + name, id, name, std::nullopt, order, false, false, {}});
                }
            }
            ++order;
        }
    }
    if (d.nodes.size() > kMaxNodes || d.edges.size() > kMaxEdges) {
        throw ImportError{"a definition holds at most " + std::to_string(kMaxNodes) +
                          " nodes and " + std::to_string(kMaxEdges) + " flows (this one has " +
                          std::to_string(d.nodes.size()) + " and " +
                          std::to_string(d.edges.size()) + ")"};
    }
    for (const auto& node : d.nodes) {
        if (const auto flow = core::string_field(node.config, "default_flow"); !flow.empty()) {
            for (auto& edge : d.edges) {
                if (edge.id == flow) {
                    edge.is_default = true;
                }
            }
        }
    }
    return d;
}

bool is_gateway(const std::string& type) {
    return type == "exclusiveGateway" || type == "parallelGateway" || type == "inclusiveGateway" ||
           type == "eventBasedGateway";
}

// Listeners: objects with an event the element has, and an activity or url to call.
void check_listeners(const json::array& listeners,
                     std::initializer_list<const char*> events,
                     const std::function<void(const std::string&)>& problem) {
    for (std::size_t i = 0; i < listeners.size(); ++i) {
        const auto* l = listeners[i].if_object();
        const std::string where = "listeners[" + std::to_string(i) + "]: ";
        if (l == nullptr) {
            problem(where + "an object {event, activity or url, input_mapping}");
            continue;
        }
        const auto event = core::string_field(*l, "event");
        if (std::none_of(events.begin(), events.end(), [&](const char* e) { return event == e; })) {
            std::string allowed;
            for (const char* e : events) {
                allowed += (allowed.empty() ? "" : " or ") + std::string(e);
            }
            problem(where + "event is " + allowed + ", not '" + event + "'");
        }
        if (core::string_field(*l, "activity").empty() && core::string_field(*l, "url").empty()) {
            problem(where + "names the activity (or url) it calls");
        }
    }
}

void check_boundary(const ProcessDefinition& d,
                    const FlowNode& node,
                    std::size_t incoming,
                    std::vector<DefinitionProblem>& problems) {
    const auto problem = [&](std::string message) {
        problems.push_back({node.id, std::nullopt, std::move(message)});
    };
    if (incoming > 0) {
        problem("a boundary event has no incoming flow: its task starts it");
    }
    const auto b = boundary_of(node);
    const FlowNode* host = b.attached_to.empty() ? nullptr : d.node(b.attached_to);
    if (host == nullptr) {
        problem("a boundary event is attached to a task of this process (attached_to)");
        return;
    }
    if (node.parent != host->parent) {
        problem("a boundary event sits where its task does (inside '" + host->parent + "')");
    }
    const bool waits =
        host->type == "userTask" || host->type == "manualTask" || host->type == "subProcess";
    if (b.kind == "timer" || b.kind == "signal" || b.kind == "message") {
        if (!waits) {
            problem(
                "a " + b.kind +
                " boundary event is attached to a user or manual task or a sub-process, not a " +
                host->type);
        }
        if (b.kind == "timer" && !b.duration) {
            problem("a timer boundary event needs an ISO 8601 duration (PT30M)");
        }
        if (b.kind != "timer" && b.awaited.empty()) {
            problem("a " + b.kind + " boundary event names its " + b.kind);
        }
    } else if (b.kind == "error") {
        if (host->type != "serviceTask" && host->type != "scriptTask" &&
            host->type != "businessRuleTask" && host->type != "callActivity" &&
            host->type != "subProcess") {
            problem(
                "an error boundary event is attached to a service, script or business rule "
                "task, a call activity or a sub-process, not a " +
                host->type);
        }
        if (!b.interrupting) {
            problem("an error boundary event always interrupts its task (cancel_activity)");
        }
        // Several may catch different codes; at most one catches any (no error_code).
        int same = 0;
        for (const auto* other : d.boundaries(host->id)) {
            same +=
                boundary_of(*other).kind == "error" && error_code_of(*other) == error_code_of(node)
                    ? 1
                    : 0;
        }
        if (same > 1) {
            problem(error_code_of(node).empty()
                        ? "a task has at most one error boundary event without an error_code"
                        : "two error boundary events of a task catch '" + error_code_of(node) +
                              "'");
        }
    } else if (b.kind == "cancel") {
        if (!is_transaction(*host)) {
            problem("a cancel boundary event is attached to a transaction, not a " + host->type);
        }
        if (!b.interrupting) {
            problem("a cancel boundary event always interrupts its transaction (cancel_activity)");
        }
    } else if (b.kind == "compensation") {
        if (host->type != "userTask" && host->type != "manualTask" && host->type != "serviceTask" &&
            host->type != "scriptTask" && host->type != "businessRuleTask") {
            problem("a compensation boundary event is attached to a task, not a " + host->type);
        }
        const auto out = d.outgoing(node.id);
        const FlowNode* handler = out.size() == 1 ? d.node(out.front()->target) : nullptr;
        if (handler == nullptr ||
            (handler->type != "serviceTask" && handler->type != "scriptTask")) {
            problem("a compensation boundary event leads to one handler, a service or script task");
        }
    } else {
        problem(
            "a boundary event catches a timer, a signal, a message, an error, a cancel or a "
            "compensation, not '" +
            b.kind + "'");
    }
}

void check_user_task(const FlowNode& node, std::vector<DefinitionProblem>& problems) {
    const auto& c = node.config;
    const auto problem = [&](std::string message) {
        problems.push_back({node.id, std::nullopt, std::move(message)});
    };
    bool has_source = !core::string_field(c, "assignee").empty();
    for (const char* key : {"approvers", "candidate_users", "candidate_groups"}) {
        if (const auto* list = c.if_contains(key);
            list != nullptr && list->is_array() && !list->as_array().empty()) {
            has_source = true;
        }
    }
    if (!has_source) {
        problem("a user task needs approvers (or an assignee)");
    }
    static const std::set<std::string> sources{"user", "role", "initiator", "manager",
                                               "form_field"};
    if (const auto* approvers = c.if_contains("approvers"); approvers && approvers->is_array()) {
        for (const auto& a : approvers->as_array()) {
            if (!a.is_object() || sources.count(core::string_field(a.as_object(), "type")) == 0) {
                problem("approvers are {type: user|role|initiator|manager|form_field, value}");
                break;
            }
            const std::string type = core::string_field(a.as_object(), "type");
            if ((type == "user" || type == "role" || type == "form_field") &&
                core::string_field(a.as_object(), "value").empty()) {
                problem("approver of type " + type + " needs a value");
                break;
            }
        }
    }
    const std::string mode =
        core::string_field(c, "mode").empty() ? "any" : core::string_field(c, "mode");
    if (mode != "any" && mode != "all" && mode != "sequential" && mode != "ratio") {
        problem("mode is any, all, sequential or ratio");
    }
    if (mode == "ratio") {
        const auto* ratio = c.if_contains("ratio");
        if (ratio == nullptr || !ratio->is_number() || ratio->to_number<double>() <= 0 ||
            ratio->to_number<double>() > 1) {
            problem("mode ratio needs a ratio in (0, 1]");
        }
    }
    if (const auto* deadline = object_at(c, "deadline")) {
        if (!valid_iso_duration(core::string_field(*deadline, "duration"))) {
            problem("deadline.duration must be an ISO 8601 duration such as P2D or PT4H");
        }
        const std::string action = core::string_field(*deadline, "action");
        if (!action.empty() && action != "remind" && action != "approve" && action != "reject" &&
            action != "escalate" && action != "transfer") {
            problem("deadline.action is remind, approve, reject, escalate or transfer");
        }
        const std::string then = core::string_field(*deadline, "then");
        if (!then.empty() && then != "approve" && then != "reject" && then != "escalate" &&
            then != "transfer") {
            problem("deadline.then (after the reminders) is approve, reject, escalate or transfer");
        }
    }
    if (const auto due = core::string_field(c, "due_date");
        !due.empty() && !valid_iso_duration(due)) {
        problem("due_date must be an ISO 8601 duration");
    }
    if (const auto* signature = c.if_contains("signature"); signature != nullptr) {
        // The approval is an electronic signature of the record the instance names.
        const auto* spec = signature->if_object();
        const auto* meaning = spec != nullptr ? spec->if_contains("meaning") : nullptr;
        const auto* variable = spec != nullptr ? spec->if_contains("record_variable") : nullptr;
        if (meaning == nullptr || !meaning->is_string() || meaning->get_string().empty() ||
            meaning->get_string().size() > 100) {
            problem(
                "signature.meaning is what signing means here: authorship, review, approval, "
                "responsibility or one of the tenant's own meanings");
        }
        if (variable != nullptr && (!variable->is_string() || variable->get_string().empty() ||
                                    variable->get_string().size() > 200)) {
            problem("signature.record_variable names the variable that holds the record id");
        }
        // Only a person signs: a deadline may remind, escalate, transfer or reject, never approve.
        if (const auto* deadline = object_at(c, "deadline");
            deadline != nullptr && (core::string_field(*deadline, "action") == "approve" ||
                                    core::string_field(*deadline, "then") == "approve")) {
            problem("a signing step's deadline cannot approve it (a signature needs its signer)");
        }
    }
    if (const auto* fields = c.if_contains("editable_fields"); fields != nullptr) {
        const auto* list = fields->if_array();
        bool valid = list != nullptr && list->size() <= 200;
        for (std::size_t i = 0; valid && i < list->size(); ++i) {
            const auto* name = (*list)[i].if_string();
            valid = name != nullptr && !name->empty() && name->size() <= 200;
        }
        if (!valid) {
            problem(
                "editable_fields is an array of form field names (the variables an approver "
                "may change)");
        }
    }
}

// Sub-processes and what may be inside them: a known container, one start event and an end
// event inside each, error end events with a code, cancel end events inside a transaction.
void check_scopes(const ProcessDefinition& d, std::vector<DefinitionProblem>& problems) {
    const auto problem = [&](const std::string& id, std::string message) {
        problems.push_back({id, std::nullopt, std::move(message)});
    };
    for (const auto& n : d.nodes) {
        int depth = 0;
        for (const FlowNode* at = &n; at != nullptr && !at->parent.empty() && depth <= kMaxNesting;
             at = d.node(at->parent)) {
            ++depth;
        }
        if (!n.parent.empty()) {
            const FlowNode* container = d.node(n.parent);
            if (container == nullptr || container->type != "subProcess") {
                problem(n.id, "its parent '" + n.parent + "' is not a sub-process of this process");
            } else if (d.inside(n.parent, n.id) || n.parent == n.id) {
                problem(n.id, "sub-processes cannot contain each other");
            } else if (depth > kMaxNesting) {
                problem(n.id, "sub-processes nest at most " + std::to_string(kMaxNesting) +
                                  " deep (or their parents form a cycle)");
            }
        }
        if (n.type == "subProcess") {
            int starts = 0;
            int ends = 0;
            for (const auto& inner : d.nodes) {
                starts += inner.parent == n.id && inner.type == "startEvent" ? 1 : 0;
                ends += inner.parent == n.id && inner.type == "endEvent" ? 1 : 0;
            }
            if (starts != 1) {
                problem(n.id, "a sub-process has exactly one start event inside (found " +
                                  std::to_string(starts) + ")");
            }
            if (ends == 0) {
                problem(n.id, "a sub-process has an end event inside");
            }
        }
        const auto throws = end_throws(n);
        if (throws == "error" && error_code_of(n).empty()) {
            problem(n.id, "an error end event names the error it throws (error_code)");
        }
        if (throws == "cancel") {
            bool in_transaction = false;
            const FlowNode* outer = d.node(n.parent);
            for (int level = 0; outer != nullptr && level <= kMaxNesting && !in_transaction;
                 ++level) {
                in_transaction = is_transaction(*outer);
                outer = outer->parent.empty() ? nullptr : d.node(outer->parent);
            }
            if (!in_transaction) {
                problem(n.id, "a cancel end event is inside a transaction sub-process");
            }
        }
    }
}

}  // namespace

const FlowNode* ProcessDefinition::node(const std::string& id) const {
    for (const auto& n : nodes) {
        if (n.id == id) {
            return &n;
        }
    }
    return nullptr;
}

std::vector<const FlowEdge*> ProcessDefinition::outgoing(const std::string& id) const {
    std::vector<const FlowEdge*> out;
    for (const auto& e : edges) {
        if (e.source == id) {
            out.push_back(&e);
        }
    }
    std::stable_sort(out.begin(), out.end(), [](const FlowEdge* a, const FlowEdge* b) {
        return a->priority < b->priority;
    });
    return out;
}

int ProcessDefinition::incoming(const std::string& id) const {
    return static_cast<int>(std::count_if(edges.begin(), edges.end(), [&](const FlowEdge& e) {
        return e.target == id && !e.is_return;
    }));
}

const FlowNode* compensation_handler(const ProcessDefinition& d, const std::string& task) {
    for (const auto* b : d.boundaries(task)) {
        if (boundary_of(*b).kind == "compensation") {
            const auto out = d.outgoing(b->id);
            return out.empty() ? nullptr : d.node(out.front()->target);
        }
    }
    return nullptr;
}

std::vector<json::object> listeners_of(const json::array& listeners, const std::string& event) {
    std::vector<json::object> found;
    for (const auto& l : listeners) {
        if (l.is_object() && core::string_field(l.as_object(), "event") == event) {
            found.push_back(l.as_object());
        }
    }
    return found;
}

const json::array& node_listeners(const FlowNode& node) {
    static const json::array none;
    const auto* listeners = node.config.if_contains("listeners");
    return listeners != nullptr && listeners->is_array() ? listeners->as_array() : none;
}

std::string awaited_signal(const FlowNode& node) {
    const auto named = [&](const char* key, const char* ref) {
        const auto name = core::string_field(node.config, key);
        return name.empty() ? core::string_field(node.config, ref) : name;
    };
    if (node.type == "signalCatchEvent") {
        return named("signal", "signal_ref");
    }
    if (node.type == "messageCatchEvent" || node.type == "receiveTask") {
        const auto name = named("message", "message_ref");
        return name.empty() ? std::string() : "message:" + name;
    }
    return {};
}

std::vector<const FlowNode*> ProcessDefinition::boundaries(const std::string& task) const {
    std::vector<const FlowNode*> found;
    for (const auto& n : nodes) {
        if (n.type == "boundaryEvent" && boundary_of(n).attached_to == task) {
            found.push_back(&n);
        }
    }
    return found;
}

bool ProcessDefinition::inside(const std::string& node, const std::string& scope) const {
    // Bounded by the nesting limit, so a (refused) cycle of parents cannot loop for ever; past
    // it a definition is refused anyway.
    const FlowNode* at = this->node(node);
    for (int depth = 0; at != nullptr && depth <= kMaxNesting; ++depth) {
        if (at->parent.empty()) {
            return false;
        }
        if (at->parent == scope) {
            return true;
        }
        at = this->node(at->parent);
    }
    return false;
}

const FlowNode* ProcessDefinition::inner_start(const std::string& scope) const {
    for (const auto& n : nodes) {
        if (n.type == "startEvent" && n.parent == scope) {
            return &n;
        }
    }
    return nullptr;
}

bool is_transaction(const FlowNode& node) {
    return node.type == "subProcess" && flag_of(node.config, {"transaction"});
}

std::string end_throws(const FlowNode& node) {
    if (node.type != "endEvent") {
        return {};
    }
    if (node.config.contains("error_code") || node.config.contains("errorCode")) {
        return "error";
    }
    return flag_of(node.config, {"cancel"}) ? "cancel" : "";
}

std::string error_code_of(const FlowNode& node) {
    const auto code = core::string_field(node.config, "error_code");
    return code.empty() ? core::string_field(node.config, "errorCode") : code;
}

Boundary boundary_of(const FlowNode& node) {
    Boundary b;
    for (const char* key : {"attached_to", "attachedToRef", "attachedTo"}) {
        if (const auto id = core::string_field(node.config, key); !id.empty()) {
            b.attached_to = id;
            break;
        }
    }
    const auto duration = core::string_field(node.config, "duration");
    b.kind = core::string_field(node.config, "event");
    if (b.kind.empty()) {
        b.kind = !duration.empty()                 ? "timer"
                 : node.config.contains("signal")  ? "signal"
                 : node.config.contains("message") ? "message"
                                                   : "error";
    }
    if (b.kind == "signal" && !core::string_field(node.config, "signal").empty()) {
        b.awaited = core::string_field(node.config, "signal");
    } else if (b.kind == "message" && !core::string_field(node.config, "message").empty()) {
        b.awaited = "message:" + core::string_field(node.config, "message");
    }
    b.duration = iso_duration(duration);
    for (const char* key : {"cancel_activity", "cancelActivity", "interrupting"}) {
        if (const auto* flag = node.config.if_contains(key); flag != nullptr && flag->is_bool()) {
            b.interrupting = flag->as_bool();
        }
    }
    return b;
}

boost::json::object ProcessDefinition::to_json() const {
    json::array node_list;
    for (const auto& n : nodes) {
        json::object o{{"id", n.id}, {"type", n.type}, {"name", n.name}, {"config", n.config}};
        if (!n.parent.empty()) {
            o["parent"] = n.parent;
        }
        node_list.push_back(std::move(o));
    }
    json::array edge_list;
    for (const auto& e : edges) {
        json::object edge{
            {"id", e.id},
            {"source", e.source},
            {"target", e.target},
            {"condition", e.condition ? json::value(*e.condition) : json::value(nullptr)},
            {"priority", e.priority},
            {"default", e.is_default},
            {"return", e.is_return}};
        if (!e.listeners.empty()) {
            edge["listeners"] = e.listeners;
        }
        edge_list.push_back(std::move(edge));
    }
    return json::object{{"key", key},
                        {"name", name},
                        {"nodes", std::move(node_list)},
                        {"edges", std::move(edge_list)}};
}

ProcessDefinition ProcessDefinition::from_json(const boost::json::object& json_object) {
    ProcessDefinition d;
    d.key = core::string_field(json_object, "key");
    d.name = core::string_field(json_object, "name");
    for (const auto& n : json_object.at("nodes").as_array()) {
        const auto& o = n.as_object();
        d.nodes.push_back({core::string_field(o, "id"), core::string_field(o, "type"),
                           core::string_field(o, "name"), o.at("config").as_object(),
                           core::string_field(o, "parent")});
    }
    for (const auto& e : json_object.at("edges").as_array()) {
        const auto& o = e.as_object();
        FlowEdge edge{core::string_field(o, "id"),
                      core::string_field(o, "source"),
                      core::string_field(o, "target"),
                      std::nullopt,
                      0,
                      false,
                      false,
                      {}};
        if (o.at("condition").is_string()) {
            edge.condition = std::string(o.at("condition").as_string());
        }
        edge.priority = static_cast<int>(o.at("priority").to_number<std::int64_t>());
        edge.is_default = o.at("default").as_bool();
        edge.is_return = o.at("return").as_bool();
        if (const auto* listeners = o.if_contains("listeners");
            listeners != nullptr && listeners->is_array()) {
            edge.listeners = listeners->as_array();
        }
        d.edges.push_back(std::move(edge));
    }
    return d;
}

boost::json::object DefinitionProblem::to_json() const {
    return json::object{{"node", node ? json::value(*node) : json::value(nullptr)},
                        {"edge", edge ? json::value(*edge) : json::value(nullptr)},
                        {"message", message}};
}

ProcessDefinition import_definition(const boost::json::value& source, const std::string& format) {
    if (!source.is_object()) {
        throw ImportError{"a definition is a JSON object"};
    }
    const auto& o = source.as_object();
    std::string chosen = format;
    if (chosen.empty() || chosen == "auto") {
        chosen = o.contains("elements") ? "seed" : "proflow";
    }
    if (chosen == "seed") {
        return import_seed(o);
    }
    if (chosen == "proflow") {
        return import_proflow(o);
    }
    throw ImportError{"format is proflow, seed or auto"};
}

std::string unwrap_expression(const std::string& condition) {
    const auto first = condition.find_first_not_of(" \t\n");
    const auto last = condition.find_last_not_of(" \t\n");
    if (first == std::string::npos) {
        return {};
    }
    std::string text = condition.substr(first, last - first + 1);
    if (text.size() >= 3 && text.rfind("${", 0) == 0 && text.back() == '}') {
        text = text.substr(2, text.size() - 3);
    }
    return text;
}

bool valid_iso_duration(const std::string& text) {
    // Valid exactly when the engine can use it: the same pattern, and a length that fits.
    return iso_duration(text).has_value();
}

std::optional<std::chrono::milliseconds> iso_duration(const std::string& text) {
    // std::regex recurses once per character it repeats: a long text would overflow the stack.
    // No duration the engine can use is anywhere near this long.
    if (text.size() > 64) {
        return std::nullopt;
    }
    static const std::regex pattern(
        R"(P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?)");
    std::smatch m;
    if (!std::regex_match(text, m, pattern)) {
        return std::nullopt;
    }
    // strtod, not stod: a number past double is infinity (refused below), not out_of_range.
    const auto number = [&](int i) -> double {
        return m[i].matched ? std::strtod(m[i].str().c_str(), nullptr) : 0.0;
    };
    const double seconds = number(1) * 365 * 86400 + number(2) * 30 * 86400 +
                           number(3) * 7 * 86400 + number(4) * 86400 + number(5) * 3600 +
                           number(6) * 60 + number(7);
    // Past int64 milliseconds (some 292 million years) the conversion would be undefined.
    if (!(seconds * 1000 < 9.2e18)) {
        return std::nullopt;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

std::optional<std::string> matching_join(const ProcessDefinition& d, const std::string& fork) {
    const FlowNode* node = d.node(fork);
    if (node == nullptr) {
        return std::nullopt;
    }
    std::map<std::string, std::vector<const FlowEdge*>> out;
    std::map<std::string, int> incoming;
    for (const auto& e : d.edges) {
        out[e.source].push_back(&e);
        incoming[e.target] += e.is_return ? 0 : 1;
    }
    // Breadth first from each branch: the joins it reaches, with their distance.
    std::optional<std::map<std::string, int>> common;
    for (const auto* branch : out[fork]) {
        std::map<std::string, int> joins;
        std::map<std::string, int> distance{{branch->target, 1}};
        std::vector<std::string> todo{branch->target};
        for (std::size_t i = 0; i < todo.size(); ++i) {
            const auto id = todo[i];
            const auto* at = d.node(id);
            if (at != nullptr && at->type == node->type && incoming[id] > 1) {
                joins[id] = distance[id];
                continue;
            }
            for (const auto* e : out[id]) {
                if (!e->is_return && distance.emplace(e->target, distance[id] + 1).second) {
                    todo.push_back(e->target);
                }
            }
        }
        if (!common) {
            common = joins;
            continue;
        }
        std::map<std::string, int> both;
        for (const auto& [id, far] : joins) {
            if (const auto found = common->find(id); found != common->end()) {
                both[id] = std::max(far, found->second);
            }
        }
        common = both;
    }
    if (!common || common->empty()) {
        return std::nullopt;
    }
    return std::min_element(common->begin(), common->end(),
                            [](const auto& a, const auto& b) { return a.second < b.second; })
        ->first;
}

std::vector<DefinitionProblem> validate(const ProcessDefinition& d) {
    std::vector<DefinitionProblem> problems;
    const auto on_node = [&](const std::string& id, std::string message) {
        problems.push_back({id, std::nullopt, std::move(message)});
    };
    const auto on_edge = [&](const std::string& id, std::string message) {
        problems.push_back({std::nullopt, id, std::move(message)});
    };
    const std::set<std::string> known(std::begin(kElementTypes), std::end(kElementTypes));
    std::set<std::string> node_ids;
    std::vector<std::string> starts;
    int ends = 0;
    for (const auto& n : d.nodes) {
        if (n.id.empty()) {
            problems.push_back({std::nullopt, std::nullopt, "a node has no id"});
            continue;
        }
        if (!node_ids.insert(n.id).second) {
            on_node(n.id, "the node id is used twice");
        }
        if (known.count(n.type) == 0) {
            on_node(n.id, "unknown element type '" + n.type + "'");
        }
        if (n.type == "startEvent" && n.parent.empty()) {
            starts.push_back(n.id);
        }
        ends += n.type == "endEvent" && n.parent.empty() ? 1 : 0;
    }
    check_scopes(d, problems);
    if (starts.size() != 1) {
        problems.push_back({starts.size() > 1 ? std::optional(starts[1]) : std::nullopt,
                            std::nullopt,
                            "a process has exactly one start event (found " +
                                std::to_string(starts.size()) + ")"});
    }
    if (ends == 0) {
        problems.push_back({std::nullopt, std::nullopt, "a process has at least one end event"});
    }

    std::map<std::string, std::vector<const FlowEdge*>> out;
    std::map<std::string, std::vector<const FlowEdge*>> in;
    std::set<std::string> edge_ids;
    for (const auto& e : d.edges) {
        if (!edge_ids.insert(e.id).second) {
            on_edge(e.id, "the edge id is used twice");
        }
        if (node_ids.count(e.source) == 0) {
            on_edge(e.id, "dangling: its source '" + e.source + "' is not a node");
            continue;
        }
        if (node_ids.count(e.target) == 0) {
            on_edge(e.id, "dangling: its target '" + e.target + "' is not a node");
            continue;
        }
        out[e.source].push_back(&e);
        in[e.target].push_back(&e);
        if (const auto& from = d.node(e.source)->parent, &to = d.node(e.target)->parent;
            from != to) {
            on_edge(e.id, "crosses the border of sub-process '" + (from.empty() ? to : from) +
                              "': a flow stays inside its sub-process");
        }
        check_listeners(e.listeners, {"take"}, [&](const std::string& m) { on_edge(e.id, m); });
        if (e.condition) {
            const auto compiled =
                inngest::local::Expression::compile(unwrap_expression(*e.condition));
            if (!compiled) {
                on_edge(e.id, "condition does not compile: " + compiled.error().message);
            }
        }
    }

    // Compensation handlers: reached only through a compensation boundary, they run alone.
    std::set<std::string> handlers;
    for (const auto& n : d.nodes) {
        if (n.type == "boundaryEvent" && boundary_of(n).kind == "compensation") {
            for (const auto* e : out[n.id]) {
                handlers.insert(e->target);
            }
        }
    }
    for (const auto& n : d.nodes) {
        const auto& outs = out[n.id];
        const auto& ins = in[n.id];
        if (n.type == "startEvent" && !ins.empty()) {
            on_node(n.id, "a start event has no incoming flow");
        }
        if (n.type == "endEvent" && !outs.empty()) {
            on_node(n.id, "an end event has no outgoing flow");
        }
        const bool handler = handlers.count(n.id) > 0;
        if (handler && !outs.empty()) {
            on_node(n.id, "a compensation handler has no outgoing flow: it runs on its own");
        }
        if (n.type != "endEvent" && outs.empty() && !handler) {
            on_node(n.id, "has no outgoing flow");
        }
        if (n.type == "boundaryEvent") {
            check_boundary(d, n, ins.size(), problems);
        } else if (n.type != "startEvent" && ins.empty()) {
            on_node(n.id, "has no incoming flow");
        }
        if (!is_gateway(n.type) && n.type != "endEvent" && outs.size() > 1) {
            on_node(n.id, "only gateways branch: route several flows through a gateway");
        }
        if (n.type == "exclusiveGateway" || n.type == "inclusiveGateway") {
            int defaults = 0;
            for (const auto* e : outs) {
                defaults += e->is_default ? 1 : 0;
                if (!e->is_default && !e->condition && outs.size() > 1) {
                    on_edge(e->id, "a flow out of " + n.type + " '" + n.id +
                                       "' needs a condition, or must be its default flow");
                }
            }
            if (defaults > 1) {
                on_node(n.id, "has more than one default flow");
            }
        }
        if (n.type == "parallelGateway") {
            for (const auto* e : outs) {
                if (e->condition) {
                    on_edge(e->id, "flows out of a parallel gateway take no condition");
                }
            }
        }
        if (n.type == "userTask" || n.type == "manualTask") {
            check_user_task(n, problems);
        }
        if (n.type == "timerCatchEvent") {
            const std::string duration = core::string_field(n.config, "duration");
            const std::string date = core::string_field(n.config, "date");
            if (!(duration.empty() ? core::parse_time(date).has_value()
                                   : valid_iso_duration(duration))) {
                on_node(n.id, "a timer needs an ISO 8601 duration (PT30M) or an RFC 3339 date");
            }
        }
        if (n.type == "signalCatchEvent" && awaited_signal(n).empty()) {
            on_node(n.id, "a signal catch event names its signal");
        }
        if ((n.type == "messageCatchEvent" || n.type == "receiveTask") &&
            awaited_signal(n).empty()) {
            on_node(n.id, "a " + n.type + " names its message");
        }
        if (n.type == "signalThrowEvent" && core::string_field(n.config, "signal").empty()) {
            on_node(n.id, "a signal throw event names its signal");
        }
        // Messages wait beside signals as "message:<name>": a signal so named would be one.
        const std::string signal =
            n.type == "signalThrowEvent"   ? core::string_field(n.config, "signal")
            : n.type == "signalCatchEvent" ? awaited_signal(n)
            : n.type == "boundaryEvent" && boundary_of(n).kind == "signal" ? boundary_of(n).awaited
                                                                           : std::string();
        if (signal.rfind("message:", 0) == 0) {
            on_node(n.id, "a signal's name does not start with 'message:' (messages are kept so)");
        }
        if (n.type == "messageThrowEvent" &&
            (core::string_field(n.config, "message").empty() ||
             core::string_field(n.config, "business_key").empty())) {
            on_node(n.id,
                    "a message throw event names its message and the business_key it goes to");
        }
        if (n.type == "eventBasedGateway") {
            if (outs.size() < 2) {
                on_node(n.id, "an event-based gateway waits for two or more events");
            }
            for (const auto* e : outs) {
                const FlowNode* target = d.node(e->target);
                if (e->condition) {
                    on_edge(e->id, "flows out of an event-based gateway take no condition");
                }
                if (target != nullptr && target->type != "timerCatchEvent" &&
                    target->type != "signalCatchEvent" && target->type != "messageCatchEvent" &&
                    target->type != "receiveTask") {
                    on_edge(e->id, "an event-based gateway leads to catch events only, not a " +
                                       target->type);
                }
            }
        }
        check_listeners(node_listeners(n), {"start", "end"},
                        [&](const std::string& m) { on_node(n.id, m); });
        if (n.type == "callActivity") {
            if (core::string_field(n.config, "called_element").empty()) {
                on_node(n.id, "a call activity names the process it starts (called_element)");
            } else if (core::string_field(n.config, "called_element") == d.key) {
                on_node(n.id, "a call activity does not call its own process");
            }
        }
        if (n.type == "businessRuleTask") {
            const auto* version = n.config.if_contains("version");
            if (core::string_field(n.config, "decision").empty() ||
                (version != nullptr && !version->is_int64())) {
                on_node(n.id,
                        "a business rule task names its decision table (decision) and, when "
                        "pinned, an integer version");
            }
        }
        if (n.type == "scriptTask") {
            const auto* script = n.config.if_contains("script_id");
            if (script == nullptr || !script->is_int64()) {
                on_node(n.id, "a script task names its script_id");
            }
        }
        if (n.type == "serviceTask" && !n.config.contains("url") && !n.config.contains("action") &&
            !n.config.contains("implementation")) {
            on_node(n.id, "a service task has a url, an action or an implementation");
        }
    }

    // Reachability: every node from the start, and an end from every node. A node is queued
    // the first time it is reached.
    const auto reach = [](std::set<std::string>& seen, std::vector<std::string>& queue,
                          const std::string& node) {
        if (seen.insert(node).second) {
            queue.push_back(node);
        }
    };
    if (starts.size() == 1) {
        std::set<std::string> seen{starts[0]};
        std::vector<std::string> queue{starts[0]};
        while (!queue.empty()) {
            const auto id = queue.back();
            queue.pop_back();
            for (const auto* e : out[id]) {
                reach(seen, queue, e->target);
            }
            for (const auto* boundary : d.boundaries(id)) {
                reach(seen, queue, boundary->id);
            }
            // Entering a sub-process starts its inner start event.
            if (const auto* inner = d.inner_start(id); inner != nullptr) {
                reach(seen, queue, inner->id);
            }
        }
        for (const auto& n : d.nodes) {
            if (!n.id.empty() && seen.count(n.id) == 0) {
                on_node(n.id, "cannot be reached from the start event");
            }
        }
    }
    std::set<std::string> reaches_end;
    std::vector<std::string> queue;
    for (const auto& n : d.nodes) {
        if (n.type == "endEvent") {
            reach(reaches_end, queue, n.id);
        }
    }
    while (!queue.empty()) {
        const auto id = queue.back();
        queue.pop_back();
        for (const auto* e : in[id]) {
            reach(reaches_end, queue, e->source);
        }
    }
    for (const auto& n : d.nodes) {
        const bool compensation_path =
            handlers.count(n.id) > 0 ||
            (n.type == "boundaryEvent" && boundary_of(n).kind == "compensation");
        if (!n.id.empty() && n.type != "endEvent" && reaches_end.count(n.id) == 0 &&
            !compensation_path) {
            on_node(n.id, "no path leads from here to an end event");
        }
    }

    // Cycles are allowed only through edges marked as return paths.
    // Depth first with a stack of its own: a long chain of nodes must not exhaust the thread's.
    std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
    std::set<std::string> reported;
    std::vector<std::pair<std::string, std::size_t>> path;  // a node, and its next edge to try
    for (const auto& n : d.nodes) {
        if (state[n.id] != 0) {
            continue;
        }
        state[n.id] = 1;
        path.emplace_back(n.id, 0);
        while (!path.empty()) {
            auto& [id, next] = path.back();
            const auto& edges = out[id];
            if (next == edges.size()) {
                state[id] = 2;
                path.pop_back();
                continue;
            }
            const auto* e = edges[next++];
            if (e->is_return) {
                continue;
            }
            if (state[e->target] == 1 && reported.insert(e->id).second) {
                on_edge(e->id,
                        "closes a cycle: mark it as a return path (data.isReturn) or remove it");
            } else if (state[e->target] == 0) {
                state[e->target] = 1;
                path.emplace_back(e->target, 0);
            }
        }
    }

    // Forks meet again: every branch of a parallel or inclusive fork reaches a join of its kind.
    for (const auto& n : d.nodes) {
        if ((n.type == "parallelGateway" || n.type == "inclusiveGateway") && out[n.id].size() > 1 &&
            !matching_join(d, n.id)) {
            on_node(n.id, "the branches of this " + n.type + " never meet at a matching join");
        }
    }
    return problems;
}

}  // namespace riveredge::approvals
