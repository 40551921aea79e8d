#pragma once

// What an outside provider (an SMTP relay, an SMS gateway) answered a delivery, the same for
// every channel.

#include "core/http/outbound_policy.hpp"

#include <exception>
#include <string>

namespace riveredge::messages {

struct ProviderResult {
    bool sent = false;
    /// The provider's reply, or why nothing was sent.
    std::string reply;
    /// It may pass on a later attempt: connection failures, SMTP 4xx, HTTP 429 and 5xx.
    bool retriable = false;
};

/// Not sent because the provider could not be reached: "not sent: <why>". Final when the
/// deployment refuses the destination (no attempt would ever pass); retriable otherwise (a name
/// that did not resolve may resolve later).
inline ProviderResult not_sent(const std::exception& failure) {
    const bool refused = dynamic_cast<const core::OutboundRefused*>(&failure) != nullptr;
    return {false, std::string("not sent: ") + failure.what(), !refused};
}

}  // namespace riveredge::messages
