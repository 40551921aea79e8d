#pragma once

// The API's one time format (RFC 3339 in UTC with milliseconds) and the reader of any RFC 3339
// time a client sends. Every module shows and reads times through these two functions.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace riveredge::core {

/// A moment, to the millisecond.
using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

/// `2026-03-08T03:00:00.000Z`.
std::string format_utc(TimePoint time);
/// The same for a reading of the system clock, cut to the millisecond.
std::string format_utc(std::chrono::system_clock::time_point time);
/// The system clock's time now, formatted.
std::string now_utc();
/// RFC 3339 (`Z` or an offset, optional fraction, cut to milliseconds); nullopt if malformed.
std::optional<TimePoint> parse_time(std::string_view text);

}  // namespace riveredge::core
