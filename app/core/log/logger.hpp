#pragma once

// Structured JSON log lines on stderr. Secrets are never passed in; fields are JSON values.

#include <boost/json/object.hpp>

#include <string_view>

namespace riveredge::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

/// Writes `{"ts":..,"level":..,"msg":..,<fields>}` as one line.
void log(LogLevel level, std::string_view message, const boost::json::object& fields = {});
/// Lines below this level are dropped (default info; `LOG_LEVEL=debug`).
void set_log_level(LogLevel level);

}  // namespace riveredge::core
