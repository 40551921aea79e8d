// End to end over real loopback HTTP: the Beast server in process, and the conformance fixture
// binary as a child process, driven through the protocol by a real HTTP client.

#include "crypto/signing_key.hpp"
#include "fixture_functions.hpp"
#include "support/call_builder.hpp"
#include "support/child_process.hpp"
#include "support/run_driver.hpp"
#include "transport/connection_group.hpp"
#include "transport/http_client.hpp"

#include <inngest/http_server.hpp>
#include <inngest/inngest.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace json = boost::json;
using inngest::detail::OutboundRequest;
using inngest::detail::send_http;

namespace {

inngest::detail::InboundResponse request(
    std::string method,
    std::string url,
    std::string body = {},
    std::vector<std::pair<std::string, std::string>> headers = {}) {
    OutboundRequest outbound;
    outbound.method = std::move(method);
    outbound.url = std::move(url);
    outbound.body = std::move(body);
    outbound.headers = std::move(headers);
    outbound.timeout = 10s;
    auto response = send_http(outbound);
    REQUIRE(response.has_value());
    return *response;
}

std::string_view header(const inngest::detail::InboundResponse& response, std::string_view name) {
    for (const auto& [key, value] : response.headers) {
        if (key.size() == name.size() &&
            std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            })) {
            return value;
        }
    }
    return {};
}

struct InProcessServer {
    explicit InProcessServer(inngest::HttpServerOptions options = {})
        : client({.app_id = "conformance-fixture",
                  .dev = true,
                  .log_sink =
                      [](auto, auto) {
                      }},
                 inngest::Environment::none()),
          handler(client) {
        inngest_fixture::register_fixture_functions(client);
        client.create_function({.id = "slow", .triggers = {inngest::EventTrigger{"x"}}},
                               [this](inngest::Context&) {
                                   ++slow_started;
                                   released.wait_for(10s);
                                   return json::value("slow done");
                               });
        options.host = "127.0.0.1";
        options.port = 0;
        options.routes = [](const inngest::HttpRequest& r) -> std::optional<inngest::HttpResponse> {
            if (r.path == "/health") {
                return inngest::HttpResponse{200, {}, "ok"};
            }
            if (r.path == "/echo") {
                return inngest::HttpResponse{200, {}, r.body};
            }
            return std::nullopt;
        };
        server = std::make_unique<inngest::HttpServer>(handler, options);
        server->start();
    }
    ~InProcessServer() { server->stop(2s); }

    std::string url(std::string_view path = "/api/inngest") const {
        return "http://127.0.0.1:" + std::to_string(server->port()) + std::string(path);
    }

    std::atomic<int> slow_started{0};
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    inngest::Client client;
    inngest::ServeHandler handler;
    std::unique_ptr<inngest::HttpServer> server;
};

// The fixture binary with extra environment variables, healthy before the test goes on.
class FixtureProcess {
public:
    FixtureProcess(std::vector<std::string> env)
        : port_(inngest_test::free_port()),
          process_({FIXTURE_BINARY},
                   with_port(std::move(env), port_),
                   "/tmp/inngest-conformance-fixture-" + std::to_string(getpid()) + ".log") {
        REQUIRE(process_.wait_healthy(url("/health"), 10s));
    }
    std::string url(std::string_view path = "/api/inngest") const {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    }

private:
    static std::vector<std::string> with_port(std::vector<std::string> env, int port) {
        env.push_back("PORT=" + std::to_string(port));
        return env;
    }

    int port_;
    inngest_test::ChildProcess process_;
};

// A value nested `depth` arrays and objects deep: objects every third level, arrays between.
json::value nested_value(int depth) {
    json::value value = "bottom";
    for (int level = depth - 1; level >= 0; --level) {
        if (level % 3 == 0) {
            value = json::object{{"level", level}, {"inner", std::move(value)}};
        } else {
            value = json::array{level, std::move(value)};
        }
    }
    return value;
}

int depth_of(const json::value& value) {
    int deepest = 0;
    if (const auto* array = value.if_array()) {
        for (const auto& item : *array) {
            deepest = std::max(deepest, depth_of(item));
        }
        return deepest + 1;
    }
    if (const auto* object = value.if_object()) {
        for (const auto& member : *object) {
            deepest = std::max(deepest, depth_of(member.value()));
        }
        return deepest + 1;
    }
    return 0;
}

}  // namespace

TEST_CASE(
    "a step result nested as deep as a step may return replays over HTTP, a deeper one "
    "fails at its step",
    "[http]") {
    static_assert(inngest::kMaxStepResultDepth == 64);
    inngest::Client client({.app_id = "deep",
                            .dev = true,
                            .log_sink =
                                [](auto, auto) {
                                }},
                           inngest::Environment::none());
    std::atomic<int> bodies{0};
    client.create_function(
        {.id = "nest", .triggers = {inngest::EventTrigger{"deep/nest"}}},
        [&bodies](inngest::Context& ctx) -> json::value {
            const int depth = ctx.event.data.at("depth").to_number<int>();
            const json::value value = ctx.step.run("nest", [&] {
                ++bodies;
                return nested_value(depth);
            });
            // A second step: the first one's memoized value is read back on the replay.
            const int read = ctx.step.run("measure", [&] { return depth_of(value); });
            return json::object{{"depth", read}, {"same", value == nested_value(depth)}};
        });
    client.create_function({.id = "give", .triggers = {inngest::EventTrigger{"deep/give"}}},
                           [](inngest::Context& ctx) -> json::value {
                               return nested_value(ctx.event.data.at("depth").to_number<int>());
                           });
    inngest::ServeHandler handler(client);
    inngest::HttpServer server(handler, {.host = "127.0.0.1", .port = 0});
    server.start();
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/api/inngest";
    const auto event = [](const char* name, int depth) {
        return json::object{{"name", name}, {"data", json::object{{"depth", depth}}}};
    };

    // Up to the limit: the step's value comes back whole on the replay, the body ran once.
    for (const int depth : {1, 29, 30, 63, 64}) {
        CAPTURE(depth);
        bodies = 0;
        const auto run = inngest_test::drive_run(url, "deep-nest", event("deep/nest", depth));
        INFO(json::serialize(run.output));
        CHECK(run.final_status == 200);
        CHECK(run.ops == std::vector<std::string>{"StepRun", "StepRun"});
        CHECK(run.output == json::value{{"depth", depth}, {"same", true}});
        CHECK(bodies == 1);
    }
    // One level deeper: refused at the step, which fails at once (no retries), and the run
    // ends with that failure instead of a replay that could never read the state.
    {
        bodies = 0;
        const auto run = inngest_test::drive_run(url, "deep-nest", event("deep/nest", 65));
        INFO(json::serialize(run.output));
        CHECK(run.ops == std::vector<std::string>{"StepFailed"});
        CHECK(run.final_status == 400);
        CHECK(run.output.at("name") == "NonRetriableError");
        CHECK(std::string(run.output.at("message").as_string())
                  .find("'nest' returned a value nested deeper than 64") != std::string::npos);
        CHECK(bodies == 1);
    }
    // A function's own result, which an invoking run replays, is held to the same limit.
    const auto given = inngest_test::drive_run(url, "deep-give", event("deep/give", 64));
    CHECK(given.final_status == 200);
    CHECK(given.output == nested_value(64));
    const auto too_deep = inngest_test::drive_run(url, "deep-give", event("deep/give", 65));
    CHECK(too_deep.final_status == 400);
    CHECK(too_deep.output.at("name") == "NonRetriableError");
    server.stop(2s);
}

TEST_CASE("the Beast server answers introspection and calls over loopback", "[http]") {
    InProcessServer server;
    const auto intro = request("GET", server.url());
    CHECK(intro.status == 200);
    CHECK(json::parse(intro.body).at("function_count") == server.client.functions().size());
    CHECK(header(intro, "X-Inngest-SDK") == "inngest-cpp:v0.1.0");

    const auto run =
        inngest_test::drive_run(server.url(), "conformance-fixture-test-suite-step-test",
                                {{"name", "tests/step.test"}, {"data", json::object{}}});
    CHECK(run.final_status == 200);
    CHECK(run.output == json::parse(R"({"name":"tests/step.test","body":"ok"})"));
    CHECK(run.ops == std::vector<std::string>{"StepRun", "Sleep", "StepRun"});

    CHECK(request("GET", server.url("/health")).body == "ok");
    CHECK(request("GET", server.url("/nowhere")).status == 404);
}

TEST_CASE("dev mode refuses unsigned requests from web pages: an Origin, or a foreign Host",
          "[http]") {
    InProcessServer server;
    const std::string fn = "conformance-fixture-test-suite-step-test";
    inngest_test::CallBuilder call;
    call.fn_slug = fn;
    call.event = {{"name", "tests/step.test"}, {"data", json::object{}}};
    const std::string call_body = call.body();
    // Any page can post to 127.0.0.1 with no preflight (no-cors, text/plain).
    const auto posted =
        request("POST", server.url() + "?fnId=" + fn + "&stepId=step", call_body,
                {{"Content-Type", "text/plain"}, {"Origin", "https://evil.example"}});
    CHECK(posted.status == 403);
    CHECK(json::parse(posted.body).at("code") == "forbidden");
    // A page whose own name was rebound to 127.0.0.1 sends that name as Host.
    const auto rebound = request("GET", server.url(), {}, {{"Host", "evil.example:8200"}});
    CHECK(rebound.status == 403);
    CHECK(json::parse(rebound.body).at("code") == "forbidden");
    CHECK(request("PUT", server.url(), {}, {{"Origin", "https://evil.example"}}).status == 403);
    // The dev server sends neither: by loopback address or name, as before.
    CHECK(request("GET", server.url(), {}, {{"Host", "localhost:8200"}}).status == 200);
    const auto run = request("POST", server.url() + "?fnId=" + fn + "&stepId=step", call_body,
                             {{"Content-Type", "application/json"}});
    CHECK(run.status == 206);
}

TEST_CASE("oversized and malformed requests get JSON errors and the server keeps serving",
          "[http]") {
    InProcessServer server({.max_body_bytes = 4096});
    const auto huge = request("POST", server.url() + "?fnId=x&stepId=step", std::string(8192, 'a'),
                              {{"Content-Type", "application/json"}});
    CHECK(huge.status == 413);
    CHECK(json::parse(huge.body).at("code") == "body_too_large");
    const auto bad =
        request("POST", server.url() + "?fnId=conformance-fixture-test-suite-simple-fn",
                "{\"event\":", {{"Content-Type", "application/json"}});
    CHECK(bad.status == 400);
    CHECK(request("GET", server.url()).status == 200);
}

TEST_CASE("a slow function does not block other requests", "[http]") {
    InProcessServer server({.worker_threads = 2});
    auto slow = std::async(std::launch::async, [&] {
        return request("POST", server.url() + "?fnId=conformance-fixture-slow&stepId=step",
                       R"({"event":{"name":"x","data":{}},"ctx":{"run_id":"r"}})");
    });
    std::this_thread::sleep_for(100ms);
    const auto started = std::chrono::steady_clock::now();
    CHECK(request("GET", server.url()).status == 200);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    server.release.set_value();
    const auto done = slow.get();
    CHECK(done.status == 200);
    CHECK(done.body == R"("slow done")");
}

TEST_CASE("with every handler slot taken, I/O goes on and queued calls run when one frees",
          "[http]") {
    // Handlers run on the I/O loop's threads, but never on the last `io_threads` of them.
    InProcessServer server({.worker_threads = 1, .max_body_bytes = 4096});
    const std::string slow_url = server.url() + "?fnId=conformance-fixture-slow&stepId=step";
    const std::string body = R"({"event":{"name":"x","data":{}},"ctx":{"run_id":"r"}})";
    auto first = std::async(std::launch::async, [&] { return request("POST", slow_url, body); });
    std::this_thread::sleep_for(100ms);
    auto queued = std::async(std::launch::async, [&] { return request("POST", slow_url, body); });
    std::this_thread::sleep_for(100ms);
    // The one slot is busy: the server still reads requests and answers those it answers
    // without a handler.
    const auto started = std::chrono::steady_clock::now();
    CHECK(request("POST", slow_url, std::string(8192, 'a')).status == 413);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK(queued.wait_for(0ms) == std::future_status::timeout);
    server.release.set_value();
    CHECK(first.get().body == R"("slow done")");
    CHECK(queued.get().body == R"("slow done")");
}

TEST_CASE("isolated paths have handler slots of their own, and inline paths need none", "[http]") {
    std::promise<void> open_general;
    std::promise<void> open_isolated;
    const auto general_gate = open_general.get_future().share();
    const auto isolated_gate = open_isolated.get_future().share();
    inngest::HttpServerOptions options;
    options.port = 0;
    options.worker_threads = 1;
    options.isolated_prefixes = {"/api/inngest"};
    options.isolated_worker_threads = 1;
    options.inline_paths = {"/healthz"};
    options.routes = [&](const inngest::HttpRequest& r) -> std::optional<inngest::HttpResponse> {
        if (r.path == "/rest/block") {
            general_gate.wait();
        } else if (r.path.rfind("/api/inngest", 0) == 0) {
            isolated_gate.wait();
        }
        return inngest::HttpResponse{200, {}, "\"" + r.path + "\""};
    };
    inngest::HttpServer server(options);
    server.start();
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    const auto get = [&](const std::string& path) {
        return std::async(std::launch::async, [&, path] { return request("GET", base + path); });
    };
    // Each lane's only slot is taken by a handler that blocks.
    auto rest_blocked = get("/rest/block");
    auto step_blocked = get("/api/inngest/one");
    std::this_thread::sleep_for(150ms);
    auto rest_queued = get("/rest/other");
    auto step_queued = get("/api/inngest/two");
    std::this_thread::sleep_for(150ms);
    // The liveness probe answers at once: it needs no slot.
    const auto started = std::chrono::steady_clock::now();
    CHECK(request("GET", base + "/healthz").status == 200);
    CHECK(std::chrono::steady_clock::now() - started < 1s);
    CHECK(rest_queued.wait_for(0ms) == std::future_status::timeout);
    CHECK(step_queued.wait_for(0ms) == std::future_status::timeout);
    // Freeing REST's slot runs REST's queued call; the function lane stays as it was.
    open_general.set_value();
    CHECK(rest_blocked.get().status == 200);
    CHECK(rest_queued.get().body == "\"/rest/other\"");
    CHECK(step_queued.wait_for(200ms) == std::future_status::timeout);
    open_isolated.set_value();
    CHECK(step_blocked.get().status == 200);
    CHECK(step_queued.get().body == "\"/api/inngest/two\"");
    server.stop();
}

namespace {

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

std::string padded_call(std::size_t pad) {
    return R"({"event":{"name":"x","data":{"pad":")" + std::string(pad, 'p') +
           R"("}},"ctx":{"run_id":"r"}})";
}

}  // namespace

TEST_CASE("large bodies wait for the body budget, small ones and bodiless requests do not",
          "[http]") {
    const std::size_t budget = std::size_t{1} << 20;
    InProcessServer server({.worker_threads = 4, .max_buffered_body_bytes = budget});
    const std::string slow_url = server.url() + "?fnId=conformance-fixture-slow&stepId=step";
    const std::string large = padded_call(600U * 1024U);
    auto first = std::async(std::launch::async, [&] { return request("POST", slow_url, large); });
    REQUIRE(wait_until([&] { return server.slow_started == 1; }, 5s));
    // 600 KiB more would hold 1.2 MiB: the second body stays in the socket until the first
    // call has finished.
    auto second = std::async(std::launch::async, [&] { return request("POST", slow_url, large); });
    std::this_thread::sleep_for(300ms);
    CHECK(server.slow_started == 1);
    CHECK(request("GET", server.url()).status == 200);
    CHECK(request("POST", server.url("/health"), std::string(32U * 1024U, 'h')).status == 200);
    CHECK(server.slow_started == 1);
    server.release.set_value();
    CHECK(first.get().body == R"("slow done")");
    CHECK(second.get().body == R"("slow done")");
    CHECK(server.slow_started == 2);

    // A body over the whole budget is still served when it is the only one.
    const auto alone = request("POST", slow_url, padded_call(std::size_t{3} << 20));
    CHECK(alone.status == 200);
    CHECK(alone.body == R"("slow done")");
}

TEST_CASE("large body buffers are reused without carrying bytes from one request to the next",
          "[http]") {
    InProcessServer server({.max_buffered_body_bytes = std::size_t{8} << 20});
    for (const auto& [size, fill] :
         std::vector<std::pair<std::size_t, char>>{{std::size_t{3} << 20, 'a'},
                                                   {std::size_t{1} << 20, 'b'},
                                                   {100000, 'c'},
                                                   {std::size_t{2} << 20, 'd'}}) {
        std::string body(size, fill);
        body.back() = '!';
        const auto echoed = request("POST", server.url("/echo"), body);
        CHECK(echoed.status == 200);
        CHECK(echoed.body.size() == size);
        CHECK(echoed.body == body);
    }
}

namespace {

// A raw TCP connection to the server on loopback.
int open_connection(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    return fd;
}

// Connects, writes `sent`, then waits for the server to close; returns how long that took and
// what the server sent (nullopt when it did not close within `limit`).
std::optional<std::pair<std::chrono::milliseconds, std::string>> wait_for_close(
    unsigned short port, const std::string& sent, std::chrono::seconds limit) {
    const int fd = open_connection(port);
    timeval wait{static_cast<time_t>(limit.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    const auto started = std::chrono::steady_clock::now();
    if (!sent.empty()) {
        REQUIRE(::send(fd, sent.data(), sent.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(sent.size()));
    }
    std::string received;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
        received.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (n < 0) {
        return std::nullopt;  // timed out on our side: the server kept the connection
    }
    return std::pair{std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started),
                     received};
}

}  // namespace

TEST_CASE("idle and stalled connections are closed after the read timeout, busy ones are not",
          "[http]") {
    InProcessServer server({.worker_threads = 2, .read_timeout = std::chrono::seconds(1)});
    const unsigned short port = server.server->port();
    // Nothing sent; half a header; a body that stops short of its Content-Length.
    for (const std::string& sent :
         {std::string(), std::string("POST /api/inngest HTTP/1.1\r\nHost: x\r\n"),
          std::string("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")}) {
        const auto closed = wait_for_close(port, sent, std::chrono::seconds(5));
        REQUIRE(closed.has_value());
        CHECK(closed->first >= std::chrono::milliseconds(900));
        CHECK(closed->first < std::chrono::milliseconds(2500));
        CHECK(closed->second.empty());  // closed without a response
    }
    // A handler that runs past the read timeout is not cut off.
    auto slow = std::async(std::launch::async, [&] {
        return request("POST", server.url() + "?fnId=conformance-fixture-slow&stepId=step",
                       R"({"event":{"name":"x","data":{}},"ctx":{"run_id":"r"}})");
    });
    std::this_thread::sleep_for(2500ms);
    server.release.set_value();
    const auto done = slow.get();
    CHECK(done.status == 200);
    CHECK(done.body == R"("slow done")");
}

TEST_CASE("without a body budget, large bodies are read and handled at once", "[http]") {
    InProcessServer server({.worker_threads = 4, .max_buffered_body_bytes = 0});
    const std::string slow_url = server.url() + "?fnId=conformance-fixture-slow&stepId=step";
    const std::string large = padded_call(600U * 1024U);
    auto first = std::async(std::launch::async, [&] { return request("POST", slow_url, large); });
    auto second = std::async(std::launch::async, [&] { return request("POST", slow_url, large); });
    CHECK(wait_until([&] { return server.slow_started == 2; }, 5s));
    server.release.set_value();
    CHECK(first.get().body == R"("slow done")");
    CHECK(second.get().body == R"("slow done")");
}

TEST_CASE("the server answers many concurrent requests", "[http]") {
    InProcessServer server;
    std::vector<std::future<int>> results;
    for (int i = 0; i < 16; ++i) {
        results.push_back(std::async(std::launch::async, [&] {
            int ok = 0;
            for (int j = 0; j < 10; ++j) {
                const auto run = inngest_test::drive_run(
                    server.url(), "conformance-fixture-repeated-steps",
                    {{"name", "conformance/repeat.test"}, {"data", json::object{}}});
                ok += run.output == json::parse(R"({"items":[0,1,2]})") ? 1 : 0;
            }
            return ok;
        }));
    }
    int total = 0;
    for (auto& result : results) {
        total += result.get();
    }
    CHECK(total == 160);
}

TEST_CASE("the conformance fixture binary serves and runs its functions in dev mode", "[http]") {
    FixtureProcess fixture({"INNGEST_DEV=1", "INNGEST_EVENT_KEY=test"});
    const auto intro = json::parse(request("GET", fixture.url()).body);
    CHECK(intro.at("mode") == "dev");
    CHECK(intro.at("function_count").as_int64() >= 25);

    auto run =
        inngest_test::drive_run(fixture.url(), "conformance-fixture-parallel-steps",
                                {{"name", "conformance/parallel.test"}, {"data", json::object{}}});
    CHECK(run.final_status == 200);
    CHECK(run.output == json::parse(R"({"results":["a","b","c"],"joined":"a+b+c"})"));

    run = inngest_test::drive_run(fixture.url(), "conformance-fixture-test-suite-retry-test",
                                  {{"name", "tests/retry.test"}, {"data", json::object{}}});
    CHECK(run.final_status == 200);
    CHECK(run.output == json::parse(R"({"name":"tests/retry.test","body":"ok"})"));
    REQUIRE_FALSE(run.ops.empty());
    CHECK(run.ops.front() == "StepError");

    run =
        inngest_test::drive_run(fixture.url(), "conformance-fixture-wait-for-event-timeout",
                                {{"name", "conformance/waittimeout.test"}, {"data", {{"id", 1}}}});
    CHECK(run.output == json::parse(R"({"timed_out":true})"));

    run = inngest_test::drive_run(
        fixture.url(), "conformance-fixture-non-retriable",
        {{"name", "conformance/nonretriable.test"}, {"data", json::object{}}});
    CHECK(run.final_status == 400);
    CHECK(run.output.at("message") == "do not retry me");
}

TEST_CASE("the fixture binary in cloud mode demands signatures and syncs in band", "[http]") {
    const std::string key = "signkey-test-7468697320697320612074657374206b6579";
    FixtureProcess fixture({"INNGEST_SIGNING_KEY=" + key, "INNGEST_EVENT_KEY=test",
                            "CONFORMANCE_CANARY=canary-Zq83Xv0Lr5"});
    CHECK(request("GET", fixture.url()).status == 401);
    CHECK(request("POST", fixture.url() + "?fnId=conformance-fixture-test-suite-simple-fn",
                  R"({"event":{"name":"tests/function.test"}})")
              .status == 401);

    const std::string body = R"({"url":"http://127.0.0.1:9999/api/inngest"})";
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const auto signature =
        inngest::detail::sign_body(inngest::detail::SigningKey::parse(key), body, now);
    const auto synced = request("PUT", fixture.url(), body,
                                {{"Content-Type", "application/json"},
                                 {"X-Inngest-Sync-Kind", "in_band"},
                                 {"X-Inngest-Signature", signature}});
    REQUIRE(synced.status == 200);
    CHECK(header(synced, "X-Inngest-Sync-Kind") == "in_band");
    const auto reply = json::parse(synced.body);
    CHECK(reply.at("url") == "http://127.0.0.1:9999/api/inngest");
    CHECK(reply.at("functions").as_array().size() ==
          static_cast<std::size_t>(reply.at("inspection").at("function_count").as_int64()));
    CHECK(synced.body.find("7468697320697320612074657374206b6579") == std::string::npos);
    CHECK(synced.body.find("canary-Zq83Xv0Lr5") == std::string::npos);

    const auto unsigned_sync =
        request("PUT", fixture.url(), body, {{"X-Inngest-Sync-Kind", "in_band"}});
    CHECK(unsigned_sync.status == 401);
    CHECK(unsigned_sync.body.find("functions") == std::string::npos);
}

namespace {

// Writes `pieces` to a new connection (pausing between them), then reads until the server
// closes it.
std::string raw_exchange(unsigned short port, const std::vector<std::string>& pieces) {
    const int fd = open_connection(port);
    for (const auto& piece : pieces) {
        std::size_t sent = 0;
        while (sent < piece.size()) {
            const ssize_t n = ::send(fd, piece.data() + sent, piece.size() - sent, MSG_NOSIGNAL);
            REQUIRE(n > 0);
            sent += static_cast<std::size_t>(n);
        }
        std::this_thread::sleep_for(20ms);
    }
    std::string received;
    char buffer[65536];
    for (ssize_t n = 0; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
        received.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return received;
}

std::size_t count(std::string_view text, std::string_view what) {
    std::size_t found = 0;
    for (std::size_t at = text.find(what); at != std::string_view::npos;
         at = text.find(what, at + 1)) {
        ++found;
    }
    return found;
}

}  // namespace

TEST_CASE("bodies arriving in pieces, chunked bodies and pipelined requests are all read",
          "[http]") {
    InProcessServer server;
    const std::string head =
        "POST /api/inngest?fnId=conformance-fixture-test-suite-simple-fn&stepId=step HTTP/1.1\r\n"
        "Host: localhost\r\nContent-Type: application/json\r\n";
    const std::string body = R"({"event":{"name":"x","data":{"pad":")" +
                             std::string(std::size_t{3} << 20, 'p') +
                             R"("}},"ctx":{"run_id":"r"}})";
    const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";

    // A 3 MiB body in three writes, the first one with the header.
    const std::string whole = head + length + "Connection: close\r\n\r\n" + body;
    const auto pieces = raw_exchange(
        server.server->port(),
        {whole.substr(0, 1000), whole.substr(1000, 1 << 20), whole.substr(1000 + (1 << 20))});
    CHECK(pieces.starts_with("HTTP/1.1 200"));
    CHECK(count(pieces, "\"body\":\"ok\"") == 1);

    // Chunked transfer encoding.
    const std::string chunked = head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                                "10\r\n" + body.substr(0, 16) + "\r\n" +
                                [&] {
                                    std::ostringstream size;
                                    size << std::hex << body.size() - 16;
                                    return size.str();
                                }() +
                                "\r\n" + body.substr(16) + "\r\n0\r\n\r\n";
    const auto chunks = raw_exchange(server.server->port(), {chunked});
    CHECK(chunks.starts_with("HTTP/1.1 200"));
    CHECK(count(chunks, "\"body\":\"ok\"") == 1);

    // Two requests in one write: the second starts in the bytes read with the first.
    const std::string small = R"({"event":{"name":"x","data":{}},"ctx":{"run_id":"r"}})";
    const std::string small_length = "Content-Length: " + std::to_string(small.size()) + "\r\n";
    const auto pipelined =
        raw_exchange(server.server->port(), {head + small_length + "\r\n" + small + head +
                                             small_length + "Connection: close\r\n\r\n" + small});
    CHECK(count(pipelined, "HTTP/1.1 200") == 2);
    CHECK(count(pipelined, "\"body\":\"ok\"") == 2);
}

TEST_CASE("connections past the caps get 503 and are closed, and their places come back",
          "[http]") {
    inngest::HttpServerOptions options;
    options.port = 0;
    options.max_connections_per_address = 2;
    options.routes = [](const inngest::HttpRequest&) -> std::optional<inngest::HttpResponse> {
        return inngest::HttpResponse{200, {}, "\"ok\""};
    };
    inngest::HttpServer server(options);
    server.start();
    const int first = open_connection(server.port());
    const int second = open_connection(server.port());
    std::this_thread::sleep_for(100ms);  // both accepted
    const auto refused = wait_for_close(server.port(), "", 5s);
    REQUIRE(refused.has_value());
    CHECK(refused->second.rfind("HTTP/1.1 503", 0) == 0);
    CHECK(refused->second.find("too_many_connections") != std::string::npos);

    // One of the two leaves: a new connection is served again.
    ::close(first);
    bool served = false;
    for (int i = 0; i < 100 && !served; ++i) {
        std::this_thread::sleep_for(20ms);
        served =
            request("GET", "http://127.0.0.1:" + std::to_string(server.port()) + "/x").status ==
            200;
    }
    CHECK(served);
    ::close(second);
    server.stop();
}

TEST_CASE("the per-address cap counts an IPv6 /64 as one address, and mapped IPv4 as IPv4",
          "[http]") {
    using inngest::detail::connection_group;
    // Two addresses of one /64 are one group (one host can use all of them)...
    CHECK(connection_group("2001:db8:1:2::1") == "2001:db8:1:2::/64");
    CHECK(connection_group("2001:db8:1:2:ffff:ffff:ffff:fffe") == "2001:db8:1:2::/64");
    // ...another /64 is another group.
    CHECK(connection_group("2001:db8:1:3::1") == "2001:db8:1:3::/64");
    CHECK(connection_group("::1") == "::/64");
    // A dual-stack socket's IPv4 client counts as that IPv4 address, like a plain one.
    CHECK(connection_group("::ffff:192.0.2.7") == "192.0.2.7");
    CHECK(connection_group("192.0.2.7") == "192.0.2.7");
    CHECK(connection_group("192.0.2.8") == "192.0.2.8");
    CHECK(connection_group("") == "");
}

namespace {

// A server with a 100 KiB body budget, 90,000 bytes of it held by a /hold request whose handler
// keeps its body until `release()`. Other paths answer with their body's size.
class HeldBudgetServer {
public:
    explicit HeldBudgetServer(inngest::HttpServerOptions options) {
        options.port = 0;
        options.max_buffered_body_bytes = 100 * 1024;
        options.routes =
            [this](const inngest::HttpRequest& r) -> std::optional<inngest::HttpResponse> {
            if (r.path == "/hold") {
                released_.wait();  // keeps its body, and its share of the budget, until released
            }
            return inngest::HttpResponse{200, {}, std::to_string(r.body.size())};
        };
        server_ = std::make_unique<inngest::HttpServer>(options);
        server_->start();
        holding_ = std::async(std::launch::async, [this] {
            return request("POST", url("/hold"), std::string(90000, 'h'));
        });
        std::this_thread::sleep_for(200ms);
    }
    ~HeldBudgetServer() {
        if (holding_.valid()) {
            release();  // a failed check must not leave the handler blocked
        }
        server_->stop();
    }

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    }
    unsigned short port() const { return server_->port(); }
    /// Lets the /hold handler finish; its response.
    inngest::detail::InboundResponse release() {
        release_.set_value();
        return holding_.get();
    }

private:
    std::promise<void> release_;
    std::shared_future<void> released_ = release_.get_future().share();
    std::unique_ptr<inngest::HttpServer> server_;
    std::future<inngest::detail::InboundResponse> holding_;
};

}  // namespace

TEST_CASE("a body that waits too long for the budget gets 503 instead of waiting forever",
          "[http]") {
    inngest::HttpServerOptions options;
    options.budget_wait_timeout = 1s;
    options.read_timeout = 2s;  // the sweeper that enforces the wait runs every 500 ms
    HeldBudgetServer server(options);
    const auto started = std::chrono::steady_clock::now();
    const auto waited = request("POST", server.url("/other"), std::string(90000, 'o'));
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(waited.status == 503);
    CHECK(took >= 900ms);
    CHECK(took < 4s);
    CHECK(server.release().body == "90000");
    CHECK(request("POST", server.url("/other"), std::string(90000, 'o')).body == "90000");
}

namespace {

// CPU seconds (user + system) the process has used, from /proc.
double cpu_seconds(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    long ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14 || i == 15) {
            ticks += std::stol(field);  // utime, stime
        }
    }
    return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST_CASE("a server out of file descriptors waits instead of spinning, and recovers", "[http]") {
    const int port = inngest_test::free_port();
    // The fixture server with room for only a few connections.
    inngest_test::ChildProcess fixture(
        {"/usr/bin/prlimit", "--nofile=48", FIXTURE_BINARY}, {"PORT=" + std::to_string(port)},
        "/tmp/inngest-fixture-emfile-" + std::to_string(getpid()) + ".log");
    const std::string health = "http://127.0.0.1:" + std::to_string(port) + "/health";
    REQUIRE(fixture.wait_healthy(health, 10s));
    std::vector<int> held;
    for (int i = 0; i < 64; ++i) {
        held.push_back(open_connection(static_cast<unsigned short>(port)));
    }
    // Measured only once the server holds every descriptor it may open: on a starved machine
    // it may still be accepting the 64 connections well after they were opened.
    const auto open_descriptors = [&] {
        const std::filesystem::path fds("/proc/" + std::to_string(fixture.pid()) + "/fd");
        return std::distance(std::filesystem::directory_iterator(fds),
                             std::filesystem::directory_iterator());
    };
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (open_descriptors() < 48 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    REQUIRE(open_descriptors() >= 48);
    std::this_thread::sleep_for(100ms);  // the accept that failed has been answered
    const double before = cpu_seconds(fixture.pid());
    std::this_thread::sleep_for(1s);
    const double used = cpu_seconds(fixture.pid()) - before;
    INFO("CPU seconds over one second without descriptors: " << used);
    CHECK(used < 0.3);  // a loop retrying accept at once would use the whole second
    for (const int fd : held) {
        ::close(fd);
    }
    CHECK(fixture.wait_healthy(health, 5s));
}

TEST_CASE("a chunked body counts against the budget chunk by chunk", "[http]") {
    HeldBudgetServer server({});
    const auto chunked = [](std::size_t size) {
        std::ostringstream hex;
        hex << std::hex << size;
        return "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: "
               "close\r\n\r\n" +
               hex.str() + "\r\n" + std::string(size, 'c') + "\r\n0\r\n\r\n";
    };
    // 90,000 bytes are held: a chunk of 4 KiB still fits the 100 KiB budget, one of 16 KiB not.
    const auto small = raw_exchange(server.port(), {chunked(4096)});
    CHECK(small.rfind("HTTP/1.1 200", 0) == 0);
    const auto refused = raw_exchange(server.port(), {chunked(16384)});
    CHECK(refused.rfind("HTTP/1.1 503", 0) == 0);
    CHECK(server.release().body == "90000");
    // The held body's bytes return to the budget as its request ends on the server, which may
    // be a moment after its response reached us.
    std::string served;
    for (int i = 0; i < 50 && served.rfind("HTTP/1.1 200", 0) != 0; ++i) {
        std::this_thread::sleep_for(i == 0 ? 0ms : 20ms);
        served = raw_exchange(server.port(), {chunked(16384)});
    }
    CHECK(served.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(served.find("\r\n\r\n16384") != std::string::npos);
}

TEST_CASE("connections that send a body's headers and then nothing hold none of the budget",
          "[http]") {
    inngest::HttpServerOptions options;
    options.max_body_bytes = std::size_t{1} << 20;
    options.max_buffered_body_bytes = std::size_t{2} << 20;
    options.budget_wait_timeout = 2s;
    options.read_timeout = 10s;
    InProcessServer server(options);
    // Six bodies of 1 MiB announced, three times the budget, and none of their bytes sent.
    std::vector<int> idle;
    for (int i = 0; i < 6; ++i) {
        idle.push_back(open_connection(server.server->port()));
        const std::string head =
            "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
        REQUIRE(::send(idle.back(), head.data(), head.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(head.size()));
    }
    std::this_thread::sleep_for(300ms);  // lets the server read their headers
    const auto started = std::chrono::steady_clock::now();
    const std::string body(200U * 1024U, 'b');
    const auto echoed = request("POST", server.url("/echo"), body);
    CHECK(echoed.status == 200);  // not 503 after waiting 2 s for the budget
    CHECK(echoed.body.size() == body.size());
    CHECK((echoed.body == body));
    INFO("took " << std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count()
                 << " ms");
    for (const int fd : idle) {
        ::close(fd);
    }
}

TEST_CASE("a large body sent a byte now and then is cut off at the read timeout", "[http]") {
    InProcessServer server(
        {.max_buffered_body_bytes = std::size_t{2} << 20, .read_timeout = std::chrono::seconds(1)});
    const int fd = open_connection(server.server->port());
    const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
    REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(head.size()));
    // A byte every 200 ms never leaves the connection idle for the read timeout, yet the whole
    // body is due within it.
    const auto started = std::chrono::steady_clock::now();
    bool closed = false;
    while (!closed && std::chrono::steady_clock::now() - started < 10s) {
        closed = ::send(fd, "b", 1, MSG_NOSIGNAL) != 1;
        char byte = 0;
        closed = closed || ::recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
        std::this_thread::sleep_for(200ms);
    }
    const auto took = std::chrono::steady_clock::now() - started;
    ::close(fd);
    CHECK(closed);
    CHECK(took >= 900ms);
    CHECK(took < 6s);
}
