// inngest-conformance-fixture: serves the functions of conformance-fixture.md on
// 127.0.0.1:$PORT (default 3000) at /api/inngest, plus GET /health. All Inngest settings come
// from INNGEST_* variables; FIXTURE_APP_ID overrides the app id.

#include "fixture_functions.hpp"

#include <inngest/inngest.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

int main() {
    try {
        const char* port_text = std::getenv("PORT");
        const char* app_id = std::getenv("FIXTURE_APP_ID");
        const int port = port_text != nullptr ? std::stoi(port_text) : 3000;
        if (port <= 0 || port > 65535) {
            std::cerr << "PORT must be between 1 and 65535\n";
            return 2;
        }

        inngest::Client client({.app_id = app_id != nullptr && *app_id != '\0'
                                              ? std::string(app_id)
                                              : std::string("conformance-fixture")});
        inngest_fixture::register_fixture_functions(client);
        inngest::ServeHandler handler(client);
        inngest::HttpServer server(
            handler,
            {.host = "127.0.0.1",
             .port = static_cast<unsigned short>(port),
             .routes =
                 [](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
                 if (request.method == "GET" && request.path == "/health") {
                     return inngest::HttpResponse{
                         200, {{"Content-Type", "application/json"}}, R"({"ok":true})"};
                 }
                 return std::nullopt;
             }});
        server.start();
        std::cout << "inngest-conformance-fixture listening on http://127.0.0.1:" << server.port()
                  << "/api/inngest (" << client.functions().size() << " functions, "
                  << (client.dev_mode() ? "dev" : "cloud") << " mode)" << std::endl;
        return server.run();
    } catch (const std::exception& error) {
        std::cerr << "inngest-conformance-fixture: " << error.what() << "\n";
        return 1;
    }
}
