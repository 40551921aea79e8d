#include "config/settings.hpp"
#include "crypto/crypto.hpp"
#include "execution/invocation.hpp"
#include "protocol/call_request.hpp"
#include "protocol/function_config.hpp"
#include "protocol/json_scan.hpp"
#include "protocol/json_writer.hpp"
#include "transport/http_client.hpp"
#include "transport/url.hpp"

#include <inngest/client.hpp>
#include <inngest/serve.hpp>
#include <inngest/version.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

namespace inngest {
namespace {

using detail::SignatureCheck;

constexpr std::string_view kSchemaVersion = "2024-05-24";

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view find_header(const std::vector<std::pair<std::string, std::string>>& headers,
                             std::string_view name) noexcept {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) {
            return value;
        }
    }
    return {};
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const std::size_t eq = pair.find('=');
        const std::string key = detail::percent_decode(pair.substr(0, eq));
        if (key == name) {
            return eq == std::string_view::npos ? std::string{}
                                                : detail::percent_decode(pair.substr(eq + 1));
        }
    }
    return std::nullopt;
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

boost::json::value optional_string(const std::optional<std::string>& value) {
    if (value) {
        return boost::json::value(*value);
    }
    return nullptr;
}

// How a request authenticated itself (protocol §5).
struct Auth {
    bool signed_request = false;  // a signature header was present
    bool verified = false;        // and it verified with one of our keys
    const detail::SigningKey* key = nullptr;
    SignatureCheck check = SignatureCheck::kMissing;
};

class RequestHandler {
public:
    RequestHandler(const Client& client, const ServeOptions& options, const HttpRequest& request)
        : client_(client), settings_(client.settings()), options_(options), request_(request) {}

    HttpResponse handle() {
        if (request_.body.size() > options_.max_body_bytes) {
            return error(
                ErrorCode::kBodyTooLarge,
                "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes");
        }
        if (!settings_.dev && !settings_.signing_key) {
            return error(ErrorCode::kMissingSigningKey,
                         "cloud mode needs a signing key (INNGEST_SIGNING_KEY); refusing to serve");
        }
        auth_ = authenticate();
        if (settings_.dev && !auth_.verified) {
            if (auto refused = refuse_browser()) {
                return std::move(*refused);
            }
        }
        if (request_.method == "GET") {
            return introspect();
        }
        if (request_.method == "PUT") {
            return sync();
        }
        if (request_.method == "POST") {
            return call();
        }
        return error(ErrorCode::kMethodNotAllowed,
                     "method " + request_.method + " is not allowed on the serve endpoint");
    }

private:
    Auth authenticate() const {
        Auth auth;
        const std::string_view header = request_.header("X-Inngest-Signature");
        auth.signed_request = !header.empty();
        if (!settings_.signing_key) {
            return auth;
        }
        auth.check = detail::verify_signature(header, request_.body, *settings_.signing_key,
                                              settings_.signing_key_fallback, now_seconds());
        if (auth.check == SignatureCheck::kMismatch && !request_.body.empty()) {
            // Some server paths sign the JCS form but send another encoding (protocol §5.2.6).
            boost::system::error_code ec;
            const boost::json::value parsed = detail::parse_json(request_.body, ec);
            if (!ec) {
                const std::string canonical = detail::to_canonical_json(parsed);
                if (canonical != request_.body) {
                    auth.check =
                        detail::verify_signature(header, canonical, *settings_.signing_key,
                                                 settings_.signing_key_fallback, now_seconds());
                }
            }
        }
        if (auth.check == SignatureCheck::kPrimary) {
            auth.verified = true;
            auth.key = &*settings_.signing_key;
        } else if (auth.check == SignatureCheck::kFallback) {
            auth.verified = true;
            auth.key = &*settings_.signing_key_fallback;
        }
        return auth;
    }

    // Dev mode runs unsigned calls, and a loopback bind does not keep a browser out: any page
    // may post to 127.0.0.1 without a preflight, and one whose own name was rebound to
    // 127.0.0.1 may read the answers. Browsers send an Origin on such posts and the page's
    // name as Host; the dev server sends neither.
    std::optional<HttpResponse> refuse_browser() {
        std::string reason;
        if (!request_.header("Origin").empty()) {
            reason = "dev mode refuses unsigned requests from web pages (an Origin header)";
        } else if (const std::string_view host = request_.header("Host");
                   !options_.dev_any_host && !host.empty() && !detail::loopback_host_header(host)) {
            reason = "dev mode answers unsigned requests on loopback names only";
        } else {
            return std::nullopt;
        }
        log(LogLevel::kWarn, "refused " + request_.method + " " + request_.path + ": " + reason);
        return json_response(
            403, detail::to_json(boost::json::object{{"code", "forbidden"}, {"message", reason}}));
    }

    // Cloud mode requires a valid signature; dev mode requires one only if it was sent and
    // we hold a key to check it with (protocol §5.5).
    bool rejected() const {
        if (auth_.verified) {
            return false;
        }
        if (!settings_.dev) {
            return true;
        }
        return auth_.signed_request && settings_.signing_key.has_value();
    }

    static std::string_view check_name(SignatureCheck check) {
        switch (check) {
            case SignatureCheck::kMissing:
                return "missing signature";
            case SignatureCheck::kMalformed:
                return "malformed signature header";
            case SignatureCheck::kExpired:
                return "signature timestamp outside the 5 minute window";
            case SignatureCheck::kMismatch:
                return "signature does not match";
            default:
                return "verified";
        }
    }

    HttpResponse unauthorized() {
        log(LogLevel::kWarn, std::string("rejected ") + request_.method + " " + request_.path +
                                 ": " + std::string(check_name(auth_.check)));
        // No SDK identification on 401s, so anonymous callers cannot fingerprint us (§4.2).
        HttpResponse response;
        response.status = 401;
        response.headers = {{"Content-Type", "application/json"},
                            {"X-Inngest-SDK-Handled", "true"}};
        response.body = R"({"code":"unauthorized","message":"Unauthorized"})";
        return response;
    }

    HttpResponse introspect() {
        if (!settings_.dev && !auth_.verified) {
            return unauthorized();
        }
        return json_response(200, detail::to_json(introspection_body()));
    }

    // The introspection body (protocol §6): authenticated fields only for a verified request.
    boost::json::object introspection_body() const {
        boost::json::object body;
        body["schema_version"] = kSchemaVersion;
        body["mode"] = settings_.dev ? "dev" : "cloud";
        body["function_count"] = client_.functions().size();
        body["has_event_key"] = settings_.event_key.has_value();
        body["has_signing_key"] = settings_.signing_key.has_value();
        body["has_signing_key_fallback"] = settings_.signing_key_fallback.has_value();
        if (!auth_.signed_request) {
            body["authentication_succeeded"] = nullptr;
        } else {
            body["authentication_succeeded"] = auth_.verified;
        }
        if (auth_.verified) {
            add_authenticated_fields(body);
        }
        body["extra"] = boost::json::object{};
        return body;
    }

    void add_authenticated_fields(boost::json::object& body) const {
        body["api_origin"] = settings_.api_origin;
        body["event_api_origin"] = settings_.event_origin;
        body["app_id"] = settings_.app_id;
        body["env"] = optional_string(settings_.env);
        body["framework"] = options_.framework;
        body["sdk_language"] = kSdkLanguage;
        body["sdk_version"] = kSdkVersion;
        body["serve_origin"] = optional_string(settings_.serve_origin);
        body["serve_path"] = optional_string(settings_.serve_path);
        body["event_key_hash"] =
            settings_.event_key
                ? boost::json::value(detail::crypto::sha256_hex(*settings_.event_key))
                : boost::json::value(nullptr);
        body["signing_key_hash"] = short_key_hash(settings_.signing_key);
        body["signing_key_fallback_hash"] = short_key_hash(settings_.signing_key_fallback);
        body["capabilities"] = capabilities();
    }

    // As the TS SDK shows them: 12 hex digits of the hashed key, without its `signkey-<env>-`
    // prefix. Enough to tell keys apart; the hashed key itself is the API's bearer.
    template <class Key>
    static boost::json::value short_key_hash(const std::optional<Key>& key) {
        if (!key) {
            return nullptr;
        }
        std::string hashed = key->hashed();
        if (hashed.rfind("signkey-", 0) == 0) {
            if (const auto dash = hashed.find('-', 8); dash != std::string::npos) {
                hashed.erase(0, dash + 1);
            }
        }
        return boost::json::value(hashed.substr(0, 12));
    }

    static boost::json::object capabilities() {
        return boost::json::object{{"in_band_sync", "v1"}, {"trust_probe", "v1"}};
    }

    // The URL the server should call: overrides first, else what this request was sent to.
    std::string own_url(std::string_view advertised) const {
        std::string origin;
        std::string path;
        if (!advertised.empty()) {
            const std::size_t scheme = advertised.find("://");
            const std::size_t path_start =
                scheme == std::string_view::npos ? 0 : advertised.find('/', scheme + 3);
            origin = std::string(advertised.substr(0, path_start));
            path = path_start == std::string_view::npos
                       ? "/"
                       : std::string(advertised.substr(path_start));
        } else {
            const std::string_view host = request_.header("Host");
            origin = "http://" + std::string(host.empty() ? "localhost" : host);
            path = request_.path;
        }
        if (settings_.serve_origin) {
            origin = *settings_.serve_origin;
        }
        if (settings_.serve_path) {
            path = *settings_.serve_path;
        }
        return origin + path;
    }

    HttpResponse sync() {
        if (auth_.signed_request && settings_.signing_key && !auth_.verified) {
            return unauthorized();
        }
        const bool wants_in_band = iequals(request_.header("X-Inngest-Sync-Kind"), "in_band");
        // As the TS SDK: in dev mode an in-band sync needs no signature (the dev server's own
        // conformance runner relies on it); in cloud mode only a verified one is answered.
        if (wants_in_band && settings_.allow_in_band_sync && (auth_.verified || settings_.dev)) {
            return sync_in_band();
        }
        if (!settings_.dev && !auth_.verified &&
            (wants_in_band || !settings_.enable_unauthed_sync)) {
            return unauthorized();
        }
        return sync_out_of_band();
    }

    HttpResponse sync_in_band() {
        boost::system::error_code ec;
        const boost::json::value body = boost::json::parse(request_.body, ec);
        const boost::json::value* url = nullptr;
        if (!ec && body.is_object()) {
            url = body.get_object().if_contains("url");
        }
        if (url == nullptr || !url->is_string() || url->get_string().empty()) {
            return error(ErrorCode::kMalformedRequest, "in-band sync needs a non-empty 'url'");
        }
        const std::string serve_url = own_url(url->get_string());

        boost::json::object reply;
        reply["app_id"] = settings_.app_id;
        reply["url"] = serve_url;
        reply["sdk"] = detail::sdk_sync_value();
        reply["sdk_language"] = kSdkLanguage;
        reply["sdk_version"] = kSdkVersion;
        reply["sdk_author"] = "inngest-cpp";
        reply["framework"] = options_.framework;
        reply["platform"] = nullptr;
        reply["env"] = optional_string(settings_.env);
        reply["appVersion"] = optional_string(settings_.app_version);
        reply["capabilities"] = capabilities();
        reply["inspection"] = introspection_body();  // authenticated fields only when verified
        reply["functions"] = detail::function_configs(client_.functions(), serve_url);
        HttpResponse response = json_response(200, detail::to_json(reply));
        response.headers.emplace_back("X-Inngest-Sync-Kind", "in_band");
        log(LogLevel::kInfo,
            "in-band sync: reported " + std::to_string(client_.functions().size()) + " functions");
        return response;
    }

    HttpResponse sync_out_of_band() {
        const std::string serve_url = own_url({});
        boost::json::object payload;
        payload["url"] = serve_url;
        payload["deployType"] = "ping";
        payload["appName"] = settings_.app_id;
        payload["sdk"] = detail::sdk_sync_value();
        payload["v"] = "0.1";
        payload["framework"] = options_.framework;
        if (settings_.app_version) {
            payload["appVersion"] = *settings_.app_version;
        }
        payload["capabilities"] = capabilities();
        payload["functions"] = detail::function_configs(client_.functions(), serve_url);

        detail::OutboundRequest outbound;
        outbound.method = "POST";
        outbound.url = settings_.api_origin + "/fn/register";
        if (const auto deploy_id = query_param(request_.query, "deployId");
            deploy_id && !deploy_id->empty()) {
            outbound.url += "?deployId=" + detail::percent_encode(*deploy_id);
        }
        outbound.body = detail::to_json(payload);
        outbound.timeout = settings_.http_timeout;
        outbound.ca_file = settings_.tls_ca_file;
        outbound.headers = {{"Content-Type", "application/json"},
                            {"X-Inngest-SDK", detail::sdk_header_value()},
                            {"User-Agent", detail::sdk_header_value()},
                            {"X-Inngest-Sync-Kind", "out_of_band"}};
        if (const auto kind = request_.header("X-Inngest-Server-Kind"); !kind.empty()) {
            outbound.headers.emplace_back("X-Inngest-Expected-Server-Kind", std::string(kind));
        }
        if (settings_.env) {
            outbound.headers.emplace_back("X-Inngest-Env", *settings_.env);
        }
        auto result =
            register_with(outbound, settings_.signing_key ? &*settings_.signing_key : nullptr);
        if (result && (result->status == 401 || result->status == 403) &&
            settings_.signing_key_fallback) {
            result = register_with(outbound, &*settings_.signing_key_fallback);
        }

        boost::json::object reply;
        if (!result) {
            reply["message"] = "sync failed: " + result.error().message;
            reply["modified"] = false;
            log(LogLevel::kError, "out-of-band sync failed: " + result.error().message);
            return json_response(500, detail::to_json(reply), "out_of_band");
        }
        boost::system::error_code ec;
        const boost::json::value server_reply = boost::json::parse(result->body, ec);
        if (result->status < 200 || result->status >= 300) {
            std::string message = "the Inngest server answered " + std::to_string(result->status);
            if (!ec && server_reply.is_object()) {
                for (const char* field : {"error", "message"}) {
                    if (const auto* text = server_reply.get_object().if_contains(field);
                        text != nullptr && text->is_string()) {
                        message += ": " + std::string(text->get_string());
                        break;
                    }
                }
            }
            reply["message"] = message;
            reply["modified"] = false;
            log(LogLevel::kError, "out-of-band sync failed: " + message);
            return json_response(500, detail::to_json(reply), "out_of_band");
        }
        bool modified = false;
        if (!ec && server_reply.is_object()) {
            if (const auto* flag = server_reply.get_object().if_contains("modified");
                flag != nullptr && flag->is_bool()) {
                modified = flag->get_bool();
            }
        }
        reply["message"] = "Successfully synced.";
        reply["modified"] = modified;
        log(LogLevel::kInfo, "out-of-band sync to " + settings_.api_origin + " succeeded");
        return json_response(200, detail::to_json(reply), "out_of_band");
    }

    static Result<detail::InboundResponse> register_with(detail::OutboundRequest request,
                                                         const detail::SigningKey* key) {
        if (key != nullptr) {
            request.headers.emplace_back("Authorization", "Bearer " + key->hashed());
        }
        return detail::send_http(request);
    }

    HttpResponse call() {
        if (rejected()) {
            return unauthorized();
        }
        if (const auto probe = query_param(request_.query, "probe")) {
            if (*probe == "trust") {
                return json_response(200, "{}");
            }
            return error(ErrorCode::kMalformedRequest, "unknown probe '" + *probe + "'");
        }
        const auto fn_id = query_param(request_.query, "fnId");
        if (!fn_id || fn_id->empty()) {
            return error(ErrorCode::kMalformedRequest, "missing fnId query parameter");
        }
        const Function* function = client_.find_function(*fn_id);
        if (function == nullptr) {
            function = client_.find_function(settings_.app_id + "-" + *fn_id);
        }
        if (function == nullptr) {
            return error(ErrorCode::kUnknownFunction,
                         "function '" + *fn_id + "' is not served here");
        }
        auto parsed = detail::parse_call_request(request_.body);
        if (!parsed) {
            return error(parsed.error().code, parsed.error().message);
        }
        if (parsed->use_api) {
            if (auto loaded = load_state_from_api(*parsed); !loaded) {
                log(LogLevel::kError, "loading run state for " + parsed->run_id +
                                          " failed: " + loaded.error().message);
                return error(ErrorCode::kRemoteRejected,
                             "could not load the run's state from the Inngest API: " +
                                 loaded.error().message);
            }
        }
        const std::string step_id = query_param(request_.query, "stepId").value_or("step");
        const detail::Outcome outcome = detail::execute_call(*function, *parsed, step_id, client_);
        HttpResponse response = json_response(outcome.status, outcome.body);
        if (outcome.no_retry) {
            response.headers.emplace_back("X-Inngest-No-Retry",
                                          *outcome.no_retry ? "true" : "false");
        }
        if (outcome.retry_after) {
            response.headers.emplace_back("Retry-After", *outcome.retry_after);
        }
        if (outcome.status >= 500) {
            log(LogLevel::kWarn, "function " + function->slug() + " run " + parsed->run_id +
                                     " attempt " + std::to_string(parsed->attempt) + " failed (" +
                                     std::to_string(outcome.status) + ")");
        }
        return response;
    }

    // Protocol §11: state too large to inline is fetched from the API with the hashed key.
    Result<boost::json::value> api_get(const std::string& path) const {
        auto text = api_get_text(path);
        if (!text) {
            return text.error();
        }
        boost::system::error_code ec;
        boost::json::value body = boost::json::parse(*text, ec);
        if (ec) {
            return Error{ErrorCode::kRemoteRejected, "GET " + path + " answered invalid JSON"};
        }
        return body;
    }

    Result<std::string> api_get_text(const std::string& path) const {
        detail::OutboundRequest outbound;
        outbound.method = "GET";
        outbound.url = settings_.api_origin + path;
        outbound.timeout = settings_.http_timeout;
        outbound.ca_file = settings_.tls_ca_file;
        outbound.headers = {{"X-Inngest-SDK", detail::sdk_header_value()},
                            {"User-Agent", detail::sdk_header_value()}};
        if (settings_.env) {
            outbound.headers.emplace_back("X-Inngest-Env", *settings_.env);
        }
        auto response =
            register_with(outbound, settings_.signing_key ? &*settings_.signing_key : nullptr);
        if (response && (response->status == 401 || response->status == 403) &&
            settings_.signing_key_fallback) {
            response = register_with(outbound, &*settings_.signing_key_fallback);
        }
        if (!response) {
            return response.error();
        }
        if (response->status != 200) {
            return Error{ErrorCode::kRemoteRejected,
                         "GET " + path + " answered " + std::to_string(response->status)};
        }
        return std::move(response->body);
    }

    Result<void> load_state_from_api(detail::CallRequest& request) const {
        if (request.run_id.empty()) {
            return Error{ErrorCode::kMalformedRequest, "use_api without ctx.run_id"};
        }
        auto batch = api_get("/v0/runs/" + request.run_id + "/batch");
        if (!batch) {
            return batch.error();
        }
        auto actions = api_get_text("/v0/runs/" + request.run_id + "/actions");
        if (!actions) {
            return actions.error();
        }
        // The steps stay slices of the loaded text, as they are of a call body.
        auto state_body = std::make_unique<std::string>(std::move(*actions));
        detail::StepState steps;
        if (!batch->is_array() || !steps.scan(*state_body)) {
            return Error{ErrorCode::kRemoteRejected, "unexpected run state shape"};
        }
        try {
            std::vector<Event> events;
            for (const auto& event : batch->get_array()) {
                events.push_back(boost::json::value_to<Event>(event));
            }
            if (!events.empty()) {
                request.event = events.front();
                request.events = std::move(events);
            }
        } catch (const std::exception& e) {
            return Error{ErrorCode::kRemoteRejected,
                         std::string("invalid batch event: ") + e.what()};
        }
        request.steps = std::move(steps);
        request.state_body = std::move(state_body);
        if (request.stack.empty()) {
            for (const auto key : request.steps.keys()) {
                request.stack.emplace_back(key);
            }
        }
        return {};
    }

    HttpResponse json_response(int status, std::string body, std::string_view sync_kind = {}) {
        HttpResponse response;
        response.status = status;
        response.headers = {{"Content-Type", "application/json"},
                            {"X-Inngest-SDK", detail::sdk_header_value()},
                            {"X-Inngest-Req-Version", "2"},
                            {"X-Inngest-Framework", options_.framework},
                            {"User-Agent", detail::sdk_header_value()}};
        if (!sync_kind.empty()) {
            response.headers.emplace_back("X-Inngest-Sync-Kind", std::string(sync_kind));
        }
        if (auth_.key != nullptr) {
            response.headers.emplace_back("X-Inngest-Signature",
                                          detail::sign_body(*auth_.key, body, now_seconds()));
        }
        response.body = std::move(body);
        return response;
    }

    HttpResponse error(ErrorCode code, const std::string& message) {
        log(LogLevel::kWarn, std::string(error_code_name(code)) + ": " + message);
        boost::json::object body{{"code", error_code_name(code)}, {"message", message}};
        HttpResponse response = json_response(error_code_status(code), detail::to_json(body));
        if (code == ErrorCode::kMalformedRequest || code == ErrorCode::kBodyTooLarge) {
            // Resending the same bytes cannot succeed.
            response.headers.emplace_back("X-Inngest-No-Retry", "true");
        } else {
            response.headers.emplace_back("X-Inngest-No-Retry", "false");
        }
        return response;
    }

    void log(LogLevel level, const std::string& message) const {
        if (client_.log_sink()) {
            client_.log_sink()(level, message);
        }
    }

    const Client& client_;
    const detail::Settings& settings_;
    const ServeOptions& options_;
    const HttpRequest& request_;
    Auth auth_;
};

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const noexcept {
    return find_header(headers, name);
}

std::string_view HttpResponse::header(std::string_view name) const noexcept {
    return find_header(headers, name);
}

ServeHandler::ServeHandler(const Client& client, ServeOptions options)
    : client_(&client), options_(std::move(options)) {}

namespace {

// Every response says the SDK handled it (also a 401, which carries nothing else of ours) and,
// except on a 401, how long the handler took (`Server-Timing`, milliseconds).
void mark_handled(HttpResponse& response, std::chrono::steady_clock::time_point started) {
    const auto has = [&](std::string_view name) {
        return std::any_of(response.headers.begin(), response.headers.end(),
                           [&](const auto& header) { return header.first == name; });
    };
    if (!has("X-Inngest-SDK-Handled")) {
        response.headers.emplace_back("X-Inngest-SDK-Handled", "true");
    }
    if (response.status != 401) {
        const auto took =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
        char timing[48];
        std::snprintf(timing, sizeof timing, "handler;dur=%.3f", took.count());
        response.headers.emplace_back("Server-Timing", timing);
    }
}

HttpResponse handle_or_report(const Client& client,
                              const ServeOptions& options,
                              const HttpRequest& request) {
    try {
        return RequestHandler(client, options, request).handle();
    } catch (const std::exception& e) {
        if (client.log_sink()) {
            client.log_sink()(LogLevel::kError,
                              std::string("serve handler internal error: ") + e.what());
        }
    } catch (...) {
        if (client.log_sink()) {
            client.log_sink()(LogLevel::kError, "serve handler internal error");
        }
    }
    HttpResponse response;
    response.status = 500;
    response.headers = {{"Content-Type", "application/json"},
                        {"X-Inngest-SDK", detail::sdk_header_value()},
                        {"X-Inngest-Req-Version", "2"},
                        {"X-Inngest-No-Retry", "false"}};
    response.body = R"({"code":"internal","message":"internal error in the serve handler"})";
    return response;
}

}  // namespace

HttpResponse ServeHandler::handle(const HttpRequest& request) const {
    const auto started = std::chrono::steady_clock::now();
    HttpResponse response = handle_or_report(*client_, options_, request);
    mark_handled(response, started);
    return response;
}

}  // namespace inngest
