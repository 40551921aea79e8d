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

using core::DomainError;
using core::id_param;
using core::json_response;
using core::query_filter;
using core::RequestContext;
using inngest::HttpRequest;

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
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/definitions/validate",
            .access = core::Access::kUser,
            .summary = "Import and check a definition without saving it",
            .request_schema = kSourceSchema,
            .response_schema =
                std::string(R"json({"type":"object","properties":{"valid":{"type":"boolean"},
  "format":{"type":"string"},"definition":{"type":"object"},"problems":)json") +
                kProblemsSchema + "}}"},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200, service.validate(context.json_body(request)));
        });

    router.add(
        core::RouteSpec{.method = "POST",
                        .pattern = "/api/v1/approvals/definitions",
                        .access = core::Access::kAdmin,
                        .summary = "Import a definition as a draft (ProFlow or the process format)",
                        .request_schema = kSourceSchema,
                        .response_schema = definition_schema},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(201, service.create(context.who(), context.json_body(request)));
        });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/approvals/definitions",
                               .access = core::Access::kUser,
                               .summary = "List process definitions",
                               .list = &kDefinitionList},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto page = service.repository().list(
                       context.who().tenant, query_filter(context, "q"), context.list);
                   return core::list_response(context, page);
               });

    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/approvals/definitions/{id}",
            .access = core::Access::kUser,
            .summary = "A definition's draft (verbatim, for the designer) with its problems",
            .response_schema = definition_schema},
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.get(context.who().tenant, id_param(context, "id")));
        });

    router.add(core::RouteSpec{.method = "PUT",
                               .pattern = "/api/v1/approvals/definitions/{id}",
                               .access = core::Access::kAdmin,
                               .summary = "Replace the draft (published versions are not touched)",
                               .request_schema = kSourceSchema,
                               .response_schema = definition_schema},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(200, service.update(context.who(), id_param(context, "id"),
                                                            context.json_body(request)));
               });

    router.add(
        core::RouteSpec{
            .method = "DELETE",
            .pattern = "/api/v1/approvals/definitions/{id}",
            .access = core::Access::kAdmin,
            .summary =
                "Archive a definition: no new instances; running ones finish on their version",
            .response_schema = definition_schema},
        [&service](const HttpRequest&, RequestContext& context) {
            const auto id = id_param(context, "id");
            if (!service.repository().archive(context.who().tenant, id)) {
                throw DomainError::not_found("process definition " + std::to_string(id));
            }
            return json_response(200, service.get(context.who().tenant, id));
        });

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/definitions/{id}/publish",
            .access = core::Access::kAdmin,
            .summary = "Validate the draft and publish it as the next immutable version"},
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(201, service.publish(context.who(), id_param(context, "id")));
        });

    core::add_version_routes(router, {"/api/v1/approvals/definitions/{id}", "process definition"},
                             service);

    const std::string decision_schema = R"json({"type":"object","properties":{
  "key":{"type":"string"},"version":{"type":"integer"},"name":{"type":"string"},
  "source":{"type":"object"},"created_by":{"type":"string"},
  "created_at":{"type":"string","format":"date-time"}}})json";
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/decisions",
            .access = core::Access::kAdmin,
            .summary = "Save a decision table (hit policy first, unique or collect) as its key's "
                       "next version, for business rule tasks",
            .request_schema = R"json({"type":"object","required":["key","source"],"properties":{
  "key":{"type":"string"},"name":{"type":"string"},"source":{"type":"object"}}})json",
            .response_schema = decision_schema},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(
                201, service.save_decision(context.who(), context.json_body(request)).to_json());
        });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/approvals/decisions/{key}",
                               .access = core::Access::kUser,
                               .summary = "A decision table: its latest version, or ?version=N",
                               .response_schema = decision_schema},
               [&service](const HttpRequest&, RequestContext& context) {
                   std::optional<int> version;
                   if (context.query.contains("version")) {
                       version = core::int_query(context, "version", 1, 1, 1000000);
                   }
                   return json_response(
                       200,
                       service.decision(context.who().tenant, context.params.at("key"), version)
                           .to_json());
               });
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/decisions/{key}/evaluate",
            .access = core::Access::kUser,
            .summary = "Try a decision table on {variables, version?}: what it decides",
            .request_schema = R"json({"type":"object","properties":{"variables":{"type":"object"},
  "version":{"type":"integer"}}})json",
            .response_schema = R"json({"type":"object","properties":{"key":{"type":"string"},
  "version":{"type":"integer"},"result":{}}})json"},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(
                200, service.try_decision(context.who().tenant, context.params.at("key"),
                                          context.json_body(request)));
        });
}

}  // namespace riveredge::approvals

namespace riveredge::approvals {

void register_instance_routes(core::Router& router, Engine& engine) {
    using core::id_param;
    using core::json_response;
    using core::query_filter;
    using core::RequestContext;
    using inngest::HttpRequest;
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
    static constexpr const char* kActionResult = R"json({"type":"object","properties":{
  "task_id":{"type":"integer"},"instance_id":{"type":"integer"},"node_id":{"type":"string"},
  "action":{"type":"string"},"step_status":{"type":"string",
  "description":"active while the step waits for others; approved, rejected or returned once settled"}}})json";

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/instances",
            .access = core::Access::kUser,
            .summary =
                "Start an instance of a definition's latest published version with form data",
            .request_schema = R"json({"type":"object","required":["definition_id"],"properties":{
  "definition_id":{"type":"integer"},"business_key":{"type":"string"},"variables":{"type":"object"}}})json",
            .response_schema = kInstanceSchema},
        [&engine](const HttpRequest& request, RequestContext& context) {
            return json_response(201, engine.start(context.who(), context.json_body(request)));
        });

    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/approvals/instances",
            .access = core::Access::kUser,
            .summary = "Instances the caller takes part in, all of them for administrators",
            .response_schema = kInstanceSchema,
            .list = &kInstanceList},
        [&engine](const HttpRequest&, RequestContext& context) {
            const auto box = query_filter(context, "box").value_or("");
            if (!box.empty() && box != "started" && box != "cc") {
                throw core::DomainError::validation(json::object{{"box", "started or cc"}});
            }
            const auto started_by = query_filter(context, "started_by");
            if (started_by && *started_by != "me") {
                throw core::DomainError::validation(json::object{{"started_by", "me"}});
            }
            const bool mine = started_by.has_value() || box == "started";
            core::db::Param definition;
            if (query_filter(context, "definition_id")) {
                definition = std::to_string(core::int_query(context, "definition_id", 0, 1,
                                                            std::numeric_limits<int>::max()));
            }
            const auto& who = context.who();
            const InstanceRepository::InstanceFilter filter{
                query_filter(context, "status"),
                mine ? core::db::Param(who.user_id) : std::nullopt,
                definition,
                query_filter(context, "business_key"),
                context.is_admin() ? std::nullopt : std::optional(who),
                box == "cc" ? core::db::Param(who.user_id) : std::nullopt};
            const auto page = engine.instances().list(who.tenant, filter, context.list);
            return core::list_response(context, page);
        });

    // An instance's form data and history are for its participants and administrators.
    const auto visible = [&engine](const RequestContext& context, std::int64_t id) {
        auto instance = engine.get(context.who().tenant, id);  // 404 for another tenant's
        if (!context.is_admin() && !engine.instances().participates(context.who(), id)) {
            throw core::DomainError::forbidden(
                "only the instance's participants and tenant administrators see it");
        }
        return instance;
    };

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/approvals/instances/{id}",
                               .access = core::Access::kUser,
                               .summary = "An instance with its status, current nodes and tasks",
                               .response_schema = kInstanceSchema},
               [visible](const HttpRequest&, RequestContext& context) {
                   return json_response(200, visible(context, id_param(context, "id")));
               });

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/instances/{id}/withdraw",
            .access = core::Access::kUser,
            .summary = "The initiator withdraws the instance while no approver has acted",
            .response_schema = kInstanceSchema},
        [&engine](const HttpRequest&, RequestContext& context) {
            const auto id = id_param(context, "id");
            engine.withdraw(context.who(), id);
            return json_response(200, engine.get(context.who().tenant, id));
        });

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/instances/{id}/terminate",
            .access = core::Access::kAdmin,
            .summary = "An administrator ends a running, suspended or failed instance (cancelled), "
                       "with a reason",
            .request_schema =
                R"({"type":"object","required":["reason"],"properties":{"reason":{"type":"string","maxLength":1000}}})",
            .response_schema = kInstanceSchema},
        [&engine](const HttpRequest& request, RequestContext& context) {
            const auto id = id_param(context, "id");
            engine.terminate(context.who(), id, context.json_body(request));
            return json_response(200, engine.get(context.who().tenant, id));
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
            core::RouteSpec{
                .method = "POST",
                .pattern = std::string("/api/v1/approvals/instances/{id}/") + hold.verb,
                .access = core::Access::kAdmin,
                .summary = hold.summary,
                .request_schema =
                    R"({"type":"object","required":["reason"],"properties":{"reason":{"type":"string","maxLength":1000}}})",
                .response_schema = kInstanceSchema},
            [&engine, change = hold.change](const HttpRequest& request, RequestContext& context) {
                const auto id = id_param(context, "id");
                engine.change_hold(context.who(), id, change, context.json_body(request));
                return json_response(200, engine.get(context.who().tenant, id));
            });
    }

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/tasks/{id}/reassign",
            .access = core::Access::kAdmin,
            .summary = "An administrator hands a stuck task to someone else, with a reason",
            .request_schema =
                R"({"type":"object","required":["to","reason"],"properties":{"to":{"type":"string"},"reason":{"type":"string","maxLength":1000}}})",
            .response_schema = kActionResult},
        [&engine](const HttpRequest& request, RequestContext& context) {
            return json_response(200, engine.reassign(context.who(), id_param(context, "id"),
                                                      context.json_body(request)));
        });

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/instances/{id}/signals",
            .access = core::Access::kUser,
            .summary =
                "Send a signal to an instance (caught by its signal catch events; data merged "
                "into the variables)",
            .request_schema = R"json({"type":"object","required":["name"],"properties":{
  "name":{"type":"string"},"data":{"type":"object"}}})json",
            .response_schema =
                R"json({"type":"object","properties":{"accepted":{"type":"boolean"}}})json"},
        [&engine](const HttpRequest& request, RequestContext& context) {
            engine.signal(context.who(), id_param(context, "id"), context.json_body(request));
            return json_response(202, json::object{{"accepted", true}});
        });

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/approvals/messages",
            .access = core::Access::kAdmin,
            .summary =
                "Send a message to the running instances with a business key (caught by their "
                "message catch events and receive tasks; data merged into the variables); a "
                "repeated message_id delivers nothing again; 404 when no instance with the key "
                "runs",
            .request_schema = R"json({"type":"object","required":["name","business_key"],
  "properties":{"name":{"type":"string"},"business_key":{"type":"string"},
  "data":{"type":"object"},"message_id":{"type":"string"}}})json",
            .response_schema = R"json({"type":"object","properties":{"matched":{"type":"integer"},
  "delivered":{"type":"array","items":{"type":"integer"}}}})json"},
        [&engine](const HttpRequest& request, RequestContext& context) {
            const auto& who = context.who();
            auto delivered = engine.correlate(who.tenant, who.user_id, context.json_body(request));
            if (delivered.at("matched") == 0) {
                throw DomainError::not_found("a running instance with this business key");
            }
            return json_response(202, std::move(delivered));
        });

    const auto read_only = [&router, visible](const std::string& suffix, const char* what,
                                              auto read, std::string response_schema = {}) {
        router.add(core::RouteSpec{.method = "GET",
                                   .pattern = "/api/v1/approvals/instances/{id}/" + suffix,
                                   .access = core::Access::kUser,
                                   .summary = what,
                                   .response_schema = std::move(response_schema)},
                   [visible, read](const HttpRequest&, RequestContext& context) {
                       const auto id = id_param(context, "id");
                       visible(context, id);
                       return json_response(200, read(context.who().tenant, id));
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
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/approvals/tasks",
            .access = core::Access::kUser,
            .summary = "My tasks: box=todo (pending for me or my roles, the default) or box=done",
            .response_schema = kTaskSchema,
            .list = &kTaskList},
        [&engine](const HttpRequest&, RequestContext& context) {
            const std::string box = query_filter(context, "box").value_or("todo");
            if (box != "todo" && box != "done") {
                throw core::DomainError::validation(
                    json::object{{"box",
                                  "todo or done (started and cc are instance lists: "
                                  "GET /api/v1/approvals/instances?box=started|cc)"}});
            }
            const auto page = engine.tasks().tasks_for(context.who(), box, context.list);
            return core::list_response(context, page);
        });

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
        {"reject", "Reject: the instance ends rejected",
         R"json({"type":"object","properties":{"comment":{"type":"string"}}})json"},
        {"return", "Return to an earlier step (or the start: the initiator resubmits)",
         R"json({"type":"object","required":["return_to"],"properties":{"return_to":{"type":"string"},"comment":{"type":"string"}}})json"},
        {"transfer", "Hand the task to someone else for good",
         R"json({"type":"object","required":["to"],"properties":{"to":{"type":"string"},"comment":{"type":"string"}}})json"},
        {"delegate", "Ask someone's opinion: the task comes back when they resolve it",
         R"json({"type":"object","required":["to"],"properties":{"to":{"type":"string"},"comment":{"type":"string"}}})json"},
        {"resolve", "The delegate gives the task back with their opinion",
         R"json({"type":"object","properties":{"comment":{"type":"string"}}})json"},
        {"add-signer", "Add a signer before (acts first) or after (acts once I approve)",
         R"json({"type":"object","required":["user","position"],"properties":{"user":{"type":"string"},"position":{"enum":["before","after"]},"comment":{"type":"string"}}})json"},
        {"claim", "Take a group task (a member of its role)", ""},
        {"comment", "Comment on the step",
         R"json({"type":"object","required":["comment"],"properties":{"comment":{"type":"string"}}})json"},
    };
    for (const auto& action : kActions) {
        const std::string path = std::string("/api/v1/approvals/tasks/{id}/") + action.name;
        const std::string name = action.name;
        router.add(core::RouteSpec{.method = "POST",
                                   .pattern = path,
                                   .access = core::Access::kUser,
                                   .summary = action.summary,
                                   .request_schema = action.schema,
                                   .response_schema = kActionResult},
                   [&engine, name](const HttpRequest& request, RequestContext& context) {
                       const auto body =
                           request.body.empty() ? json::object{} : context.json_body(request);
                       const core::RequestOrigin from{
                           request.remote_address,
                           std::string(request.header("User-Agent").substr(0, 300))};
                       return json_response(200, engine.act(context.who(), from,
                                                            id_param(context, "id"), name, body));
                   });
    }

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/approvals/directory",
                               .access = core::Access::kUser,
                               .summary = "The tenant's directory: each user's manager and roles"},
               [&engine](const HttpRequest&, RequestContext& context) {
                   return json_response(
                       200, json::object{{"users", engine.directory().list(context.who().tenant)}});
               });
    router.add(
        core::RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/approvals/directory/{user}",
            .access = core::Access::kAdmin,
            .summary = "Set a user's manager and roles (admin): the manager is the approver source "
                       "`manager`; "
                       "the roles say whom a group task notifies",
            .request_schema =
                R"json({"type":"object","properties":{"manager_id":{"type":"string"},"display_name":{"type":"string"},"roles":{"type":"array","items":{"type":"string"},"maxItems":50}}})json"},
        [&engine](const HttpRequest& request, RequestContext& context) {
            const auto body = context.json_body(request);
            const auto user = context.params.at("user");
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
            engine.directory().set(context.who().tenant, user,
                                   manager.empty() ? std::nullopt : std::optional(manager),
                                   name.empty() ? std::nullopt : std::optional(name), roles);
            return json_response(
                200, json::object{{"user_id", user},
                                  {"manager_id", manager},
                                  {"roles", given != nullptr ? *given : json::array{}}});
        });

    router.add(
        core::RouteSpec{.method = "GET",
                        .pattern = "/api/v1/approvals/activities",
                        .access = core::Access::kAdmin,
                        .summary = "Service-task activities bound to an HTTP endpoint or a script"},
        [&engine](const HttpRequest&, RequestContext& context) {
            return json_response(
                200, json::object{{"activities", engine.activities().list(context.who().tenant)}});
        });
    router.add(
        core::RouteSpec{.method = "PUT",
                        .pattern = "/api/v1/approvals/activities/{name}",
                        .access = core::Access::kAdmin,
                        .summary = "Bind a service-task activity (activity_name) to an HTTP "
                                   "endpoint or a script (admin)",
                        .request_schema = R"json({"type":"object","required":["kind"],"properties":{
  "kind":{"enum":["http","script"]},"url":{"type":"string"},"method":{"type":"string"},
  "script_id":{"type":"integer"}}})json"},
        [&engine](const HttpRequest& request, RequestContext& context) {
            const auto body = context.json_body(request);
            const auto name = context.params.at("name");
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
            engine.activities().set(context.who(), name, ActivityBinding{kind, config});
            return json_response(200,
                                 json::object{{"name", name}, {"kind", kind}, {"config", config}});
        });
}

}  // namespace riveredge::approvals
