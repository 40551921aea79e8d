#pragma once

// The body of a POST call request (protocol §8.1), parsed leniently.
//
// The body is scanned once. `event`, `events` and `ctx` are parsed; each memoized step value is
// only validated and kept as a slice of the body, parsed when the function reads it. The body
// must therefore outlive the `CallRequest` (and the invocation that uses it).

#include <inngest/errors.hpp>
#include <inngest/event.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace inngest::detail {

class JsonScanner;

/// One memoized step: its JSON text, validated but not parsed.
struct StepMemo {
    /// What the value looks like at the top (protocol §10.3).
    enum class Shape : std::uint8_t {
        kOther,  // anything else (e.g. a sleep's null or a legacy bare value)
        kData,   // {"data": X}
        kError,  // {"error": X}
        kInput,  // {"input": X}: not done yet
    };
    /// The whole value.
    std::string_view raw{};
    /// X for kData, kError and kInput.
    std::string_view inner{};
    Shape shape = Shape::kOther;
};

/// Memoized step state keyed by hashed step id. A key present with null differs from absent.
class StepState {
public:
    /// Scans a JSON object of step values; false when it is not valid JSON or not an object.
    /// `depth` is how deep the object is nested in its document (for the nesting limit).
    bool scan(std::string_view object_text, int depth = 0);
    /// The same, reading the object where `scanner` stands.
    bool scan_from(JsonScanner& scanner, int depth);

    const StepMemo* find(std::string_view hashed_id) const noexcept;
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    /// Keys in the order they appear (a repeated key counts once, at its last place).
    std::vector<std::string_view> keys() const;

private:
    struct Entry {
        std::string_view key;
        StepMemo memo;
    };
    void index();

    std::vector<Entry> entries_;
    /// Open addressing: entry index + 1, 0 when empty.
    std::vector<std::uint32_t> table_;
    std::size_t size_ = 0;
    /// Keys with escapes, decoded (stable addresses).
    std::vector<std::unique_ptr<std::string>> decoded_keys_;
};

struct CallRequest {
    Event event;
    std::vector<Event> events;
    /// Memoized step state: slices of the body (or of `state_body`).
    StepState steps;
    /// Hashed ids of completed steps, in completion order.
    std::vector<std::string> stack;
    std::string run_id;
    std::string fn_id;
    std::string env;
    std::int64_t attempt = 0;
    std::int64_t max_attempts = 0;
    std::int64_t version = -1;
    bool disable_immediate_execution = false;
    bool use_api = false;
    /// State loaded from the API (protocol §11) that `steps` points into, when `use_api`.
    std::unique_ptr<std::string> state_body{};
};

/// Parses a call request body. Unknown fields are ignored and missing ctx fields default to
/// zero/false/empty; a body that is not a JSON object, or whose known fields have the wrong
/// types, is a `kMalformedRequest` error naming the field. The result refers into `body`.
Result<CallRequest> parse_call_request(std::string_view body);

}  // namespace inngest::detail
