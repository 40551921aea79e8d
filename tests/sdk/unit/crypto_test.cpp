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

TEST_CASE("a signing key that is not hex is hashed as the TypeScript SDK hashes it", "[unit]") {
    // Expected values from inngest-js 4.24's hashSigningKey (hash.js, hex input), run in node.
    CHECK(SigningKey::parse("signkey-prod-xyz").hashed() ==
          "signkey-prod-96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7");
    CHECK(SigningKey::parse("abc").hashed() ==
          "1870348e36542f82a2bb6b134f9bda817cbc1f946dda37a0cce5b5221b9f0304");
    CHECK(SigningKey::parse("ab-cd").hashed() ==
          "123d4c7ef2d1600a1b3a0f6addc60a10f05a3495c9409f2ecbf4cc095d000a6b");
    CHECK(SigningKey::parse("1z2y").hashed() ==
          "a12871fee210fb8619291eaea194581cbd2531e4b23759d225f6806923f63222");
    CHECK(SigningKey::parse("z1").hashed() ==
          "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    CHECK(SigningKey::parse("ABCDEF").hashed() ==
          "995da3cf545787d65f9ced52674e92ee8171c87c7a4008aa4349ec47d21609a7");
    CHECK(SigningKey::parse("signkey-test-h\xc3\xa9llo w\xc3\xb6rld").hashed() ==
          "signkey-test-df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119");
    // Signing uses the key's text as it is, as that SDK's HMAC does.
    const auto odd = SigningKey::parse("signkey-prod-not hex");
    const auto same_text = SigningKey::parse("not hex");
    CHECK(odd.mac("{}", "1700000000") == same_text.mac("{}", "1700000000"));
    CHECK(odd.mac("{}", "1700000000") !=
          SigningKey::parse("signkey-prod-nothex").mac("{}", "1700000000"));
    // Only an empty key is refused.
    CHECK_THROWS_AS(SigningKey::parse(""), inngest::ConfigError);
    CHECK_THROWS_AS(SigningKey::parse("signkey-prod-"), inngest::ConfigError);
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
