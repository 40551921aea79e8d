// HTTP in and out for scheduled tasks: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/schedules/service.hpp"

#include <set>

namespace riveredge::schedules {
namespace {

namespace json = boost::json;
using core::Access;
using core::Call;
using core::DomainError;
using core::RouteSpec;

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

core::db::Param time_filter(const Call& call, const char* name) {
    const auto value = call.filter(name);
    if (value && !parse_time(*value)) {
        throw DomainError::validation(json::object{{name, "an RFC 3339 time"}});
    }
    return value;
}

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/schedules/preview",
                  .access = Access::kUser,
                  .summary = "The next fire times of a trigger before it is saved (?count=1..100)",
                  .request_schema =
                      R"json({"type":"object","properties":{"trigger":{"type":"object"}}})json",
                  .response_schema = kPreviewSchema},
        [&service](Call& call) {
            return service.preview_trigger(call.body(), call.int_query("count", 5, 1, 100));
        });

    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/schedules",
                  .access = Access::kAdmin,
                  .summary = "Create a schedule; it is armed at once",
                  .request_schema = kDefinitionSchema,
                  .response_schema = kScheduleSchema,
                  .status = 201},
        [&service](Call& call) { return service.create(call.who(), call.body()).to_json(); });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/schedules",
                         .access = Access::kAdmin,
                         .summary = "List schedules",
                         .response_schema = kScheduleSchema,
                         .list = &kScheduleList},
               [&service](Call& call) {
                   return call.list(service.repository().list(call.tenant(), call.flag("enabled"),
                                                              call.filter("q"), call.paging()));
               });

    router.add(RouteSpec{.method = "GET",
                         .pattern = "/api/v1/schedules/{id}",
                         .access = Access::kAdmin,
                         .summary = "A schedule with its next fire time",
                         .response_schema = kScheduleSchema},
               [&service](Call& call) { return service.get(call.tenant(), call.id()).to_json(); });

    router.add(
        RouteSpec{.method = "PUT",
                  .pattern = "/api/v1/schedules/{id}",
                  .access = Access::kAdmin,
                  .summary = "Replace a schedule's definition; fires armed before are dropped",
                  .request_schema = kDefinitionSchema,
                  .response_schema = kScheduleSchema},
        [&service](Call& call) {
            return service.update(call.who(), call.id(), call.body()).to_json();
        });

    router.add(RouteSpec{.method = "DELETE",
                         .pattern = "/api/v1/schedules/{id}",
                         .access = Access::kAdmin,
                         .summary = "Delete a schedule (its history stays)"},
               [&service](Call& call) {
                   service.remove(call.who(), call.id());
                   return json::object{{"deleted", true}};
               });

    router.add(
        RouteSpec{.method = "POST",
                  .pattern = "/api/v1/schedules/{id}/pause",
                  .access = Access::kAdmin,
                  .summary = "Pause with a reason; no fire runs while paused",
                  .request_schema =
                      R"json({"type":"object","properties":{"reason":{"type":"string"}}})json",
                  .response_schema = kScheduleSchema},
        [&service](Call& call) {
            return service.pause(call.who(), call.id(), call.body_or_empty()).to_json();
        });

    router.add(RouteSpec{.method = "POST",
                         .pattern = "/api/v1/schedules/{id}/resume",
                         .access = Access::kAdmin,
                         .summary = "Resume from now on (missed fires are not made up)"},
               [&service](Call& call) { return service.resume(call.who(), call.id()).to_json(); });

    router.add(RouteSpec{.method = "POST",
                         .pattern = "/api/v1/schedules/{id}/run",
                         .access = Access::kAdmin,
                         .summary = "Fire now, beside the schedule's own timing",
                         .status = 202},
               [&service](Call& call) { return service.run_now(call.who(), call.id()); });

    router.add(
        RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/schedules/{id}/preview",
            .access = Access::kUser,
            .summary = "The next fire times in the schedule's zone and in UTC (?count=1..100)",
            .response_schema = kPreviewSchema},
        [&service](Call& call) {
            return service.preview(call.tenant(), call.id(), call.int_query("count", 5, 1, 100));
        });

    router.add(
        RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/schedules/{id}/fires",
            .access = Access::kAdmin,
            .summary = "Run history: scheduled time, start, end, status, attempt, output or error",
            .list = &kFireList},
        [&service](Call& call) {
            const auto id = call.id();
            service.get(call.tenant(), id);  // 404 for a missing or another tenant's schedule
            const auto status = call.filter("status");
            static const std::set<std::string> statuses{"armed",     "waiting",  "running",
                                                        "succeeded", "failed",   "skipped",
                                                        "missed",    "cancelled"};
            if (status && statuses.count(*status) == 0) {
                throw DomainError::validation(json::object{
                    {"status",
                     "armed, waiting, running, succeeded, failed, skipped, missed or cancelled"}});
            }
            return call.list(service.repository().fires(call.tenant(), id, status,
                                                        time_filter(call, "since"),
                                                        time_filter(call, "until"), call.paging()));
        });
}

}  // namespace riveredge::schedules
