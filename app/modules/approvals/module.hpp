#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::messages {
class Module;
}
namespace riveredge::scripts {
class Module;
}

namespace riveredge::approvals {

class Module;

/// Registers the approvals module's routes and its Inngest function. Notifications go through
/// the messages module; script tasks and script-bound activities run through the scripts module.
std::shared_ptr<Module> make_approvals_module(core::AppContext& context,
                                              messages::Module& messages,
                                              scripts::Module& scripts);

/// After the embedded executor started afresh (its runs died with the last process): every
/// running instance continues from its stored state. Returns how many.
int resume_running_instances(Module& module);

}  // namespace riveredge::approvals
