// HTTP in and out for the scripts module: parse, call the service, write JSON.

#include "core/found.hpp"
#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "modules/scripts/service.hpp"

namespace riveredge::scripts {
namespace {

using enum core::Access;
using core::Call;
using core::DomainError;

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
    router
        .post("/api/v1/scripts/validate", kUser,
              "Compile a script without running it; syntax errors with their line")
        .accepts(R"({"type":"object","required":["code"],"properties":{"code":{"type":"string"}}})")
        .returns(R"({"type":"object","properties":{"valid":{"type":"boolean"},
        "error":{"type":"object","nullable":true,"properties":{"message":{"type":"string"},
        "line":{"type":"integer","nullable":true},"column":{"type":"integer","nullable":true}}}}})")
        .to([&service](Call& call) { return service.validate(call.body()); });

    const char* settings_schema = R"({"type":"object","properties":{
        "http_allow_list":{"type":"array","items":{"type":"string"},"maxItems":100},
        "max_timeout_ms":{"type":"integer","minimum":10,"maximum":300000},
        "max_memory_mb":{"type":"integer","minimum":1,"maximum":1024}}})";
    router
        .get("/api/v1/scripts/settings", kUser,
             "The tenant's sandbox settings: ctx.http allow-list and limit maxima")
        .returns(settings_schema)
        .to([&service](Call& call) { return service.settings(call.tenant()); });
    router
        .put("/api/v1/scripts/settings", kAdmin,
             "Change the tenant's sandbox settings (role admin)")
        .accepts(settings_schema)
        .returns(settings_schema)
        .to([&service](Call& call) { return service.save_settings(call.who(), call.body()); });

    router.post("/api/v1/scripts", kAdmin, "Create a script (version 1); the code must compile")
        .accepts(kSaveSchema)
        .returns(kScriptSchema)
        .status(201)
        .to([&service](Call& call) { return service.create(call.who(), call.body()).to_json(); });

    router.get("/api/v1/scripts", kUser, "List scripts")
        .returns(kScriptSchema)
        .lists(kScriptList)
        .to([&service](Call& call) {
            return call.list(service.repository().list(call.tenant(), call.paging()));
        });

    router
        .get("/api/v1/scripts/{id}", kUser,
             "A script with its latest version's code, parameters and limits")
        .returns(kScriptSchema)
        .to([&service](Call& call) { return service.get(call.tenant(), call.id()).to_json(); });

    router
        .put("/api/v1/scripts/{id}", kAdmin,
             "Save a script: a change to code, parameters or limits makes a new version")
        .accepts(kSaveSchema)
        .returns(kScriptSchema)
        .to([&service](Call& call) {
            return service.update(call.who(), call.id(), call.body()).to_json();
        });

    core::add_version_routes(router, {"/api/v1/scripts/{id}", "script"}, service);

    router
        .post("/api/v1/scripts/{id}/run", kUser,
              "Run a script: mode=sync answers with the finished run, "
              "mode=async with the queued run")
        .accepts(R"({"type":"object","properties":{
        "arguments":{"type":"object"},"mode":{"enum":["sync","async"],"default":"sync"},
        "version":{"type":"integer","description":"a saved version; the latest by default"}}})")
        .returns(kRunSchema)
        .also(202)
        .to([&service](Call& call) {
            auto run = service.start_run(call.who(), call.id(), call.body());
            if (run.at("mode") == "async") {
                call.answer(202);
            }
            return run;
        });

    router.get("/api/v1/scripts/{id}/runs", kUser, "Runs of a script, newest first")
        .lists(kRunList)
        .to([&service](Call& call) {
            const auto id = call.id();
            service.get(call.tenant(), id);
            return call.list(service.repository().runs(call.tenant(), id, call.paging()));
        });

    router
        .get("/api/v1/script-runs/{run_id}", kUser,
             "One run: arguments, status, result, console, error, duration, memory")
        .returns(kRunSchema)
        .to([&service](Call& call) {
            const auto id = call.id("run_id");
            return core::found(service.repository().run(call.tenant(), id),
                               "script run " + std::to_string(id))
                .to_json();
        });
}

}  // namespace riveredge::scripts
