#pragma once

/// @file
/// @brief Logging: a sink the application provides, and a step-aware logger for functions.

#include <functional>
#include <string_view>

namespace inngest {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

/// Where the SDK writes log lines. Receives the level and one message; the SDK never passes
/// signing keys, event keys or request bodies to it.
using LogSink = std::function<void(LogLevel, std::string_view)>;

/// The default sink: one JSON object per line on stderr, levels below `min_level` dropped.
LogSink stderr_log_sink(LogLevel min_level = LogLevel::kInfo);

/// `LogLevel` from `INNGEST_LOG_LEVEL`-style text (`debug`, `info`, `warn`, `error`).
LogLevel parse_log_level(std::string_view text, LogLevel fallback = LogLevel::kInfo);

namespace detail {
class Invocation;
}

/// The logger a function body sees as `ctx.log`. It is muted while the invocation replays
/// memoized steps, so a line written between two steps appears once per run, not once per
/// invocation.
class StepLogger {
public:
    StepLogger(const LogSink& sink, const detail::Invocation& invocation) noexcept
        : sink_(&sink), invocation_(&invocation) {}

    void debug(std::string_view message) const { write(LogLevel::kDebug, message); }
    void info(std::string_view message) const { write(LogLevel::kInfo, message); }
    void warn(std::string_view message) const { write(LogLevel::kWarn, message); }
    void error(std::string_view message) const { write(LogLevel::kError, message); }

private:
    void write(LogLevel level, std::string_view message) const;

    const LogSink* sink_;
    const detail::Invocation* invocation_;
};

}  // namespace inngest
