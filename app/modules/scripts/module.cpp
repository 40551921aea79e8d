#include "modules/scripts/module.hpp"

#include "modules/scripts/repository.hpp"
#include "modules/scripts/script_runner.hpp"
#include "modules/scripts/service.hpp"

namespace riveredge::scripts {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

class Module final : public core::Module, public core::StoredScripts {
public:
    explicit Module(core::AppContext& context)
        : runner_(context.settings.script_worker.empty() ? default_worker_path()
                                                         : context.settings.script_worker),
          repository_(context.db),
          service_(repository_, runner_, context.outbound, &context.metrics) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
        context.capabilities.provide(static_cast<core::StoredScripts&>(*this));
    }

    std::string_view name() const noexcept override { return "scripts"; }

    boost::json::object get(const core::TenantId& tenant, std::int64_t script_id) override {
        return service_.get(tenant, script_id).to_json();
    }
    boost::json::object start_run(const core::Principal& who,
                                  std::int64_t script_id,
                                  const boost::json::object& request,
                                  const std::string& trigger,
                                  const std::optional<std::string>& idempotency_key) override {
        return service_.start_run(who, script_id, request, trigger, idempotency_key);
    }
    std::vector<std::string> http_allow_list(const core::TenantId& tenant) override {
        return repository_.settings(tenant).http_allow_list;
    }

private:
    ScriptRunner runner_;
    Repository repository_;
    Service service_;
};

std::unique_ptr<core::Module> make_scripts_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::scripts
