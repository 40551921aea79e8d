#include "support/fake_inngest_api.hpp"

#include <inngest/client.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

namespace json = boost::json;

namespace {

std::unique_ptr<inngest::Client> client_for(const inngest_test::FakeInngestApi& api,
                                            std::vector<std::string>& logs) {
    return std::make_unique<inngest::Client>(
        inngest::ClientOptions{.app_id = "app",
                               .event_key = "evt-key-9f8e7d",
                               .dev = true,
                               .base_url = api.origin(),
                               .env = "branch-1",
                               .log_sink =
                                   [&logs](auto, std::string_view line) {
                                       logs.emplace_back(line);
                                   }},
        inngest::Environment::none());
}

}  // namespace

TEST_CASE("send posts events to /e/{key} and returns the assigned ids", "[unit]") {
    inngest_test::FakeInngestApi api;
    std::vector<std::string> logs;
    const auto client = client_for(api, logs);
    const auto sent = client->send(std::vector<inngest::Event>{
        {.name = "shop/order.placed", .data = {{"id", 1}}, .id = "order-1", .ts = 1700000000000},
        {.name = "shop/order.placed", .data = {{"id", 2}}, .v = "2024-01"}});
    REQUIRE(sent.has_value());
    CHECK(sent->ids == std::vector<std::string>{"fixture-event-0", "fixture-event-1"});

    const auto requests = api.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].path == "/e/evt-key-9f8e7d");
    CHECK(requests[0].header("X-Inngest-Env") == "branch-1");
    CHECK(requests[0].header("X-Inngest-SDK") == "inngest-cpp:v0.1.0");
    CHECK_FALSE(requests[0].header("x-inngest-event-id-seed").empty());
    const auto body = json::parse(requests[0].body).as_array();
    CHECK(body[0].at("id") == "order-1");
    CHECK(body[0].at("ts") == 1700000000000);
    CHECK(body[1].at("v") == "2024-01");
    CHECK(body[1].at("ts").is_int64());  // filled in when absent
}

TEST_CASE("send retries 5xx answers with the same id seed, then succeeds", "[unit]") {
    inngest_test::FakeInngestApi api;
    std::vector<std::string> logs;
    const auto client = client_for(api, logs);
    api.fail_next_sends(2, 500);
    const auto sent = client->send(inngest::Event{.name = "a/b"});
    REQUIRE(sent.has_value());
    CHECK(sent->ids.size() == 1);
    const auto requests = api.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].header("x-inngest-event-id-seed") ==
          requests[2].header("x-inngest-event-id-seed"));
    CHECK(requests[0].body == requests[2].body);
}

TEST_CASE("send reports a 4xx at once, and invalid events without a request", "[unit]") {
    inngest_test::FakeInngestApi api;
    std::vector<std::string> logs;
    const auto client = client_for(api, logs);
    api.fail_next_sends(1, 400);
    auto sent = client->send(inngest::Event{.name = "a/b"});
    REQUIRE_FALSE(sent.has_value());
    CHECK(sent.error().code == inngest::ErrorCode::kRemoteRejected);
    CHECK(sent.error().message.find("injected failure") != std::string::npos);
    CHECK(api.requests().size() == 1);

    sent = client->send(inngest::Event{.name = "inngest/function.failed"});
    REQUIRE_FALSE(sent.has_value());
    CHECK(sent.error().code == inngest::ErrorCode::kInvalidArgument);
    sent = client->send(inngest::Event{});
    REQUIRE_FALSE(sent.has_value());
    CHECK(api.requests().size() == 1);
    CHECK_THROWS_AS(client->send(inngest::Event{}).value(), inngest::ResultError);
}

TEST_CASE("send gives a network error when nothing listens, after its retries", "[unit]") {
    std::vector<std::string> logs;
    inngest::Client client({.app_id = "app",
                            .event_key = "k",
                            .dev = true,
                            .base_url = "http://127.0.0.1:1",
                            .http_timeout = std::chrono::milliseconds(500)},
                           inngest::Environment::none());
    const auto sent = client.send(inngest::Event{.name = "a/b"});
    REQUIRE_FALSE(sent.has_value());
    CHECK(sent.error().code == inngest::ErrorCode::kNetwork);
}

TEST_CASE("send_async returns without blocking and delivers the result", "[unit]") {
    inngest_test::FakeInngestApi api;
    std::vector<std::string> logs;
    const auto client = client_for(api, logs);
    auto pending = client->send_async({inngest::Event{.name = "a/b"}});
    const auto sent = pending.get();
    REQUIRE(sent.has_value());
    CHECK(sent->ids == std::vector<std::string>{"fixture-event-0"});
}

TEST_CASE("the event key never appears in logs or errors", "[unit]") {
    inngest_test::FakeInngestApi api;
    std::vector<std::string> logs;
    const auto client = client_for(api, logs);
    api.fail_next_sends(1, 401);
    const auto sent = client->send(inngest::Event{.name = "a/b"});
    REQUIRE_FALSE(sent.has_value());
    CHECK(sent.error().message.find("evt-key-9f8e7d") == std::string::npos);
    for (const auto& line : logs) {
        CHECK(line.find("evt-key-9f8e7d") == std::string::npos);
    }
}
