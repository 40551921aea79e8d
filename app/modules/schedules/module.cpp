#include "modules/schedules/module.hpp"

#include "modules/schedules/repository.hpp"
#include "modules/schedules/service.hpp"

namespace riveredge::schedules {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

class Module final : public core::Module {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          service_(repository_,
                   Collaborators{context.capabilities.notifier(), context.capabilities.scripts(),
                                 context.inngest, context.now, context.outbound}) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
    }

    std::string_view name() const noexcept override { return "schedules"; }

private:
    Repository repository_;
    Service service_;
};

std::unique_ptr<core::Module> make_schedules_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::schedules
