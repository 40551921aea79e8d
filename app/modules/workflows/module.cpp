#include "modules/workflows/module.hpp"

#include "modules/workflows/repository.hpp"
#include "modules/workflows/service.hpp"

namespace riveredge::workflows {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service, int tenant_concurrency);

class Module final : public core::Module {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          service_(repository_,
                   Collaborators{context.capabilities.notifier(), context.capabilities.scripts(),
                                 context.outbound}) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_,
                           context.settings.workflows_tenant_concurrency);
    }

    std::string_view name() const noexcept override { return "workflows"; }

private:
    Repository repository_;
    Service service_;
};

std::unique_ptr<core::Module> make_workflows_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::workflows
