// HTTP in and out for workflows: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "modules/workflows/service.hpp"

namespace riveredge::workflows {
namespace {

using enum core::Access;
using core::Call;
using core::DomainError;

constexpr const char* kSourceSchema = R"json({"type":"object",
  "description":"A definition as JSON; send YAML of the same shape with Content-Type application/yaml (or text/yaml).",
  "required":["key","kind"],"properties":{
  "key":{"type":"string","maxLength":100},"name":{"type":"string"},"description":{"type":"string"},
  "kind":{"enum":["dag","state_machine"]},
  "on_error":{"description":"an action or a list of actions, run once after a failure"},
  "nodes":{"type":"array","description":"DAG: {id, depends_on, action, compensate, retries, retry_delay_seconds}",
    "items":{"type":"object"}},
  "initial":{"type":"string","description":"state machine: the first state"},
  "context":{"type":"object","description":"state machine: defaults under the execution's input"},
  "states":{"type":"object","description":"state machine: name -> {on_entry, on_exit, compensate, transitions [{event, target, guard, action}], final, retries, retry_delay_seconds}"}}})json";

constexpr const char* kDefinitionSchema = R"json({"type":"object","properties":{
  "id":{"type":"integer"},"key":{"type":"string"},"name":{"type":"string"},
  "kind":{"enum":["dag","state_machine"]},"latest_version":{"type":"integer"},
  "published_version":{"type":"integer","nullable":true},"created_by":{"type":"string"},
  "created_at":{"type":"string"},"updated_at":{"type":"string"},
  "version":{"type":"integer","description":"on import: the version just added"},
  "validation":{"type":"object","description":"on import: what validation found"}}})json";

constexpr const char* kValidationSchema = R"json({"type":"object","properties":{
  "valid":{"type":"boolean"},"key":{"type":"string"},"name":{"type":"string"},
  "kind":{"type":"string"},
  "parallel_groups":{"type":"array","items":{"type":"array","items":{"type":"string"}}},
  "initial":{"type":"string"},"states":{"type":"object"}}})json";

constexpr const char* kVersionSchema = R"json({"type":"object","properties":{
  "version":{"type":"integer"},"format":{"enum":["json","yaml"]},"source":{"type":"string"},
  "model":{"type":"object"},"parallel_groups":{"type":"array","nullable":true,"items":{}},
  "created_by":{"type":"string"},"created_at":{"type":"string"},
  "published_at":{"type":"string","nullable":true}}})json";

constexpr const char* kStartSchema = R"json({"type":"object","properties":{
  "definition_id":{"type":"integer"},"definition_key":{"type":"string"},
  "version":{"type":"integer","description":"a published version; default the published one"},
  "input":{"type":"object"},
  "priority":{"type":"integer","minimum":-600,"maximum":600,
    "description":"seconds ahead of (or behind) other executions waiting for the tenant's quota"}}})json";

constexpr const char* kExecutionSchema = R"json({"type":"object","properties":{
  "id":{"type":"integer"},"definition_id":{"type":"integer"},"definition_key":{"type":"string"},
  "version":{"type":"integer"},"kind":{"type":"string"},
  "status":{"enum":["queued","running","paused","completed","failed","cancelled"]},
  "current_state":{"type":"string","nullable":true},"target_state":{"type":"string","nullable":true},
  "allowed_events":{"type":"array","items":{"type":"string"}},"final":{"type":"boolean"},
  "parallel_groups":{"type":"array","items":{}},
  "input":{"type":"object"},"context":{"type":"object"},"output":{"nullable":true},
  "error":{"type":"string","nullable":true},"compensated":{"type":"boolean"},
  "priority":{"type":"integer"},"started_by":{"type":"string"},"created_at":{"type":"string"},
  "started_at":{"type":"string","nullable":true},"ended_at":{"type":"string","nullable":true},
  "updated_at":{"type":"string"}}})json";

constexpr const char* kEventSchema = R"json({"type":"object","required":["event"],"properties":{
  "event":{"type":"string"},"data":{"type":"object"}}})json";

constexpr const char* kAcceptedSchema = R"json({"type":"object","properties":{
  "id":{"type":"integer"},"execution_id":{"type":"integer"},"event":{"type":"string"},
  "from_state":{"type":"string"},"to_state":{"type":"string"},"transition":{"type":"integer"},
  "status":{"type":"string"},"execution_status":{"type":"string"}}})json";

constexpr const char* kEventsSchema = R"json({"type":"object","properties":{
  "events":{"type":"array","items":{"type":"object","properties":{
    "id":{"type":"integer"},"name":{"type":"string"},"data":{"type":"object"},
    "from_state":{"type":"string"},"to_state":{"type":"string"},"transition":{"type":"integer"},
    "status":{"enum":["accepted","applied"]},"sent_by":{"type":"string"},
    "created_at":{"type":"string"},"applied_at":{"type":"string","nullable":true}}}}}})json";

constexpr const char* kNodeRunSchema = R"json({"type":"object","properties":{
  "id":{"type":"integer"},"step_key":{"type":"string"},"node":{"type":"string"},
  "phase":{"enum":["node","entry","exit","transition","on_error","compensate"]},
  "action_kind":{"type":"string"},"status":{"enum":["running","retrying","succeeded","failed"]},
  "input":{"type":"object"},"output":{"nullable":true},"attempts":{"type":"integer"},
  "error":{"type":"string","nullable":true},"started_at":{"type":"string"},
  "ended_at":{"type":"string","nullable":true},"duration_ms":{"type":"integer","nullable":true}}})json";

constexpr const char* kCancelSchema =
    R"json({"type":"object","properties":{"reason":{"type":"string","maxLength":500}}})json";

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router
        .post("/api/v1/workflows/definitions", kAdmin,
              "Import a DAG or state-machine definition from JSON or YAML "
              "(Content-Type application/yaml): a new version of its key, "
              "unpublished; 422 names every element with a problem")
        .accepts(kSourceSchema)
        .returns(kDefinitionSchema)
        .status(201)
        .to([&service](Call& call) {
            return service.import(call.who(), std::string(call.request.header("Content-Type")),
                                  call.request.body);
        });

    router
        .post("/api/v1/workflows/definitions/validate", kUser,
              "Validate a definition without saving it: a DAG's "
              "parallel groups, a state machine's states and events")
        .accepts(kSourceSchema)
        .returns(kValidationSchema)
        .to([](Call& call) {
            const auto read = Service::read_source(std::string(call.request.header("Content-Type")),
                                                   call.request.body);
            return Service::summary(read.model);
        });

    router.get("/api/v1/workflows/definitions", kUser, "List workflow definitions")
        .returns(kDefinitionSchema)
        .lists(kDefinitionList)
        .to([&service](Call& call) {
            return call.list(service.repository().definitions(call.tenant(), call.paging()));
        });

    router
        .get("/api/v1/workflows/definitions/{id}", kUser,
             "A workflow definition: its latest and published version")
        .returns(kDefinitionSchema)
        .to([&service](Call& call) { return service.get(call.tenant(), call.id()).to_json(); });

    core::add_version_routes(
        router,
        core::VersionedItem{.item_pattern = "/api/v1/workflows/definitions/{id}",
                            .noun = "workflow definition",
                            .access = kUser,
                            .version_schema = kVersionSchema},
        service);

    router
        .post("/api/v1/workflows/definitions/{id}/versions/{version}/publish", kAdmin,
              "Publish a version: new executions run it")
        .returns(kDefinitionSchema)
        .to([&service](Call& call) {
            const auto version = call.id("version");
            if (version > 1000000) {
                throw DomainError::not_found("version " + std::to_string(version));
            }
            return service.publish(call.who(), call.id(), static_cast<int>(version));
        });

    router
        .post("/api/v1/workflows/executions", kUser,
              "Start an execution of a published definition with "
              "input and a priority")
        .accepts(kStartSchema)
        .returns(kExecutionSchema)
        .status(201)
        .to([&service](Call& call) { return service.start(call.who(), call.body()); });

    router.get("/api/v1/workflows/executions", kUser, "List the tenant's executions")
        .returns(kExecutionSchema)
        .lists(kExecutionList)
        .to([&service](Call& call) {
            return call.list(service.repository().executions(call.tenant(), call.paging()));
        });

    router
        .get("/api/v1/workflows/executions/{id}", kUser,
             "An execution: status, current state and the events "
             "it takes now, or a DAG's parallel groups")
        .returns(kExecutionSchema)
        .to([&service](Call& call) { return service.execution(call.tenant(), call.id()); });

    router
        .post("/api/v1/workflows/executions/{id}/events", kUser,
              "Send an event to a state machine: 202 with the "
              "transition it takes, 409 naming the state and event "
              "when the state does not take it or its guard refuses")
        .accepts(kEventSchema)
        .returns(kAcceptedSchema)
        .status(202)
        .to([&service](Call& call) {
            return service.send_event(call.who(), call.id(), call.body());
        });

    router
        .get("/api/v1/workflows/executions/{id}/events", kUser,
             "The events a state machine accepted, in order")
        .returns(kEventsSchema)
        .to([&service](Call& call) {
            service.require_execution(call.tenant(), call.id());
            return boost::json::object{
                {"events", service.repository().events(call.tenant(), call.id())}};
        });

    router
        .get("/api/v1/workflows/executions/{id}/history", kUser,
             "Every node and action run: input, output, attempts, start, "
             "end, duration and error")
        .returns(kNodeRunSchema)
        .lists(kHistoryList)
        .to([&service](Call& call) {
            service.require_execution(call.tenant(), call.id());
            return call.list(service.repository().history(call.tenant(), call.id(), call.paging()));
        });

    router
        .post("/api/v1/workflows/executions/{id}/pause", kAdmin,
              "Pause: the run stops before its next level or event")
        .returns(kExecutionSchema)
        .to([&service](Call& call) { return service.pause(call.who(), call.id()); });

    router.post("/api/v1/workflows/executions/{id}/resume", kAdmin, "Resume a paused execution")
        .returns(kExecutionSchema)
        .to([&service](Call& call) { return service.resume(call.who(), call.id()); });

    router
        .post("/api/v1/workflows/executions/{id}/cancel", kAdmin,
              "Cancel with an optional reason: nothing more runs "
              "(no compensation)")
        .accepts(kCancelSchema)
        .returns(kExecutionSchema)
        .to([&service](Call& call) {
            return service.cancel(call.who(), call.id(), call.body_or_empty());
        });
}

}  // namespace riveredge::workflows
