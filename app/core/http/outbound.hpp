#pragma once

// Outbound HTTP calls that tenants configure (schedule HTTP actions, approval service tasks).
// Callers check the host against the tenant's allow-list first (host_allow_list.hpp); the
// deployment's policy (outbound_policy.hpp) is checked here, on the resolved address.

#include "core/http/outbound_policy.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace riveredge::core {

/// The host of an http(s) URL, lower-cased; empty when the URL is not http(s).
std::string http_host(const std::string& url);

/// What an exchange got back: the status and body (at most the limit asked for), or the
/// transport's error (no connection, a timeout) with status 0.
struct HttpReply {
    long status = 0;
    std::string body;
    std::string transport_error;
};

/// One exchange with `url`, only to a destination `policy` allows, connected to the address it
/// checked, no redirects; `headers` are extra lines ("Name: value") beside the JSON content
/// type. Any status is an answer; throws OutboundRefused when the policy refuses, and
/// std::runtime_error when the name does not resolve.
HttpReply exchange_http(const OutboundPolicy& policy,
                        const std::string& method,
                        const std::string& url,
                        const std::string& body,
                        const std::vector<std::string>& headers,
                        int timeout_seconds,
                        std::size_t max_body_bytes);

/// One call described by {url, method (POST by default; GET, POST, PUT, PATCH or DELETE), body
/// (a string, or JSON sent serialised)}: {status, body (at most `max_body_bytes`)}. Only to a
/// destination `policy` allows, connected to the address it checked; no redirects. Throws
/// OutboundRefused when the policy refuses, std::runtime_error on transport errors and on a
/// status of 400 or more. A durable step passes its key as `idempotency_key`: it goes out as the
/// Idempotency-Key header, the same on every retry, so the receiver can tell a repeat.
boost::json::object call_http(const OutboundPolicy& policy,
                              const boost::json::object& request,
                              int timeout_seconds,
                              const std::string& idempotency_key = {},
                              std::size_t max_body_bytes = 16 * 1024);

}  // namespace riveredge::core
