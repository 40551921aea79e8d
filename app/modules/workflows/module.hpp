#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::workflows {

/// The workflows module: DAG and state-machine definitions, their executions as Inngest runs,
/// and their history. Actions notify and run scripts through the messages and scripts modules'
/// capabilities.
std::unique_ptr<core::Module> make_workflows_module(core::AppContext& context);

}  // namespace riveredge::workflows
