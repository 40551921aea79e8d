#include "modules/approvals/module.hpp"

#include "modules/approvals/definition_repository.hpp"
#include "modules/approvals/definition_service.hpp"
#include "modules/approvals/engine.hpp"
#include "modules/approvals/instance_repository.hpp"
#include "modules/approvals/task_repository.hpp"
#include "modules/approvals/tenant_setup.hpp"

namespace riveredge::approvals {

void register_routes(core::Router& router, DefinitionService& service);
void register_instance_routes(core::Router& router, Engine& engine);
void register_functions(inngest::Client& client, Engine& engine, int step_budget);

class Module final : public core::Module {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          instances_(context.db),
          tasks_(context.db),
          directory_(context.db),
          activities_(context.db),
          service_(repository_),
          engine_(EngineParts{repository_, instances_, tasks_, directory_, activities_,
                              context.capabilities.notifier(), context.capabilities.scripts(),
                              context.capabilities.record_signer(),
                              [now = context.now] { return now(); }, context.outbound}) {
        register_routes(context.router, service_);
        register_instance_routes(context.router, engine_);
        register_functions(context.inngest, engine_, context.settings.approvals_step_budget);
    }

    std::string_view name() const noexcept override { return "approvals"; }

private:
    DefinitionRepository repository_;
    InstanceRepository instances_;
    TaskRepository tasks_;
    Directory directory_;
    ActivityBindings activities_;
    DefinitionService service_;
    Engine engine_;
};

std::unique_ptr<core::Module> make_approvals_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::approvals
