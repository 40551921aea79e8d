#include "execution/invocation.hpp"

#include <inngest/logger.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

namespace inngest {
namespace {

std::string_view level_name(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::kDebug:
            return "debug";
        case LogLevel::kInfo:
            return "info";
        case LogLevel::kWarn:
            return "warn";
        case LogLevel::kError:
            return "error";
    }
    return "info";
}

}  // namespace

LogSink stderr_log_sink(LogLevel min_level) {
    return [min_level](LogLevel level, std::string_view message) {
        if (level < min_level) {
            return;
        }
        static std::mutex mutex;
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        std::string line = "{\"ts\":" + std::to_string(now) + ",\"level\":\"" +
                           std::string(level_name(level)) + "\",\"logger\":\"inngest\",\"msg\":" +
                           boost::json::serialize(boost::json::string(message)) + "}\n";
        const std::lock_guard lock(mutex);
        std::fwrite(line.data(), 1, line.size(), stderr);
    };
}

LogLevel parse_log_level(std::string_view text, LogLevel fallback) {
    if (text == "debug") {
        return LogLevel::kDebug;
    }
    if (text == "info") {
        return LogLevel::kInfo;
    }
    if (text == "warn" || text == "warning") {
        return LogLevel::kWarn;
    }
    if (text == "error") {
        return LogLevel::kError;
    }
    return fallback;
}

void StepLogger::write(LogLevel level, std::string_view message) const {
    if (invocation_->replaying() || !*sink_) {
        return;
    }
    (*sink_)(level, message);
}

}  // namespace inngest
