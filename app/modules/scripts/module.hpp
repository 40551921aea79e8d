#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::scripts {

/// The scripts module: its routes and Inngest functions; provides `core::StoredScripts`.
std::unique_ptr<core::Module> make_scripts_module(core::AppContext& context);

}  // namespace riveredge::scripts
