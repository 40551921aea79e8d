#include "modules/approvals/module.hpp"

#include "modules/approvals/repository.hpp"
#include "modules/approvals/service.hpp"

namespace riveredge::approvals {

void register_routes(core::Router& router, Service& service);

class Module {
public:
    explicit Module(core::AppContext& context) : repository_(context.db), service_(repository_) {
        register_routes(context.router, service_);
    }

private:
    Repository repository_;
    Service service_;
};

std::shared_ptr<Module> make_approvals_module(core::AppContext& context) {
    return std::make_shared<Module>(context);
}

}  // namespace riveredge::approvals
