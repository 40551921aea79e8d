// Secrets never leave the process: not in responses, not in logs, not in what the SDK sends to
// the Inngest API (apart from the hashed key in Authorization).

#include "crypto/signing_key.hpp"
#include "support/call_builder.hpp"
#include "support/fake_inngest_api.hpp"

#include <inngest/inngest.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>

namespace json = boost::json;

namespace {

constexpr const char* kKeyHex = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
constexpr const char* kFallbackHex = "ffeeddccbbaa99887766554433221100";
constexpr const char* kEventKey = "event-key-Xq7Lm2Np9";
constexpr const char* kCanary = "canary-Zq83Xv0Lr5";

std::int64_t now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST_CASE("no response, log line or API request of a run contains a secret", "[unit]") {
    inngest_test::FakeInngestApi api;
    std::mutex mutex;
    std::vector<std::string> captured;  // everything that leaves the SDK
    const auto capture = [&](std::string text) {
        const std::lock_guard lock(mutex);
        captured.push_back(std::move(text));
    };
    const std::string key = std::string("signkey-prod-") + kKeyHex;
    const std::string fallback = std::string("signkey-prod-") + kFallbackHex;
    inngest::Client client({.app_id = "app",
                            .event_key = kEventKey,
                            .signing_key = key,
                            .signing_key_fallback = fallback,
                            .dev = false,
                            .base_url = api.origin(),
                            .log_sink =
                                [&](inngest::LogLevel, std::string_view line) {
                                    capture(std::string(line));
                                }},
                           inngest::Environment({{"CONFORMANCE_CANARY", kCanary}}));
    client.create_function({.id = "leaky", .triggers = {inngest::EventTrigger{"x"}}},
                           [](inngest::Context& ctx) -> json::value {
                               ctx.log.info("starting");
                               ctx.step.send_event("notify", inngest::Event{.name = "y/z"});
                               throw inngest::NonRetriableError("failed on purpose");
                           });
    const inngest::ServeHandler handler(client);
    const auto call = [&](inngest::HttpRequest request, const std::string& signing = "") {
        if (!signing.empty()) {
            request.headers.emplace_back(
                "X-Inngest-Signature",
                inngest::detail::sign_body(inngest::detail::SigningKey::parse(signing),
                                           request.body, now()));
        }
        const auto response = handler.handle(request);
        std::string text = std::to_string(response.status) + " " + response.body;
        for (const auto& [name, value] : response.headers) {
            text += "\n" + name + ": " + value;
        }
        capture(text);
        return response;
    };

    inngest_test::CallBuilder run;
    run.fn_slug = "app-leaky";
    CHECK(call(run.request(), key).status == 206);  // send_event step
    run.data("notify", json::object{{"ids", json::array{"e1"}}});
    CHECK(call(run.request(), fallback).status == 400);           // non-retriable failure
    CHECK(call(run.request()).status == 401);                     // unsigned
    CHECK(call(run.request(), "signkey-prod-00").status == 401);  // wrong key
    CHECK(call({"GET", "/api/inngest", "", {}, ""}, key).status == 200);
    CHECK(call({"GET", "/api/inngest", "", {}, ""}).status == 401);
    CHECK(call({"PUT",
                "/api/inngest",
                "",
                {{"X-Inngest-Sync-Kind", "in_band"}},
                R"({"url":"http://127.0.0.1:1/api/inngest"})"},
               key)
              .status == 200);
    CHECK(call({"PUT", "/api/inngest", "", {{"Host", "127.0.0.1:1"}}, ""}, key).status == 200);
    api.set_register_status(401);
    CHECK(call({"PUT", "/api/inngest", "", {{"Host", "127.0.0.1:1"}}, ""}, key).status == 500);
    CHECK(call({"POST", "/api/inngest", "fnId=nope", {}, "{}"}, key).status == 404);

    for (const auto& request : api.requests()) {
        // The event key belongs in the event API's path (protocol §12), and only there.
        const bool event_send = request.path.starts_with("/e/");
        if (event_send) {
            CHECK(request.path == std::string("/e/") + kEventKey);
        }
        std::string text = request.method + " " + (event_send ? "/e/<key>" : request.path) + "?" +
                           request.query + " " + request.body;
        for (const auto& [name, value] : request.headers) {
            if (name != "Authorization") {
                text += "\n" + name + ": " + value;
            } else {
                // Only the hashed key goes on the wire.
                CHECK(value.find(kKeyHex) == std::string::npos);
                CHECK(value.find(kFallbackHex) == std::string::npos);
            }
        }
        capture(text);
    }
    REQUIRE(captured.size() > 15);
    for (const auto& text : captured) {
        CAPTURE(text);
        CHECK(text.find(kKeyHex) == std::string::npos);
        CHECK(text.find(kFallbackHex) == std::string::npos);
        CHECK(text.find(kEventKey) == std::string::npos);
        CHECK(text.find(kCanary) == std::string::npos);
    }
}
