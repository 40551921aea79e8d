// HTTP in and out for scheduled tasks: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/schedules/service.hpp"

namespace riveredge::schedules {
namespace {

namespace json = boost::json;
using enum core::Access;
using core::Call;

constexpr const char* kDefinitionSchema = R"json({"type":"object",
  "required":["name","code","trigger","action"],"properties":{
  "name":{"type":"string","maxLength":200},"code":{"type":"string","maxLength":100},
  "trigger":{"type":"object","required":["kind"],"properties":{
    "kind":{"enum":["cron","interval","once"]},
    "cron":{"type":"string","description":"5 fields: minute hour day-of-month month day-of-week"},
    "time_zone":{"type":"string","description":"IANA zone, default UTC"},
    "every_seconds":{"type":"integer","minimum":1},"anchor_at":{"type":"string","format":"date-time"},
    "at":{"type":"string","format":"date-time"},
    "start_at":{"type":"string","format":"date-time"},"end_at":{"type":"string","format":"date-time"}}},
  "enabled":{"type":"boolean"},
  "overlap_policy":{"enum":["skip","queue_one","allow"],"default":"skip"},
  "misfire_policy":{"enum":["skip","fire_once"],"default":"skip"},
  "misfire_window_seconds":{"type":"integer","minimum":60},
  "timeout_seconds":{"type":"integer","minimum":1},"retries":{"type":"integer","minimum":0,"maximum":10},
  "action":{"type":"object","required":["type"],"properties":{
    "type":{"enum":["message","script","event","http"]},
    "recipients":{"type":"array","items":{"type":"string"}},"subject":{"type":"string"},"body":{},
    "script_id":{"type":"integer"},"arguments":{"type":"object"},
    "name":{"type":"string"},"data":{"type":"object"},
    "url":{"type":"string"},"method":{"enum":["GET","POST","PUT","PATCH","DELETE"]}}}}})json";

constexpr const char* kScheduleSchema = R"json({"type":"object","properties":{
  "id":{"type":"integer"},"name":{"type":"string"},"code":{"type":"string"},"trigger":{"type":"object"},
  "enabled":{"type":"boolean"},"paused_reason":{"type":"string","nullable":true},
  "overlap_policy":{"type":"string"},"misfire_policy":{"type":"string"},
  "misfire_window_seconds":{"type":"integer"},"timeout_seconds":{"type":"integer"},
  "retries":{"type":"integer"},"action":{"type":"object"},"version":{"type":"integer"},
  "next_fire_at":{"type":"string","nullable":true},"next_fire_local":{"type":"string","nullable":true},
  "created_by":{"type":"string"},"created_at":{"type":"string"},"updated_at":{"type":"string"}}})json";

constexpr const char* kPreviewSchema = R"json({"type":"object","properties":{
  "time_zone":{"type":"string"},"fires":{"type":"array","items":{"type":"object","properties":{
  "utc":{"type":"string"},"local":{"type":"string"}}}}}})json";

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router
        .post("/api/v1/schedules/preview", kUser,
              "The next fire times of a trigger before it is saved (?count=1..100)")
        .accepts(R"json({"type":"object","properties":{"trigger":{"type":"object"}}})json")
        .returns(kPreviewSchema)
        .to([&service](Call& call) {
            return service.preview_trigger(call.body(), call.int_query("count", 5, 1, 100));
        });

    router.post("/api/v1/schedules", kAdmin, "Create a schedule; it is armed at once")
        .accepts(kDefinitionSchema)
        .returns(kScheduleSchema)
        .status(201)
        .to([&service](Call& call) { return service.create(call.who(), call.body()).to_json(); });

    router.get("/api/v1/schedules", kAdmin, "List schedules")
        .returns(kScheduleSchema)
        .lists(kScheduleList)
        .to([&service](Call& call) {
            return call.list(service.repository().list(call.tenant(), call.paging()));
        });

    router.get("/api/v1/schedules/{id}", kAdmin, "A schedule with its next fire time")
        .returns(kScheduleSchema)
        .to([&service](Call& call) { return service.get(call.tenant(), call.id()).to_json(); });

    router
        .put("/api/v1/schedules/{id}", kAdmin,
             "Replace a schedule's definition; fires armed before are dropped")
        .accepts(kDefinitionSchema)
        .returns(kScheduleSchema)
        .to([&service](Call& call) {
            return service.update(call.who(), call.id(), call.body()).to_json();
        });

    router.del("/api/v1/schedules/{id}", kAdmin, "Delete a schedule (its history stays)")
        .to([&service](Call& call) {
            service.remove(call.who(), call.id());
            return json::object{{"deleted", true}};
        });

    router
        .post("/api/v1/schedules/{id}/pause", kAdmin,
              "Pause with a reason; no fire runs while paused")
        .accepts(R"json({"type":"object","properties":{"reason":{"type":"string"}}})json")
        .returns(kScheduleSchema)
        .to([&service](Call& call) {
            return service.pause(call.who(), call.id(), call.body_or_empty()).to_json();
        });

    router
        .post("/api/v1/schedules/{id}/resume", kAdmin,
              "Resume from now on (missed fires are not made up)")
        .to([&service](Call& call) { return service.resume(call.who(), call.id()).to_json(); });

    router.post("/api/v1/schedules/{id}/run", kAdmin, "Fire now, beside the schedule's own timing")
        .status(202)
        .to([&service](Call& call) { return service.run_now(call.who(), call.id()); });

    router
        .get("/api/v1/schedules/{id}/preview", kUser,
             "The next fire times in the schedule's zone and in UTC (?count=1..100)")
        .returns(kPreviewSchema)
        .to([&service](Call& call) {
            return service.preview(call.tenant(), call.id(), call.int_query("count", 5, 1, 100));
        });

    router
        .get("/api/v1/schedules/{id}/fires", kAdmin,
             "Run history: scheduled time, start, end, status, attempt, output or error")
        .lists(kFireList)
        .to([&service](Call& call) {
            const auto id = call.id();
            service.get(call.tenant(), id);  // 404 for a missing or another tenant's schedule
            return call.list(service.repository().fires(call.tenant(), id, call.paging()));
        });
}

}  // namespace riveredge::schedules
