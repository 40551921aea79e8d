#include "core/log/logger.hpp"

#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace riveredge::core {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};

const char* name(LogLevel level) {
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

void set_log_level(LogLevel level) {
    g_level = level;
}

void log(LogLevel level, std::string_view message, const boost::json::object& fields) {
    if (level < g_level.load()) {
        return;
    }
    boost::json::object line;
    line["ts"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    line["level"] = name(level);
    line["msg"] = message;
    for (const auto& field : fields) {
        line[field.key()] = field.value();
    }
    const std::string text = boost::json::serialize(line) + "\n";
    static std::mutex mutex;
    const std::lock_guard lock(mutex);
    std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace riveredge::core
