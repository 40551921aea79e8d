// The script sandbox on its own: the real worker process and the real Duktape, no database.

#include "core/http/exchange.hpp"
#include "core/http/outbound_policy.hpp"
#include "modules/scripts/script_runner.hpp"

#include <inngest/http_server.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace json = boost::json;
using riveredge::scripts::ScriptLimits;
using riveredge::scripts::ScriptOutcome;
using riveredge::scripts::ScriptRequest;
using riveredge::scripts::ScriptRunner;
using riveredge::scripts::ScriptStatus;

namespace {

const ScriptRunner& runner() {
    static const ScriptRunner instance(SCRIPT_WORKER_PATH);
    return instance;
}

ScriptOutcome run(const std::string& code,
                  json::value arguments = json::object{},
                  ScriptLimits limits = {}) {
    ScriptRequest request;
    request.code = code;
    request.arguments = std::move(arguments);
    request.context = {{"tenant_id", "acme"}, {"run_id", 42}};
    request.limits = limits;
    return runner().run(request);
}

int open_descriptors() {
    int count = 0;
    DIR* dir = opendir("/proc/self/fd");
    while (readdir(dir) != nullptr) {
        ++count;
    }
    closedir(dir);
    return count;
}

}  // namespace

TEST_CASE("main gets its arguments and context and returns JSON", "[scripts]") {
    const auto outcome =
        run(R"(
        function main(args, ctx) {
            var total = 0;
            args.lines.forEach(function (l) { total += l.qty * l.price; });
            return { tenant: ctx.tenant_id, run: ctx.run_id, total: total, tags: ["a", "b"] };
        })",
            json::parse(R"({"lines":[{"qty":2,"price":3.5},{"qty":1,"price":10}]})"));
    REQUIRE(outcome.status == ScriptStatus::kSucceeded);
    CHECK(outcome.result ==
          json::parse(R"({"tenant":"acme","run":42,"total":17,"tags":["a","b"]})"));
    CHECK(outcome.memory_bytes > 0);
    CHECK_FALSE(outcome.error.has_value());
}

TEST_CASE("a script that returns nothing yields null and a missing main is an error", "[scripts]") {
    CHECK(run("function main() {}").result.is_null());
    const auto missing = run("var x = 1;");
    CHECK(missing.status == ScriptStatus::kFailed);
    CHECK(missing.error->message.find("main(args, ctx)") != std::string::npos);
}

TEST_CASE("console output and ctx.log are captured in order and bounded", "[scripts]") {
    const auto outcome = run(R"(
        function main(args, ctx) {
            console.log("hello", 1, {a: [1, 2]});
            console.warn("careful");
            ctx.log("from ctx");
            console.error("bad", null);
            var cyclic = {}; cyclic.self = cyclic;
            console.log(cyclic);
            return 1;
        })");
    REQUIRE(outcome.status == ScriptStatus::kSucceeded);
    REQUIRE(outcome.console.size() == 5);
    CHECK(outcome.console[0] ==
          json::parse(R"({"level":"log","message":"hello 1 {\"a\":[1,2]}"})"));
    CHECK(outcome.console[1].at("level") == "warn");
    CHECK(outcome.console[2] == json::parse(R"({"level":"info","message":"from ctx"})"));
    CHECK(outcome.console[3].at("message") == "bad null");
    CHECK(outcome.console[4].at("message") == "[unprintable value]");
    CHECK_FALSE(outcome.console_truncated);

    ScriptLimits limits;
    limits.console_bytes = 1000;
    const auto flood =
        run("function main() { for (var i = 0; i < 100000; i++) console.log('line ' + i); return "
            "'done'; }",
            json::object{}, limits);
    REQUIRE(flood.status == ScriptStatus::kSucceeded);
    CHECK(flood.result == "done");
    CHECK(flood.console_truncated);
    std::size_t bytes = 0;
    for (const auto& line : flood.console) {
        bytes += line.at("message").as_string().size();
    }
    CHECK(bytes <= 1000);
    CHECK(flood.console.size() > 10);
}

TEST_CASE("syntax errors are reported with their line without running anything", "[scripts]") {
    const auto check = runner().validate("function main() {\n  var a = 1;\n  return a +;\n}\n");
    CHECK_FALSE(check.valid);
    REQUIRE(check.error.has_value());
    CHECK(check.error->message.find("SyntaxError") != std::string::npos);
    REQUIRE(check.error->line.has_value());
    CHECK(*check.error->line == 3);
    CHECK(runner().validate("function main() { while (true) {} }").valid);

    const auto outcome = run("function main() {\n return 1 +;\n}");
    CHECK(outcome.status == ScriptStatus::kSyntaxError);
    CHECK(outcome.error->line == 2);
}

TEST_CASE("runtime errors carry message line and stack", "[scripts]") {
    const auto outcome =
        run("function helper(x) {\n  return x.missing.field;\n}\n"
            "function main() {\n  return helper({});\n}\n");
    REQUIRE(outcome.status == ScriptStatus::kFailed);
    REQUIRE(outcome.error.has_value());
    CHECK(outcome.error->message.find("TypeError") != std::string::npos);
    CHECK(outcome.error->line == 2);
    REQUIRE(outcome.error->stack.has_value());
    CHECK(outcome.error->stack->find("helper") != std::string::npos);

    const auto thrown = run("function main() { throw new Error('invoice 7 has no lines'); }");
    CHECK(thrown.status == ScriptStatus::kFailed);
    CHECK(thrown.error->message == "Error: invoice 7 has no lines");

    // A NUL is a character of the message, not its end, and a lone surrogate becomes U+FFFD as
    // it does in console lines: the whole message is kept, as UTF-8.
    const auto nul = run(R"(function main() { throw new Error('a\u0000b\uD800c'); })");
    CHECK(nul.status == ScriptStatus::kFailed);
    REQUIRE(nul.error.has_value());
    CHECK(nul.error->message == std::string("Error: a\0b\xEF\xBF\xBD"
                                            "c",
                                            14));
    // Thrown as a bare string, and in the stack's first line, alike.
    const auto bare = run(R"(function main() { throw 'x\u0000y'; })");
    REQUIRE(bare.error.has_value());
    CHECK(bare.error->message == std::string("x\0y", 3));
    REQUIRE(nul.error->stack.has_value());
    CHECK(nul.error->stack->find(std::string("a\0b", 3)) != std::string::npos);
}

TEST_CASE("an endless loop is stopped at the time limit", "[scripts]") {
    ScriptLimits limits;
    limits.timeout = 300ms;
    const auto started = std::chrono::steady_clock::now();
    const auto outcome = run("function main() { while (true) {} }", json::object{}, limits);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(outcome.status == ScriptStatus::kTimedOut);
    CHECK(outcome.error->message.find("300 ms") != std::string::npos);
    CHECK(took >= 300ms);
    CHECK(took < 2s);
    // The top-level code is under the same clock as main.
    CHECK(run("for (;;) {}", json::object{}, limits).status == ScriptStatus::kTimedOut);
}

TEST_CASE("an allocation bomb is stopped by the memory cap and the host survives", "[scripts]") {
    ScriptLimits limits;
    limits.memory_bytes = 8 * 1024 * 1024;
    // Generous, so the memory cap (not the clock) stops the bomb even in a sanitizer build.
    limits.timeout = std::chrono::seconds(30);
    const auto outcome = run(R"(
        function main() {
            var hoard = [];
            for (;;) { hoard.push(new Array(100000).join("x") + hoard.length); }
        })",
                             json::object{}, limits);
    CHECK(outcome.status == ScriptStatus::kMemoryExceeded);
    CHECK(outcome.memory_bytes <= limits.memory_bytes);
    CHECK(outcome.memory_bytes > limits.memory_bytes / 2);
    // A string doubling bomb too.
    const auto doubling =
        run("function main() { var s = 'x'; for (;;) { s = s + s; } }", json::object{}, limits);
    CHECK(doubling.status == ScriptStatus::kMemoryExceeded);
    // And the next script runs normally.
    CHECK(run("function main() { return 2 + 2; }").result == 4);
}

TEST_CASE("deep recursion is stopped by the engine", "[scripts]") {
    const auto outcome =
        run("function down(n) { return down(n + 1) + 1; }\n"
            "function main() { return down(0); }");
    CHECK(outcome.status == ScriptStatus::kFailed);
    CHECK(outcome.error->message.find("RangeError") != std::string::npos);
    // Bounded recursion well below the limit works.
    CHECK(run("function f(n) { return n === 0 ? 0 : 1 + f(n - 1); }\n"
              "function main() { return f(500); }")
              .result == 500);
}

TEST_CASE("a huge result is refused by the output cap", "[scripts]") {
    ScriptLimits limits;
    limits.output_bytes = 10000;
    const auto outcome =
        run("function main() { return new Array(20000).join('y'); }", json::object{}, limits);
    CHECK(outcome.status == ScriptStatus::kOutputExceeded);
    CHECK(outcome.result.is_null());
    CHECK(run("function main() { return new Array(200).join('y'); }", json::object{}, limits)
              .status == ScriptStatus::kSucceeded);
    const auto cyclic = run("function main() { var a = {}; a.a = a; return a; }");
    CHECK(cyclic.status == ScriptStatus::kFailed);
    CAPTURE(cyclic.error->message);
    CHECK(cyclic.error->message.find("JSON") != std::string::npos);
}

TEST_CASE(
    "a result or console line that is not UTF-8 is kept readably, a too deep result is "
    "refused by name, and the console survives both",
    "[scripts]") {
    // Duktape writes a lone surrogate as the bytes ED A0 80, which are not UTF-8: it becomes
    // U+FFFD, and the run succeeds with its console.
    const std::string replaced = "\xEF\xBF\xBD";
    const auto lone = run(R"(function main() { console.log("ok"); return "\uD800"; })");
    CAPTURE(lone.error ? lone.error->message : std::string());
    REQUIRE(lone.status == ScriptStatus::kSucceeded);
    CHECK(lone.result == json::value(replaced));
    REQUIRE(lone.console.size() == 1);
    CHECK(lone.console[0] == json::parse(R"({"level":"log","message":"ok"})"));
    // In a key, and in a console line: the result is kept too.
    const auto logged = run(R"(
        function main() {
            console.log("a\uD800b");
            var o = {}; o["k\uDC00"] = "\uD83D\uDE00";
            return o;
        })");
    CAPTURE(logged.error ? logged.error->message : std::string());
    REQUIRE(logged.status == ScriptStatus::kSucceeded);
    REQUIRE(logged.console.size() == 1);
    CHECK(logged.console[0].at("message") == json::value("a" + replaced + "b"));
    REQUIRE(logged.result.is_object());
    REQUIRE(logged.result.as_object().size() == 1);
    CHECK(logged.result.as_object().begin()->key() == "k" + replaced);
    // A surrogate pair (Duktape keeps it as two halves) is its one character.
    CHECK(logged.result.as_object().begin()->value() == "\xF0\x9F\x98\x80");

    // Nested past what a request may nest: a failure that says so, the console kept.
    const auto deep = run(R"(
        function main() {
            console.log("built");
            var v = 1;
            for (var i = 0; i < 40; i++) { v = [v]; }
            return v;
        })");
    CHECK(deep.status == ScriptStatus::kFailed);
    REQUIRE(deep.error.has_value());
    CAPTURE(deep.error->message);
    CHECK(deep.error->message.find("nests deeper than 32") != std::string::npos);
    REQUIRE(deep.console.size() == 1);
    CHECK(deep.console[0].at("message") == "built");
    // 32 levels are a result.
    const auto deepest =
        run("function main() { var v = 1; for (var i = 0; i < 32; i++) { v = [v]; } return v; }");
    CAPTURE(deepest.error ? deepest.error->message : std::string());
    CHECK(deepest.status == ScriptStatus::kSucceeded);
    CHECK(deepest.result.is_array());
}

TEST_CASE("the script's world holds no host objects", "[scripts]") {
    const auto outcome = run(R"(
        function main() {
            var names = ["Duktape", "require", "module", "exports", "process", "print", "alert",
                         "setTimeout", "XMLHttpRequest", "fetch", "Packages", "java", "os", "fs"];
            var present = [];
            names.forEach(function (n) { if (typeof this[n] !== "undefined") present.push(n); }, this);
            var global = new Function("return this")();
            names.forEach(function (n) { if (typeof global[n] !== "undefined") present.push("global." + n); });
            return present;
        })");
    REQUIRE(outcome.status == ScriptStatus::kSucceeded);
    CHECK(outcome.result == json::array{});
    // eval is plain ECMAScript on the same sandboxed global: nothing of the host comes back.
    CHECK(run("function main() { return eval('typeof Duktape'); }").result == "undefined");
    // ctx.http is off without an allow-list.
    const auto http =
        run("function main(a, ctx) { return ctx.http({url: 'http://127.0.0.1:1/'}); }");
    CHECK(http.status == ScriptStatus::kFailed);
    CHECK(http.error->message.find("allow-list") != std::string::npos);
}

TEST_CASE("ctx.http reaches only hosts on the allow-list", "[scripts]") {
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes =
        [](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        inngest::HttpResponse response;
        response.status = 200;
        response.body = "{\"method\":\"" + request.method + "\",\"got\":" +
                        (request.body.empty() ? std::string("null") : request.body) + "}";
        return response;
    };
    inngest::HttpServer server(options);
    server.start();
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    ScriptRequest request;
    request.code = R"(
        function main(args, ctx) {
            var r = ctx.http({method: "POST", url: args.url, headers: {"Content-Type": "application/json"},
                              body: {order: 7}});
            return {status: r.status, body: JSON.parse(r.body)};
        })";
    request.arguments = {{"url", base + "/hook"}};
    request.http_allow_list = {"127.0.0.1"};
    // A development deployment's policy: loopback allowed, unprivileged ports open.
    riveredge::core::OutboundPolicy dev_policy({"127.0.0.0/8", "::1/128"}, {"1024-65535"});
    request.outbound_policy = dev_policy.to_text();
    const auto allowed = runner().run(request);
    REQUIRE(allowed.status == ScriptStatus::kSucceeded);
    CHECK(allowed.result.at("status") == 200);
    CHECK(allowed.result.at("body") == json::parse(R"({"method":"POST","got":{"order":7}})"));

    request.http_allow_list = {"api.example.com", "*.example.org"};
    const auto refused = runner().run(request);
    CHECK(refused.status == ScriptStatus::kFailed);
    CHECK(refused.error->message.find("127.0.0.1 is not on this tenant's allow-list") !=
          std::string::npos);
    request.arguments = {{"url", "file:///etc/passwd"}};
    request.http_allow_list = {"127.0.0.1"};
    CHECK(runner().run(request).error->message.find("http(s)") != std::string::npos);
    server.stop();
}

TEST_CASE("an answer past the limit is cut and said to be cut; ctx.http refuses one over 1 MiB",
          "[scripts][outbound]") {
    inngest::HttpServerOptions options;
    options.port = 0;
    options.routes =
        [](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
        const std::size_t size = request.path == "/big" ? 2 * 1024 * 1024 : 100;
        return inngest::HttpResponse{201, {}, std::string(size, 'x')};
    };
    inngest::HttpServer server(options);
    server.start();
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    riveredge::core::OutboundPolicy dev_policy({"127.0.0.0/8"}, {"1024-65535"});

    riveredge::core::HttpExchange exchange{"GET", base + "/small", std::nullopt, {}, 5s,
                                           100,   std::nullopt};
    const auto whole = riveredge::core::exchange_http(dev_policy, exchange);
    CHECK(whole.status == 201);
    CHECK(whole.body.size() == 100);
    CHECK_FALSE(whole.truncated);
    exchange.url = base + "/big";
    const auto cut = riveredge::core::exchange_http(dev_policy, exchange);
    CHECK(cut.transport_error.empty());
    CHECK(cut.status == 201);
    CHECK(cut.body.size() == 100);
    CHECK(cut.truncated);

    ScriptRequest request;
    request.code = R"(function main(args, ctx) { return ctx.http({url: args.url}).body.length; })";
    request.http_allow_list = {"127.0.0.1"};
    request.outbound_policy = dev_policy.to_text();
    request.arguments = {{"url", base + "/small"}};
    const auto small = runner().run(request);
    REQUIRE(small.status == ScriptStatus::kSucceeded);
    CHECK(small.result == 100);
    request.arguments = {{"url", base + "/big"}};
    const auto big = runner().run(request);
    REQUIRE(big.status == ScriptStatus::kFailed);
    CHECK(big.error->message.find("longer than 1 MiB") != std::string::npos);
    server.stop();
}

TEST_CASE("ctx.http passes the deployment's outbound policy as well as the allow-list",
          "[scripts][security]") {
    inngest::HttpServerOptions options;
    options.port = 0;
    std::atomic<int> reached{0};
    options.routes =
        [&reached](const inngest::HttpRequest&) -> std::optional<inngest::HttpResponse> {
        ++reached;
        return inngest::HttpResponse{200, {}, "{}"};
    };
    inngest::HttpServer server(options);
    server.start();
    ScriptRequest request;
    request.code = R"(function main(args, ctx) {
        return ctx.http({method: args.method || "GET", url: args.url}).status; })";
    request.http_allow_list = {"127.0.0.1", "localhost", "169.254.169.254", "[::1]"};
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";

    // The production default: a tenant's allow-list cannot open loopback or link-local.
    for (const std::string& target :
         {url, "http://localhost:" + std::to_string(server.port()) + "/",
          std::string("http://169.254.169.254/latest/meta-data/"),
          "http://[::1]:" + std::to_string(server.port()) + "/"}) {
        request.arguments = {{"url", target}};
        const auto refused = runner().run(request);
        REQUIRE(refused.status == ScriptStatus::kFailed);
        INFO(refused.error->message);
        CHECK(refused.error->message.find("ctx.http refused") != std::string::npos);
    }

    riveredge::core::OutboundPolicy dev_policy({"127.0.0.0/8", "::1/128"}, {"1024-65535"});
    request.outbound_policy = dev_policy.to_text();
    request.arguments = {{"url", url}};
    REQUIRE(runner().run(request).status == ScriptStatus::kSucceeded);
    CHECK(reached == 1);
    request.arguments = {{"url", url}, {"method", "TRACE"}};
    CHECK(runner().run(request).error->message.find("does not send TRACE") != std::string::npos);

    // An IPv6 literal is connected to as it is (no DNS pin is needed or written).
    inngest::HttpServerOptions v6_options;
    v6_options.host = "::1";
    v6_options.port = 0;
    v6_options.routes = options.routes;
    inngest::HttpServer v6_server(v6_options);
    v6_server.start();
    request.arguments = {{"url", "http://[::1]:" + std::to_string(v6_server.port()) + "/"}};
    const auto over_v6 = runner().run(request);
    INFO((over_v6.error ? over_v6.error->message : std::string()));
    CHECK(over_v6.status == ScriptStatus::kSucceeded);
    CHECK(reached == 2);
    v6_server.stop();

    // The app's own endpoints stay closed even where loopback is open.
    dev_policy.reserve("127.0.0.1", server.port());
    request.outbound_policy = dev_policy.to_text();
    request.arguments = {{"url", "http://localhost:" + std::to_string(server.port()) + "/"}};
    const auto own = runner().run(request);
    REQUIRE(own.status == ScriptStatus::kFailed);
    CHECK(own.error->message.find("own endpoint") != std::string::npos);
    CHECK(reached == 2);
    server.stop();
}

TEST_CASE("runs leak no descriptors or processes in the host", "[scripts]") {
    const int before = open_descriptors();
    ScriptLimits limits;
    limits.timeout = 100ms;
    for (int i = 0; i < 20; ++i) {
        run(i % 2 == 0 ? "function main() { return 1; }" : "function main() { for (;;) {} }",
            json::object{}, limits);
    }
    CHECK(open_descriptors() == before);
    // Every worker was reaped: no child is left for waitpid.
    CHECK(waitpid(-1, nullptr, WNOHANG) == -1);
}

namespace {

// The running worker this process spawned: its /proc entry, or empty.
std::string find_worker() {
    const std::string parent = std::to_string(::getpid());
    DIR* proc = ::opendir("/proc");
    std::string found;
    while (dirent* entry = ::readdir(proc)) {
        const std::string pid = entry->d_name;
        if (pid.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        std::ifstream status("/proc/" + pid + "/status");
        std::string line;
        bool worker = false;
        bool ours = false;
        while (std::getline(status, line)) {
            worker = worker || line.rfind("Name:\triveredge-scrip", 0) == 0;
            ours = ours || line == "PPid:\t" + parent;
        }
        if (worker && ours) {
            found = "/proc/" + pid;
        }
    }
    ::closedir(proc);
    return found;
}

std::vector<std::string> descriptors_of(const std::string& process) {
    std::vector<std::string> out;
    DIR* fds = ::opendir((process + "/fd").c_str());
    if (fds == nullptr) {
        return out;
    }
    while (dirent* entry = ::readdir(fds)) {
        if (entry->d_name[0] != '.') {
            out.emplace_back(entry->d_name);
        }
    }
    ::closedir(fds);
    std::sort(out.begin(), out.end());
    return out;
}

std::string link_of(const std::string& path) {
    char target[256] = {};
    const auto n = ::readlink(path.c_str(), target, sizeof target - 1);
    return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string();
}

struct WorkerView {
    std::vector<std::string> descriptors;
    std::string network;
};

// Runs a script that spins for a second and looks at its worker meanwhile.
WorkerView watch_worker(const std::vector<std::string>& allow_list) {
    ScriptRequest request;
    request.code = "function main() { var end = Date.now() + 3000; while (Date.now() < end) {} }";
    request.http_allow_list = allow_list;
    request.limits.timeout = 10s;
    std::thread running([&] { runner().run(request); });
    WorkerView view;
    std::string worker;
    for (int i = 0; i < 500 && worker.empty(); ++i) {
        std::this_thread::sleep_for(10ms);
        worker = find_worker();
    }
    if (!worker.empty()) {
        // Well past its start-up (slow under sanitizers and load): it is running the script.
        std::this_thread::sleep_for(1500ms);
        view.descriptors = descriptors_of(worker);
        view.network = link_of(worker + "/ns/net");
    }
    running.join();
    return view;
}

}  // namespace

TEST_CASE("the worker inherits no descriptors, and has no network while ctx.http is off",
          "[scripts][security]") {
    // Descriptors a library might leave open without close-on-exec: a socket and a file.
    const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
    const int file = ::open("/dev/null", O_RDONLY);
    REQUIRE(socket >= 0);
    REQUIRE(file >= 0);

    const auto isolated = watch_worker({});
    REQUIRE_FALSE(isolated.network.empty());
    CHECK(isolated.descriptors == std::vector<std::string>{"0", "1", "2"});
    const bool user_namespaces = std::system("unshare --user --net true 2>/dev/null") == 0;
    if (user_namespaces) {
        CHECK(isolated.network != link_of("/proc/self/ns/net"));
    } else {
        WARN("this kernel allows no unprivileged user namespaces: the worker keeps the network");
    }

    const auto connected = watch_worker({"api.example.com"});
    CHECK(connected.descriptors == std::vector<std::string>{"0", "1", "2"});
    CHECK(connected.network == link_of("/proc/self/ns/net"));
    ::close(socket);
    ::close(file);
}
