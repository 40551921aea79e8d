#include "modules/schedules/module.hpp"

#include "modules/messages/module.hpp"
#include "modules/schedules/repository.hpp"
#include "modules/schedules/service.hpp"
#include "modules/scripts/module.hpp"

namespace riveredge::schedules {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

class Module {
public:
    Module(core::AppContext& context, messages::Module& messages, scripts::Module& scripts)
        : repository_(context.db),
          service_(repository_,
                   Collaborators{messages::service_of(messages), scripts::service_of(scripts),
                                 context.inngest, context.now}) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
    }

private:
    Repository repository_;
    Service service_;
};

std::shared_ptr<Module> make_schedules_module(core::AppContext& context,
                                              messages::Module& messages,
                                              scripts::Module& scripts) {
    return std::make_shared<Module>(context, messages, scripts);
}

}  // namespace riveredge::schedules
