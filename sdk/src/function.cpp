#include <inngest/errors.hpp>
#include <inngest/function.hpp>

#include <array>
#include <cctype>
#include <string>

namespace inngest {

std::string format_duration(Duration duration) {
    auto ms = duration.count();
    if (ms <= 0) {
        return "0s";
    }
    // Durable waits resolve to whole seconds: as the TS SDK, a wait under a second is one second
    // (not "500ms", which would read as no wait at all at that resolution).
    if (ms < 1000) {
        return "1s";
    }
    struct Unit {
        const char* suffix;
        long long ms;
    };
    constexpr std::array kUnits{
        Unit{"w", 7LL * 24 * 3600 * 1000},
        Unit{"d", 24LL * 3600 * 1000},
        Unit{"h", 3600LL * 1000},
        Unit{"m", 60LL * 1000},
        Unit{"s", 1000},
        Unit{"ms", 1},
    };
    std::string out;
    for (const auto& unit : kUnits) {
        if (ms >= unit.ms) {
            out += std::to_string(ms / unit.ms);
            out += unit.suffix;
            ms %= unit.ms;
        }
    }
    return out;
}

Function::Function(std::string slug, FunctionOptions options, Handler handler)
    : slug_(std::move(slug)),
      name_(options.name.value_or(options.id)),
      options_(std::move(options)),
      handler_(std::move(handler)) {}

int Function::max_attempts() const noexcept {
    constexpr int kServerDefaultRetries = 4;
    return options_.retries.value_or(kServerDefaultRetries) + 1;
}

}  // namespace inngest
