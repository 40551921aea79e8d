#include "core/http/outbound.hpp"

#include "core/http/host_allow_list.hpp"
#include "core/json/fields.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <memory>
#include <regex>
#include <stdexcept>

#include <curl/curl.h>

namespace riveredge::core {
namespace {

struct Collected {
    std::string body;
    std::size_t limit = 0;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* user) {
    auto* out = static_cast<Collected*>(user);
    const std::size_t n = size * count;
    if (out->body.size() < out->limit) {
        out->body.append(data, std::min(n, out->limit - out->body.size()));
    }
    return n;
}

}  // namespace

std::string http_host(const std::string& url) {
    static const std::regex pattern(R"(^(https?)://([^/:?#@]+)(:\d+)?([/?#].*)?$)",
                                    std::regex::icase);
    std::smatch m;
    return std::regex_match(url, m, pattern) ? lower_ascii(m[2].str()) : std::string();
}

HttpReply exchange_http(const OutboundPolicy& policy,
                        const std::string& method,
                        const std::string& url,
                        const std::string& body,
                        const std::vector<std::string>& headers,
                        int timeout_seconds,
                        std::size_t max_body_bytes) {
    const auto destination = check_url(policy, url, {"http", "https"});
    const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(),
                                                                   curl_easy_cleanup);
    if (!curl) {
        return {0, {}, "curl initialisation failed"};
    }
    const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> lines(
        curl_slist_append(nullptr, "Content-Type: application/json"), curl_slist_free_all);
    for (const auto& header : headers) {
        // Appending to a list that is not empty leaves its head where it is.
        curl_slist_append(lines.get(), header.c_str());
    }
    Collected response{{}, max_body_bytes};
    const CurlPin pin(curl.get(), destination);
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT,
                     static_cast<long>(std::min(timeout_seconds, 10)));
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout_seconds));
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, lines.get());
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response);
    if (method != "GET" && method != "DELETE") {
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    const CURLcode status = curl_easy_perform(curl.get());
    if (status != CURLE_OK) {
        return {0, {}, curl_easy_strerror(status)};
    }
    long code = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &code);
    return {code, std::move(response.body), {}};
}

boost::json::object call_http(const OutboundPolicy& policy,
                              const boost::json::object& request,
                              int timeout_seconds,
                              const std::string& idempotency_key,
                              std::size_t max_body_bytes) {
    const std::string url = string_field(request, "url");
    const std::string method =
        string_field(request, "method").empty() ? "POST" : string_field(request, "method");
    if (!OutboundPolicy::method_allowed(method)) {
        throw OutboundRefused("the method '" + method +
                              "' is not one of GET, POST, PUT, PATCH, DELETE");
    }
    std::string body;
    if (const auto* b = request.if_contains("body"); b != nullptr && !b->is_null()) {
        body = b->is_string() ? std::string(b->as_string()) : boost::json::serialize(*b);
    }
    std::vector<std::string> headers;
    if (!idempotency_key.empty()) {
        headers.push_back("Idempotency-Key: " + idempotency_key);
    }
    auto reply = exchange_http(policy, method, url, body, headers, timeout_seconds, max_body_bytes);
    if (!reply.transport_error.empty()) {
        throw std::runtime_error("HTTP call failed: " + reply.transport_error);
    }
    if (reply.status >= 400) {
        throw std::runtime_error("HTTP call answered " + std::to_string(reply.status));
    }
    return boost::json::object{{"status", reply.status}, {"body", std::move(reply.body)}};
}

}  // namespace riveredge::core
