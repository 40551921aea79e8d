#pragma once

// Outbound HTTP calls that tenants configure (schedule HTTP actions, approval service tasks).
// Callers check the host against the tenant's allow-list first (host_allow_list.hpp); the
// deployment's policy (outbound_policy.hpp) is checked here, on the resolved address.

#include "core/http/exchange.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <string>

namespace riveredge::core {

/// The longest URL the app calls.
inline constexpr std::size_t kMaxUrlBytes = 8192;

/// The host of an http(s) URL, lower-cased; empty when the URL is not http(s) or is longer than
/// `kMaxUrlBytes`.
std::string http_host(const std::string& url);

/// One call described by {url, method (POST by default; GET, POST, PUT, PATCH or DELETE), body
/// (a string, or JSON sent serialised)}: {status, body (at most `max_body_bytes`, cut between
/// characters, each NUL and byte that is not UTF-8 as U+FFFD: storable_text)}. Only to a
/// destination `policy` allows, connected to the address it checked; no redirects. Throws
/// OutboundRefused when the policy refuses, std::runtime_error on transport errors and on a
/// status of 400 or more. A durable step passes its key as `idempotency_key`: it goes out as the
/// Idempotency-Key header, the same on every retry, so the receiver can tell a repeat.
boost::json::object call_http(const OutboundPolicy& policy,
                              const boost::json::object& request,
                              int timeout_seconds,
                              const std::string& idempotency_key = {},
                              std::size_t max_body_bytes = 16 * 1024);

/// The Idempotency-Key of attempt `attempt` of a call keyed `key`: `key` itself for the first
/// attempt, `key/<attempt>` for each retry after it. A receiver that keeps its answer per key
/// would give a retry under the same key the failure it answered before.
std::string attempt_key(const std::string& key, int attempt);

}  // namespace riveredge::core
