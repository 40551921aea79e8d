#pragma once

// A validating JSON skip-scanner: walks JSON text without building anything, so a value can be
// kept as a slice of the text and parsed only when it is read. It accepts exactly what
// boost::json::parse accepts with default options (RFC 8259, UTF-8 validated, lone surrogates
// in \u escapes rejected, at most 32 nested arrays/objects).

#include <cstddef>
#include <string>
#include <string_view>

namespace inngest::detail {

/// Boost.JSON's default `max_depth`: deeper nesting is rejected as it was by `parse`.
inline constexpr int kMaxJsonDepth = 32;

class JsonScanner {
public:
    explicit JsonScanner(std::string_view text) noexcept
        : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

    /// Skips whitespace; false at the end of the text.
    bool skip_ws() noexcept;
    /// The next byte after whitespace, or 0 at the end.
    char peek() noexcept { return skip_ws() ? *p_ : '\0'; }
    /// Consumes `c` (after whitespace) if it is next.
    bool consume(char c) noexcept;
    /// Scans one string token (quotes included) into `raw`; `escaped` tells whether it holds a
    /// backslash escape.
    bool string(std::string_view& raw, bool& escaped) noexcept;
    /// Validates one value (after whitespace) and returns its text. `depth` is the number of
    /// arrays/objects the value is nested in.
    bool value(std::string_view& raw, int depth) noexcept;
    /// True when only whitespace is left.
    bool at_end() noexcept { return !skip_ws(); }

    std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - begin_); }
    const char* position() const noexcept { return p_; }

private:
    bool number() noexcept;
    bool literal(std::string_view word) noexcept;
    bool escape() noexcept;
    bool utf8() noexcept;

    const char* begin_;
    const char* p_;
    const char* end_;
};

/// True when `text` is one valid JSON value with only whitespace around it.
bool is_valid_json(std::string_view text) noexcept;

/// Appends the content of a string token already validated by `JsonScanner::string` (quotes
/// included) to `out`, with escapes decoded.
void decode_json_string(std::string_view raw, std::string& out);

}  // namespace inngest::detail
