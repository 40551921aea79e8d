// The SDK's JSON skip-scanner against Boost.JSON: json_scan.hpp promises to accept exactly what
// boost::json::parse accepts with json_parse_options() (default options, kMaxJsonDepth levels).
//
// Checked for any input: is_valid_json agrees with boost::json::parse; a value the scanner
// reads at some nesting depth is still valid when wrapped in that many arrays; each string token
// it reads decodes (decode_json_string) to what Boost.JSON makes of the same token.

#include "protocol/json_scan.hpp"

#include "fuzz_target.hpp"

#include <boost/json/parse.hpp>

#include <string>

namespace {

using inngest::detail::JsonScanner;

bool boost_accepts(std::string_view text) {
    boost::system::error_code ec;
    inngest::detail::parse_json(text, ec);
    return !ec;
}

// The first value in `text` (at nesting `depth`), when the scanner reads one.
void check_value_at_depth(std::string_view text, int depth) {
    JsonScanner scanner(text);
    std::string_view raw;
    if (!scanner.value(raw, depth)) {
        return;
    }
    FUZZ_CHECK(raw.data() >= text.data() && raw.data() + raw.size() <= text.data() + text.size());
    FUZZ_CHECK(scanner.position() == raw.data() + raw.size());
    const std::string wrapped = std::string(static_cast<std::size_t>(depth), '[') +
                                std::string(raw) +
                                std::string(static_cast<std::size_t>(depth), ']');
    FUZZ_CHECK(inngest::detail::is_valid_json(wrapped));
    FUZZ_CHECK(boost_accepts(wrapped));
}

// Every string token that starts at a quote of `text` (the first few dozen quotes).
void check_strings(std::string_view text) {
    constexpr int kMaxQuotes = 48;
    int quotes = 0;
    for (std::size_t at = text.find('"'); at != std::string_view::npos && quotes < kMaxQuotes;
         at = text.find('"', at + 1), ++quotes) {
        JsonScanner scanner(text.substr(at));
        std::string_view raw;
        bool escaped = false;
        if (!scanner.string(raw, escaped)) {
            continue;
        }
        FUZZ_CHECK(raw.size() >= 2 && raw.front() == '"' && raw.back() == '"');
        FUZZ_CHECK(escaped == (raw.find('\\') != std::string_view::npos));
        std::string decoded;
        inngest::detail::decode_json_string(raw, decoded);
        boost::system::error_code ec;
        const boost::json::value parsed = boost::json::parse(raw, ec);
        FUZZ_CHECK(!ec && parsed.is_string());
        FUZZ_CHECK(decoded == std::string_view(parsed.get_string()));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(inngest::fuzz::as_text(data, size));
    FUZZ_CHECK(inngest::detail::is_valid_json(text) == boost_accepts(text));
    for (const int depth : {0, 1, inngest::detail::kMaxJsonDepth - 1}) {
        check_value_at_depth(text, depth);
    }
    check_strings(text);
    return 0;
}
