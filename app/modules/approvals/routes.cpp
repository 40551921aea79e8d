// HTTP in and out for approval definitions: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/approvals/engine.hpp"
#include "modules/approvals/service.hpp"

namespace riveredge::approvals {
namespace {

using core::ApiError;
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

void register_routes(core::Router& router, Service& service) {
    const std::string definition_schema =
        std::string(R"json({"type":"object","properties":{"id":{"type":"integer"},
  "key":{"type":"string"},"name":{"type":"string"},"format":{"type":"string"},"draft":{"type":"object"},
  "latest_version":{"type":"integer"},"valid":{"type":"boolean"},"problems":)json") +
        kProblemsSchema + "}}";

    router.add(
        "POST", "/api/v1/approvals/definitions/validate",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200, service.validate(context.json_body(request)));
        },
        true, "Import and check a definition without saving it");
    router.document("POST", "/api/v1/approvals/definitions/validate", kSourceSchema,
                    std::string(R"json({"type":"object","properties":{"valid":{"type":"boolean"},
  "format":{"type":"string"},"definition":{"type":"object"},"problems":)json") +
                        kProblemsSchema + "}}");

    router.add(
        "POST", "/api/v1/approvals/definitions",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(201, service.create(context.who(), context.json_body(request)));
        },
        true, "Import a definition as a draft (ProFlow or the process format)");
    router.document("POST", "/api/v1/approvals/definitions", kSourceSchema, definition_schema);

    router.add(
        "GET", "/api/v1/approvals/definitions",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto page = core::page_query(context, 50, 500);
            return json_response(
                200, core::paged(
                         "definitions",
                         service.repository().list(context.who().tenant, query_filter(context, "q"),
                                                   page.size, page.offset()),
                         page));
        },
        true, "List process definitions (q in key or name; paged)");

    router.add(
        "GET", "/api/v1/approvals/definitions/{id}",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.get(context.who().tenant, id_param(context, "id")));
        },
        true, "A definition's draft (verbatim, for the designer) with its problems");
    router.document("GET", "/api/v1/approvals/definitions/{id}", "", definition_schema);

    router.add(
        "PUT", "/api/v1/approvals/definitions/{id}",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200, service.update(context.who(), id_param(context, "id"),
                                                     context.json_body(request)));
        },
        true, "Replace the draft (published versions are not touched)");
    router.document("PUT", "/api/v1/approvals/definitions/{id}", kSourceSchema, definition_schema);

    router.add(
        "POST", "/api/v1/approvals/definitions/{id}/publish",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(201, service.publish(context.who(), id_param(context, "id")));
        },
        true, "Validate the draft and publish it as the next immutable version");

    router.add(
        "GET", "/api/v1/approvals/definitions/{id}/versions",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& tenant = context.who().tenant;
            const auto id = id_param(context, "id");
            service.get(tenant, id);  // 404 for a missing or another tenant's definition
            return json_response(
                200, boost::json::object{{"versions", service.repository().versions(tenant, id)}});
        },
        true, "Published versions, newest first");

    router.add(
        "GET", "/api/v1/approvals/definitions/{id}/versions/{version}",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto id = id_param(context, "id");
            const auto number = id_param(context, "version");
            auto found = service.repository().version(
                context.who().tenant, id,
                static_cast<int>(std::min<std::int64_t>(number, 1 << 30)));
            if (!found) {
                throw ApiError::not_found("version " + std::to_string(number) +
                                          " of process definition " + std::to_string(id));
            }
            return json_response(200, *found);
        },
        true, "One published version: the compiled definition and its source");
}

}  // namespace riveredge::approvals

namespace riveredge::approvals {

void register_instance_routes(core::Router& router, Engine& engine) {
    using core::id_param;
    using core::json_response;
    using core::query_filter;
    using core::RequestContext;
    using inngest::HttpRequest;

    router.add(
        "POST", "/api/v1/approvals/instances",
        [&engine](const HttpRequest& request, RequestContext& context) {
            return json_response(201, engine.start(context.who(), context.json_body(request)));
        },
        true, "Start an instance of a definition's latest published version with form data");
    router.document("POST", "/api/v1/approvals/instances",
                    R"json({"type":"object","required":["definition_id"],"properties":{
  "definition_id":{"type":"integer"},"business_key":{"type":"string"},"variables":{"type":"object"}}})json",
                    "");

    router.add(
        "GET", "/api/v1/approvals/instances",
        [&engine](const HttpRequest&, RequestContext& context) {
            const auto status = query_filter(context, "status");
            const bool mine = query_filter(context, "started_by").value_or("") == "me";
            const auto page = core::page_query(context, 50, 500);
            return json_response(
                200, core::paged("instances",
                                 engine.instances().list(
                                     context.who().tenant, status,
                                     mine ? core::db::Param(context.who().user_id) : std::nullopt,
                                     page.size, page.offset()),
                                 page));
        },
        true, "Instances (filters: status, started_by=me; paged)");

    router.add(
        "GET", "/api/v1/approvals/instances/{id}",
        [&engine](const HttpRequest&, RequestContext& context) {
            return json_response(200, engine.get(context.who().tenant, id_param(context, "id")));
        },
        true, "An instance with its status, current nodes and tasks");

    router.add(
        "GET", "/api/v1/approvals/instances/{id}/timeline",
        [&engine](const HttpRequest&, RequestContext& context) {
            const auto& tenant = context.who().tenant;
            const auto id = id_param(context, "id");
            engine.get(tenant, id);
            return json_response(
                200, boost::json::object{{"timeline", engine.instances().timeline(tenant, id)}});
        },
        true, "The instance's immutable timeline");

    router.add(
        "GET", "/api/v1/approvals/tasks",
        [&engine](const HttpRequest&, RequestContext& context) {
            const std::string status = query_filter(context, "status").value_or("pending");
            if (status != "pending" && status != "approved" && status != "rejected" &&
                status != "cancelled") {
                throw core::ApiError::validation(
                    boost::json::object{{"status", "pending, approved, rejected or cancelled"}});
            }
            return json_response(200, boost::json::object{{"tasks", engine.instances().tasks_for(
                                                                        context.who(), status)}});
        },
        true, "My tasks (assigned to me or my roles), by status (default pending: to do)");

    for (const bool approve : {true, false}) {
        const std::string path =
            std::string("/api/v1/approvals/tasks/{id}/") + (approve ? "approve" : "reject");
        router.add(
            "POST", path,
            [&engine, approve](const HttpRequest& request, RequestContext& context) {
                const auto body =
                    request.body.empty() ? boost::json::object{} : context.json_body(request);
                return json_response(
                    200, engine.decide(context.who(), id_param(context, "id"), approve, body));
            },
            true,
            approve ? "Approve a task (with an optional comment)"
                    : "Reject a task: the instance ends rejected");
    }
}

}  // namespace riveredge::approvals
