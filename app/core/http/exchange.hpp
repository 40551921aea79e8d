#pragma once

// One outbound HTTP exchange, checked against the deployment's policy and pinned to the address
// it checked. Kept apart from the JSON helpers in outbound.hpp so that the script worker, which
// links no more than it must, sends through the same code as the app.

#include "core/http/outbound_policy.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::core {

struct HttpExchange {
    std::string method = "POST";
    std::string url;
    std::optional<std::string> body;   ///< nullopt sends none
    std::vector<std::string> headers;  ///< "Name: value" lines, sent as given
    std::chrono::milliseconds timeout{30'000};
    std::size_t max_body_bytes = 16 * 1024;
    /// How long connecting may take, within `timeout`; by default at most 10 s of it.
    std::optional<std::chrono::milliseconds> connect_timeout;
};

/// What an exchange got back: the status and body (at most the limit asked for; `truncated`
/// when the answer was longer, and then cut before a UTF-8 character the limit fell inside), or
/// the transport's error (no connection, a timeout) with status 0.
struct HttpReply {
    long status = 0;
    std::string body;
    bool truncated = false;
    std::string transport_error;
};

/// One exchange, only to a destination `policy` allows, connected to the address it checked,
/// no redirects. Any status is an answer; throws OutboundRefused when the policy refuses, and
/// std::runtime_error when the name does not resolve.
HttpReply exchange_http(const OutboundPolicy& policy, const HttpExchange& request);

}  // namespace riveredge::core
