#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::approvals {

class Module;

/// Registers the approvals module's routes (definitions so far).
std::shared_ptr<Module> make_approvals_module(core::AppContext& context);

}  // namespace riveredge::approvals
