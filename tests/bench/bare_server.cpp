// inngest-bench-bare: the benchmark's bound. A bare Boost.Beast server that reads each request,
// parses its body into a Boost.JSON DOM, and answers a fixed small JSON response: what any
// C++ endpoint taking the same bodies must at least pay.

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
public:
    explicit Session(tcp::socket socket) : stream_(std::move(socket)) {}

    void start() { read(); }

private:
    void read() {
        parser_.emplace();
        parser_->body_limit(std::uint64_t{256} * 1024 * 1024);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (!ec) {
                                 self->respond();
                             }
                         });
    }

    void respond() {
        auto request = parser_->release();
        boost::system::error_code ec;
        const auto parsed = boost::json::parse(request.body(), ec);
        response_ = {};
        response_.version(request.version());
        response_.keep_alive(request.keep_alive());
        response_.result(ec && !request.body().empty() ? http::status::bad_request
                                                       : http::status::ok);
        response_.set(http::field::content_type, "application/json");
        response_.body() = parsed.is_object() ? R"({"ok":true})" : R"({"ok":false})";
        response_.prepare_payload();
        http::async_write(stream_, response_,
                          [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                              if (!write_ec && self->response_.keep_alive()) {
                                  self->read();
                              }
                          });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> response_;
};

void accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
        if (!ec) {
            socket.set_option(tcp::no_delay(true));
            std::make_shared<Session>(std::move(socket))->start();
        }
        accept(acceptor);
    });
}

}  // namespace

int main() {
    const char* port_text = std::getenv("PORT");
    const auto port = static_cast<unsigned short>(port_text ? std::atoi(port_text) : 3400);
    const unsigned threads = std::max(2U, std::thread::hardware_concurrency());
    asio::io_context io(static_cast<int>(threads));
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    accept(acceptor);
    std::cout << "inngest-bench-bare listening on http://127.0.0.1:"
              << acceptor.local_endpoint().port() << std::endl;
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) {
        pool.emplace_back([&io] { io.run(); });
    }
    io.run();
    for (auto& t : pool) {
        t.join();
    }
}
