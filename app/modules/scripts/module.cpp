#include "modules/scripts/module.hpp"

#include "modules/scripts/repository.hpp"
#include "modules/scripts/script_runner.hpp"
#include "modules/scripts/service.hpp"

namespace riveredge::scripts {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

class Module {
public:
    explicit Module(core::AppContext& context)
        : runner_(context.settings.script_worker.empty() ? default_worker_path()
                                                         : context.settings.script_worker),
          repository_(context.db),
          service_(repository_, context.inngest, runner_) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
    }

    Service& service() noexcept { return service_; }

private:
    ScriptRunner runner_;
    Repository repository_;
    Service service_;
};

std::shared_ptr<Module> make_scripts_module(core::AppContext& context) {
    return std::make_shared<Module>(context);
}

Service& service_of(Module& module) {
    return module.service();
}

}  // namespace riveredge::scripts
