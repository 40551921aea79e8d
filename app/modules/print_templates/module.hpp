#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::print {

/// Print templates: designs to PDF with correct Chinese, previews and durable renders.
std::unique_ptr<core::Module> make_print_templates_module(core::AppContext& context);

}  // namespace riveredge::print
