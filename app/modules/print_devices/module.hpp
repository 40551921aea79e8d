#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::devices {

/// Print devices: each tenant's printers (CUPS queues) with their health, and print jobs sent
/// at most once and followed to the end.
std::unique_ptr<core::Module> make_print_devices_module(core::AppContext& context);

}  // namespace riveredge::devices
