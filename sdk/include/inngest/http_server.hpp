#pragma once

/// @file
/// @brief `HttpServer`: a ready Boost.Beast server for a `ServeHandler` (optional; any server
/// can call `ServeHandler::handle` instead).

#include <inngest/serve.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace inngest {

struct HttpServerOptions {
    std::string host = "127.0.0.1";
    /// 0 picks a free port (see `HttpServer::port`).
    unsigned short port = 3000;
    /// Requests to this path go to the serve handler.
    std::string serve_path = "/api/inngest";
    /// Threads always left free for network I/O: handlers never occupy them.
    int io_threads = 1;
    /// Handlers (function bodies, routes) that may run at once (0: max(2, hardware
    /// concurrency)). The server runs `io_threads + worker_threads` threads in all.
    int worker_threads = 0;
    /// Requests under these path prefixes (an app's serve endpoint, where function bodies run)
    /// take handler slots of their own, `isolated_worker_threads` of them: slow work there never
    /// takes a slot from the other routes, nor the other way round. Empty: one shared pool.
    std::vector<std::string> isolated_prefixes{};
    int isolated_worker_threads = 4;
    /// Exact paths answered at once on the I/O thread that read them, without a handler slot:
    /// only for cheap, non-blocking handlers (a liveness probe) that must answer while every
    /// slot is busy.
    std::vector<std::string> inline_paths{};
    /// Requests over this size get 413.
    std::size_t max_body_bytes = std::size_t{32} * 1024 * 1024;
    /// Request bodies held in memory at once, over all connections. A body is counted as its
    /// bytes arrive (a client that sends none holds none); bytes that would go over wait
    /// unread (in the socket) until earlier bodies are released. The body holding bytes
    /// longest always goes on, so a body up to `max_body_bytes` is never refused for this (the
    /// bytes held stay within the budget plus one body). Bodies of 64 KiB or less are not
    /// counted and never wait; a body sent chunked is counted chunk by chunk, and a chunk that
    /// does not fit at once ends the request with 503. 0: no budget.
    std::size_t max_buffered_body_bytes = std::size_t{64} * 1024 * 1024;
    /// A request whose body waited this long for the budget gets 503 (its connection closes).
    std::chrono::seconds budget_wait_timeout{30};
    /// Open connections at once, in all and from one address; past them a new connection gets
    /// 503 and is closed.
    std::size_t max_connections = 4096;
    std::size_t max_connections_per_address = 512;
    /// A connection that sends nothing for this long is closed.
    std::chrono::seconds read_timeout{60};
    /// Past this many requests in flight the server answers 503 with Retry-After.
    std::size_t max_in_flight = 1024;
    /// Other routes of the same server: return a response, or nullopt for 404.
    std::function<std::optional<HttpResponse>(const HttpRequest&)> routes{};
    /// Upgrade requests (`Upgrade: websocket`) for which this returns true are handed over to
    /// `on_upgrade` with the connected socket's file descriptor, which it then owns.
    std::function<bool(const HttpRequest&)> accepts_upgrade{};
    std::function<void(HttpRequest request, int native_socket)> on_upgrade{};
};

/// Serves a `ServeHandler` (and optional extra routes) over HTTP/1.1 with keep-alive.
///
/// All `io_threads + worker_threads` (+ `isolated_worker_threads`) threads run the I/O loop. A
/// request's handler runs on the thread that read the request (no hand-off) while fewer than
/// `worker_threads` handlers are running; otherwise it waits in a queue for the next free slot. So
/// `io_threads` threads are always free for I/O: a slow function body never blocks reading, writing
/// or accepting.
class HttpServer {
public:
    HttpServer(const ServeHandler& handler, HttpServerOptions options);
    /// A server of `options.routes` only (no serve handler).
    explicit HttpServer(HttpServerOptions options);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// Binds and starts serving in background threads. Throws `ConfigError` if it cannot bind.
    void start();
    /// The bound port (after `start`).
    unsigned short port() const noexcept;
    /// Stops accepting, lets requests in flight finish (up to `drain`), then stops.
    void stop(std::chrono::milliseconds drain = std::chrono::milliseconds{5000});
    /// `start` (unless already started), then block until SIGINT or SIGTERM, then `stop`.
    /// Returns 0.
    int run();

    /// Implementation (not API).
    class Impl;

private:
    std::unique_ptr<Impl> impl_{};
};

}  // namespace inngest
