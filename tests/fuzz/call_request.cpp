// parse_call_request (protocol §8.1): any bytes as a call request body.
//
// A body is either refused as kMalformedRequest with a message, or parsed; a parsed body was
// valid JSON, carries at least one event, and every memoized step is a valid JSON slice of it.

#include "protocol/call_request.hpp"

#include "fuzz_target.hpp"
#include "protocol/json_scan.hpp"

#include <boost/json/parse.hpp>

#include <string>

using inngest::detail::StepMemo;

namespace {

bool is_slice_of(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_valid_json(std::string_view text) {
    FUZZ_CHECK(inngest::detail::is_valid_json(text));
    boost::system::error_code ec;
    inngest::detail::parse_json(text, ec);
    FUZZ_CHECK(!ec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A copy of exactly `size` bytes, so reading past the body is a heap overflow.
    const std::string body(inngest::fuzz::as_text(data, size));
    const auto request = inngest::detail::parse_call_request(body);
    if (!request) {
        FUZZ_CHECK(request.error().code == inngest::ErrorCode::kMalformedRequest);
        FUZZ_CHECK(!request.error().message.empty());
        return 0;
    }
    check_valid_json(body);
    FUZZ_CHECK(!request->events.empty());
    FUZZ_CHECK(request->attempt >= 0 && request->max_attempts >= 0);
    const auto keys = request->steps.keys();
    FUZZ_CHECK(keys.size() == request->steps.size());
    for (const std::string_view key : keys) {
        const StepMemo* memo = request->steps.find(key);
        FUZZ_CHECK(memo != nullptr);
        FUZZ_CHECK(is_slice_of(memo->raw, body));
        check_valid_json(memo->raw);
        if (memo->shape == StepMemo::Shape::kOther) {
            FUZZ_CHECK(memo->inner.empty());
        } else {
            FUZZ_CHECK(is_slice_of(memo->inner, memo->raw));
            check_valid_json(memo->inner);
        }
    }
    return 0;
}
