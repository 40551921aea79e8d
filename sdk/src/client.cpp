#include "config/settings.hpp"
#include "crypto/crypto.hpp"
#include "protocol/function_config.hpp"
#include "protocol/json_writer.hpp"
#include "transport/http_client.hpp"

#include <inngest/client.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <random>
#include <thread>

namespace inngest {
namespace {

constexpr std::size_t kMaxEventsPerSend = 5000;
constexpr int kSendAttempts = 5;

std::int64_t now_millis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Protocol §12: `<unix millis>,<base64 of 10 random bytes>`, generated once per send.
std::string event_id_seed() {
    return std::to_string(now_millis()) + "," +
           detail::crypto::base64_encode(detail::crypto::random_bytes(10));
}

}  // namespace

Client::Client(ClientOptions options, const Environment& environment)
    : settings_(
          std::make_unique<detail::Settings>(detail::resolve_settings(options, environment))) {}

Client::~Client() = default;

const Function& Client::add_function(FunctionOptions options, Handler handler) {
    detail::validate_function_options(options);
    if (!handler) {
        throw ConfigError("function '" + options.id + "' has no body");
    }
    const std::string slug = settings_->app_id + "-" + options.id;
    const std::string failure_slug = slug + "-failure";
    for (const auto& existing : functions_) {
        if (existing->slug() == slug || (options.on_failure && existing->slug() == failure_slug)) {
            throw ConfigError("duplicate function id '" + existing->slug() + "'");
        }
    }
    Handler on_failure = options.on_failure;
    const std::string name = options.name.value_or(options.id);
    const std::string failure_id = options.id + "-failure";
    functions_.push_back(std::make_unique<Function>(slug, std::move(options), std::move(handler)));
    const Function& created = *functions_.back();
    if (on_failure) {
        // Synced as a second function, the way the official SDKs do (protocol §7.4).
        FunctionOptions failure;
        failure.id = failure_id;
        failure.name = name + " (failure)";
        failure.triggers = {
            EventTrigger{"inngest/function.failed", "event.data.function_id == '" + slug + "'"}};
        failure.retries = 1;
        functions_.push_back(
            std::make_unique<Function>(failure_slug, std::move(failure), std::move(on_failure)));
    }
    return created;
}

Result<SendEventResult> Client::send(const Event& event) const {
    return send(std::vector<Event>{event});
}

Result<SendEventResult> Client::send(const std::vector<Event>& events) const {
    if (events.empty()) {
        return SendEventResult{};
    }
    if (events.size() > kMaxEventsPerSend) {
        return Error{ErrorCode::kInvalidArgument, "at most 5000 events may be sent at once"};
    }
    std::string event_key;
    if (settings_->event_key) {
        event_key = *settings_->event_key;
    } else if (settings_->dev) {
        event_key = "NO_EVENT_KEY_SET";
    } else {
        return Error{ErrorCode::kInvalidArgument,
                     "no event key: set ClientOptions.event_key or INNGEST_EVENT_KEY"};
    }
    boost::json::array payload;
    payload.reserve(events.size());
    const std::int64_t now = settings_->clock
                                 ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                       settings_->clock().time_since_epoch())
                                       .count()
                                 : now_millis();
    for (const auto& event : events) {
        if (event.name.empty()) {
            return Error{ErrorCode::kInvalidArgument, "an event needs a name"};
        }
        if (event.name.starts_with("inngest/")) {
            return Error{ErrorCode::kInvalidArgument,
                         "event names starting with 'inngest/' are reserved"};
        }
        boost::json::value json = boost::json::value_from(event);
        if (!event.ts) {
            json.get_object()["ts"] = now;
        }
        payload.emplace_back(std::move(json));
    }

    detail::OutboundRequest request;
    request.method = "POST";
    request.url = settings_->event_origin + "/e/" + event_key;
    request.body = detail::to_json(payload);
    request.timeout = settings_->http_timeout;
    request.ca_file = settings_->tls_ca_file;
    request.headers = {{"Content-Type", "application/json"},
                       {"X-Inngest-SDK", detail::sdk_header_value()},
                       {"User-Agent", detail::sdk_header_value()},
                       {"x-inngest-event-id-seed", event_id_seed()}};
    if (settings_->env) {
        request.headers.emplace_back("X-Inngest-Env", *settings_->env);
    }

    std::minstd_rand jitter(static_cast<unsigned>(now));
    Error last{ErrorCode::kNetwork, "event API unreachable"};
    for (int attempt = 0; attempt < kSendAttempts; ++attempt) {
        if (attempt > 0) {
            const auto backoff = std::chrono::milliseconds(100LL << (attempt - 1)) +
                                 std::chrono::milliseconds(jitter() % 100);
            std::this_thread::sleep_for(backoff);
        }
        auto response = detail::send_http(request);
        if (!response) {
            last = response.error();
            if (last.code != ErrorCode::kNetwork) {
                return last;
            }
            continue;
        }
        if (response->status >= 500) {
            last = Error{ErrorCode::kRemoteRejected,
                         "event API answered " + std::to_string(response->status)};
            continue;
        }
        boost::system::error_code ec;
        const boost::json::value body = boost::json::parse(response->body, ec);
        if (response->status >= 400) {
            std::string message = "event API answered " + std::to_string(response->status);
            if (!ec && body.is_object()) {
                if (const auto* error = body.get_object().if_contains("error");
                    error != nullptr && error->is_string()) {
                    message += ": " + std::string(error->get_string());
                }
            }
            return Error{ErrorCode::kRemoteRejected, message};
        }
        if (ec || !body.is_object()) {
            return Error{ErrorCode::kRemoteRejected, "event API answered with invalid JSON"};
        }
        return boost::json::value_to<SendEventResult>(body);
    }
    return last;
}

std::future<Result<SendEventResult>> Client::send_async(std::vector<Event> events) const {
    return std::async(std::launch::async,
                      [this, events = std::move(events)] { return send(events); });
}

const std::string& Client::app_id() const noexcept {
    return settings_->app_id;
}

bool Client::dev_mode() const noexcept {
    return settings_->dev;
}

const std::vector<std::unique_ptr<Function>>& Client::functions() const noexcept {
    return functions_;
}

const Function* Client::find_function(std::string_view slug) const noexcept {
    for (const auto& function : functions_) {
        if (function->slug() == slug) {
            return function.get();
        }
    }
    return nullptr;
}

const LogSink& Client::log_sink() const noexcept {
    return settings_->log_sink;
}

}  // namespace inngest
