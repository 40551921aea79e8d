#include "modules/approvals/module.hpp"

#include "modules/approvals/engine.hpp"
#include "modules/approvals/instance_repository.hpp"
#include "modules/approvals/repository.hpp"
#include "modules/approvals/service.hpp"

namespace riveredge::approvals {

void register_routes(core::Router& router, Service& service);
void register_instance_routes(core::Router& router, Engine& engine);
void register_functions(inngest::Client& client, Engine& engine);

class Module {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          instances_(context.db),
          service_(repository_),
          engine_(repository_, instances_, context.inngest) {
        register_routes(context.router, service_);
        register_instance_routes(context.router, engine_);
        register_functions(context.inngest, engine_);
    }

private:
    Repository repository_;
    InstanceRepository instances_;
    Service service_;
    Engine engine_;
};

std::shared_ptr<Module> make_approvals_module(core::AppContext& context) {
    return std::make_shared<Module>(context);
}

}  // namespace riveredge::approvals
