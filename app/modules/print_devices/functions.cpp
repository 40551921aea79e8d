// Print devices' Inngest functions: print-job sends a job to CUPS at most once and follows it
// with bounded polling to its end or its deadline; print-printers-health checks every tenant's
// printers each minute (or when asked) and tells their owners about changes.

#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/log/logger.hpp"
#include "modules/print_devices/service.hpp"

#include <inngest/inngest.hpp>

#include <algorithm>

namespace riveredge::devices {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// Polls come quickly at first (most jobs finish within seconds), then every minute; never past
// the deadline, so that a job that cannot print is cancelled on time.
inngest::Duration poll_delay(int poll, std::int64_t seconds_left) {
    static constexpr int kSeconds[] = {1, 1, 2, 3, 5, 10, 15, 30};
    const int wait = poll < static_cast<int>(std::size(kSeconds)) ? kSeconds[poll] : 60;
    return std::chrono::seconds(std::clamp<std::int64_t>(seconds_left, 1, wait));
}

struct JobRef {
    core::TenantId tenant;
    std::int64_t id;
};

JobRef job_of(const json::object& data) {
    auto tenant = core::event_tenant(data);
    return {std::move(tenant), core::event_int(data, "job_id", kJobRequested)};
}

// A job that no longer exists cannot be printed by retrying.
template <class F>
json::object not_found_is_final(F&& work) {
    return core::final_on({core::DomainError::Kind::kNotFound, core::DomainError::Kind::kConflict},
                          std::forward<F>(work));
}

}  // namespace

void register_functions(inngest::Client& client, Service& service) {
    client.create_function(
        {.id = "print-job",
         .name = "Print a job through CUPS, at most once",
         .triggers = {inngest::EventTrigger{kJobRequested}},
         .retries = 8,
         // libcups calls run on the module's own workers; more runs would only wait for them.
         .concurrency = {{.limit = 8}},
         .on_failure = [&service](inngest::Context& ctx) -> json::value {
             const auto* data = core::failed_event_data(ctx.event.data);
             if (data == nullptr) {
                 return nullptr;
             }
             const auto job = job_of(*data);
             // The error itself goes to the log only: it can name the CUPS server.
             if (const auto* error = ctx.event.data.if_contains("error")) {
                 core::log(core::LogLevel::kWarn, "print-job failed through its retries",
                           {{"job_id", job.id}, {"error", *error}});
             }
             const std::string why =
                 "it could not be sent to the printer: CUPS failed through every retry";
             ctx.step.run("mark-failed", [&] {
                 service.fail_step(job.tenant, job.id, why);
                 return json::object{{"job_id", job.id}};
             });
             return json::object{{"job_id", job.id}, {"status", "failed"}};
         }},
        [&service](inngest::Context& ctx) -> json::value {
            const auto job = job_of(ctx.event.data);
            json::object state = ctx.step.run("submit", [&] {
                return not_found_is_final([&] { return service.submit_step(job.tenant, job.id); });
            });
            for (int poll = 0; !state.at("finished").as_bool(); ++poll) {
                ctx.step.sleep(
                    "wait-" + std::to_string(poll),
                    poll_delay(poll, state.at("seconds_left").to_number<std::int64_t>()));
                state = ctx.step.run("poll-" + std::to_string(poll), [&] {
                    return not_found_is_final(
                        [&] { return service.poll_step(job.tenant, job.id); });
                });
            }
            return json::object{{"job_id", job.id}, {"status", state.at("status")}};
        });

    client.create_function(
        {.id = "print-printers-health",
         .name = "Check printers' health and tell their owners about changes",
         .triggers = {inngest::CronTrigger{"* * * * *"},
                      inngest::EventTrigger{kHealthCheckRequested}},
         .concurrency = {{.limit = 1}}},
        [&service](inngest::Context& ctx) -> json::value {
            const auto tenants = ctx.step.run("tenants", [&] {
                const auto found = service.repository().tenants_with_printers();
                return json::array(found.begin(), found.end());
            });
            std::int64_t changed = 0;
            for (const auto& tenant : tenants) {
                // One step per tenant: a retry re-checks only the tenants not done yet.
                const auto result = ctx.step.run("check-" + std::string(tenant.as_string()), [&] {
                    return json::object{{"changed", service.check_tenant(core::TenantId::trusted(
                                                        std::string(tenant.as_string())))}};
                });
                changed += result.at("changed").to_number<std::int64_t>();
            }
            return json::object{{"tenants", static_cast<std::int64_t>(tenants.size())},
                                {"changed", changed}};
        });
}

}  // namespace riveredge::devices
