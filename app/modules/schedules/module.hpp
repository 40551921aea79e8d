#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::messages {
class Module;
}
namespace riveredge::scripts {
class Module;
}

namespace riveredge::schedules {

class Module;

/// Registers the scheduled-tasks module's routes and Inngest functions. Its actions send
/// messages and run scripts through those modules.
std::shared_ptr<Module> make_schedules_module(core::AppContext& context,
                                              messages::Module& messages,
                                              scripts::Module& scripts);

}  // namespace riveredge::schedules
