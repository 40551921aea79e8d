#include "modules/print_devices/module.hpp"

#include "modules/print_devices/cups_client.hpp"
#include "modules/print_devices/repository.hpp"
#include "modules/print_devices/service.hpp"

namespace riveredge::devices {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

namespace {

class Module final : public core::Module {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          cups_(context.settings.cups_server),
          service_(repository_, cups_, context.capabilities, context.settings.failpoints) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
    }

    std::string_view name() const noexcept override { return "print_devices"; }

private:
    Repository repository_;
    CupsClient cups_;
    Service service_;
};

}  // namespace

std::unique_ptr<core::Module> make_print_devices_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::devices
