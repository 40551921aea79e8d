#include "modules/messages/module.hpp"

#include "core/db/listener.hpp"
#include "core/log/logger.hpp"
#include "modules/messages/repository.hpp"
#include "modules/messages/service.hpp"

#include <boost/json/parse.hpp>

namespace riveredge::messages {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

class Module final : public core::Module, public core::Notifier {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          service_(repository_, context.outbound, context.settings.smtp_ca_file, &context.metrics),
          // Every process listens, so a socket on any process hears about every new item.
          listener_(context.settings.database_url,
                    kInboxChannel,
                    [this, &hub = context.hub](const std::string& payload) {
                        // Only ids travel in the notification: the item is read in its tenant.
                        const auto ids = boost::json::parse(payload).as_object();
                        const auto tenant =
                            core::TenantId::trusted(std::string(ids.at("tenant_id").as_string()));
                        if (const auto note = repository_.inbox_note(
                                tenant, ids.at("item_id").to_number<std::int64_t>())) {
                            hub.publish(tenant, note->user_id, note->json);
                        }
                    }) {
        if (!listener_.wait_listening(std::chrono::seconds(10))) {
            core::log(
                core::LogLevel::kWarn,
                "inbox notifications are not heard yet; WebSocket pushes start once they are");
        }
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
        context.capabilities.provide(static_cast<core::Notifier&>(*this));
    }

    std::string_view name() const noexcept override { return "messages"; }

    std::int64_t notify(const core::TenantId& tenant,
                        const std::string& sender,
                        const std::vector<std::string>& user_ids,
                        const std::string& subject,
                        const std::string& body,
                        const std::optional<std::string>& idempotency_key) override {
        return service_.notify(tenant, sender, user_ids, subject, body, idempotency_key);
    }

private:
    Repository repository_;
    Service service_;
    core::db::Listener listener_;
};

std::unique_ptr<core::Module> make_messages_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::messages
