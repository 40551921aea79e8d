#pragma once

// SMS through an HTTP gateway: POST JSON {phone, sign_name, template_id, params} with a bearer
// API key. 2xx is sent; 429, 5xx and connection failures retry; other 4xx are permanent.

#include "core/http/outbound_policy.hpp"
#include "modules/messages/channels/provider_result.hpp"

#include <optional>
#include <string>

namespace riveredge::messages {

struct SmsSettings {
    std::string endpoint;
    std::optional<std::string> api_key;
    std::string sign_name;
    std::string template_id;
};

/// Mainland or international numbers: `+` and 8-15 digits, or 11 digits starting with 1.
bool valid_phone(const std::string& phone);

/// `idempotency_key` is the delivery's stable id, sent as `Idempotency-Key`: a gateway that
/// honours it sends a delivery re-posted by a retried step once.
ProviderResult send_sms(const core::OutboundPolicy& policy,
                        const SmsSettings& settings,
                        const std::string& phone,
                        const std::string& subject,
                        const std::string& body,
                        const std::string& idempotency_key);

}  // namespace riveredge::messages
