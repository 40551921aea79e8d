#pragma once

// Process definitions: one internal model for what the ProFlow designer draws and for the JSON
// process format of the user's planning documents (seed 003, section 5.1), the importers of
// both, and the checks a definition passes before it is published.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::approvals {

/// The BPMN elements the engine knows.
inline constexpr const char* kElementTypes[] = {
    "startEvent",      "endEvent",         "userTask",          "serviceTask",
    "scriptTask",      "exclusiveGateway", "parallelGateway",   "inclusiveGateway",
    "timerCatchEvent", "signalCatchEvent", "boundaryEvent",     "messageCatchEvent",
    "receiveTask",     "signalThrowEvent", "messageThrowEvent", "eventBasedGateway",
    "manualTask",      "businessRuleTask", "callActivity",      "compensationThrowEvent",
    "subProcess"};

struct FlowNode {
    std::string id;
    std::string type;
    std::string name;
    /// The element's settings (approvers, mode, deadline, timer, signal, script ...).
    boost::json::object config;
    /// The embedded sub-process this node is inside; empty at the process's top level.
    std::string parent{};
};

struct FlowEdge {
    std::string id;
    std::string source;
    std::string target;
    /// `${...}` or a bare expression over process variables; none for unconditional flows.
    std::optional<std::string> condition;
    int priority = 0;
    bool is_default = false;
    /// An explicit return path (back to an earlier node): the only edges allowed in a cycle.
    bool is_return = false;
    /// Listeners of its `take` event (each {event, activity or url, input_mapping}).
    boost::json::array listeners{};
};

struct ProcessDefinition {
    std::string key;
    std::string name;
    std::vector<FlowNode> nodes;
    std::vector<FlowEdge> edges;

    const FlowNode* node(const std::string& id) const;
    /// The flows out of a node, by priority (ties in the order drawn).
    std::vector<const FlowEdge*> outgoing(const std::string& id) const;
    /// How many flows come into a node, return paths not counted.
    int incoming(const std::string& id) const;
    /// The boundary events attached to a task, in the order drawn.
    std::vector<const FlowNode*> boundaries(const std::string& task) const;
    /// Whether `node` is (at any depth) inside the sub-process `scope`.
    bool inside(const std::string& node, const std::string& scope) const;
    /// The start event directly inside a sub-process (nullptr when it has none).
    const FlowNode* inner_start(const std::string& scope) const;
    boost::json::object to_json() const;
    static ProcessDefinition from_json(const boost::json::object& json);
};

/// A problem that names where it is: a node, an edge, or the whole definition.
struct DefinitionProblem {
    std::optional<std::string> node;
    std::optional<std::string> edge;
    std::string message;

    boost::json::object to_json() const;
};

/// Thrown by the importers for input that is not a definition at all (wrong shape), or one
/// past the size limits below.
struct ImportError {
    std::string message;
};

/// What one definition may hold. A designer's process has tens of nodes; the limits keep the
/// checks (some of which pair nodes with nodes) and the engine's lookups quick on any input.
inline constexpr std::size_t kMaxNodes = 1000;
inline constexpr std::size_t kMaxEdges = 2000;
/// Sub-processes inside sub-processes, at most this deep.
inline constexpr int kMaxNesting = 20;

/// `format`: "proflow" (React Flow `{nodes, edges}` arrays, or the editor's flattened
/// `{id: node}` maps, as `nodes`/`edges` or `flattenNodes`/`flattenEdges`), "seed" (`process` +
/// `elements`), or "auto" (decided by the shape). Throws `ImportError`.
ProcessDefinition import_definition(const boost::json::value& source, const std::string& format);

/// Everything wrong with a definition, in a stable order; empty when it can be published.
std::vector<DefinitionProblem> validate(const ProcessDefinition& definition);

/// A boundary event's settings: the task it is attached to (`attached_to`, or BPMN's
/// `attachedToRef`), what it catches (`timer` with a `duration`, `signal`, `message`, `error`
/// (optionally only one `error_code`), `cancel` on a transaction, or `compensation`), and
/// whether it interrupts the task or sub-process (`cancel_activity`, default true; a timer may
/// leave it open and start a second path beside it).
struct Boundary {
    std::string attached_to;
    std::string kind;
    bool interrupting = true;
    std::optional<std::chrono::milliseconds> duration;
    /// For a `signal` or `message` boundary: what it waits for in the signal store (the
    /// signal's name, or `message:<name>`).
    std::string awaited;
};
Boundary boundary_of(const FlowNode& node);

/// A sub-process that compensates its completed tasks when an error or cancel leaves it.
bool is_transaction(const FlowNode& node);

/// What an end event throws: `error` (with `error_code`), `cancel` (inside a transaction), or
/// nothing (empty) for a plain end event.
std::string end_throws(const FlowNode& node);

/// An error end event's code, or an error boundary's filter (empty: it catches any error).
std::string error_code_of(const FlowNode& node);

/// The listeners of `event` (start, end, take) among a node's config `listeners` or an edge's.
std::vector<boost::json::object> listeners_of(const boost::json::array& listeners,
                                              const std::string& event);
/// A node's listeners (its config's `listeners` array; empty when it has none).
const boost::json::array& node_listeners(const FlowNode& node);

/// The compensation handler of a task: the target of its compensation boundary's flow.
const FlowNode* compensation_handler(const ProcessDefinition& definition, const std::string& task);

/// What a catch element waits for in the signal store: the signal's name, or `message:<name>`
/// for a message catch event or receive task; empty for anything else.
std::string awaited_signal(const FlowNode& node);

/// The expression inside `${...}` (or the text itself without the wrapper).
std::string unwrap_expression(const std::string& condition);

/// True for an ISO 8601 duration such as PT1H, P2DT3H, P1W that `iso_duration` can measure.
bool valid_iso_duration(const std::string& text);

/// The length of an ISO 8601 duration (a year is 365 days, a month 30); nullopt if invalid.
std::optional<std::chrono::milliseconds> iso_duration(const std::string& text);

/// Where the branches of a parallel or inclusive fork meet again: the join of the same kind
/// that every branch reaches, nearest to the fork first; nullopt when they never meet.
std::optional<std::string> matching_join(const ProcessDefinition& definition,
                                         const std::string& fork);

}  // namespace riveredge::approvals
