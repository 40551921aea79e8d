#include "modules/messages/module.hpp"

#include "modules/messages/repository.hpp"
#include "modules/messages/service.hpp"

namespace riveredge::messages {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

class Module {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db), service_(repository_, context.inngest) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
    }

private:
    Repository repository_;
    Service service_;
};

std::shared_ptr<Module> make_messages_module(core::AppContext& context) {
    return std::make_shared<Module>(context);
}

}  // namespace riveredge::messages
