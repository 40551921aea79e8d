#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::approvals {

/// The approvals module: its routes and its Inngest function. Notifications and script tasks
/// go through the capabilities of the messages and scripts modules; after a fresh embedded
/// executor it continues every running instance from its stored state.
std::unique_ptr<core::Module> make_approvals_module(core::AppContext& context);

}  // namespace riveredge::approvals
