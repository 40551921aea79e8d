#include "transport/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <charconv>

namespace inngest::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

struct ParsedUrl {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target;
};

Result<ParsedUrl> parse_url(std::string_view url) {
    ParsedUrl parsed;
    if (url.starts_with("https://")) {
        parsed.tls = true;
        url.remove_prefix(8);
    } else if (url.starts_with("http://")) {
        url.remove_prefix(7);
    } else {
        return Error{ErrorCode::kInvalidArgument, "URL must start with http:// or https://"};
    }
    const char* default_port = parsed.tls ? "443" : "80";
    const std::size_t slash = url.find_first_of("/?");
    std::string_view authority = url.substr(0, slash);
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
        parsed.port = authority.starts_with(":") ? std::string(authority.substr(1)) : default_port;
    } else {
        const std::size_t colon = authority.rfind(':');
        parsed.host = std::string(authority.substr(0, colon));
        parsed.port = colon == std::string_view::npos ? default_port
                                                      : std::string(authority.substr(colon + 1));
    }
    if (parsed.host.empty()) {
        return Error{ErrorCode::kInvalidArgument, "URL has no host"};
    }
    return parsed;
}

// Resolve, connect, handshake (TLS only), write, read: one chain under one deadline.
template <class Stream, class Handshake>
beast::error_code exchange(asio::io_context& io,
                           Stream& stream,
                           const ParsedUrl& url,
                           http::request<http::string_body>& message,
                           http::response_parser<http::string_body>& parser,
                           std::chrono::milliseconds timeout,
                           Handshake handshake,
                           const std::atomic<bool>* abandon,
                           bool& timed_out,
                           bool& abandoned) {
    auto& lowest = beast::get_lowest_layer(stream);
    asio::ip::tcp::resolver resolver(io);
    beast::flat_buffer buffer;
    beast::error_code failure;
    lowest.expires_after(timeout);
    resolver.async_resolve(
        url.host, url.port,
        [&](beast::error_code ec, const asio::ip::tcp::resolver::results_type& results) {
            if (ec) {
                failure = ec;
                return;
            }
            lowest.async_connect(results, [&](beast::error_code ec2, const auto&) {
                if (ec2) {
                    failure = ec2;
                    return;
                }
                handshake([&](beast::error_code ec3) {
                    if (ec3) {
                        failure = ec3;
                        return;
                    }
                    http::async_write(stream, message, [&](beast::error_code ec4, std::size_t) {
                        if (ec4) {
                            failure = ec4;
                            return;
                        }
                        http::async_read(
                            stream, buffer, parser,
                            [&](beast::error_code ec5, std::size_t) { failure = ec5; });
                    });
                });
            });
        });
    const auto deadline =
        std::chrono::steady_clock::now() + timeout + std::chrono::milliseconds(100);
    while (!io.stopped()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            break;
        }
        if (abandon != nullptr && abandon->load()) {
            abandoned = true;
            break;
        }
        const std::chrono::steady_clock::duration left = deadline - now;
        io.run_for(abandon == nullptr ? left
                                      : std::min<std::chrono::steady_clock::duration>(
                                            left, std::chrono::milliseconds(50)));
    }
    timed_out = !io.stopped() && !abandoned;
    return failure;
}

bool is_ip_address(const std::string& host) {
    beast::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

}  // namespace

Result<InboundResponse> send_http(const OutboundRequest& request) {
    return send_http(request, nullptr);
}

Result<InboundResponse> send_http(const OutboundRequest& request,
                                  const std::atomic<bool>* abandon) {
    auto parsed = parse_url(request.url);
    if (!parsed) {
        return parsed.error();
    }
    http::request<http::string_body> message;
    message.method_string(request.method);
    message.target(parsed->target);
    message.version(11);
    // An IPv6 literal is bracketed in Host as in the URL (RFC 9110 §7.2).
    message.set(
        http::field::host,
        (parsed->host.find(':') != std::string::npos ? "[" + parsed->host + "]" : parsed->host) +
            ":" + parsed->port);
    for (const auto& [name, value] : request.headers) {
        message.set(name, value);
    }
    message.body() = request.body;
    message.prepare_payload();

    http::response_parser<http::string_body> parser;
    parser.body_limit(64U * 1024U * 1024U);
    asio::io_context io;
    bool timed_out = false;
    bool abandoned = false;
    beast::error_code failure;
    if (parsed->tls) {
        ssl::context context(ssl::context::tls_client);
        beast::error_code ec;
        context.set_default_verify_paths(ec);
        if (request.ca_file) {
            context.load_verify_file(*request.ca_file, ec);
            if (ec) {
                return Error{ErrorCode::kInvalidArgument,
                             "cannot load the CA file: " + ec.message()};
            }
        }
        context.set_verify_mode(ssl::verify_peer);
        beast::ssl_stream<beast::tcp_stream> stream(io, context);
        if (!is_ip_address(parsed->host)) {
            // SNI: servers that host several names pick the certificate from it.
            SSL_set_tlsext_host_name(stream.native_handle(), parsed->host.c_str());
        }
        stream.set_verify_callback(ssl::host_name_verification(parsed->host));
        failure = exchange(
            io, stream, *parsed, message, parser, request.timeout,
            [&](auto&& next) { stream.async_handshake(ssl::stream_base::client, next); }, abandon,
            timed_out, abandoned);
    } else {
        beast::tcp_stream stream(io);
        failure = exchange(
            io, stream, *parsed, message, parser, request.timeout,
            [](auto&& next) { next(beast::error_code{}); }, abandon, timed_out, abandoned);
        beast::error_code ignored;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    }
    if (abandoned) {
        return Error{ErrorCode::kNetwork, "request to " + parsed->host + " abandoned"};
    }
    if (timed_out) {
        return Error{ErrorCode::kNetwork, "request to " + parsed->host + " timed out"};
    }
    if (failure) {
        return Error{ErrorCode::kNetwork, "request to " + parsed->host + ":" + parsed->port +
                                              " failed: " + failure.message()};
    }
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
