// The print templates' Inngest function: draws a render asked for through the outbox. The PDF
// goes to the database by its SHA-256; the step's output names it and never carries the bytes.

#include "core/errors.hpp"
#include "core/events.hpp"
#include "modules/print_templates/service.hpp"

#include <inngest/inngest.hpp>

namespace riveredge::print {

void register_functions(inngest::Client& client, Service& service) {
    client.create_function(
        {.id = "print-render",
         .name = "Render print templates to PDF",
         .triggers = {inngest::EventTrigger{kRenderRequested}},
         // PoDoFo draws one document at a time in this process; more would only queue.
         .concurrency = {{.limit = 2}}},
        [&service](inngest::Context& ctx) {
            const auto tenant = core::event_tenant(ctx.event.data);
            const auto* render = ctx.event.data.if_contains("render_id");
            if (render == nullptr || !render->is_int64()) {
                throw inngest::NonRetriableError("print/render.requested needs render_id");
            }
            return ctx.step.run("render", [&] {
                try {
                    return service.run_render(tenant, render->get_int64());
                } catch (const core::DomainError& error) {
                    if (error.kind() == core::DomainError::Kind::kNotFound) {
                        throw inngest::NonRetriableError(error.what());
                    }
                    throw;
                }
            });
        });
}

}  // namespace riveredge::print
