// HTTP in and out for approval definitions: parse, call the service, write JSON.

#include "core/http/outbound.hpp"
#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "core/json/fields.hpp"
#include "core/json/request_fields.hpp"
#include "modules/approvals/definition_service.hpp"
#include "modules/approvals/engine.hpp"

#include <boost/json/value_from.hpp>

namespace riveredge::approvals {
namespace {

using enum core::Access;
using core::Call;
using core::DomainError;

constexpr const char* kSourceSchema = R"json({"type":"object","required":["source"],"properties":{
  "key":{"type":"string"},"name":{"type":"string"},
  "format":{"enum":["proflow","seed","auto"],"default":"auto"},
  "source":{"type":"object","description":"ProFlow {nodes, edges} (arrays or flattened maps; BPMN element in node.type, settings in node.data.bpmn, branch condition/priority/isDefault/isReturn in edge.data) or the process format {process, elements}"}}})json";

constexpr const char* kProblemsSchema =
    R"json({"type":"array","items":{"type":"object","properties":{
  "node":{"type":"string","nullable":true},"edge":{"type":"string","nullable":true},
  "message":{"type":"string"}}}})json";

}  // namespace

void register_routes(core::Router& router, DefinitionService& service) {
    const std::string definition_schema =
        std::string(R"json({"type":"object","properties":{"id":{"type":"integer"},
  "key":{"type":"string"},"name":{"type":"string"},"format":{"type":"string"},"draft":{"type":"object"},
  "latest_version":{"type":"integer"},"valid":{"type":"boolean"},"problems":)json") +
        kProblemsSchema + "}}";

    router
        .post("/api/v1/approvals/definitions/validate", kUser,
              "Import and check a definition without saving it")
        .accepts(kSourceSchema)
        .returns(std::string(R"json({"type":"object","properties":{"valid":{"type":"boolean"},
  "format":{"type":"string"},"definition":{"type":"object"},"problems":)json") +
                 kProblemsSchema + "}}")
        .to([&service](Call& call) { return service.validate(call.body()); });

    router
        .post("/api/v1/approvals/definitions", kAdmin,
              "Import a definition as a draft (ProFlow or the process format)")
        .accepts(kSourceSchema)
        .returns(definition_schema)
        .status(201)
        .to([&service](Call& call) { return service.create(call.who(), call.body()); });

    router.get("/api/v1/approvals/definitions", kUser, "List process definitions")
        .lists(kDefinitionList)
        .to([&service](Call& call) {
            return call.list(service.repository().list(call.tenant(), call.paging()));
        });

    router
        .get("/api/v1/approvals/definitions/{id}", kUser,
             "A definition's draft (verbatim, for the designer) with its problems")
        .returns(definition_schema)
        .to([&service](Call& call) { return service.get(call.tenant(), call.id()); });

    router
        .put("/api/v1/approvals/definitions/{id}", kAdmin,
             "Replace the draft (published versions are not touched)")
        .accepts(kSourceSchema)
        .returns(definition_schema)
        .to([&service](Call& call) { return service.update(call.who(), call.id(), call.body()); });

    router
        .del("/api/v1/approvals/definitions/{id}", kAdmin,
             "Archive a definition: no new instances; running ones finish on their version")
        .returns(definition_schema)
        .to([&service](Call& call) {
            const auto id = call.id();
            if (!service.repository().archive(call.tenant(), id)) {
                throw DomainError::not_found("process definition " + std::to_string(id));
            }
            return service.get(call.tenant(), id);
        });

    router
        .post("/api/v1/approvals/definitions/{id}/publish", kAdmin,
              "Validate the draft and publish it as the next immutable version")
        .status(201)
        .to([&service](Call& call) { return service.publish(call.who(), call.id()); });

    core::add_version_routes(router, {"/api/v1/approvals/definitions/{id}", "process definition"},
                             service);

    const std::string decision_schema = R"json({"type":"object","properties":{
  "key":{"type":"string"},"version":{"type":"integer"},"name":{"type":"string"},
  "source":{"type":"object"},"created_by":{"type":"string"},
  "created_at":{"type":"string","format":"date-time"}}})json";
    router
        .post("/api/v1/approvals/decisions", kAdmin,
              "Save a decision table (hit policy first, unique or collect) as its key's "
              "next version, for business rule tasks")
        .accepts(R"json({"type":"object","required":["key","source"],"properties":{
  "key":{"type":"string"},"name":{"type":"string"},"source":{"type":"object"}}})json")
        .returns(decision_schema)
        .status(201)
        .to([&service](Call& call) {
            return service.save_decision(call.who(), call.body()).to_json();
        });
    router
        .get("/api/v1/approvals/decisions/{key}", kUser,
             "A decision table: its latest version, or ?version=N")
        .returns(decision_schema)
        .to([&service](Call& call) {
            std::optional<int> version;
            if (call.query("version")) {
                version = call.int_query("version", 1, 1, 1000000);
            }
            return service.decision(call.tenant(), call.param("key"), version).to_json();
        });
    router
        .post("/api/v1/approvals/decisions/{key}/evaluate", kUser,
              "Try a decision table on {variables, version?}: what it decides")
        .accepts(R"json({"type":"object","properties":{"variables":{"type":"object"},
  "version":{"type":"integer"}}})json")
        .returns(R"json({"type":"object","properties":{"key":{"type":"string"},
  "version":{"type":"integer"},"result":{}}})json")
        .to([&service](Call& call) {
            return service.try_decision(call.tenant(), call.param("key"), call.body());
        });
}

}  // namespace riveredge::approvals

namespace riveredge::approvals {

void register_instance_routes(core::Router& router, Engine& engine) {
    namespace json = boost::json;

    static constexpr const char* kInstanceSchema = R"json({"type":"object","properties":{
  "id":{"type":"integer"},"definition_id":{"type":"integer"},"version":{"type":"integer"},
  "business_key":{"type":["string","null"]},
  "status":{"enum":["running","suspended","completed","rejected","failed","withdrawn","cancelled"]},
  "status_reason":{"type":["string","null"]},"variables":{"type":"object"},
  "initiator":{"type":"string"},"current_nodes":{"type":"array","items":{"type":"string"}},
  "generation":{"type":"integer"},"started_at":{"type":"string","format":"date-time"},
  "ended_at":{"type":["string","null"],"format":"date-time"},
  "tasks":{"type":"array","items":{"type":"object","description":"as in GET /api/v1/approvals/tasks"}}}})json";
    static constexpr const char* kTaskSchema = R"json({"type":"object","properties":{
  "id":{"type":"integer"},"instance_id":{"type":"integer"},"node_id":{"type":"string"},
  "visit":{"type":"integer"},"kind":{"enum":["approval","added","resubmit"]},
  "assignee":{"type":"string","description":"a user id, or role:<name> for a group task"},
  "owner":{"type":["string","null"],"description":"while delegated: whom it comes back to"},
  "status":{"enum":["pending","queued","approved","rejected","returned","cancelled","transferred"]},
  "seq":{"type":"integer"},"decided_by":{"type":["string","null"]},
  "comment":{"type":["string","null"]},"created_at":{"type":"string"},
  "decided_at":{"type":["string","null"]}}})json";
    static constexpr const char* kReasonSchema =
        R"({"type":"object","required":["reason"],"properties":{"reason":{"type":"string","maxLength":1000}}})";
    static constexpr const char* kActionResult = R"json({"type":"object","properties":{
  "task_id":{"type":"integer"},"instance_id":{"type":"integer"},"node_id":{"type":"string"},
  "action":{"type":"string"},"step_status":{"type":"string",
  "description":"active while the step waits for others; approved, rejected or returned once settled"}}})json";

    router
        .post("/api/v1/approvals/instances", kUser,
              "Start an instance of a definition's latest published version with form data")
        .accepts(R"json({"type":"object","required":["definition_id"],"properties":{
  "definition_id":{"type":"integer"},"business_key":{"type":"string"},"variables":{"type":"object"}}})json")
        .returns(kInstanceSchema)
        .status(201)
        .to([&engine](Call& call) { return engine.start(call.who(), call.body()); });

    router
        .get("/api/v1/approvals/instances", kUser,
             "Instances the caller takes part in, all of them for administrators")
        .returns(kInstanceSchema)
        .lists(kInstanceList)
        .to([&engine](Call& call) {
            // box, started_by and the SQL filters are checked against kInstanceList by the router.
            const auto box = call.filter("box").value_or("");
            const bool mine = call.filter("started_by").has_value() || box == "started";
            const auto& who = call.who();
            const InstanceRepository::InstanceFilter filter{
                mine ? core::db::Param(who.user_id) : std::nullopt,
                call.is_admin() ? std::nullopt : std::optional(who),
                box == "cc" ? core::db::Param(who.user_id) : std::nullopt};
            return call.list(engine.instances().list(who.tenant, filter, call.paging()));
        });

    // An instance's form data and history are for its participants and administrators.
    const auto visible = [&engine](const Call& call, std::int64_t id) {
        auto instance = engine.get(call.tenant(), id);  // 404 for another tenant's
        if (!call.is_admin() && !engine.instances().participates(call.who(), id)) {
            throw core::DomainError::forbidden(
                "only the instance's participants and tenant administrators see it");
        }
        return instance;
    };

    router
        .get("/api/v1/approvals/instances/{id}", kUser,
             "An instance with its status, current nodes and tasks")
        .returns(kInstanceSchema)
        .to([visible](Call& call) { return visible(call, call.id()); });

    router
        .post("/api/v1/approvals/instances/{id}/withdraw", kUser,
              "The initiator withdraws the instance while no approver has acted")
        .returns(kInstanceSchema)
        .to([&engine](Call& call) {
            const auto id = call.id();
            engine.withdraw(call.who(), id);
            return engine.get(call.tenant(), id);
        });

    router
        .post("/api/v1/approvals/instances/{id}/terminate", kAdmin,
              "An administrator ends a running, suspended or failed instance (cancelled), "
              "with a reason")
        .accepts(kReasonSchema)
        .returns(kInstanceSchema)
        .to([&engine](Call& call) {
            const auto id = call.id();
            engine.terminate(call.who(), id, call.body());
            return engine.get(call.tenant(), id);
        });

    struct Hold {
        const char* verb;
        HoldChange change;
        const char* summary;
    };
    for (const Hold& hold :
         {Hold{"suspend", HoldChange::kSuspend,
               "An administrator suspends a running instance, with a reason: it stops at its "
               "next node, its tasks refuse decisions, and deadlines, timers and signals wait"},
          Hold{"resume", HoldChange::kResume,
               "An administrator resumes a suspended instance, with a reason"},
          Hold{"retry", HoldChange::kRetry,
               "An administrator retries the service or script task a failed instance stopped "
               "at (from its first attempt), with a reason"}}) {
        router
            .post(std::string("/api/v1/approvals/instances/{id}/") + hold.verb, kAdmin,
                  hold.summary)
            .accepts(kReasonSchema)
            .returns(kInstanceSchema)
            .to([&engine, change = hold.change](Call& call) {
                const auto id = call.id();
                engine.change_hold(call.who(), id, change, call.body());
                return engine.get(call.tenant(), id);
            });
    }

    router
        .post("/api/v1/approvals/tasks/{id}/reassign", kAdmin,
              "An administrator hands a stuck task to someone else, with a reason")
        .accepts(
            R"({"type":"object","required":["to","reason"],"properties":{"to":{"type":"string"},"reason":{"type":"string","maxLength":1000}}})")
        .returns(kActionResult)
        .to([&engine](Call& call) { return engine.reassign(call.who(), call.id(), call.body()); });

    router
        .post("/api/v1/approvals/instances/{id}/signals", kUser,
              "Send a signal to an instance (caught by its signal catch events; data merged "
              "into the variables)")
        .accepts(R"json({"type":"object","required":["name"],"properties":{
  "name":{"type":"string"},"data":{"type":"object"}}})json")
        .returns(R"json({"type":"object","properties":{"accepted":{"type":"boolean"}}})json")
        .status(202)
        .to([&engine](Call& call) {
            engine.signal(call.who(), call.id(), call.body());
            return json::object{{"accepted", true}};
        });

    router
        .post("/api/v1/approvals/messages", kAdmin,
              "Send a message to the running instances with a business key (caught by their "
              "message catch events and receive tasks; data merged into the variables); a "
              "repeated message_id delivers nothing again; 404 when no instance with the key "
              "runs")
        .accepts(R"json({"type":"object","required":["name","business_key"],
  "properties":{"name":{"type":"string"},"business_key":{"type":"string"},
  "data":{"type":"object"},"message_id":{"type":"string"}}})json")
        .returns(R"json({"type":"object","properties":{"matched":{"type":"integer"},
  "delivered":{"type":"array","items":{"type":"integer"}}}})json")
        .status(202)
        .to([&engine](Call& call) {
            const auto& who = call.who();
            auto delivered = engine.correlate(who.tenant, who.user_id, call.body());
            if (delivered.at("matched") == 0) {
                throw DomainError::not_found("a running instance with this business key");
            }
            return delivered;
        });

    const auto read_only = [&router, visible](const std::string& suffix, const char* what,
                                              auto read, std::string response_schema = {}) {
        router.get("/api/v1/approvals/instances/{id}/" + suffix, kUser, what)
            .returns(std::move(response_schema))
            .to([visible, read](Call& call) {
                const auto id = call.id();
                visible(call, id);
                return read(call.tenant(), id);
            });
    };
    read_only("timeline", "The instance's immutable timeline",
              [&engine](const core::TenantId& tenant, std::int64_t id) {
                  return json::object{{"timeline", engine.instances().timeline(tenant, id)}};
              });
    read_only("variables", "The process variables and the history of every change",
              [&engine](const core::TenantId& tenant, std::int64_t id) {
                  return json::object{{"variables", engine.instances().variables(tenant, id)},
                                      {"history", engine.instances().variable_history(tenant, id)}};
              });
    read_only("events", "The instance's event log (events sent for it, signals received)",
              [&engine](const core::TenantId& tenant, std::int64_t id) {
                  return json::object{{"events", engine.instances().events(tenant, id)}};
              });
    read_only(
        "diagram", "Per-node status for ProFlow's FlowView, with the version's source to draw",
        [&engine](const core::TenantId& tenant, std::int64_t id) {
            return engine.diagram(tenant, id);
        },
        R"json({"type":"object","properties":{
  "instance_id":{"type":"integer"},"status":{"type":"string"},
  "current_nodes":{"type":"array","items":{"type":"string"}},
  "nodes":{"type":"array","items":{"type":"object","properties":{
    "id":{"type":"string"},"type":{"type":"string"},"name":{"type":"string"},
    "status":{"enum":["pending","active","completed","approved","rejected","returned","cancelled","failed"]},
    "visits":{"type":"integer"}}}},
  "visits":{"type":"array","items":{"type":"object"}},"source":{"type":"object"}}})json");

    router
        .get("/api/v1/approvals/tasks", kUser,
             "My tasks: box=todo (pending for me or my roles, the default) or box=done")
        .returns(kTaskSchema)
        .lists(kTaskList)
        .to([&engine](Call& call) {
            // Checked against kTaskList's enum by the router.
            const std::string box = call.filter("box").value_or("todo");
            return call.list(engine.tasks().tasks_for(call.who(), box, call.paging()));
        });

    static constexpr const char* kCommentSchema =
        R"json({"type":"object","properties":{"comment":{"type":"string"}}})json";
    static constexpr const char* kToSchema =
        R"json({"type":"object","required":["to"],"properties":{"to":{"type":"string"},"comment":{"type":"string"}}})json";
    struct Action {
        const char* name;
        const char* summary;
        const char* schema;
    };
    static constexpr Action kActions[] = {
        {"approve",
         "Approve (optional comment; variables: form fields merged into the process). At a signing "
         "step (config signature) the approval is an electronic signature of the instance's "
         "record: signature {password, user_id, reason}, sealed with the decision",
         R"json({"type":"object","properties":{"comment":{"type":"string"},"variables":{"type":"object"},"signature":{"type":"object","required":["password","reason"],"properties":{"password":{"type":"string"},"user_id":{"type":"string"},"reason":{"type":"string","maxLength":1000}}}}})json"},
        {"reject", "Reject: the instance ends rejected", kCommentSchema},
        {"return", "Return to an earlier step (or the start: the initiator resubmits)",
         R"json({"type":"object","required":["return_to"],"properties":{"return_to":{"type":"string"},"comment":{"type":"string"}}})json"},
        {"transfer", "Hand the task to someone else for good", kToSchema},
        {"delegate", "Ask someone's opinion: the task comes back when they resolve it", kToSchema},
        {"resolve", "The delegate gives the task back with their opinion", kCommentSchema},
        {"add-signer", "Add a signer before (acts first) or after (acts once I approve)",
         R"json({"type":"object","required":["user","position"],"properties":{"user":{"type":"string"},"position":{"enum":["before","after"]},"comment":{"type":"string"}}})json"},
        {"claim", "Take a group task (a member of its role)", ""},
        {"comment", "Comment on the step",
         R"json({"type":"object","required":["comment"],"properties":{"comment":{"type":"string"}}})json"},
    };
    for (const auto& action : kActions) {
        const std::string path = std::string("/api/v1/approvals/tasks/{id}/") + action.name;
        const std::string name = action.name;
        router.post(path, kUser, action.summary)
            .accepts(action.schema)
            .returns(kActionResult)
            .to([&engine, name](Call& call) {
                const auto body = call.body_or_empty();
                return engine.act(call.who(), call.origin(), call.id(), name, body);
            });
    }

    router
        .get("/api/v1/approvals/directory", kUser,
             "The tenant's directory: each user's manager and roles")
        .to([&engine](Call& call) {
            return json::object{{"users", engine.directory().list(call.tenant())}};
        });
    router
        .put("/api/v1/approvals/directory/{user}", kAdmin,
             "Set a user's manager and roles (admin): the manager is the approver source "
             "`manager`; "
             "the roles say whom a group task notifies")
        .accepts(
            R"json({"type":"object","properties":{"manager_id":{"type":"string"},"display_name":{"type":"string"},"roles":{"type":"array","items":{"type":"string"},"maxItems":50}}})json")
        .to([&engine](Call& call) {
            const auto body = call.body();
            const auto user = call.param("user");
            json::object problems;
            // An empty manager or name clears it.
            const auto text = [&](std::string_view field) {
                auto value = core::text_field(body, field, {.max = 200}, problems);
                return value && !value->empty() ? value : std::nullopt;
            };
            const auto manager = text("manager_id");
            const auto name = text("display_name");
            const auto roles =
                core::text_list_field(body, "roles", {.max = 50, .item = {.max = 100, .min = 1}},
                                      problems)
                    .value_or(std::vector<std::string>{});
            if (user.empty() || user.size() > 200 || manager == user) {
                problems["manager_id"] = "another user id (at most 200 bytes)";
            }
            core::refuse_if_any(problems);
            engine.directory().set(call.tenant(), user, manager, name, roles);
            return json::object{{"user_id", user},
                                {"manager_id", manager.value_or("")},
                                {"roles", json::value_from(roles)}};
        });

    router
        .get("/api/v1/approvals/activities", kAdmin,
             "Service-task activities bound to an HTTP endpoint or a script")
        .to([&engine](Call& call) {
            return json::object{{"activities", engine.activities().list(call.tenant())}};
        });
    router
        .put("/api/v1/approvals/activities/{name}", kAdmin,
             "Bind a service-task activity (activity_name) to an HTTP "
             "endpoint or a script (admin)")
        .accepts(R"json({"type":"object","required":["kind"],"properties":{
  "kind":{"enum":["http","script"]},"url":{"type":"string"},"method":{"type":"string"},
  "script_id":{"type":"integer"}}})json")
        .to([&engine](Call& call) {
            const auto body = call.body();
            const auto name = call.param("name");
            const auto kind = core::string_field(body, "kind");
            json::object problems;
            json::object config;
            if (kind == "http") {
                const auto url = core::string_field(body, "url");
                if (core::http_host(url).empty()) {
                    problems["url"] = "an http(s) URL of at most 8192 bytes";
                }
                const auto method = core::string_field(body, "method");
                config = json::object{{"url", url}, {"method", method.empty() ? "POST" : method}};
            } else if (kind == "script") {
                const auto* script = body.if_contains("script_id");
                if (script == nullptr || !script->is_int64()) {
                    problems["script_id"] = "required, a script id";
                } else {
                    config = json::object{{"script_id", *script}};
                }
            } else {
                problems["kind"] = "http or script";
            }
            if (name.empty() || name.size() > 200) {
                problems["name"] = "1 to 200 bytes";
            }
            core::refuse_if_any(problems);
            engine.activities().set(call.who(), name, ActivityBinding{kind, config});
            return json::object{{"name", name}, {"kind", kind}, {"config", config}};
        });
}

}  // namespace riveredge::approvals
