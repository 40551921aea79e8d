#include "core/http/exchange.hpp"

#include "core/text/utf8.hpp"

#include <algorithm>
#include <memory>

#include <curl/curl.h>

namespace riveredge::core {
namespace {

struct Collected {
    std::string body;
    std::size_t limit = 0;
    bool truncated = false;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* user) {
    auto* out = static_cast<Collected*>(user);
    const std::size_t n = size * count;
    const std::size_t room = out->limit - out->body.size();
    out->body.append(data, std::min(n, room));
    if (n > room) {
        // The rest is not kept, so reading on would only spend the timeout: stop here.
        out->truncated = true;
        return 0;
    }
    return n;
}

}  // namespace

HttpReply exchange_http(const OutboundPolicy& policy, const HttpExchange& request) {
    const auto destination = check_url(policy, request.url, {"http", "https"});
    const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(),
                                                                   curl_easy_cleanup);
    if (!curl) {
        return {0, {}, false, "curl initialisation failed"};
    }
    curl_slist* head = nullptr;
    for (const auto& header : request.headers) {
        curl_slist* longer = curl_slist_append(head, header.c_str());
        if (longer == nullptr) {
            curl_slist_free_all(head);
            return {0, {}, false, "out of memory for the request's headers"};
        }
        head = longer;
    }
    const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> lines(head,
                                                                            curl_slist_free_all);
    const long timeout_ms = std::max<long>(1, static_cast<long>(request.timeout.count()));
    Collected response{{}, request.max_body_bytes};
    const CurlPin pin(curl.get(), destination);
    curl_easy_setopt(curl.get(), CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    const long connect_ms =
        request.connect_timeout ? static_cast<long>(request.connect_timeout->count()) : 10'000L;
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS,
                     std::max(1L, std::min(timeout_ms, connect_ms)));
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, lines.get());
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response);
    if (request.body) {
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, request.body->c_str());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE,
                         static_cast<long>(request.body->size()));
    }
    const CURLcode status = curl_easy_perform(curl.get());
    if (status != CURLE_OK && !(status == CURLE_WRITE_ERROR && response.truncated)) {
        return {0, {}, false, curl_easy_strerror(status)};
    }
    if (response.truncated) {
        // Cut at the limit, which can fall inside a character: the body ends before it.
        response.body.resize(utf8_prefix(response.body, response.body.size()).size());
    }
    long code = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &code);
    return {code, std::move(response.body), response.truncated, {}};
}

}  // namespace riveredge::core
