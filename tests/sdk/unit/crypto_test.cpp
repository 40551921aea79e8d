#include "crypto/crypto.hpp"

#include "crypto/signing_key.hpp"

#include <inngest/errors.hpp>

#include <catch2/catch.hpp>

#include <sstream>

using inngest::detail::SignatureCheck;
using inngest::detail::SigningKey;
namespace crypto = inngest::detail::crypto;

TEST_CASE("step ids hash to the protocol's SHA-1 vectors", "[unit]") {
    CHECK(crypto::sha1_hex("my-step-id") == "e7d8a2f140845095749d60246ff1110c9d01d76a");
    CHECK(crypto::sha1_hex("my-step-id:1") == "f47c6228c581af870aa285200cf95ec3ac59bb6a");
    CHECK(crypto::sha1_hex("first step") == "98bf98df193bcce7c33e6bc50927cf2ac21206cb");
    CHECK(crypto::sha1_hex("sleep") == "c3ca5f787365eae0dea86250e27d476406956478");
    CHECK(crypto::sha1_hex("second step") == "764e20ec975d4ef820d0f42e6a5833384bd7ee36");
    CHECK(crypto::sha1_hex("wait") == "daaad336276d15594d0e765f96c17cd746bf4971");
}

TEST_CASE("hashed signing keys match the protocol's test vectors", "[unit]") {
    CHECK(SigningKey::parse("signkey-prod-12345678").hashed() ==
          "signkey-prod-b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c");
    CHECK(SigningKey::parse("7468697320697320612074657374206b6579").hashed() ==
          "ed30c63423735b44011c49a38c01a8062833420cfb299072e0263c986242556a");
}

TEST_CASE("a signing key that is not hex is a configuration error", "[unit]") {
    CHECK_THROWS_AS(SigningKey::parse("signkey-prod-xyz"), inngest::ConfigError);
    CHECK_THROWS_AS(SigningKey::parse("abc"), inngest::ConfigError);
    CHECK_THROWS_AS(SigningKey::parse(""), inngest::ConfigError);
}

TEST_CASE("a signing key never prints itself", "[unit]") {
    const std::string raw = "signkey-test-7468697320697320612074657374206b6579";
    std::ostringstream out;
    out << SigningKey::parse(raw);
    CHECK(out.str().find("7468697320697320612074657374206b6579") == std::string::npos);
    CHECK(out.str().rfind("signkey:", 0) == 0);
}

TEST_CASE("signature verification follows the protocol vector and window", "[unit]") {
    const auto key = SigningKey::parse("7468697320697320612074657374206b6579");
    const auto prefixed = SigningKey::parse("signkey-test-7468697320697320612074657374206b6579");
    const std::string body = R"({"url":"http://x"})";
    const std::string expected = "3c39c7af2e35a55f140b0f40e37ccf19a7b1823cd7db9371cae1ac25b4d8ade2";
    CHECK(key.mac(body, "1700000000") == expected);
    CHECK(prefixed.mac(body, "1700000000") == expected);

    const std::string header = "t=1700000000&s=" + expected;
    CHECK(inngest::detail::verify_signature(header, body, key, std::nullopt, 1700000000) ==
          SignatureCheck::kPrimary);
    CHECK(inngest::detail::verify_signature(header, body, key, std::nullopt, 1700000000 + 299) ==
          SignatureCheck::kPrimary);
    CHECK(inngest::detail::verify_signature(header, body, key, std::nullopt, 1700000000 + 301) ==
          SignatureCheck::kExpired);
    CHECK(inngest::detail::verify_signature(header, body, key, std::nullopt, 1700000000 - 301) ==
          SignatureCheck::kExpired);
    CHECK(inngest::detail::verify_signature(header, body + " ", key, std::nullopt, 1700000000) ==
          SignatureCheck::kMismatch);
    CHECK(inngest::detail::verify_signature("", body, key, std::nullopt, 1700000000) ==
          SignatureCheck::kMissing);
    for (const char* garbage : {"garbage", "t=&s=", "t=abc&s=00", "s=00", "t=1700000000",
                                "t=1700000000&s=", "&&&", "t=17e8&s=ab"}) {
        CAPTURE(garbage);
        CHECK(inngest::detail::verify_signature(garbage, body, key, std::nullopt, 1700000000) ==
              SignatureCheck::kMalformed);
    }
}

TEST_CASE("the fallback key verifies during rotation", "[unit]") {
    const auto old_key = SigningKey::parse("signkey-prod-aabbccdd");
    const auto new_key = SigningKey::parse("signkey-prod-11223344");
    const std::string body = "{}";
    const std::string header = inngest::detail::sign_body(old_key, body, 1700000000);
    CHECK(inngest::detail::verify_signature(header, body, new_key, old_key, 1700000000) ==
          SignatureCheck::kFallback);
    CHECK(inngest::detail::verify_signature(header, body, new_key, std::nullopt, 1700000000) ==
          SignatureCheck::kMismatch);
}

TEST_CASE("constant-time comparison compares whole strings", "[unit]") {
    CHECK(crypto::constant_time_equal("abc", "abc"));
    CHECK_FALSE(crypto::constant_time_equal("abc", "abd"));
    CHECK_FALSE(crypto::constant_time_equal("abc", "abcd"));
    CHECK(crypto::constant_time_equal("", ""));
}
