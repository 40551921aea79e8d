// The scripts module's Inngest function: one durable step per async run.

#include "core/events.hpp"
#include "modules/scripts/service.hpp"

#include <inngest/inngest.hpp>

namespace riveredge::scripts {

void register_functions(inngest::Client& client, Service& service) {
    client.create_function(
        {.id = "scripts-run",
         .name = "Run a script",
         .triggers = {inngest::EventTrigger{kRunRequested}},
         // A script's own failure is recorded, not retried; retries are for the platform
         // (worker could not start, database unreachable).
         .retries = 3,
         .concurrency = {{.limit = 4, .key = "event.data.tenant_id"}}},
        [&service](inngest::Context& ctx) {
            const auto tenant = core::event_tenant(ctx.event.data);
            const std::int64_t run_id = ctx.event.data.at("run_id").to_number<std::int64_t>();
            const auto run = ctx.step.run("execute", [&] {
                const auto finished = service.execute_run(tenant, run_id);
                return boost::json::object{{"run_id", run_id}, {"status", finished.at("status")}};
            });
            return run;
        });
}

}  // namespace riveredge::scripts
