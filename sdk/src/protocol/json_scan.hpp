#pragma once

// A validating JSON skip-scanner: walks JSON text without building anything, so a value can be
// kept as a slice of the text and parsed only when it is read. It accepts exactly what
// boost::json::parse accepts with `json_parse_options()` (RFC 8259, UTF-8 validated, lone
// surrogates in \u escapes rejected, at most kMaxJsonDepth nested arrays/objects).

#include <boost/json/parse_options.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace inngest::detail {

/// The deepest a value a step or a function returns may nest (arrays and objects): deeper, the
/// step fails with NonRetriableError instead of being memoized (inngest::kMaxStepResultDepth).
inline constexpr int kMaxStepValueDepth = 64;
/// The levels the protocol puts around a memoized value where the SDK (or the local executor)
/// reads it: a call body's object, its `steps`, the step's {"data": ...} (three), an op in a
/// reply array, a stored run's document. Room is left for a few more.
inline constexpr int kStepEnvelopeDepth = 8;
/// How deep the SDK reads JSON that carries step state (call requests, memoized values, replies
/// and stored runs): whatever a step was allowed to return can be read back on replay.
inline constexpr int kMaxJsonDepth = kMaxStepValueDepth + kStepEnvelopeDepth;

/// Boost.JSON's options with `max_depth` kMaxJsonDepth: what the scanner accepts.
boost::json::parse_options json_parse_options() noexcept;

/// boost::json::parse with `json_parse_options()`.
boost::json::value parse_json(std::string_view text,
                              boost::system::error_code& ec,
                              boost::json::storage_ptr storage = {});

/// How deeply `value` nests arrays and objects (a scalar: 0), counted no further than
/// `limit + 1`: enough to tell whether it is deeper than `limit`, without deep recursion.
int json_depth(const boost::json::value& value, int limit) noexcept;

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
