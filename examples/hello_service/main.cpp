// hello-service: a small service that serves Inngest functions on 127.0.0.1:$PORT/api/inngest.
// Start it, then run `inngest dev -u http://127.0.0.1:3000/api/inngest` beside it and send
// `demo/hello` or `demo/order.placed` events from the dev server's UI.

#include <inngest/inngest.hpp>

#include <boost/describe/class.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

using namespace std::chrono_literals;
namespace json = boost::json;

struct Receipt {
    std::string order_id;
    double total = 0;
};
BOOST_DESCRIBE_STRUCT(Receipt, (), (order_id, total))

int main() {
    try {
        // Dev mode unless the environment says otherwise, so the example runs with no keys.
        const bool configured =
            std::getenv("INNGEST_DEV") != nullptr || std::getenv("INNGEST_SIGNING_KEY") != nullptr;
        inngest::ClientOptions options{.app_id = "hello-service"};
        if (!configured) {
            options.dev = true;
        }
        inngest::Client client(std::move(options));

        client.create_function(
            {.id = "hello", .name = "Say hello", .triggers = {inngest::EventTrigger{"demo/hello"}}},
            [](inngest::Context& ctx) {
                const auto* who = ctx.event.data.if_contains("name");
                const std::string name = who != nullptr && who->is_string()
                                             ? std::string(who->get_string())
                                             : std::string("world");
                return json::object{{"message", "Hello, " + name + "!"}};
            });

        client.create_function(
            {.id = "process-order",
             .name = "Process an order",
             .triggers = {inngest::EventTrigger{"demo/order.placed"}},
             .retries = 3,
             .concurrency = {{.limit = 5, .key = "event.data.customer_id"}}},
            [](inngest::Context& ctx) {
                const auto receipt = ctx.step.run("price-order", [&] {
                    const auto* id = ctx.event.data.if_contains("order_id");
                    return Receipt{id != nullptr && id->is_string() ? std::string(id->get_string())
                                                                    : std::string("unknown"),
                                   42.5};
                });
                ctx.log.info("priced order " + receipt.order_id);
                ctx.step.sleep("cool-off", 5s);
                const auto confirmed = ctx.step.wait_for_event(
                    "wait-for-payment",
                    {.event = "demo/order.paid", .timeout = 1h, .match = "data.order_id"});
                return json::object{{"order_id", receipt.order_id},
                                    {"total", receipt.total},
                                    {"paid", confirmed.has_value()}};
            });

        const char* port_text = std::getenv("PORT");
        const int port = port_text != nullptr ? std::atoi(port_text) : 3000;
        inngest::ServeHandler handler(client);
        inngest::HttpServer server(
            handler, {.host = "127.0.0.1", .port = static_cast<unsigned short>(port)});
        server.start();
        std::cout << "hello-service: serving " << client.functions().size()
                  << " functions on http://127.0.0.1:" << server.port() << "/api/inngest ("
                  << (client.dev_mode() ? "dev" : "cloud") << " mode); Ctrl-C stops" << std::endl;
        return server.run();
    } catch (const std::exception& error) {
        std::cerr << "hello-service: " << error.what() << "\n";
        return 1;
    }
}
