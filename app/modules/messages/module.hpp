#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::messages {

class Module;
class Service;

/// Registers the messages module's routes and Inngest functions.
std::shared_ptr<Module> make_messages_module(core::AppContext& context);

/// The module's service, for other modules (`notify`).
Service& service_of(Module& module);

}  // namespace riveredge::messages
