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
         .retries = 10,
         // A run that ends failed leaves no fire running or waiting: a step that died through
         // its retries (the database gone, say) never got to record the fire's end.
         .on_failure = [&service](inngest::Context& ctx) -> boost::json::value {
             const auto* data = core::failed_event_data(ctx.event.data);
             const auto* run = ctx.event.data.if_contains("run_id");
             if (data == nullptr || run == nullptr || !run->is_string()) {
                 return nullptr;
             }
             const auto tenant = core::event_tenant(*data);
             const std::string run_id(run->as_string());
             const std::string why =
                 "the fire's run failed through its retries: " +
                 core::failure_message(ctx.event.data).value_or("no error given");
             return ctx.step.run("fail-unfinished", [&] {
                 return service.fail_unfinished(
                     tenant, data->at("schedule_id").to_number<std::int64_t>(),
                     data->at("scheduled_for").to_number<std::int64_t>(),
                     std::string(data->at("kind").as_string()), run_id, why);
             });
         }},
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
            // The action and the saving of its end are steps of their own: a save that fails
            // (the database gone) is retried without calling the action again.
            const auto outcome = ctx.step.run("action", [&] {
                return service.perform(tenant, fire_id, ctx.run.attempt, ctx.run.max_attempts);
            });
            if (!outcome.contains("outcome")) {
                // Nothing to save: the fire was no longer running, or this run was started by
                // the code before, whose "action" step saved the end itself ({fire_id, status}).
                return outcome;
            }
            return ctx.step.run("record", [&] { return service.record_outcome(tenant, outcome); });
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
