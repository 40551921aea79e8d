// minimal-service: one function with three steps, served on 127.0.0.1:$PORT/api/inngest.

#include <inngest/inngest.hpp>

#include <cstdlib>
#include <iostream>

using namespace std::chrono_literals;

int main() {
    try {
        inngest::Client client({.app_id = "minimal"});  // INNGEST_DEV=1 for the dev server
        client.create_function(
            {.id = "greet", .triggers = {inngest::EventTrigger{"demo/greet"}}},
            [](inngest::Context& ctx) {
                const std::string name = ctx.step.run("pick-name", [&] {
                    const auto* given = ctx.event.data.if_contains("name");
                    return given != nullptr && given->is_string() ? std::string(given->get_string())
                                                                  : std::string("world");
                });
                ctx.step.sleep("pause", 1s);
                return ctx.step.run("greet", [&] { return "Hello, " + name + "!"; });
            });
        const char* port = std::getenv("PORT");
        inngest::ServeHandler handler(client);
        inngest::HttpServer server(
            handler,
            {.port = static_cast<unsigned short>(port != nullptr ? std::atoi(port) : 3000)});
        server.start();
        std::cout << "minimal-service listening on port " << server.port() << std::endl;
        return server.run();
    } catch (const std::exception& error) {
        std::cerr << "minimal-service: " << error.what() << "\n";
        return 1;
    }
}
