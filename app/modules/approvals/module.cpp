#include "modules/approvals/module.hpp"

#include "modules/approvals/engine.hpp"
#include "modules/approvals/instance_repository.hpp"
#include "modules/approvals/repository.hpp"
#include "modules/approvals/service.hpp"
#include "modules/approvals/task_repository.hpp"
#include "modules/approvals/tenant_setup.hpp"
#include "modules/messages/module.hpp"
#include "modules/scripts/module.hpp"

namespace riveredge::approvals {

void register_routes(core::Router& router, Service& service);
void register_instance_routes(core::Router& router, Engine& engine);
void register_functions(inngest::Client& client, Engine& engine, int step_budget);

class Module {
public:
    Module(core::AppContext& context, messages::Module& messages, scripts::Module& scripts)
        : repository_(context.db),
          instances_(context.db),
          tasks_(context.db),
          directory_(context.db),
          activities_(context.db),
          service_(repository_),
          engine_(EngineParts{repository_, instances_, tasks_, directory_, activities_,
                              messages::service_of(messages), scripts::service_of(scripts),
                              context.inngest, [now = context.now] {
                                  return now();
                              }}) {
        register_routes(context.router, service_);
        register_instance_routes(context.router, engine_);
        register_functions(context.inngest, engine_, context.settings.approvals_step_budget);
    }

    Engine& engine() noexcept { return engine_; }

private:
    Repository repository_;
    InstanceRepository instances_;
    TaskRepository tasks_;
    Directory directory_;
    ActivityBindings activities_;
    Service service_;
    Engine engine_;
};

std::shared_ptr<Module> make_approvals_module(core::AppContext& context,
                                              messages::Module& messages,
                                              scripts::Module& scripts) {
    return std::make_shared<Module>(context, messages, scripts);
}

int resume_running_instances(Module& module) {
    return module.engine().resume_all();
}

}  // namespace riveredge::approvals
