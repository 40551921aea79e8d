#include "crypto/signing_key.hpp"
#include "protocol/json_writer.hpp"
#include "support/call_builder.hpp"
#include "support/fake_inngest_api.hpp"

#include <inngest/client.hpp>
#include <inngest/serve.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

namespace json = boost::json;

namespace {

constexpr const char* kKey = "signkey-test-7468697320697320612074657374206b6579";
constexpr const char* kEventKey = "event-key-secret-123";

std::int64_t now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void sign(inngest::HttpRequest& request, const char* key = kKey, std::int64_t at = now()) {
    request.headers.emplace_back(
        "X-Inngest-Signature",
        inngest::detail::sign_body(inngest::detail::SigningKey::parse(key), request.body, at));
}

struct Logs {
    inngest::LogSink sink() {
        return [this](inngest::LogLevel, std::string_view line) {
            lines.emplace_back(line);
        };
    }
    bool mention(std::string_view needle) const {
        for (const auto& line : lines) {
            if (line.find(needle) != std::string::npos) {
                return true;
            }
        }
        return false;
    }
    std::vector<std::string> lines;
};

std::unique_ptr<inngest::Client> make_client(bool dev,
                                             Logs& logs,
                                             std::string api = "http://127.0.0.1:9") {
    auto client = std::make_unique<inngest::Client>(inngest::ClientOptions{.app_id = "app",
                                                                           .event_key = kEventKey,
                                                                           .signing_key = kKey,
                                                                           .dev = dev,
                                                                           .base_url = api,
                                                                           .log_sink = logs.sink()},
                                                    inngest::Environment::none());
    client->create_function({.id = "fn", .triggers = {inngest::EventTrigger{"x"}}},
                            [](inngest::Context&) { return json::value("ran"); });
    return client;
}

inngest::HttpRequest get() {
    return {"GET", "/api/inngest", "", {{"Host", "127.0.0.1:3000"}}, ""};
}

void expect_no_secret(const inngest::HttpResponse& response) {
    CHECK(response.body.find("7468697320697320612074657374206b6579") == std::string::npos);
    CHECK(response.body.find(kEventKey) == std::string::npos);
    for (const auto& [name, value] : response.headers) {
        CHECK(value.find("7468697320697320612074657374206b6579") == std::string::npos);
    }
}

}  // namespace

TEST_CASE("numbers are written the way JavaScript writes them", "[unit]") {
    const auto text = [](double d) {
        std::string out;
        inngest::detail::write_number(out, d);
        return out;
    };
    CHECK(text(1234.5) == "1234.5");
    CHECK(text(2.5) == "2.5");
    CHECK(text(3.0) == "3");
    CHECK(text(-0.0) == "0");
    CHECK(text(0.1) == "0.1");
    CHECK(text(1e21) == "1e+21");
    CHECK(text(1e20) == "100000000000000000000");
    CHECK(text(1.5e-7) == "1.5e-7");
    CHECK(text(0.000001) == "0.000001");
    CHECK(text(-123.456) == "-123.456");
    CHECK(
        inngest::detail::to_json(json::parse(R"({"b":"\"\\\t\n\u0001","a":[1,2.5,null,true]})")) ==
        R"({"b":"\"\\\t\n\u0001","a":[1,2.5,null,true]})");
    CHECK(inngest::detail::to_json(json::value("名字")) == "\"名字\"");
}

TEST_CASE("dev-mode introspection is unauthenticated and reveals no secrets", "[unit]") {
    Logs logs;
    auto client_owner = make_client(true, logs);
    auto& client = *client_owner;
    const auto response = inngest::ServeHandler(client).handle(get());
    REQUIRE(response.status == 200);
    const auto body = json::parse(response.body);
    CHECK(body.at("schema_version") == "2024-05-24");
    CHECK(body.at("mode") == "dev");
    CHECK(body.at("function_count") == 1);
    CHECK(body.at("has_event_key") == true);
    CHECK(body.at("has_signing_key") == true);
    CHECK(body.at("has_signing_key_fallback") == false);
    CHECK(body.at("authentication_succeeded").is_null());
    CHECK_FALSE(body.as_object().contains("app_id"));
    expect_no_secret(response);
}

TEST_CASE("signed introspection adds the authenticated fields, hashes only", "[unit]") {
    Logs logs;
    auto client_owner = make_client(false, logs);
    auto& client = *client_owner;
    auto request = get();
    sign(request);
    const auto response = inngest::ServeHandler(client).handle(request);
    REQUIRE(response.status == 200);
    const auto body = json::parse(response.body);
    CHECK(body.at("authentication_succeeded") == true);
    CHECK(body.at("mode") == "cloud");
    CHECK(body.at("app_id") == "app");
    CHECK(body.at("sdk_language") == "cpp");
    // As the TS SDK: 12 hex digits of the hashed key, never the bearer value itself.
    const std::string hashed = inngest::detail::SigningKey::parse(kKey).hashed();
    const std::string hex = hashed.substr(hashed.rfind('-') + 1);
    CHECK(body.at("signing_key_hash") == json::value(hex.substr(0, 12)));
    CHECK(response.body.find(hex) == std::string::npos);
    CHECK(body.at("capabilities") == json::parse(R"({"in_band_sync":"v1","trust_probe":"v1"})"));
    CHECK_FALSE(response.header("X-Inngest-Signature").empty());
    expect_no_secret(response);
}

TEST_CASE("cloud mode rejects unsigned, expired, tampered and foreign-key requests", "[unit]") {
    Logs logs;
    auto client_owner = make_client(false, logs);
    auto& client = *client_owner;
    const inngest::ServeHandler handler(client);
    inngest_test::CallBuilder call;
    call.fn_slug = "app-fn";

    std::vector<inngest::HttpRequest> bad;
    bad.push_back(call.request());  // unsigned
    auto expired = call.request();
    sign(expired, kKey, now() - 3600);
    bad.push_back(expired);
    auto tampered = call.request();
    sign(tampered);
    // Whitespace-only changes still verify through the JCS fallback; content changes must not.
    tampered.body.replace(tampered.body.find("test/event"), 10, "test/evil!");
    bad.push_back(tampered);
    auto foreign = call.request();
    sign(foreign, "signkey-test-00112233");
    bad.push_back(foreign);
    auto garbage = call.request();
    garbage.headers.emplace_back("X-Inngest-Signature", "garbage");
    bad.push_back(garbage);
    bad.push_back(get());
    for (const auto& request : bad) {
        const auto response = handler.handle(request);
        CHECK(response.status == 401);
        CHECK(response.body == R"({"code":"unauthorized","message":"Unauthorized"})");
        CHECK(response.header("X-Inngest-SDK").empty());
    }
    CHECK(logs.mention("signature"));

    auto good = call.request();
    sign(good);
    const auto response = handler.handle(good);
    CHECK(response.status == 200);
    CHECK(response.body == R"("ran")");
    CHECK_FALSE(response.header("X-Inngest-Signature").empty());
}

TEST_CASE("cloud mode without a signing key refuses to serve", "[unit]") {
    Logs logs;
    inngest::Client client({.app_id = "app", .dev = false, .log_sink = logs.sink()},
                           inngest::Environment::none());
    const auto response = inngest::ServeHandler(client).handle(get());
    CHECK(response.status == 500);
    CHECK(json::parse(response.body).at("code") == "missing_signing_key");
}

TEST_CASE("bad requests get precise 4xx JSON errors and a log line", "[unit]") {
    Logs logs;
    auto client_owner = make_client(true, logs);
    auto& client = *client_owner;
    const inngest::ServeHandler handler(client, {.max_body_bytes = 1024});
    const auto code_of = [](const inngest::HttpResponse& r) {
        return std::string(json::parse(r.body).at("code").as_string());
    };

    inngest_test::CallBuilder call;
    call.fn_slug = "app-missing";
    auto unknown = handler.handle(call.request());
    CHECK(unknown.status == 404);
    CHECK(code_of(unknown) == "unknown_function");

    call.fn_slug = "app-fn";
    auto malformed = call.request();
    malformed.body = "{not json";
    auto response = handler.handle(malformed);
    CHECK(response.status == 400);
    CHECK(code_of(response) == "malformed_request");
    CHECK(response.header("X-Inngest-No-Retry") == "true");

    auto huge = call.request();
    huge.body = std::string(2048, ' ');
    response = handler.handle(huge);
    CHECK(response.status == 413);
    CHECK(code_of(response) == "body_too_large");

    response = handler.handle({"PATCH", "/api/inngest", "", {}, ""});
    CHECK(response.status == 405);
    CHECK(code_of(response) == "method_not_allowed");

    response = handler.handle({"POST", "/api/inngest", "", {}, "{}"});
    CHECK(response.status == 400);

    response = handler.handle({"POST", "/api/inngest", "probe=trust", {}, ""});
    CHECK(response.status == 200);
    response = handler.handle({"POST", "/api/inngest", "probe=other", {}, ""});
    CHECK(response.status == 400);
    CHECK(logs.lines.size() >= 5);
}

TEST_CASE("a bare function id is accepted as well as the composite one", "[unit]") {
    Logs logs;
    auto client_owner = make_client(true, logs);
    auto& client = *client_owner;
    inngest_test::CallBuilder call;
    call.fn_slug = "fn";
    CHECK(inngest::ServeHandler(client).handle(call.request()).status == 200);
}

TEST_CASE("in dev mode an unsigned in-band sync is answered in-band, as the TS SDK does",
          "[unit]") {
    Logs logs;
    auto client_owner = make_client(true, logs);
    auto& client = *client_owner;
    const inngest::HttpRequest request{"PUT",
                                       "/api/inngest",
                                       "",
                                       {{"Content-Type", "application/json"},
                                        {"Host", "127.0.0.1:4000"},
                                        {"X-Inngest-Sync-Kind", "in_band"}},
                                       R"({"url":"http://127.0.0.1:4000/api/inngest"})"};
    const auto response = inngest::ServeHandler(client).handle(request);
    REQUIRE(response.status == 200);
    CHECK(response.header("X-Inngest-Sync-Kind") == "in_band");
    const auto body = json::parse(response.body);
    CHECK(body.at("functions").as_array().size() == 1);
    // Unverified: the inspection carries no authenticated fields.
    CHECK_FALSE(body.at("inspection").as_object().contains("signing_key_hash"));
    expect_no_secret(response);
}

TEST_CASE("in-band sync answers with the function configs when signed", "[unit]") {
    Logs logs;
    auto client_owner = make_client(true, logs);
    auto& client = *client_owner;
    inngest::HttpRequest request{"PUT",
                                 "/api/inngest",
                                 "",
                                 {{"Content-Type", "application/json"},
                                  {"X-Inngest-Sync-Kind", "in_band"},
                                  {"X-Inngest-Server-Kind", "dev"}},
                                 R"({"url":"http://127.0.0.1:4000/api/inngest"})"};
    sign(request);
    const auto response = inngest::ServeHandler(client).handle(request);
    REQUIRE(response.status == 200);
    CHECK(response.header("X-Inngest-Sync-Kind") == "in_band");
    const auto body = json::parse(response.body);
    CHECK(body.at("app_id") == "app");
    CHECK(body.at("url") == "http://127.0.0.1:4000/api/inngest");
    // As the TS SDK: the language before the colon in a sync's `sdk`, the SDK's name in headers.
    CHECK(body.at("sdk") == "cpp:v0.1.0");
    CHECK(body.at("sdk_language") == "cpp");
    CHECK(response.header("X-Inngest-SDK") == "inngest-cpp:v0.1.0");
    const auto& functions = body.at("functions").as_array();
    REQUIRE(functions.size() == 1);
    CHECK(functions[0].at("steps").at("step").at("runtime").at("url") ==
          "http://127.0.0.1:4000/api/inngest?fnId=app-fn&stepId=step");
    CHECK(body.at("inspection").at("authentication_succeeded") == true);
    expect_no_secret(response);
}

TEST_CASE("out-of-band sync registers with the server's API", "[unit]") {
    inngest_test::FakeInngestApi api;
    Logs logs;
    auto client_owner = make_client(true, logs, api.origin());
    auto& client = *client_owner;
    const inngest::ServeHandler handler(client);
    inngest::HttpRequest request{"PUT",
                                 "/api/inngest",
                                 "deployId=d-1",
                                 {{"Host", "127.0.0.1:3000"}, {"X-Inngest-Server-Kind", "dev"}},
                                 ""};
    auto response = handler.handle(request);
    REQUIRE(response.status == 200);
    CHECK(json::parse(response.body) ==
          json::parse(R"({"message":"Successfully synced.","modified":true})"));
    CHECK(response.header("X-Inngest-Sync-Kind") == "out_of_band");

    const auto requests = api.requests();
    REQUIRE(requests.size() == 1);
    const auto& reg = requests[0];
    CHECK(reg.path == "/fn/register");
    CHECK(reg.query == "deployId=d-1");
    CHECK(reg.header("Authorization") ==
          "Bearer " + inngest::detail::SigningKey::parse(kKey).hashed());
    CHECK(reg.header("X-Inngest-Expected-Server-Kind") == "dev");
    const auto payload = json::parse(reg.body);
    CHECK(payload.at("url") == "http://127.0.0.1:3000/api/inngest");
    CHECK(payload.at("deployType") == "ping");
    CHECK(payload.at("appName") == "app");
    CHECK(payload.at("v") == "0.1");
    CHECK(payload.at("sdk") == "cpp:v0.1.0");
    CHECK(reg.header("X-Inngest-SDK") == "inngest-cpp:v0.1.0");
    CHECK(payload.at("functions").as_array().size() == 1);
    CHECK(reg.body.find("7468697320697320612074657374206b6579") == std::string::npos);

    api.set_register_status(400);
    response = handler.handle(request);
    CHECK(response.status == 500);
    CHECK(json::parse(response.body).at("modified") == false);
    CHECK(json::parse(response.body).at("message").as_string().find("rejected by the fake") !=
          json::string::npos);
}

TEST_CASE("INNGEST_ENABLE_UNAUTHED_SYNC=false refuses an unsigned sync in cloud mode", "[unit]") {
    inngest_test::FakeInngestApi api;
    Logs logs;
    const auto make = [&](inngest::Environment environment) {
        auto client =
            std::make_unique<inngest::Client>(inngest::ClientOptions{.app_id = "app",
                                                                     .signing_key = kKey,
                                                                     .dev = false,
                                                                     .base_url = api.origin(),
                                                                     .log_sink = logs.sink()},
                                              std::move(environment));
        client->create_function({.id = "fn", .triggers = {inngest::EventTrigger{"x"}}},
                                [](inngest::Context&) { return json::value("ran"); });
        return client;
    };
    inngest::HttpRequest unsigned_put{
        "PUT", "/api/inngest", "", {{"Host", "attacker.example:3000"}}, ""};

    const auto refusing = make(inngest::Environment({{"INNGEST_ENABLE_UNAUTHED_SYNC", "false"}}));
    const auto refused = inngest::ServeHandler(*refusing).handle(unsigned_put);
    CHECK(refused.status == 401);
    CHECK(json::parse(refused.body).at("code") == "unauthorized");
    CHECK(api.requests().empty());  // nothing registered, no URL taken from the Host header

    // A signed ping still syncs.
    auto signed_put = unsigned_put;
    signed_put.body = R"({"url":"https://app.example.com/api/inngest"})";
    sign(signed_put);
    CHECK(inngest::ServeHandler(*refusing).handle(signed_put).status == 200);
    CHECK(api.requests().size() == 1);

    // The client option says the same, and wins over the variable.
    auto options = inngest::ClientOptions{.app_id = "app",
                                          .signing_key = kKey,
                                          .dev = false,
                                          .base_url = api.origin(),
                                          .log_sink = logs.sink()};
    options.enable_unauthed_sync = false;
    const inngest::Client by_option(
        options, inngest::Environment({{"INNGEST_ENABLE_UNAUTHED_SYNC", "true"}}));
    CHECK(inngest::ServeHandler(by_option).handle(unsigned_put).status == 401);
    CHECK(api.requests().size() == 1);

    // Unset it stays allowed, as in the TS SDK.
    const auto allowing = make(inngest::Environment::none());
    CHECK(inngest::ServeHandler(*allowing).handle(unsigned_put).status == 200);
    CHECK(api.requests().size() == 2);
}

TEST_CASE("a sync's deployId is sent on to /fn/register percent-encoded again", "[unit]") {
    inngest_test::FakeInngestApi api;
    Logs logs;
    auto client_owner = make_client(true, logs, api.origin());
    const inngest::ServeHandler handler(*client_owner);
    const inngest::HttpRequest request{
        "PUT", "/api/inngest", "deployId=a%26b%3Dc%20d%2Be", {{"Host", "127.0.0.1:3000"}}, ""};
    REQUIRE(handler.handle(request).status == 200);
    const auto requests = api.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].query == "deployId=a%26b%3Dc%20d%2Be");
}

TEST_CASE("a use_api call loads events and step state from the API", "[unit]") {
    inngest_test::FakeInngestApi api;
    Logs logs;
    auto client_owner = make_client(true, logs, api.origin());
    auto& client = *client_owner;
    client.create_function(
        {.id = "big", .triggers = {inngest::EventTrigger{"big"}}}, [](inngest::Context& ctx) {
            const std::string a = ctx.step.run("a", [] { return std::string("x"); });
            return json::object{
                {"a", a}, {"events", ctx.events.size()}, {"marker", ctx.event.data.at("marker")}};
        });
    const std::string run_id = "01JUSEAPIRUN00000000000000";
    api.set_run_state(run_id,
                      R"([{"name":"big","data":{"marker":7}},{"name":"big","data":{"marker":8}}])",
                      R"({")" + inngest_test::step_hash("a") + R"(":{"data":"from-api"}})");
    inngest_test::CallBuilder call;
    call.fn_slug = "app-big";
    call.run_id = run_id;
    auto request = call.request();
    // What the executor sends when the state is too large: no events, no steps, use_api set.
    request.body =
        R"({"ctx":{"run_id":")" + run_id +
        R"(","attempt":0,"use_api":true,"stack":{"stack":[]}},"event":{"name":"big","data":{"marker":7}},"events":[],"steps":{},"use_api":true,"version":2})";
    const auto response = inngest::ServeHandler(client).handle(request);
    REQUIRE(response.status == 200);
    CHECK(json::parse(response.body) == json::parse(R"({"a":"from-api","events":2,"marker":7})"));
    const auto requests = api.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].path == "/v0/runs/" + run_id + "/batch");
    CHECK(requests[1].path == "/v0/runs/" + run_id + "/actions");
    CHECK(requests[0].header("Authorization") ==
          "Bearer " + inngest::detail::SigningKey::parse(kKey).hashed());

    call.run_id = "01JGONE00000000000000000000";
    request.body =
        R"({"ctx":{"run_id":"01JGONE00000000000000000000","use_api":true},"event":{"name":"big"},"use_api":true})";
    const auto gone = inngest::ServeHandler(client).handle(request);
    CHECK(gone.status == 502);
    CHECK(json::parse(gone.body).at("message").as_string().find("410") != json::string::npos);
}

TEST_CASE("JCS output sorts keys by UTF-16 code units and writes numbers as ECMAScript", "[unit]") {
    CHECK(
        inngest::detail::to_canonical_json(json::parse(
            R"({"b":1,"a":{"z":[3.0,1e21,0.5],"y":"<&>"},"\u00e9":true,"\ud83d\ude00":0,"\uffff":1})")) ==
        "{\"a\":{\"y\":\"<&>\",\"z\":[3,1e+21,0.5]},\"b\":1,\"\u00e9\":true,"
        "\"\U0001F600\":0,\"\uffff\":1}");
}

TEST_CASE("a signature over the JCS form verifies when the body was sent differently", "[unit]") {
    Logs logs;
    auto client_owner = make_client(false, logs);
    auto& client = *client_owner;
    inngest::HttpRequest request{"PUT",
                                 "/api/inngest",
                                 "",
                                 {{"X-Inngest-Sync-Kind", "in_band"}},
                                 R"({ "url" : "http://127.0.0.1:4000/api/inngest?a=1\u0026b=2" })"};
    const std::string canonical = R"({"url":"http://127.0.0.1:4000/api/inngest?a=1&b=2"})";
    request.headers.emplace_back(
        "X-Inngest-Signature",
        inngest::detail::sign_body(inngest::detail::SigningKey::parse(kKey), canonical, now()));
    const auto response = inngest::ServeHandler(client).handle(request);
    CHECK(response.status == 200);
    CHECK(response.header("X-Inngest-Sync-Kind") == "in_band");
}
