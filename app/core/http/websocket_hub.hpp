#pragma once

// Authenticated WebSocket connections, by (tenant, user), for real-time pushes. Connections
// arrive as sockets handed over by the HTTP server after an upgrade request.

#include "core/auth/principal.hpp"

#include <inngest/serve.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace riveredge::core {

class WebSocketHub {
public:
    explicit WebSocketHub(std::string jwt_secret);
    ~WebSocketHub();
    WebSocketHub(const WebSocketHub&) = delete;
    WebSocketHub& operator=(const WebSocketHub&) = delete;

    /// At most this many open sockets per user of a tenant; one more is refused with 429.
    static constexpr std::size_t kMaxConnectionsPerUser = 8;

    /// Completes the handshake of an upgrade request on `native_socket` (owned from now on).
    /// The token comes from `Authorization: Bearer` or the `token` query parameter; without a
    /// valid one the answer is 401 and the socket is closed. The socket is closed (code 1008)
    /// when the token expires: a connection never outlives its credential.
    void adopt(const inngest::HttpRequest& request, int native_socket);
    /// Sends `text` to every open socket of the user in the tenant.
    void publish(const TenantId& tenant, const std::string& user_id, const std::string& text);
    /// Open sockets (for tests and readiness).
    std::size_t connections() const;

    class Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace riveredge::core
