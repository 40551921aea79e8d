#include "transport/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>

namespace inngest::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct ParsedUrl {
    std::string host;
    std::string port;
    std::string target;
};

Result<ParsedUrl> parse_url(std::string_view url) {
    constexpr std::string_view kHttp = "http://";
    if (url.starts_with("https://")) {
        return Error{ErrorCode::kNetwork, "HTTPS endpoints are not supported by this build"};
    }
    if (!url.starts_with(kHttp)) {
        return Error{ErrorCode::kInvalidArgument, "URL must start with http://"};
    }
    url.remove_prefix(kHttp.size());
    const std::size_t slash = url.find_first_of("/?");
    std::string_view authority = url.substr(0, slash);
    ParsedUrl parsed;
    parsed.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    if (!parsed.target.empty() && parsed.target.front() == '?') {
        parsed.target.insert(parsed.target.begin(), '/');
    }
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            return Error{ErrorCode::kInvalidArgument, "malformed IPv6 host in URL"};
        }
        parsed.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        parsed.port = authority.starts_with(":") ? std::string(authority.substr(1)) : "80";
    } else {
        const std::size_t colon = authority.rfind(':');
        parsed.host = std::string(authority.substr(0, colon));
        parsed.port =
            colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
    }
    if (parsed.host.empty()) {
        return Error{ErrorCode::kInvalidArgument, "URL has no host"};
    }
    return parsed;
}

}  // namespace

Result<InboundResponse> send_http(const OutboundRequest& request) {
    auto parsed = parse_url(request.url);
    if (!parsed) {
        return parsed.error();
    }
    asio::io_context io;
    beast::tcp_stream stream(io);
    http::request<http::string_body> message;
    message.method_string(request.method);
    message.target(parsed->target);
    message.version(11);
    message.set(http::field::host, parsed->host + ":" + parsed->port);
    for (const auto& [name, value] : request.headers) {
        message.set(name, value);
    }
    message.body() = request.body;
    message.prepare_payload();

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64U * 1024U * 1024U);
    beast::error_code failure;
    asio::ip::tcp::resolver resolver(io);

    stream.expires_after(request.timeout);
    resolver.async_resolve(
        parsed->host, parsed->port,
        [&](beast::error_code ec, const asio::ip::tcp::resolver::results_type& results) {
            if (ec) {
                failure = ec;
                return;
            }
            stream.async_connect(results, [&](beast::error_code ec2, const auto&) {
                if (ec2) {
                    failure = ec2;
                    return;
                }
                http::async_write(stream, message, [&](beast::error_code ec3, std::size_t) {
                    if (ec3) {
                        failure = ec3;
                        return;
                    }
                    http::async_read(stream, buffer, parser,
                                     [&](beast::error_code ec4, std::size_t) { failure = ec4; });
                });
            });
        });
    io.run_for(request.timeout + std::chrono::milliseconds(100));
    if (!io.stopped()) {
        return Error{ErrorCode::kNetwork, "request to " + parsed->host + " timed out"};
    }
    if (failure) {
        return Error{ErrorCode::kNetwork, "request to " + parsed->host + ":" + parsed->port +
                                              " failed: " + failure.message()};
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    auto response = parser.release();
    InboundResponse out;
    out.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
        out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(response.body());
    return out;
}

}  // namespace inngest::detail
