#pragma once

// A small blocking HTTP/1.1 client for SDK -> Inngest calls (register, events, runs API).
// HTTPS verifies the server against the system trust store (plus an optional CA file) and
// its host name; plain HTTP is for the dev server. Every call has one overall deadline.

#include <inngest/errors.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace inngest::detail {

struct OutboundRequest {
    std::string method = "GET";
    /// Absolute URL, `http[s]://host[:port]/path?query`.
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::chrono::milliseconds timeout{10000};
    /// Extra PEM CA bundle to trust for HTTPS (a private CA of a self-hosted server).
    std::optional<std::string> ca_file;
};

struct InboundResponse {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

/// Sends one request. Connection failures and timeouts are `kNetwork` errors; any HTTP status
/// is a successful result for the caller to judge.
Result<InboundResponse> send_http(const OutboundRequest& request);
/// As above; once `*abandon` turns true (checked every 50 ms) the request is dropped and a
/// `kNetwork` error answered.
Result<InboundResponse> send_http(const OutboundRequest& request, const std::atomic<bool>* abandon);

}  // namespace inngest::detail
