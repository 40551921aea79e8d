#include "core/http/outbound.hpp"

#include "core/http/host_allow_list.hpp"
#include "core/json/fields.hpp"
#include "core/text/storable.hpp"

#include <boost/json/serialize.hpp>

#include <regex>
#include <stdexcept>

namespace riveredge::core {

std::string http_host(const std::string& url) {
    // std::regex recurses once per character its `.*` takes: tens of kilobytes would overflow
    // the stack and take the process down. No URL we call is that long.
    if (url.size() > kMaxUrlBytes) {
        return {};
    }
    static const std::regex pattern(R"(^(https?)://([^/:?#@]+)(:\d+)?([/?#].*)?$)",
                                    std::regex::icase);
    std::smatch m;
    return std::regex_match(url, m, pattern) ? lower_ascii(m[2].str()) : std::string();
}

std::string attempt_key(const std::string& key, int attempt) {
    return attempt > 1 ? key + "/" + std::to_string(attempt) : key;
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
    HttpExchange exchange{method,
                          url,
                          std::nullopt,
                          {"Content-Type: application/json"},
                          std::chrono::seconds(timeout_seconds),
                          max_body_bytes,
                          std::nullopt};
    // GET and DELETE go without a body, whatever the description holds.
    if (method != "GET" && method != "DELETE") {
        const auto* b = request.if_contains("body");
        exchange.body = b == nullptr || b->is_null() ? std::string()
                        : b->is_string()             ? std::string(b->as_string())
                                                     : boost::json::serialize(*b);
    }
    if (!idempotency_key.empty()) {
        exchange.headers.push_back("Idempotency-Key: " + idempotency_key);
    }
    auto reply = exchange_http(policy, exchange);
    if (!reply.transport_error.empty()) {
        throw std::runtime_error("HTTP call failed: " + reply.transport_error);
    }
    if (reply.status >= 400) {
        throw std::runtime_error("HTTP call answered " + std::to_string(reply.status));
    }
    // Every caller keeps the answer (a fire's output, a node's, a task's variables), and
    // PostgreSQL refuses a NUL or bytes that are not UTF-8: they are kept as U+FFFD instead.
    return boost::json::object{{"status", reply.status}, {"body", storable_text(reply.body)}};
}

}  // namespace riveredge::core
