#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::schedules {

/// The scheduled-tasks module: its routes and Inngest functions. Its actions notify and run
/// scripts through the capabilities of the messages and scripts modules.
std::unique_ptr<core::Module> make_schedules_module(core::AppContext& context);

}  // namespace riveredge::schedules
