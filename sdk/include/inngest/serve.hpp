#pragma once

/// @file
/// @brief `ServeHandler`: the transport-agnostic serve endpoint (GET introspection, PUT sync,
/// POST call).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace inngest {

class Client;

/// An HTTP request as any C++ server can hand it over.
struct HttpRequest {
    std::string method{};
    /// The path without the query, e.g. `/api/inngest`.
    std::string path{};
    /// The raw query string without `?`, e.g. `fnId=app-fn&stepId=step`.
    std::string query{};
    std::vector<std::pair<std::string, std::string>> headers{};
    std::string body{};
    /// The peer's IP address, as `HttpServer` accepted the connection (empty elsewhere).
    std::string remote_address{};

    /// The first header with this name (case-insensitive), or empty.
    std::string_view header(std::string_view name) const noexcept;
};

/// An HTTP response to write back as is.
struct HttpResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers{};
    std::string body{};

    /// The first header with this name (case-insensitive), or empty.
    std::string_view header(std::string_view name) const noexcept;
};

struct ServeOptions {
    /// Larger request bodies get 413 without being parsed.
    std::size_t max_body_bytes = std::size_t{32} * 1024 * 1024;
    /// Reported as `X-Inngest-Framework` and in introspection.
    std::string framework = "beast";
    /// Dev mode refuses unsigned requests with an `Origin` header (a web page's) or a Host that
    /// is not a loopback name (a page whose name was rebound to 127.0.0.1). True lets any Host
    /// through, for a dev server reaching this app over a network on purpose; Origin is still
    /// refused.
    bool dev_any_host = false;
};

/// The serve endpoint of one client's functions.
///
/// @par Errors
/// Never throws: every failure becomes a 4xx/5xx with a JSON body and one log line.
/// @par Thread safety
/// `handle` is const and may run on any number of threads at once.
class ServeHandler {
public:
    explicit ServeHandler(const Client& client, ServeOptions options = {});

    HttpResponse handle(const HttpRequest& request) const;

    const Client& client() const noexcept { return *client_; }
    const ServeOptions& options() const noexcept { return options_; }

private:
    const Client* client_;
    ServeOptions options_;
};

}  // namespace inngest
