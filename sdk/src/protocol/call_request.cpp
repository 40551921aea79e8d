#include "protocol/call_request.hpp"

#include "protocol/json_scan.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value_to.hpp>

#include <functional>
#include <optional>
#include <stdexcept>

namespace inngest::detail {
namespace {

Error malformed(std::string message) {
    return Error{ErrorCode::kMalformedRequest, std::move(message)};
}

bool read_int(const boost::json::object& object, std::string_view key, std::int64_t& out) {
    const auto* value = object.if_contains(key);
    if (value == nullptr || value->is_null()) {
        return true;
    }
    if (value->is_int64()) {
        out = value->get_int64();
        return true;
    }
    if (value->is_uint64()) {
        out = static_cast<std::int64_t>(value->get_uint64());
        return true;
    }
    return false;
}

bool read_bool(const boost::json::object& object, std::string_view key, bool& out) {
    const auto* value = object.if_contains(key);
    if (value == nullptr || value->is_null()) {
        return true;
    }
    if (!value->is_bool()) {
        return false;
    }
    out = value->get_bool();
    return true;
}

bool read_string(const boost::json::object& object, std::string_view key, std::string& out) {
    const auto* value = object.if_contains(key);
    if (value == nullptr || value->is_null()) {
        return true;
    }
    if (!value->is_string()) {
        return false;
    }
    out = value->get_string();
    return true;
}

bool is_null(std::string_view raw) noexcept {
    return raw.empty() || raw == "null";
}

// A slice the scanner has validated: parsing it cannot fail.
boost::json::value parse_slice(std::string_view raw, boost::json::storage_ptr storage) {
    boost::system::error_code ec;
    boost::json::value value = parse_json(raw, ec, std::move(storage));
    if (ec) {
        throw std::runtime_error("invalid JSON slice: " + ec.message());
    }
    return value;
}

// Reads a member key; keys with escapes are decoded into `scratch`.
bool read_key(JsonScanner& scanner, std::string_view& key, std::string& scratch) {
    bool escaped = false;
    std::string_view raw;
    if (!scanner.string(raw, escaped) || !scanner.consume(':')) {
        return false;
    }
    if (escaped) {
        scratch.clear();
        decode_json_string(raw, scratch);
        key = scratch;
    } else {
        key = raw.substr(1, raw.size() - 2);
    }
    return true;
}

StepMemo::Shape shape_of(std::string_view key) noexcept {
    if (key == "data") {
        return StepMemo::Shape::kData;
    }
    if (key == "error") {
        return StepMemo::Shape::kError;
    }
    if (key == "input") {
        return StepMemo::Shape::kInput;
    }
    return StepMemo::Shape::kOther;
}

// Scans one step value at `depth` and notes whether it is an object with a single member.
bool scan_memo(JsonScanner& scanner, int depth, StepMemo& memo) {
    if (scanner.peek() != '{') {
        return scanner.value(memo.raw, depth);
    }
    if (depth + 1 > kMaxJsonDepth) {
        return false;
    }
    const char* start = scanner.position();
    scanner.consume('{');
    memo.shape = StepMemo::Shape::kOther;
    if (!scanner.consume('}')) {
        std::string scratch;
        std::string first_key;
        bool single = true;  // every member has the first member's key (a repeated key counts once)
        bool first = true;
        do {
            std::string_view key;
            std::string_view inner;
            if (!read_key(scanner, key, scratch) || !scanner.value(inner, depth + 1)) {
                return false;
            }
            if (first) {
                first_key = key;
                first = false;
            } else if (key != first_key) {
                single = false;
            }
            memo.inner = inner;  // the last one wins, as in a parsed object
        } while (scanner.consume(','));
        if (!scanner.consume('}')) {
            return false;
        }
        if (single) {
            memo.shape = shape_of(first_key);
        }
    }
    if (memo.shape == StepMemo::Shape::kOther) {
        memo.inner = {};
    }
    memo.raw = std::string_view(start, static_cast<std::size_t>(scanner.position() - start));
    return true;
}

}  // namespace

bool StepState::scan(std::string_view object_text, int depth) {
    JsonScanner scanner(object_text);
    return scan_from(scanner, depth) && scanner.at_end();
}

bool StepState::scan_from(JsonScanner& scanner, int depth) {
    entries_.clear();
    table_.clear();
    decoded_keys_.clear();
    size_ = 0;
    if (depth + 1 > kMaxJsonDepth || !scanner.consume('{')) {
        return false;
    }
    if (!scanner.consume('}')) {
        std::string scratch;
        do {
            std::string_view key;
            if (!read_key(scanner, key, scratch)) {
                return false;
            }
            if (!scratch.empty() && key.data() == scratch.data()) {
                decoded_keys_.push_back(std::make_unique<std::string>(std::move(scratch)));
                key = *decoded_keys_.back();
                scratch = std::string();
            }
            StepMemo memo;
            if (!scan_memo(scanner, depth + 1, memo)) {
                return false;
            }
            entries_.push_back(Entry{key, memo});
        } while (scanner.consume(','));
        if (!scanner.consume('}')) {
            return false;
        }
    }
    index();
    return true;
}

void StepState::index() {
    std::size_t capacity = 8;
    while (capacity < entries_.size() * 2) {
        capacity *= 2;
    }
    table_.assign(capacity, 0);
    const std::size_t mask = capacity - 1;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        std::size_t slot = std::hash<std::string_view>{}(entries_[i].key) & mask;
        for (;; slot = (slot + 1) & mask) {
            if (table_[slot] == 0) {
                table_[slot] = static_cast<std::uint32_t>(i + 1);
                ++size_;
                break;
            }
            if (entries_[table_[slot] - 1].key == entries_[i].key) {
                table_[slot] = static_cast<std::uint32_t>(i + 1);  // the last one wins
                break;
            }
        }
    }
}

const StepMemo* StepState::find(std::string_view hashed_id) const noexcept {
    if (table_.empty()) {
        return nullptr;
    }
    const std::size_t mask = table_.size() - 1;
    for (std::size_t slot = std::hash<std::string_view>{}(hashed_id)&mask;;
         slot = (slot + 1) & mask) {
        const std::uint32_t index = table_[slot];
        if (index == 0) {
            return nullptr;
        }
        if (entries_[index - 1].key == hashed_id) {
            return &entries_[index - 1].memo;
        }
    }
}

std::vector<std::string_view> StepState::keys() const {
    std::vector<std::string_view> keys;
    keys.reserve(size_);
    for (const auto& entry : entries_) {
        if (find(entry.key) == &entry.memo) {
            keys.push_back(entry.key);
        }
    }
    return keys;
}

Result<CallRequest> parse_call_request(std::string_view body) {
    CallRequest request;
    JsonScanner scanner(body);
    const auto not_json = [] {
        return malformed("request body is not valid JSON");
    };
    if (scanner.peek() != '{') {
        if (!is_valid_json(body)) {
            return not_json();
        }
        return malformed("request body must be a JSON object");
    }
    // One pass over the body: known members are kept as slices (the last of a repeated key
    // wins, as in a parsed object), `steps` is scanned into its slices on the way.
    std::string_view event_raw;
    std::string_view events_raw;
    std::string_view ctx_raw;
    std::string_view version_raw;
    std::string_view use_api_raw;
    std::optional<std::string> steps_error;
    scanner.consume('{');
    if (!scanner.consume('}')) {
        std::string scratch;
        do {
            std::string_view key;
            if (!read_key(scanner, key, scratch)) {
                return not_json();
            }
            if (key == "steps") {
                steps_error.reset();
                const char next = scanner.peek();
                if (next == '{') {
                    if (!request.steps.scan_from(scanner, 1)) {
                        return not_json();
                    }
                    continue;
                }
                request.steps = StepState();
                std::string_view raw;
                if (!scanner.value(raw, 1)) {
                    return not_json();
                }
                if (!is_null(raw)) {
                    steps_error = "'steps' must be an object";
                }
                continue;
            }
            std::string_view* slot = nullptr;
            if (key == "event") {
                slot = &event_raw;
            } else if (key == "events") {
                slot = &events_raw;
            } else if (key == "ctx") {
                slot = &ctx_raw;
            } else if (key == "version") {
                slot = &version_raw;
            } else if (key == "use_api") {
                slot = &use_api_raw;
            }
            std::string_view raw;
            if (!scanner.value(raw, 1)) {
                return not_json();
            }
            if (slot != nullptr) {
                *slot = raw;
            }
        } while (scanner.consume(','));
        if (!scanner.consume('}')) {
            return not_json();
        }
    }
    if (!scanner.at_end()) {
        return not_json();
    }

    // The small parts are parsed, on a per-request arena.
    unsigned char buffer[4096];
    boost::json::monotonic_resource arena(buffer, sizeof buffer);
    const boost::json::storage_ptr storage(&arena);
    try {
        if (!is_null(event_raw)) {
            request.event = boost::json::value_to<Event>(parse_slice(event_raw, storage));
        }
        if (!is_null(events_raw)) {
            const boost::json::value events = parse_slice(events_raw, storage);
            if (!events.is_array()) {
                return malformed("'events' must be an array");
            }
            request.events.reserve(events.get_array().size());
            for (const auto& event : events.get_array()) {
                request.events.push_back(boost::json::value_to<Event>(event));
            }
        }
    } catch (const std::exception& error) {
        return malformed(std::string("'event'/'events': ") + error.what());
    }
    if (request.event.name.empty() && request.events.empty()) {
        // Nothing to run the function with: not a call request an executor would send.
        return malformed("the call request carries no 'event'");
    }
    if (request.events.empty() && !request.event.name.empty()) {
        request.events.push_back(request.event);
    } else if (request.event.name.empty() && !request.events.empty()) {
        request.event = request.events.front();
    }

    if (steps_error) {
        return malformed(std::move(*steps_error));
    }
    boost::json::object top;
    if (!is_null(version_raw)) {
        top["version"] = parse_slice(version_raw, storage);
    }
    if (!is_null(use_api_raw)) {
        top["use_api"] = parse_slice(use_api_raw, storage);
    }
    if (!read_int(top, "version", request.version)) {
        return malformed("'version' must be an integer");
    }
    if (!read_bool(top, "use_api", request.use_api)) {
        return malformed("'use_api' must be a boolean");
    }

    if (!is_null(ctx_raw)) {
        const boost::json::value ctx_value = parse_slice(ctx_raw, storage);
        const auto* ctx = ctx_value.if_object();
        if (ctx == nullptr) {
            return malformed("'ctx' must be an object");
        }
        if (!read_int(*ctx, "attempt", request.attempt) || request.attempt < 0) {
            return malformed("'ctx.attempt' must be a non-negative integer");
        }
        if (!read_int(*ctx, "max_attempts", request.max_attempts) || request.max_attempts < 0) {
            return malformed("'ctx.max_attempts' must be a non-negative integer");
        }
        if (!read_bool(*ctx, "disable_immediate_execution", request.disable_immediate_execution)) {
            return malformed("'ctx.disable_immediate_execution' must be a boolean");
        }
        bool ctx_use_api = false;
        if (!read_bool(*ctx, "use_api", ctx_use_api)) {
            return malformed("'ctx.use_api' must be a boolean");
        }
        request.use_api = request.use_api || ctx_use_api;
        if (!read_string(*ctx, "run_id", request.run_id)) {
            return malformed("'ctx.run_id' must be a string");
        }
        if (!read_string(*ctx, "fn_id", request.fn_id)) {
            return malformed("'ctx.fn_id' must be a string");
        }
        if (!read_string(*ctx, "env", request.env)) {
            return malformed("'ctx.env' must be a string");
        }
        if (auto* stack = ctx->if_contains("stack"); stack != nullptr && !stack->is_null()) {
            auto* stack_object = stack->if_object();
            if (stack_object == nullptr) {
                return malformed("'ctx.stack' must be an object");
            }
            if (auto* ids = stack_object->if_contains("stack"); ids != nullptr && !ids->is_null()) {
                if (!ids->is_array()) {
                    return malformed("'ctx.stack.stack' must be an array");
                }
                request.stack.reserve(ids->get_array().size());
                for (const auto& id : ids->get_array()) {
                    if (!id.is_string()) {
                        return malformed("'ctx.stack.stack' must hold strings");
                    }
                    request.stack.emplace_back(id.get_string());
                }
            }
        }
    }
    return request;
}

}  // namespace inngest::detail
