#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::scripts {

class Module;
class Service;

/// Registers the scripts module's routes and Inngest functions.
std::shared_ptr<Module> make_scripts_module(core::AppContext& context);

/// The module's service, for other modules (runs of stored scripts).
Service& service_of(Module& module);

}  // namespace riveredge::scripts
