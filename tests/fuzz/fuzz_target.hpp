#pragma once

// What every fuzz target shares: libFuzzer's entry point and a check that fails loudly.
//
// A target calls a parser with the input and checks what must hold for any input. The parser's
// documented refusals (error results, its own exception types) are expected; anything else (a
// sanitizer report, a failed check, an exception of another type escaping, a hang) is a finding.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace inngest::fuzz {

/// The input as text (any bytes, not NUL-terminated).
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) noexcept {
    return {reinterpret_cast<const char*>(data), size};
}

/// Splits `text` at the first `separator`: the part before it into `head`, the rest into `tail`
/// (all of `text` is `head` when there is no separator).
inline void split_once(std::string_view text,
                       char separator,
                       std::string_view& head,
                       std::string_view& tail) noexcept {
    const std::size_t at = text.find(separator);
    head = text.substr(0, at);
    tail = at == std::string_view::npos ? std::string_view{} : text.substr(at + 1);
}

[[noreturn]] inline void check_failed(const char* condition, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, condition);
    std::abort();
}

}  // namespace inngest::fuzz

/// Aborts (a crash for libFuzzer, a failure for the replay test) when `condition` is false.
#define FUZZ_CHECK(condition)           \
    ((condition) ? static_cast<void>(0) \
                 : ::inngest::fuzz::check_failed(#condition, __FILE__, __LINE__))
