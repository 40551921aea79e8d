#include "modules/messages/channels/sms_channel.hpp"

#include "core/http/exchange.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>

namespace riveredge::messages {

bool valid_phone(const std::string& phone) {
    const bool plus = !phone.empty() && phone[0] == '+';
    const std::string digits = plus ? phone.substr(1) : phone;
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
        })) {
        return false;
    }
    return plus ? digits.size() >= 8 && digits.size() <= 15
                : digits.size() == 11 && digits[0] == '1';
}

ProviderResult send_sms(const core::OutboundPolicy& policy,
                        const SmsSettings& settings,
                        const std::string& phone,
                        const std::string& subject,
                        const std::string& body,
                        const std::string& idempotency_key) {
    const std::string payload = boost::json::serialize(
        boost::json::object{{"phone", phone},
                            {"sign_name", settings.sign_name},
                            {"template_id", settings.template_id},
                            {"params", {{"subject", subject}, {"body", body}}}});
    core::HttpExchange request{
        "POST",
        settings.endpoint,
        payload,
        {"Content-Type: application/json", "Idempotency-Key: " + idempotency_key},
        std::chrono::seconds(30),
        500,
        std::nullopt};
    if (settings.api_key) {
        request.headers.push_back("Authorization: Bearer " + *settings.api_key);
    }
    core::HttpReply reply;
    try {
        reply = core::exchange_http(policy, request);
    } catch (const std::exception& failure) {
        return not_sent(failure);
    }
    if (!reply.transport_error.empty()) {
        return {false, reply.transport_error, true};
    }
    return {reply.status >= 200 && reply.status < 300,
            std::to_string(reply.status) + " " + reply.body,
            reply.status == 429 || reply.status >= 500};
}

}  // namespace riveredge::messages
