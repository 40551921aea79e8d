#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::messages {

/// The messages module: its routes and Inngest functions; provides the `core::Notifier`.
std::unique_ptr<core::Module> make_messages_module(core::AppContext& context);

}  // namespace riveredge::messages
