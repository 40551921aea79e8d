#include "config/settings.hpp"

#include <inngest/client.hpp>

#include <catch2/catch.hpp>

using inngest::ClientOptions;
using inngest::Environment;
using inngest::detail::resolve_settings;

TEST_CASE("settings default to cloud mode with the cloud origins", "[unit]") {
    const auto settings = resolve_settings({.app_id = "app"}, Environment::none());
    CHECK_FALSE(settings.dev);
    CHECK(settings.api_origin == "https://api.inngest.com");
    CHECK(settings.event_origin == "https://inn.gs");
}

TEST_CASE("INNGEST_DEV follows the TypeScript rules", "[unit]") {
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "1"}})).dev);
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "true"}})).dev);
    CHECK_FALSE(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "0"}})).dev);
    const auto url =
        resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "http://127.0.0.1:9999/"}}));
    CHECK(url.dev);
    CHECK(url.api_origin == "http://127.0.0.1:9999");
    CHECK(url.event_origin == "http://127.0.0.1:9999");
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "1"}})).api_origin ==
          "http://localhost:8288");
    // Any other value is the dev server's URL, http:// assumed (as the TS SDK's new URL()).
    const auto host_only =
        resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "localhost:9999"}}));
    CHECK(host_only.dev);
    CHECK(host_only.api_origin == "http://localhost:9999");
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "devbox"}})).api_origin ==
          "http://devbox");
    // No URL to be made of it, or "undefined": the mode stays unset, which is cloud.
    CHECK_FALSE(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "a b"}})).dev);
    CHECK_FALSE(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_DEV", "undefined"}})).dev);
}

TEST_CASE("ClientOptions.base_url wins over the environment's URLs, as in the TS SDK", "[unit]") {
    const Environment env({{"INNGEST_API_BASE_URL", "http://api-env:1"},
                           {"INNGEST_EVENT_API_BASE_URL", "http://events-env:2"},
                           {"INNGEST_BASE_URL", "http://base-env:3"}});
    const auto settings = resolve_settings({.app_id = "a", .base_url = "http://code:4/"}, env);
    CHECK(settings.api_origin == "http://code:4");
    CHECK(settings.event_origin == "http://code:4");
    // The specific option still beats the general one.
    CHECK(
        resolve_settings(
            {.app_id = "a", .base_url = "http://code:4", .api_base_url = "http://api-code:5"}, env)
            .api_origin == "http://api-code:5");
}

TEST_CASE("origin precedence: option > specific variable > base URL > dev URL", "[unit]") {
    const Environment env({{"INNGEST_DEV", "http://dev:1"},
                           {"INNGEST_BASE_URL", "http://base:2"},
                           {"INNGEST_EVENT_API_BASE_URL", "http://events:3"}});
    const auto from_env = resolve_settings({.app_id = "a"}, env);
    CHECK(from_env.api_origin == "http://base:2");
    CHECK(from_env.event_origin == "http://events:3");
    const auto explicit_option =
        resolve_settings({.app_id = "a", .api_base_url = "http://option:4"}, env);
    CHECK(explicit_option.api_origin == "http://option:4");
}

TEST_CASE("explicit options override the environment for keys and mode", "[unit]") {
    const Environment env({{"INNGEST_SIGNING_KEY", "signkey-prod-aaaa"},
                           {"INNGEST_EVENT_KEY", "env-key"},
                           {"INNGEST_DEV", "1"}});
    const auto settings = resolve_settings({.app_id = "a",
                                            .event_key = "option-key",
                                            .signing_key = "signkey-prod-bbbb",
                                            .dev = false},
                                           env);
    CHECK_FALSE(settings.dev);
    CHECK(settings.event_key == "option-key");
    REQUIRE(settings.signing_key);
    CHECK(settings.signing_key->hashed() ==
          inngest::detail::SigningKey::parse("signkey-prod-bbbb").hashed());
}

TEST_CASE("serve origin comes from INNGEST_SERVE_ORIGIN or the legacy INNGEST_SERVE_HOST",
          "[unit]") {
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_SERVE_HOST", "http://h:1"}}))
              .serve_origin == "http://h:1");
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_SERVE_ORIGIN", "http://o:1"},
                                                         {"INNGEST_SERVE_HOST", "http://h:1"}}))
              .serve_origin == "http://o:1");
}

TEST_CASE("invalid settings are configuration errors", "[unit]") {
    CHECK_THROWS_AS(resolve_settings({}, Environment::none()), inngest::ConfigError);
    CHECK_THROWS_AS(
        resolve_settings({.app_id = "a", .signing_key = "signkey-prod-"}, Environment::none()),
        inngest::ConfigError);
    // A key that is not hex is accepted, as the TypeScript SDK accepts it.
    CHECK_NOTHROW(resolve_settings({.app_id = "a", .signing_key = "not-hex"}, Environment::none()));
    CHECK_THROWS_AS(resolve_settings({.app_id = "a", .base_url = "ftp://x"}, Environment::none()),
                    inngest::ConfigError);
}

TEST_CASE("INNGEST_SERVE_PATH without its leading slash still names the path", "[unit]") {
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_SERVE_PATH", "api/inngest"}}))
              .serve_path == "/api/inngest");
    CHECK(resolve_settings({.app_id = "a"}, Environment({{"INNGEST_SERVE_PATH", "/x/y"}}))
              .serve_path == "/x/y");
    CHECK_FALSE(resolve_settings({.app_id = "a"}, Environment::none()).serve_path.has_value());
}
