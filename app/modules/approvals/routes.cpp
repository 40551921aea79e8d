// HTTP in and out for approval definitions: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/approvals/service.hpp"

namespace riveredge::approvals {
namespace {

using core::ApiError;
using core::id_param;
using core::int_query;
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
            const int page = int_query(context, "page", 1, 1, 100000);
            const int size = int_query(context, "page_size", 50, 1, 500);
            return json_response(
                200, boost::json::object{
                         {"definitions", service.repository().list(context.who().tenant,
                                                                   query_filter(context, "q"), size,
                                                                   (page - 1) * size)},
                         {"page", page},
                         {"page_size", size}});
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
