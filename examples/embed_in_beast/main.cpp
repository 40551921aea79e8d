// embed-in-beast: an existing Boost.Beast server that mounts the Inngest serve handler at
// /api/inngest next to its own routes (here GET /hello). One synchronous thread per
// connection keeps the example short; use inngest::HttpServer or your own async server for
// production traffic.

#include <inngest/inngest.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <iostream>
#include <thread>

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

inngest::HttpRequest to_inngest(const http::request<http::string_body>& request) {
    inngest::HttpRequest out;
    out.method = std::string(request.method_string());
    const std::string_view target = request.target();
    const std::size_t question = target.find('?');
    out.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) {
        out.query = std::string(target.substr(question + 1));
    }
    for (const auto& field : request) {
        out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = request.body();
    return out;
}

void serve_connection(tcp::socket socket, const inngest::ServeHandler& inngest_handler) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(32U * 1024U * 1024U);
        http::read(socket, buffer, parser, ec);
        if (ec) {
            return;
        }
        const auto& request = parser.get();
        http::response<http::string_body> response;
        response.version(request.version());
        response.keep_alive(request.keep_alive());
        if (request.target().starts_with("/api/inngest")) {
            const inngest::HttpResponse answer = inngest_handler.handle(to_inngest(request));
            response.result(static_cast<unsigned>(answer.status));
            for (const auto& [name, value] : answer.headers) {
                response.set(name, value);
            }
            response.body() = answer.body;
        } else if (request.target() == "/hello") {
            response.result(http::status::ok);
            response.set(http::field::content_type, "text/plain");
            response.body() = "hello from the host service\n";
        } else {
            response.result(http::status::not_found);
        }
        response.prepare_payload();
        http::write(socket, response, ec);
        if (ec || !response.keep_alive()) {
            return;
        }
    }
}

}  // namespace

int main() {
    try {
        inngest::Client client({.app_id = "embedded"});
        client.create_function({.id = "ping", .triggers = {inngest::EventTrigger{"demo/ping"}}},
                               [](inngest::Context& ctx) {
                                   return ctx.step.run("pong", [] { return std::string("pong"); });
                               });
        const inngest::ServeHandler handler(client);

        const char* port = std::getenv("PORT");
        boost::asio::io_context io;
        tcp::acceptor acceptor(
            io, {boost::asio::ip::make_address("127.0.0.1"),
                 static_cast<unsigned short>(port != nullptr ? std::atoi(port) : 3000)});
        std::cout << "embed-in-beast listening on port " << acceptor.local_endpoint().port()
                  << std::endl;
        for (;;) {
            tcp::socket socket(io);
            acceptor.accept(socket);
            std::thread(serve_connection, std::move(socket), std::cref(handler)).detach();
        }
    } catch (const std::exception& error) {
        std::cerr << "embed-in-beast: " << error.what() << "\n";
        return 1;
    }
}
