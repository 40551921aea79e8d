// The print templates' Inngest function: draws a render asked for through the outbox. The PDF
// goes to the database by its SHA-256; the step's output names it and never carries the bytes.

#include "core/errors.hpp"
#include "core/events.hpp"
#include "modules/print_templates/service.hpp"

#include <inngest/inngest.hpp>

namespace riveredge::print {

namespace json = boost::json;

void register_functions(inngest::Client& client, Service& service) {
    client.create_function(
        {.id = "print-render",
         .name = "Render print templates to PDF",
         .triggers = {inngest::EventTrigger{kRenderRequested}},
         // PoDoFo draws one document at a time in this process; more would only queue.
         .concurrency = {{.limit = 2}},
         // A run whose step failed through its retries (bad_alloc each time, the database
         // refusing the output) ends its render failed rather than leaving it queued.
         .on_failure = [&service](inngest::Context& ctx) -> json::value {
             const auto render = core::failed_event_row(ctx.event.data, "render_id");
             if (!render) {
                 return nullptr;
             }
             const auto cause = core::failure_message(ctx.event.data).value_or("");
             return ctx.step.run("mark-failed", [&] {
                 service.fail_render(render->tenant, render->id, cause);
                 return json::value(nullptr);
             });
         }},
        [&service](inngest::Context& ctx) {
            const auto tenant = core::event_tenant(ctx.event.data);
            const auto render = core::event_int(ctx.event.data, "render_id", kRenderRequested);
            return ctx.step.run("render", [&] {
                return core::final_on({core::DomainError::Kind::kNotFound},
                                      [&] { return service.run_render(tenant, render); });
            });
        });
}

}  // namespace riveredge::print
