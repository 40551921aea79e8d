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
         .concurrency = {{.limit = 20, .key = "event.data.tenant_id"}}},
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
            for (const auto& delivery : deliveries) {
                const std::int64_t id = delivery.at("id").to_number<std::int64_t>();
                const std::string channel(delivery.at("channel").as_string());
                // One step per delivery: a retry never repeats a delivery that already succeeded.
                ctx.step.run("deliver-" + std::to_string(id), [&] {
                    return service.deliver(tenant, id, channel,
                                           ctx.run.attempt + 1 >= ctx.run.max_attempts);
                });
                ++delivered;
            }
            return boost::json::object{{"message_id", message_id}, {"delivered", delivered}};
        });
}

}  // namespace riveredge::messages
