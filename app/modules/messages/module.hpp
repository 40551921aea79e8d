#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::messages {

class Module;

/// Registers the messages module's routes and Inngest functions.
std::shared_ptr<Module> make_messages_module(core::AppContext& context);

}  // namespace riveredge::messages
