#include "modules/records/module.hpp"

#include "core/log/logger.hpp"
#include "modules/records/repository.hpp"
#include "modules/records/service.hpp"

namespace riveredge::records {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

namespace {

std::optional<SealKey> load_seal_key(const core::Settings& settings) {
    if (!settings.records_seal_key_file) {
        core::log(core::LogLevel::kWarn,
                  "electronic signing is off: RIVEREDGE_RECORDS_SEAL_KEY names no key");
        return std::nullopt;
    }
    return SealKey::from_pem_file(*settings.records_seal_key_file);
}

class Module final : public core::Module, public core::RecordSigner {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          service_(repository_,
                   context.capabilities.notifier(),
                   context.capabilities.pdf_printer(),
                   load_seal_key(context.settings)) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
        context.capabilities.provide(static_cast<core::RecordSigner&>(*this));
    }

    std::string_view name() const noexcept override { return "records"; }

    Signer authenticate(const core::Principal& who,
                        const core::RequestOrigin& from,
                        const boost::json::object& credentials) override {
        const auto signer =
            service_.authenticate(service_.actor(who, from.address, from.user_agent), credentials,
                                  std::nullopt, std::nullopt);
        return Signer{signer.who, signer.printed_name, from};
    }

    boost::json::object sign(core::db::Transaction& tx,
                             const Signer& signer,
                             std::int64_t record_id,
                             const std::string& meaning,
                             const std::string& reason,
                             const std::string& step_key) override {
        return service_.seal(
            tx, Actor{signer.who, signer.printed_name, signer.from.address, signer.from.user_agent},
            record_id, meaning, reason, step_key);
    }

private:
    Repository repository_;
    Service service_;
};

}  // namespace

std::unique_ptr<core::Module> make_records_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::records
