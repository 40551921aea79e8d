// HTTP in and out for scheduled tasks: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/schedules/service.hpp"

#include <set>

namespace riveredge::schedules {
namespace {

using core::DomainError;
using core::id_param;
using core::int_query;
using core::json_response;
using core::query_filter;
using core::RequestContext;
using inngest::HttpRequest;

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

core::db::Param time_filter(const RequestContext& context, const char* name) {
    const auto value = query_filter(context, name);
    if (value && !parse_time(*value)) {
        throw DomainError::validation(boost::json::object{{name, "an RFC 3339 time"}});
    }
    return value;
}

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/schedules/preview",
            .access = core::Access::kUser,
            .summary = "The next fire times of a trigger before it is saved (?count=1..100)",
            .request_schema =
                R"json({"type":"object","properties":{"trigger":{"type":"object"}}})json",
            .response_schema = kPreviewSchema},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200,
                                 service.preview_trigger(context.json_body(request),
                                                         int_query(context, "count", 5, 1, 100)));
        });

    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/schedules",
                               .access = core::Access::kAdmin,
                               .summary = "Create a schedule; it is armed at once",
                               .request_schema = kDefinitionSchema,
                               .response_schema = kScheduleSchema},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(
                       201, service.create(context.who(), context.json_body(request)).to_json());
               });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/schedules",
                               .access = core::Access::kAdmin,
                               .summary = "List schedules",
                               .response_schema = kScheduleSchema,
                               .list = &kScheduleList},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto enabled = core::boolean_filter(context, "enabled");
                   const auto page = service.repository().list(
                       context.who().tenant, enabled, query_filter(context, "q"), context.list);
                   return core::list_response(context, page);
               });

    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/schedules/{id}",
                               .access = core::Access::kAdmin,
                               .summary = "A schedule with its next fire time",
                               .response_schema = kScheduleSchema},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(
                       200, service.get(context.who().tenant, id_param(context, "id")).to_json());
               });

    router.add(
        core::RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/schedules/{id}",
            .access = core::Access::kAdmin,
            .summary = "Replace a schedule's definition; fires armed before are dropped",
            .request_schema = kDefinitionSchema,
            .response_schema = kScheduleSchema},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(
                200,
                service.update(context.who(), id_param(context, "id"), context.json_body(request))
                    .to_json());
        });

    router.add(core::RouteSpec{.method = "DELETE",
                               .pattern = "/api/v1/schedules/{id}",
                               .access = core::Access::kAdmin,
                               .summary = "Delete a schedule (its history stays)"},
               [&service](const HttpRequest&, RequestContext& context) {
                   service.remove(context.who(), id_param(context, "id"));
                   return json_response(200, boost::json::object{{"deleted", true}});
               });

    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/schedules/{id}/pause",
            .access = core::Access::kAdmin,
            .summary = "Pause with a reason; no fire runs while paused",
            .request_schema =
                R"json({"type":"object","properties":{"reason":{"type":"string"}}})json",
            .response_schema = kScheduleSchema},
        [&service](const HttpRequest& request, RequestContext& context) {
            const auto body =
                request.body.empty() ? boost::json::object{} : context.json_body(request);
            return json_response(
                200, service.pause(context.who(), id_param(context, "id"), body).to_json());
        });

    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/schedules/{id}/resume",
                               .access = core::Access::kAdmin,
                               .summary = "Resume from now on (missed fires are not made up)"},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(
                       200, service.resume(context.who(), id_param(context, "id")).to_json());
               });

    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/schedules/{id}/run",
                               .access = core::Access::kAdmin,
                               .summary = "Fire now, beside the schedule's own timing"},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(202,
                                        service.run_now(context.who(), id_param(context, "id")));
               });

    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/schedules/{id}/preview",
            .access = core::Access::kUser,
            .summary = "The next fire times in the schedule's zone and in UTC (?count=1..100)",
            .response_schema = kPreviewSchema},
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.preview(context.who().tenant, id_param(context, "id"),
                                                      int_query(context, "count", 5, 1, 100)));
        });

    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/schedules/{id}/fires",
            .access = core::Access::kAdmin,
            .summary = "Run history: scheduled time, start, end, status, attempt, output or error",
            .list = &kFireList},
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& tenant = context.who().tenant;
            const auto id = id_param(context, "id");
            service.get(tenant, id);  // 404 for a missing or another tenant's schedule
            const auto status = query_filter(context, "status");
            static const std::set<std::string> statuses{"armed",     "waiting",  "running",
                                                        "succeeded", "failed",   "skipped",
                                                        "missed",    "cancelled"};
            if (status && statuses.count(*status) == 0) {
                throw DomainError::validation(boost::json::object{
                    {"status",
                     "armed, waiting, running, succeeded, failed, skipped, missed or cancelled"}});
            }
            auto page =
                service.repository().fires(tenant, id, status, time_filter(context, "since"),
                                           time_filter(context, "until"), context.list);
            return core::list_response(context, std::move(page.items), page.total);
        });
}

}  // namespace riveredge::schedules
