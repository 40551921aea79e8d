#include "modules/print_templates/module.hpp"

#include "core/log/logger.hpp"
#include "modules/print_templates/repository.hpp"
#include "modules/print_templates/service.hpp"

#include <unistd.h>

namespace riveredge::print {

void register_routes(core::Router& router, Service& service);
void register_functions(inngest::Client& client, Service& service);

namespace {

std::string font_cache(const core::Settings& settings) {
    return settings.font_cache_dir.empty() ? "/tmp/riveredge-fonts-" + std::to_string(getuid())
                                           : settings.font_cache_dir;
}

class Module final : public core::Module, public core::PdfPrinter {
public:
    explicit Module(core::AppContext& context)
        : repository_(context.db),
          service_(repository_, FontChain::from_system(font_cache(context.settings))) {
        register_routes(context.router, service_);
        register_functions(context.inngest, service_);
        context.capabilities.provide(static_cast<core::PdfPrinter&>(*this));
    }

    Pdf print(const boost::json::value& design,
              const std::vector<boost::json::value>& items) override {
        auto pdf = service_.draw(design, items);
        return Pdf{std::move(pdf.bytes), pdf.pages, std::move(pdf.warnings)};
    }

    Pdf rendered(const core::TenantId& tenant, std::int64_t render_id) override {
        auto output = service_.render_output(tenant, render_id);
        return Pdf{std::move(output.bytes), output.pages, {}};
    }

    std::string_view name() const noexcept override { return "print_templates"; }

private:
    Repository repository_;
    Service service_;
};

}  // namespace

std::unique_ptr<core::Module> make_print_templates_module(core::AppContext& context) {
    return std::make_unique<Module>(context);
}

}  // namespace riveredge::print
