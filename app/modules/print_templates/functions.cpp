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
             const auto* original = ctx.event.data.if_contains("event");
             if (original == nullptr || !original->is_object()) {
                 return nullptr;
             }
             const auto* data = original->as_object().if_contains("data");
             if (data == nullptr || !data->is_object()) {
                 return nullptr;
             }
             const auto* render = data->as_object().if_contains("render_id");
             if (render == nullptr || !render->is_int64()) {
                 return nullptr;
             }
             const auto tenant = core::event_tenant(data->as_object());
             std::string cause;
             if (const auto* error = ctx.event.data.if_contains("error");
                 error != nullptr && error->is_object()) {
                 if (const auto* message = error->as_object().if_contains("message");
                     message != nullptr && message->is_string()) {
                     cause = message->as_string();
                 }
             }
             return ctx.step.run("mark-failed", [&] {
                 service.fail_render(tenant, render->get_int64(), cause);
                 return json::value(nullptr);
             });
         }},
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
