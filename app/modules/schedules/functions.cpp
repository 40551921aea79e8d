// The schedules module's Inngest functions: the fire function, the reconciler and housekeeping.

#include "core/events.hpp"
#include "modules/schedules/service.hpp"

#include <inngest/inngest.hpp>

namespace riveredge::schedules {

void register_functions(inngest::Client& client, Service& service) {
    client.create_function(
        {.id = "schedules-fire",
         .name = "Fire a schedule",
         .triggers = {inngest::EventTrigger{kFireDue}},
         // A schedule's own retries (0-10) are applied inside; this is the ceiling.
         .retries = 10},
        [&service](inngest::Context& ctx) {
            const auto& data = ctx.event.data;
            const auto tenant = core::event_tenant(data);
            auto claim = ctx.step.run("claim", [&] {
                return service.claim(tenant, data.at("schedule_id").to_number<std::int64_t>(),
                                     data.at("scheduled_for").to_number<std::int64_t>(),
                                     data.at("version").to_number<int>(),
                                     std::string(data.at("kind").as_string()), ctx.run.run_id);
            });
            const std::int64_t fire_id = claim.at("fire_id").to_number<std::int64_t>();
            std::string decision(claim.at("decision").as_string());
            // Queued behind a running fire (overlap policy queue_one): look again now and then,
            // until the timeout; the last check skips a fire that still cannot run.
            const std::chrono::milliseconds every(
                claim.contains("check_every_ms")
                    ? claim.at("check_every_ms").to_number<std::int64_t>()
                    : 5000);
            for (int i = 0; decision == "wait" && i < kOverlapChecks; ++i) {
                ctx.step.sleep("overlap-wait-" + std::to_string(i), every);
                const auto again = ctx.step.run("overlap-check-" + std::to_string(i), [&] {
                    return service.retry_waiting(tenant, fire_id, ctx.run.run_id,
                                                 i + 1 == kOverlapChecks);
                });
                decision = std::string(again.at("decision").as_string());
            }
            if (decision != "run") {
                return boost::json::object{{"fire_id", fire_id}, {"decision", decision}};
            }
            return ctx.step.run("action", [&] {
                return service.perform(tenant, fire_id, ctx.run.attempt, ctx.run.max_attempts);
            });
        });

    client.create_function({.id = "schedules-reconcile",
                            .name = "Re-arm overdue schedules",
                            .triggers = {inngest::CronTrigger{"* * * * *"}},
                            .concurrency = {{.limit = 1}}},
                           [&service](inngest::Context& ctx) {
                               return ctx.step.run("reconcile",
                                                   [&] { return service.reconcile(); });
                           });

    client.create_function({.id = "schedules-prune-history",
                            .name = "Prune old schedule fires",
                            .triggers = {inngest::CronTrigger{"TZ=UTC 30 3 * * *"}}},
                           [&service](inngest::Context& ctx) {
                               return ctx.step.run("prune", [&] {
                                   return service.prune(std::chrono::hours(24 * 90));
                               });
                           });
}

}  // namespace riveredge::schedules
