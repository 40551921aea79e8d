// HTTP in and out for scheduled tasks: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "modules/schedules/service.hpp"

#include <set>

namespace riveredge::schedules {
namespace {

using core::ApiError;
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
        throw ApiError::validation(boost::json::object{{name, "an RFC 3339 time"}});
    }
    return value;
}

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router.add(
        "POST", "/api/v1/schedules/preview",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200,
                                 service.preview_trigger(context.json_body(request),
                                                         int_query(context, "count", 5, 1, 100)));
        },
        core::Access::kUser, "The next fire times of a trigger before it is saved (?count=1..100)");
    router.document("POST", "/api/v1/schedules/preview",
                    R"json({"type":"object","properties":{"trigger":{"type":"object"}}})json",
                    kPreviewSchema);

    router.add(
        "POST", "/api/v1/schedules",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(201, service.create(context.who(), context.json_body(request)));
        },
        core::Access::kAdmin, "Create a schedule; it is armed at once");
    router.document("POST", "/api/v1/schedules", kDefinitionSchema, kScheduleSchema);

    router.add(
        "GET", "/api/v1/schedules",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto enabled = core::boolean_filter(context, "enabled");
            const auto page = core::page_query(context, 50, 500);
            return json_response(
                200, core::paged("schedules",
                                 service.repository().list(context.who().tenant, enabled,
                                                           query_filter(context, "q"), page.size,
                                                           page.offset()),
                                 page));
        },
        core::Access::kAdmin, "List schedules (filters: enabled, q in name or code; paged)");

    router.add(
        "GET", "/api/v1/schedules/{id}",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.get(context.who().tenant, id_param(context, "id")));
        },
        core::Access::kAdmin, "A schedule with its next fire time");
    router.document("GET", "/api/v1/schedules/{id}", "", kScheduleSchema);

    router.add(
        "PUT", "/api/v1/schedules/{id}",
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200, service.update(context.who(), id_param(context, "id"),
                                                     context.json_body(request)));
        },
        core::Access::kAdmin, "Replace a schedule's definition; fires armed before are dropped");
    router.document("PUT", "/api/v1/schedules/{id}", kDefinitionSchema, kScheduleSchema);

    router.add(
        "DELETE", "/api/v1/schedules/{id}",
        [&service](const HttpRequest&, RequestContext& context) {
            service.remove(context.who(), id_param(context, "id"));
            return json_response(200, boost::json::object{{"deleted", true}});
        },
        core::Access::kAdmin, "Delete a schedule (its history stays)");

    router.add(
        "POST", "/api/v1/schedules/{id}/pause",
        [&service](const HttpRequest& request, RequestContext& context) {
            const auto body =
                request.body.empty() ? boost::json::object{} : context.json_body(request);
            return json_response(200, service.pause(context.who(), id_param(context, "id"), body));
        },
        core::Access::kAdmin, "Pause with a reason; no fire runs while paused");
    router.document("POST", "/api/v1/schedules/{id}/pause",
                    R"json({"type":"object","properties":{"reason":{"type":"string"}}})json",
                    kScheduleSchema);

    router.add(
        "POST", "/api/v1/schedules/{id}/resume",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.resume(context.who(), id_param(context, "id")));
        },
        core::Access::kAdmin, "Resume from now on (missed fires are not made up)");

    router.add(
        "POST", "/api/v1/schedules/{id}/run",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(202, service.run_now(context.who(), id_param(context, "id")));
        },
        core::Access::kAdmin, "Fire now, beside the schedule's own timing");

    router.add(
        "GET", "/api/v1/schedules/{id}/preview",
        [&service](const HttpRequest&, RequestContext& context) {
            return json_response(200, service.preview(context.who().tenant, id_param(context, "id"),
                                                      int_query(context, "count", 5, 1, 100)));
        },
        core::Access::kUser,
        "The next fire times in the schedule's zone and in UTC (?count=1..100)");
    router.document("GET", "/api/v1/schedules/{id}/preview", "", kPreviewSchema);

    router.add(
        "GET", "/api/v1/schedules/{id}/fires",
        [&service](const HttpRequest&, RequestContext& context) {
            const auto& tenant = context.who().tenant;
            const auto id = id_param(context, "id");
            service.get(tenant, id);  // 404 for a missing or another tenant's schedule
            const auto status = query_filter(context, "status");
            static const std::set<std::string> statuses{"armed",     "waiting",  "running",
                                                        "succeeded", "failed",   "skipped",
                                                        "missed",    "cancelled"};
            if (status && statuses.count(*status) == 0) {
                throw ApiError::validation(boost::json::object{
                    {"status",
                     "armed, waiting, running, succeeded, failed, skipped, missed or cancelled"}});
            }
            const auto page = core::page_query(context, 50, 500);
            return json_response(
                200, core::paged("fires",
                                 service.repository().fires(
                                     tenant, id, status, time_filter(context, "since"),
                                     time_filter(context, "until"), page.size, page.offset()),
                                 page));
        },
        core::Access::kAdmin,
        "Run history: scheduled time, start, end, status, attempt, output or error");
}

}  // namespace riveredge::schedules
