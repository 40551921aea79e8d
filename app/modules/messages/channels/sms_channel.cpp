#include "modules/messages/channels/sms_channel.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

#include <curl/curl.h>

namespace riveredge::messages {
namespace {

std::size_t collect(char* data, std::size_t size, std::size_t count, void* user) {
    auto* out = static_cast<std::string*>(user);
    if (out->size() < 4096) {
        out->append(data, std::min(size * count, 4096 - out->size()));
    }
    return size * count;
}

}  // namespace

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

SmsResult send_sms(const core::OutboundPolicy& policy,
                   const SmsSettings& settings,
                   const std::string& phone,
                   const std::string& subject,
                   const std::string& body) {
    std::optional<core::CheckedDestination> destination;
    try {
        destination = core::check_url(policy, settings.endpoint, {"http", "https"});
    } catch (const core::OutboundRefused& refused) {
        // The deployment refuses the endpoint: no attempt would ever pass.
        return {false, 0, std::string("not sent: ") + refused.what(), false};
    } catch (const std::exception& unresolved) {
        // The name did not resolve (DNS may be back later).
        return {false, 0, std::string("not sent: ") + unresolved.what(), true};
    }
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
        return {false, 0, "curl initialisation failed", true};
    }
    const std::string payload = boost::json::serialize(
        boost::json::object{{"phone", phone},
                            {"sign_name", settings.sign_name},
                            {"template_id", settings.template_id},
                            {"params", {{"subject", subject}, {"body", body}}}});
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    std::string authorization;
    if (settings.api_key) {
        authorization = "Authorization: Bearer " + *settings.api_key;
        headers = curl_slist_append(headers, authorization.c_str());
    }
    std::string response;
    const core::CurlPin pin(curl, *destination);
    curl_easy_setopt(curl, CURLOPT_URL, settings.endpoint.c_str());
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    const CURLcode status = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    SmsResult result;
    result.status = code;
    if (status != CURLE_OK) {
        result.reply = curl_easy_strerror(status);
        result.retriable = true;
        return result;
    }
    result.reply = std::to_string(code) + " " + response.substr(0, 500);
    result.sent = code >= 200 && code < 300;
    result.retriable = code == 429 || code >= 500;
    return result;
}

}  // namespace riveredge::messages
