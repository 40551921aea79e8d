// inngest-bench-service: the benchmark's functions on the SDK's serve endpoint
// (127.0.0.1:$PORT/api/inngest, dev mode). bench-app.mjs defines the same functions with the
// official TypeScript SDK.

#include <inngest/inngest.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

// "s" + std::to_string(i) trips GCC 12's -Wrestrict false positive at -O3 (GCC bug 105329).
std::string numbered(const char* prefix, int i) {
    std::string id(prefix);
    id += std::to_string(i);
    return id;
}

int main() {
    try {
        const char* port_text = std::getenv("PORT");
        const int port = port_text != nullptr ? std::stoi(port_text) : 3300;
        inngest::Client client({.app_id = "bench", .dev = true});

        // Steps s0..sN in order: a call whose state memoizes N of them replays N and runs one.
        client.create_function(
            {.id = "bench-steps", .triggers = {inngest::EventTrigger{"bench/steps"}}},
            [](inngest::Context& ctx) {
                const int n = ctx.event.data.at("n").to_number<int>();
                for (int i = 0; i <= n; ++i) {
                    ctx.step.run(numbered("s", i), [i] { return i; });
                }
                return std::string("done");
            });

        // 100 steps planned at once.
        client.create_function(
            {.id = "bench-parallel", .triggers = {inngest::EventTrigger{"bench/parallel"}}},
            [](inngest::Context& ctx) {
                std::vector<std::function<int()>> branches;
                for (int i = 0; i < 100; ++i) {
                    branches.emplace_back(
                        [&ctx, i] { return ctx.step.run(numbered("p", i), [i] { return i; }); });
                }
                const auto results = ctx.step.parallel(branches);
                return static_cast<int>(results.size());
            });

        // A large memoized value that the function passes over (run_lazy: never converted
        // unless read), then one new step.
        client.create_function(
            {.id = "bench-large", .triggers = {inngest::EventTrigger{"bench/large"}}},
            [](inngest::Context& ctx) {
                ctx.step.run_lazy("big", [] { return std::string(); });
                ctx.step.run("next", [] { return 1; });
                return std::string("done");
            });

        inngest::ServeHandler handler(client);
        inngest::HttpServer server(handler, {.host = "127.0.0.1",
                                             .port = static_cast<unsigned short>(port),
                                             .max_body_bytes = std::size_t{64} * 1024 * 1024,
                                             // One 10 MiB body at a time; four 1 MiB ones.
                                             .max_buffered_body_bytes = std::size_t{16} << 20});
        server.start();
        std::cout << "inngest-bench-service listening on http://127.0.0.1:" << server.port()
                  << "/api/inngest" << std::endl;
        return server.run();
    } catch (const std::exception& error) {
        std::cerr << "inngest-bench-service: " << error.what() << "\n";
        return 1;
    }
}
