// HTTP in and out for approval definitions: parse, call the service, write JSON.

#include "core/http/outbound.hpp"
#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "core/json/fields.hpp"
#include "modules/approvals/definition_service.hpp"
#include "modules/approvals/engine.hpp"

#include <limits>

namespace riveredge::approvals {
namespace {

using core::Access;
using core::Call;
using core::DomainError;
using core::RouteSpec;

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

    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/approvals/definitions/validate",
                  .access = Access::kUser,
                  .summary = "Import and check a definition without saving it",
                  .request_schema = kSourceSchema,
                  .response_schema =
                      std::string(R"json({"type":"object","properties":{"valid":{"type":"boolean"},
  "format":{"type":"string"},"definition":{"type":"object"},"problems":)json") +
                      kProblemsSchema + "}}"},
        [&service](Call& call) { return service.validate(call.body()); });

    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/approvals/definitions",
                  .access = Access::kAdmin,
                  .summary = "Import a definition as a draft (ProFlow or the process format)",
                  .request_schema = kSourceSchema,
                  .response_schema = definition_schema,
                  .status = 201},
        [&service](Call& call) { return service.create(call.who(), call.body()); });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/approvals/definitions",
                         .access = Access::kUser,
                         .summary = "List process definitions",
                         .list = &kDefinitionList},
               [&service](Call& call) {
                   return call.list(
                       service.repository().list(call.tenant(), call.filter("q"), call.paging()));
               });

    router.add(
        RouteSpec{.method = "GET",
                  .pattern = "/api/v1/approvals/definitions/{id}",
                  .access = Access::kUser,
                  .summary = "A definition's draft (verbatim, for the designer) with its problems",
                  .response_schema = definition_schema},
        [&service](Call& call) { return service.get(call.tenant(), call.id()); });

    router.add(
        RouteSpec{.method = "PUT",
                  .pattern = "/api/v1/approvals/definitions/{id}",
                  .access = Access::kAdmin,
                  .summary = "Replace the draft (published versions are not touched)",
                  .request_schema = kSourceSchema,
                  .response_schema = definition_schema},
        [&service](Call& call) { return service.update(call.who(), call.id(), call.body()); });

    router.add(
        RouteSpec{
            .method = "DELETE",
            .pattern = "/api/v1/approvals/definitions/{id}",
            .access = Access::kAdmin,
            .summary =
                "Archive a definition: no new instances; running ones finish on their version",
            .response_schema = definition_schema},
        [&service](Call& call) {
            const auto id = call.id();
            if (!service.repository().archive(call.tenant(), id)) {
                throw DomainError::not_found("process definition " + std::to_string(id));
            }
            return service.get(call.tenant(), id);
        });

    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/approvals/definitions/{id}/publish",
                  .access = Access::kAdmin,
                  .summary = "Validate the draft and publish it as the next immutable version",
                  .status = 201},
        [&service](Call& call) { return service.publish(call.who(), call.id()); });

    core::add_version_routes(router, {"/api/v1/approvals/definitions/{id}", "process definition"},
                             service);

    const std::string decision_schema = R"json({"type":"object","properties":{
  "key":{"type":"string"},"version":{"type":"integer"},"name":{"type":"string"},
  "source":{"type":"object"},"created_by":{"type":"string"},
  "created_at":{"type":"string","format":"date-time"}}})json";
    router.add(
        RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/decisions",
            .access = Access::kAdmin,
            .summary = "Save a decision table (hit policy first, unique or collect) as its key's "
                       "next version, for business rule tasks",
            .request_schema = R"json({"type":"object","required":["key","source"],"properties":{
  "key":{"type":"string"},"name":{"type":"string"},"source":{"type":"object"}}})json",
            .response_schema = decision_schema,
            .status = 201},
        [&service](Call& call) {
            return service.save_decision(call.who(), call.body()).to_json();
        });
    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/approvals/decisions/{key}",
                         .access = Access::kUser,
                         .summary = "A decision table: its latest version, or ?version=N",
                         .response_schema = decision_schema},
               [&service](Call& call) {
                   std::optional<int> version;
                   if (call.query("version")) {
                       version = call.int_query("version", 1, 1, 1000000);
                   }
                   return service.decision(call.tenant(), call.param("key"), version).to_json();
               });
    router.add(
        RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/decisions/{key}/evaluate",
            .access = Access::kUser,
            .summary = "Try a decision table on {variables, version?}: what it decides",
            .request_schema = R"json({"type":"object","properties":{"variables":{"type":"object"},
  "version":{"type":"integer"}}})json",
            .response_schema = R"json({"type":"object","properties":{"key":{"type":"string"},
  "version":{"type":"integer"},"result":{}}})json"},
        [&service](Call& call) {
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

    router.add(
        RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/instances",
            .access = Access::kUser,
            .summary =
                "Start an instance of a definition's latest published version with form data",
            .request_schema = R"json({"type":"object","required":["definition_id"],"properties":{
  "definition_id":{"type":"integer"},"business_key":{"type":"string"},"variables":{"type":"object"}}})json",
            .response_schema = kInstanceSchema,
            .status = 201},
        [&engine](Call& call) { return engine.start(call.who(), call.body()); });

    router.add(
        RouteSpec{.method = "GET",
                  .pattern = "/api/v1/approvals/instances",
                  .access = Access::kUser,
                  .summary = "Instances the caller takes part in, all of them for administrators",
                  .response_schema = kInstanceSchema,
                  .list = &kInstanceList},
        [&engine](Call& call) {
            const auto box = call.filter("box").value_or("");
            if (!box.empty() && box != "started" && box != "cc") {
                throw core::DomainError::validation(json::object{{"box", "started or cc"}});
            }
            const auto started_by = call.filter("started_by");
            if (started_by && *started_by != "me") {
                throw core::DomainError::validation(json::object{{"started_by", "me"}});
            }
            const bool mine = started_by.has_value() || box == "started";
            core::db::Param definition;
            if (call.filter("definition_id")) {
                definition = std::to_string(
                    call.int_query("definition_id", 0, 1, std::numeric_limits<int>::max()));
            }
            const auto& who = call.who();
            const InstanceRepository::InstanceFilter filter{
                call.filter("status"),
                mine ? core::db::Param(who.user_id) : std::nullopt,
                definition,
                call.filter("business_key"),
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

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/approvals/instances/{id}",
                         .access = Access::kUser,
                         .summary = "An instance with its status, current nodes and tasks",
                         .response_schema = kInstanceSchema},
               [visible](Call& call) { return visible(call, call.id()); });

    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/approvals/instances/{id}/withdraw",
                  .access = Access::kUser,
                  .summary = "The initiator withdraws the instance while no approver has acted",
                  .response_schema = kInstanceSchema},
        [&engine](Call& call) {
            const auto id = call.id();
            engine.withdraw(call.who(), id);
            return engine.get(call.tenant(), id);
        });

    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/approvals/instances/{id}/terminate",
                  .access = Access::kAdmin,
                  .summary =
                      "An administrator ends a running, suspended or failed instance (cancelled), "
                      "with a reason",
                  .request_schema = kReasonSchema,
                  .response_schema = kInstanceSchema},
        [&engine](Call& call) {
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
        router.add(
            RouteSpec{.method = "POST",
                      .pattern = std::string("/api/v1/approvals/instances/{id}/") + hold.verb,
                      .access = Access::kAdmin,
                      .summary = hold.summary,
                      .request_schema = kReasonSchema,
                      .response_schema = kInstanceSchema},
            [&engine, change = hold.change](Call& call) {
                const auto id = call.id();
                engine.change_hold(call.who(), id, change, call.body());
                return engine.get(call.tenant(), id);
            });
    }

    router.add(
        RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/tasks/{id}/reassign",
            .access = Access::kAdmin,
            .summary = "An administrator hands a stuck task to someone else, with a reason",
            .request_schema =
                R"({"type":"object","required":["to","reason"],"properties":{"to":{"type":"string"},"reason":{"type":"string","maxLength":1000}}})",
            .response_schema = kActionResult},
        [&engine](Call& call) { return engine.reassign(call.who(), call.id(), call.body()); });

    router.add(
        RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/instances/{id}/signals",
            .access = Access::kUser,
            .summary =
                "Send a signal to an instance (caught by its signal catch events; data merged "
                "into the variables)",
            .request_schema = R"json({"type":"object","required":["name"],"properties":{
  "name":{"type":"string"},"data":{"type":"object"}}})json",
            .response_schema =
                R"json({"type":"object","properties":{"accepted":{"type":"boolean"}}})json",
            .status = 202},
        [&engine](Call& call) {
            engine.signal(call.who(), call.id(), call.body());
            return json::object{{"accepted", true}};
        });

    router.add(
        RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/messages",
            .access = Access::kAdmin,
            .summary =
                "Send a message to the running instances with a business key (caught by their "
                "message catch events and receive tasks; data merged into the variables); a "
                "repeated message_id delivers nothing again; 404 when no instance with the key "
                "runs",
            .request_schema = R"json({"type":"object","required":["name","business_key"],
  "properties":{"name":{"type":"string"},"business_key":{"type":"string"},
  "data":{"type":"object"},"message_id":{"type":"string"}}})json",
            .response_schema = R"json({"type":"object","properties":{"matched":{"type":"integer"},
  "delivered":{"type":"array","items":{"type":"integer"}}}})json",
            .status = 202},
        [&engine](Call& call) {
            const auto& who = call.who();
            auto delivered = engine.correlate(who.tenant, who.user_id, call.body());
            if (delivered.at("matched") == 0) {
                throw DomainError::not_found("a running instance with this business key");
            }
            return delivered;
        });

    const auto read_only = [&router, visible](const std::string& suffix, const char* what,
                                              auto read, std::string response_schema = {}) {
        router.add(RouteSpec{.method = "GET",
                             .pattern = "/api/v1/approvals/instances/{id}/" + suffix,
                             .access = Access::kUser,
                             .summary = what,
                             .response_schema = std::move(response_schema)},
                   [visible, read](Call& call) {
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

    router.add(
        RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/approvals/tasks",
            .access = Access::kUser,
            .summary = "My tasks: box=todo (pending for me or my roles, the default) or box=done",
            .response_schema = kTaskSchema,
            .list = &kTaskList},
        [&engine](Call& call) {
            const std::string box = call.filter("box").value_or("todo");
            if (box != "todo" && box != "done") {
                throw core::DomainError::validation(
                    json::object{{"box",
                                  "todo or done (started and cc are instance lists: "
                                  "GET /api/v1/approvals/instances?box=started|cc)"}});
            }
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
        router.add(RouteSpec{.method = "POST",
                             .pattern = path,
                             .access = Access::kUser,
                             .summary = action.summary,
                             .request_schema = action.schema,
                             .response_schema = kActionResult},
                   [&engine, name](Call& call) {
                       const auto body = call.body_or_empty();
                       return engine.act(call.who(), call.origin(), call.id(), name, body);
                   });
    }

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/approvals/directory",
                         .access = Access::kUser,
                         .summary = "The tenant's directory: each user's manager and roles"},
               [&engine](Call& call) {
                   return json::object{{"users", engine.directory().list(call.tenant())}};
               });
    router.add(
        RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/approvals/directory/{user}",
            .access = Access::kAdmin,
            .summary = "Set a user's manager and roles (admin): the manager is the approver source "
                       "`manager`; "
                       "the roles say whom a group task notifies",
            .request_schema =
                R"json({"type":"object","properties":{"manager_id":{"type":"string"},"display_name":{"type":"string"},"roles":{"type":"array","items":{"type":"string"},"maxItems":50}}})json"},
        [&engine](Call& call) {
            const auto body = call.body();
            const auto user = call.param("user");
            const auto manager = core::string_field(body, "manager_id");
            const auto name = core::string_field(body, "display_name");
            if (user.empty() || user.size() > 200 || manager.size() > 200 || name.size() > 200 ||
                manager == user) {
                throw core::DomainError::validation(
                    json::object{{"manager_id", "another user id (at most 200 bytes)"}});
            }
            std::vector<std::string> roles;
            const auto* given = body.if_contains("roles");
            if (given != nullptr) {
                const auto* list = given->if_array();
                if (list == nullptr || list->size() > 50) {
                    throw core::DomainError::validation(
                        json::object{{"roles", "an array of at most 50 role names"}});
                }
                for (const auto& role : *list) {
                    const auto* text = role.if_string();
                    if (text == nullptr || text->empty() || text->size() > 100) {
                        throw core::DomainError::validation(
                            json::object{{"roles", "role names are strings of 1 to 100 bytes"}});
                    }
                    roles.emplace_back(*text);
                }
            }
            engine.directory().set(call.tenant(), user,
                                   manager.empty() ? std::nullopt : std::optional(manager),
                                   name.empty() ? std::nullopt : std::optional(name), roles);
            return json::object{{"user_id", user},
                                {"manager_id", manager},
                                {"roles", given != nullptr ? *given : json::array{}}};
        });

    router.add(
        RouteSpec{.method = "GET",
                  .pattern = "/api/v1/approvals/activities",
                  .access = Access::kAdmin,
                  .summary = "Service-task activities bound to an HTTP endpoint or a script"},
        [&engine](Call& call) {
            return json::object{{"activities", engine.activities().list(call.tenant())}};
        });
    router.add(
        RouteSpec{.method = "PUT",
                  .pattern = "/api/v1/approvals/activities/{name}",
                  .access = Access::kAdmin,
                  .summary = "Bind a service-task activity (activity_name) to an HTTP "
                             "endpoint or a script (admin)",
                  .request_schema = R"json({"type":"object","required":["kind"],"properties":{
  "kind":{"enum":["http","script"]},"url":{"type":"string"},"method":{"type":"string"},
  "script_id":{"type":"integer"}}})json"},
        [&engine](Call& call) {
            const auto body = call.body();
            const auto name = call.param("name");
            const auto kind = core::string_field(body, "kind");
            json::object problems;
            json::object config;
            if (kind == "http") {
                const auto url = core::string_field(body, "url");
                if (core::http_host(url).empty()) {
                    problems["url"] = "an http(s) URL";
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
            if (!problems.empty()) {
                throw core::DomainError::validation(std::move(problems));
            }
            engine.activities().set(call.who(), name, ActivityBinding{kind, config});
            return json::object{{"name", name}, {"kind", kind}, {"config", config}};
        });
}

}  // namespace riveredge::approvals
