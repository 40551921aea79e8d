// Request signatures (protocol §5): SigningKey::parse, verify_signature on X-Inngest-Signature
// and the serve handler's second try over the body's canonical (JCS) form.
//
// Input: a signing key candidate, a newline, a signature header, a newline, the body. A key is
// parsed or refused with ConfigError; a header gets one of the SignatureCheck results; a body
// we sign ourselves verifies with the key that signed it, as primary and as fallback.

#include "crypto/signing_key.hpp"
#include "fuzz_target.hpp"
#include "protocol/json_scan.hpp"
#include "protocol/json_writer.hpp"

#include <inngest/errors.hpp>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

namespace {

using inngest::detail::SignatureCheck;
using inngest::detail::SigningKey;

constexpr std::int64_t kNow = 1760000000;

const SigningKey& primary_key() {
    static const SigningKey key = SigningKey::parse(
        "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff");
    return key;
}

const std::optional<SigningKey>& fallback_key() {
    static const std::optional<SigningKey> key = SigningKey::parse(
        "signkey-prod-1c6b4a5a0f7d1f1a3b2b0c9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c");
    return key;
}

bool is_result(SignatureCheck check) {
    switch (check) {
        case SignatureCheck::kMissing:
        case SignatureCheck::kMalformed:
        case SignatureCheck::kExpired:
        case SignatureCheck::kMismatch:
        case SignatureCheck::kPrimary:
        case SignatureCheck::kFallback:
            return true;
    }
    return false;
}

// Equal JSON values, numbers within a relative 1e-15 (whatever their kind: 1.0 reads back as 1).
bool same_value(const boost::json::value& a, const boost::json::value& b) {
    if (a.is_double() && !std::isfinite(a.get_double())) {
        return b.is_null();  // a number past double reads as infinity, which JCS writes as null
    }
    if (a.is_number() && b.is_number()) {
        const double x = a.to_number<double>();
        const double y = b.to_number<double>();
        return x == y || std::fabs(x - y) <= 1e-15 * std::max(std::fabs(x), std::fabs(y));
    }
    if (a.kind() != b.kind()) {
        return false;
    }
    if (const auto* object = a.if_object()) {
        const auto& other = b.get_object();
        if (object->size() != other.size()) {
            return false;
        }
        for (const auto& entry : *object) {
            const auto* match = other.if_contains(entry.key());
            if (match == nullptr || !same_value(entry.value(), *match)) {
                return false;
            }
        }
        return true;
    }
    if (const auto* array = a.if_array()) {
        const auto& other = b.get_array();
        if (array->size() != other.size()) {
            return false;
        }
        for (std::size_t i = 0; i < array->size(); ++i) {
            if (!same_value((*array)[i], other[i])) {
                return false;
            }
        }
        return true;
    }
    return a == b;
}

// What the serve handler does with a header (serve_handler.cpp, authenticate()).
void check_header(std::string_view header, const std::string& body) {
    SignatureCheck check =
        inngest::detail::verify_signature(header, body, primary_key(), fallback_key(), kNow);
    FUZZ_CHECK(is_result(check));
    FUZZ_CHECK((check == SignatureCheck::kMissing) == header.empty());
    const SignatureCheck without_fallback =
        inngest::detail::verify_signature(header, body, primary_key(), std::nullopt, kNow);
    FUZZ_CHECK(without_fallback != SignatureCheck::kFallback);
    FUZZ_CHECK(check == SignatureCheck::kFallback ? without_fallback == SignatureCheck::kMismatch
                                                  : without_fallback == check);
    if (check == SignatureCheck::kMismatch && !body.empty()) {
        boost::system::error_code ec;
        const boost::json::value parsed = boost::json::parse(body, ec);
        if (!ec) {
            const std::string canonical = inngest::detail::to_canonical_json(parsed);
            // JCS output is JSON that reads back as the same value. Numbers may move by an
            // ulp: Boost.JSON 1.81 does not round every decimal correctly, so reading the
            // shortest form back can give the neighbouring double.
            FUZZ_CHECK(inngest::detail::is_valid_json(canonical));
            const boost::json::value reparsed = boost::json::parse(canonical, ec);
            FUZZ_CHECK(!ec);
            FUZZ_CHECK(same_value(parsed, reparsed));
            check = inngest::detail::verify_signature(header, canonical, primary_key(),
                                                      fallback_key(), kNow);
            FUZZ_CHECK(is_result(check));
        }
    }
}

// A key from the input: refused with ConfigError, or usable for signing and verifying.
void check_key(std::string_view raw, const std::string& body) {
    std::optional<SigningKey> key;
    try {
        key = SigningKey::parse(raw);
    } catch (const inngest::ConfigError&) {
        return;
    }
    FUZZ_CHECK(!key->hashed().empty());
    const std::string header = inngest::detail::sign_body(*key, body, kNow);
    FUZZ_CHECK(inngest::detail::verify_signature(header, body, *key, std::nullopt, kNow) ==
               SignatureCheck::kPrimary);
    const SignatureCheck as_fallback =
        inngest::detail::verify_signature(header, body, primary_key(), key, kNow);
    FUZZ_CHECK(as_fallback == SignatureCheck::kPrimary || as_fallback == SignatureCheck::kFallback);
    FUZZ_CHECK(inngest::detail::verify_signature(header, body, *key, std::nullopt, kNow + 6 * 60) ==
               SignatureCheck::kExpired);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view key_text;
    std::string_view rest;
    std::string_view header;
    std::string_view body_text;
    inngest::fuzz::split_once(inngest::fuzz::as_text(data, size), '\n', key_text, rest);
    inngest::fuzz::split_once(rest, '\n', header, body_text);
    const std::string body(body_text);
    check_key(std::string(key_text), body);
    check_header(std::string(header), body);
    return 0;
}
