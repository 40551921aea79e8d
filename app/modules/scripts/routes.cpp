// HTTP in and out for the scripts module: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "modules/scripts/service.hpp"

namespace riveredge::scripts {
namespace {

using core::DomainError;
using core::id_param;
using core::json_response;
using core::query_filter;
using core::RequestContext;
using inngest::HttpRequest;

constexpr const char* kScriptSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"name":{"type":"string"},"description":{"type":"string"},
    "language":{"enum":["javascript"]},"enabled":{"type":"boolean"},
    "latest_version":{"type":"integer"},"version":{"type":"integer"},"code":{"type":"string"},
    "parameters":{"type":"array","items":{"type":"object"}},
    "timeout_ms":{"type":"integer"},"memory_limit_mb":{"type":"integer"},
    "created_by":{"type":"string"},"created_at":{"type":"string","format":"date-time"},
    "updated_at":{"type":"string","format":"date-time"}}})";

constexpr const char* kSaveSchema = R"json({"type":"object","properties":{
    "name":{"type":"string","maxLength":100},"description":{"type":"string","maxLength":2000},
    "language":{"enum":["javascript"]},"enabled":{"type":"boolean"},
    "code":{"type":"string","description":"defines function main(args, ctx)"},
    "parameters":{"type":"array","maxItems":50,"items":{"type":"object","required":["name","type"],
      "properties":{"name":{"type":"string"},"type":{"enum":["string","number","integer","boolean","object","array"]},
      "required":{"type":"boolean"},"default":{},"description":{"type":"string"}}}},
    "timeout_ms":{"type":"integer","minimum":10},"memory_limit_mb":{"type":"integer","minimum":1}}})json";

constexpr const char* kRunSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"script_id":{"type":"integer"},"version":{"type":"integer"},
    "mode":{"enum":["sync","async"]},"trigger":{"type":"string"},
    "status":{"enum":["queued","running","succeeded","failed","syntax_error","timed_out","memory_exceeded","output_exceeded"]},
    "arguments":{"type":"object"},"result":{},
    "console":{"type":"array","items":{"type":"object","properties":{"level":{"type":"string"},"message":{"type":"string"}}}},
    "console_truncated":{"type":"boolean"},
    "error":{"type":"object","nullable":true,"properties":{"message":{"type":"string"},"line":{"type":"integer","nullable":true},"stack":{"type":"string","nullable":true}}},
    "duration_ms":{"type":"integer"},"memory_bytes":{"type":"integer"},"run_by":{"type":"string"},
    "created_at":{"type":"string"},"started_at":{"type":"string"},"finished_at":{"type":"string"}}})";

}  // namespace

void register_routes(core::Router& router, Service& service) {
    // Literal paths before /scripts/{id}, which would otherwise take them.
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/scripts/validate",
            .access = core::Access::kUser,
            .summary = "Compile a script without running it; syntax errors with their line",
            .request_schema =
                R"({"type":"object","required":["code"],"properties":{"code":{"type":"string"}}})",
            .response_schema = R"({"type":"object","properties":{"valid":{"type":"boolean"},
        "error":{"type":"object","nullable":true,"properties":{"message":{"type":"string"},
        "line":{"type":"integer","nullable":true},"column":{"type":"integer","nullable":true}}}}})"},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200, service.validate(context.json_body(request)));
        });

    const char* settings_schema = R"({"type":"object","properties":{
        "http_allow_list":{"type":"array","items":{"type":"string"},"maxItems":100},
        "max_timeout_ms":{"type":"integer","minimum":10,"maximum":300000},
        "max_memory_mb":{"type":"integer","minimum":1,"maximum":1024}}})";
    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/scripts/settings",
            .access = core::Access::kUser,
            .summary = "The tenant's sandbox settings: ctx.http allow-list and limit maxima",
            .response_schema = settings_schema},
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.settings(context.who().tenant));
        });
    router.add(core::RouteSpec{.method = "PUT",
                               .pattern = "/api/v1/scripts/settings",
                               .access = core::Access::kAdmin,
                               .summary = "Change the tenant's sandbox settings (role admin)",
                               .request_schema = settings_schema,
                               .response_schema = settings_schema},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(
                       200, service.save_settings(context.who(), context.json_body(request)));
               });

    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/scripts",
                               .access = core::Access::kAdmin,
                               .summary = "Create a script (version 1); the code must compile",
                               .request_schema = kSaveSchema,
                               .response_schema = kScriptSchema},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(
                       201, service.create(context.who(), context.json_body(request)).to_json());
               });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/scripts",
                               .access = core::Access::kUser,
                               .summary = "List scripts",
                               .response_schema = kScriptSchema,
                               .list = &kScriptList},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto enabled = core::boolean_filter(context, "enabled");
                   auto page = service.repository().list(context.who().tenant, enabled,
                                                         query_filter(context, "q"), context.list);
                   return core::list_response(context, page);
               });

    router.add(
        core::RouteSpec{.method = "GET",
                        .pattern = "/api/v1/scripts/{id}",
                        .access = core::Access::kUser,
                        .summary = "A script with its latest version's code, parameters and limits",
                        .response_schema = kScriptSchema},
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(
                200, service.get(context.who().tenant, id_param(context, "id")).to_json());
        });

    router.add(
        core::RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/scripts/{id}",
            .access = core::Access::kAdmin,
            .summary = "Save a script: a change to code, parameters or limits makes a new version",
            .request_schema = kSaveSchema,
            .response_schema = kScriptSchema},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(
                200,
                service.update(context.who(), id_param(context, "id"), context.json_body(request))
                    .to_json());
        });

    core::add_version_routes(router, {"/api/v1/scripts/{id}", "script"}, service);

    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/scripts/{id}/run",
                               .access = core::Access::kUser,
                               .summary = "Run a script: mode=sync answers with the finished run, "
                                          "mode=async with the queued run",
                               .request_schema = R"({"type":"object","properties":{
        "arguments":{"type":"object"},"mode":{"enum":["sync","async"],"default":"sync"},
        "version":{"type":"integer","description":"a saved version; the latest by default"}}})",
                               .response_schema = kRunSchema},
               [&service](const HttpRequest& request, RequestContext& context) {
                   const auto run = service.start_run(context.who(), id_param(context, "id"),
                                                      context.json_body(request));
                   return json_response(run.at("mode") == "async" ? 202 : 200, run);
               });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/scripts/{id}/runs",
                               .access = core::Access::kUser,
                               .summary = "Runs of a script, newest first",
                               .list = &kRunList},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto& tenant = context.who().tenant;
                   const auto id = id_param(context, "id");
                   service.get(tenant, id);
                   auto page = service.repository().runs(
                       tenant, id, query_filter(context, "status"), context.list);
                   return core::list_response(context, page);
               });

    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/script-runs/{run_id}",
            .access = core::Access::kUser,
            .summary = "One run: arguments, status, result, console, error, duration, memory",
            .response_schema = kRunSchema},
        [&service](const HttpRequest&, RequestContext& context) {
            const auto id = id_param(context, "run_id");
            auto found = service.repository().run(context.who().tenant, id);
            if (!found) {
                throw DomainError::not_found("script run " + std::to_string(id));
            }
            return json_response(200, found->to_json());
        });
}

}  // namespace riveredge::scripts
