#pragma once

// RFC 3339 instants, as the protocol writes them (sleep-until, Retry-After).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace inngest::detail {

/// `2030-01-01T00:00:00Z`, or with `.mmm` when the instant has milliseconds.
std::string format_rfc3339(std::chrono::system_clock::time_point when);
/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);
/// An Inngest time string ("1m30s", "2s", "1.5h", "1d", "1w"; protocol §7.4).
std::optional<std::chrono::milliseconds> parse_time_string(std::string_view text);

}  // namespace inngest::detail
