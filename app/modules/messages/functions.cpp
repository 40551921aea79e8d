// The messages module's Inngest functions: thin, one step per delivery.

#include "core/events.hpp"
#include "modules/messages/service.hpp"

#include <inngest/inngest.hpp>

namespace riveredge::messages {

void register_functions(inngest::Client& client, Service& service) {
    client.create_function(
        {.id = "messages-deliver",
         .name = "Deliver a message",
         .triggers = {inngest::EventTrigger{kMessageRequested}},
         .retries = 5,
         .concurrency = {{.limit = 20, .key = "event.data.tenant_id"}},
         // A run that ends failed leaves no delivery queued or sending: a step that died through
         // its retries (the database gone, say) never got to mark its delivery.
         .on_failure = [&service](inngest::Context& ctx) -> boost::json::value {
             const auto message = core::failed_event_row(ctx.event.data, "message_id");
             if (!message) {
                 return nullptr;
             }
             return ctx.step.run("fail-unfinished", [&] {
                 return boost::json::object{
                     {"message_id", message->id},
                     {"failed", service.repository().fail_unfinished(
                                    message->tenant, message->id,
                                    "the delivery run failed through its retries")}};
             });
         }},
        [&service](inngest::Context& ctx) {
            const auto tenant = core::event_tenant(ctx.event.data);
            const std::int64_t message_id =
                ctx.event.data.at("message_id").to_number<std::int64_t>();
            const auto deliveries = ctx.step.run("load-deliveries", [&] {
                boost::json::array out;
                for (const auto& d : service.repository().deliveries(tenant, message_id)) {
                    out.push_back(boost::json::object{{"id", d.id}, {"channel", d.channel}});
                }
                if (out.empty()) {
                    // Another tenant's message, or none: nothing here may touch it.
                    throw inngest::NonRetriableError("message " + std::to_string(message_id) +
                                                     " has no deliveries in tenant " +
                                                     tenant.value());
                }
                return out;
            });
            int delivered = 0;
            int failed = 0;
            for (const auto& delivery : deliveries) {
                const std::int64_t id = delivery.at("id").to_number<std::int64_t>();
                const std::string channel(delivery.at("channel").as_string());
                // One step per delivery: a retry never repeats a delivery that already succeeded.
                try {
                    ctx.step.run("deliver-" + std::to_string(id), [&] {
                        return service.deliver(tenant, id, channel,
                                               ctx.run.attempt + 1 >= ctx.run.max_attempts);
                    });
                    ++delivered;
                } catch (const inngest::StepError&) {
                    // This delivery failed for good; the message's other ones still go out.
                    ++failed;
                }
            }
            if (failed > 0) {
                // The run ends failed (on_failure fails what a dead step left queued).
                throw inngest::NonRetriableError(
                    std::to_string(failed) + " of " + std::to_string(deliveries.size()) +
                    " deliveries of message " + std::to_string(message_id) + " failed");
            }
            return boost::json::object{{"message_id", message_id}, {"delivered", delivered}};
        });
}

}  // namespace riveredge::messages
