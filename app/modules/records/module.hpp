#pragma once

#include "core/app_context.hpp"

#include <memory>

namespace riveredge::records {

/// Electronic records: signatures, audit trail, lifecycle and retention.
std::unique_ptr<core::Module> make_records_module(core::AppContext& context);

}  // namespace riveredge::records
