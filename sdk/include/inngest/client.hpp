#pragma once

/// @file
/// @brief `Client`: the app's identity, keys and URLs; function registration; event sending.

#include <inngest/context.hpp>
#include <inngest/errors.hpp>
#include <inngest/event.hpp>
#include <inngest/function.hpp>
#include <inngest/logger.hpp>
#include <inngest/step.hpp>

#include <boost/json/value_from.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace inngest {

/// The environment variables the client reads. Injectable, so tests never call `setenv`.
class Environment {
public:
    /// Reads the real process environment.
    static Environment process();
    /// A fixed set of variables (for tests and embedding).
    explicit Environment(std::initializer_list<std::pair<const std::string, std::string>> values);
    /// A fixed set of variables from a map.
    static Environment from_map(const std::map<std::string, std::string>& values);
    /// No variables at all: only explicit options count.
    static Environment none() { return from_map({}); }

    std::optional<std::string> get(std::string_view name) const;

private:
    Environment() = default;
    bool from_process_ = false;
    std::map<std::string, std::string, std::less<>> values_{};
};

/// Client settings. Unset fields fall back to `INNGEST_*` variables, then to defaults:
/// explicit field > specific variable > `INNGEST_BASE_URL` > URL in `INNGEST_DEV` > default.
struct ClientOptions {
    /// Required: the app's id (function slugs are `<app_id>-<function id>`).
    std::string app_id{};
    /// `INNGEST_EVENT_KEY`.
    std::optional<std::string> event_key{};
    /// `INNGEST_SIGNING_KEY`; required in cloud mode.
    std::optional<std::string> signing_key{};
    /// `INNGEST_SIGNING_KEY_FALLBACK`: accepted during key rotation.
    std::optional<std::string> signing_key_fallback{};
    /// `INNGEST_DEV`: talk to a dev server (no signatures required).
    std::optional<bool> dev{};
    /// `INNGEST_BASE_URL`: origin of both APIs.
    std::optional<std::string> base_url{};
    /// `INNGEST_API_BASE_URL`: origin of the register/runs API.
    std::optional<std::string> api_base_url{};
    /// `INNGEST_EVENT_API_BASE_URL`: origin of the event API.
    std::optional<std::string> event_api_base_url{};
    /// `INNGEST_ENV`: branch environment, sent as `X-Inngest-Env`.
    std::optional<std::string> env{};
    /// `INNGEST_SERVE_ORIGIN` (or `INNGEST_SERVE_HOST`): scheme and host advertised at sync.
    std::optional<std::string> serve_origin{};
    /// `INNGEST_SERVE_PATH`: path advertised at sync.
    std::optional<std::string> serve_path{};
    /// Version label of the deployed app, sent at sync.
    std::optional<std::string> app_version{};
    /// `INNGEST_ALLOW_IN_BAND_SYNC` (default true).
    std::optional<bool> allow_in_band_sync{};
    /// `INNGEST_ENABLE_UNAUTHED_SYNC` (default true, as the TS SDK): whether, in cloud mode, an
    /// unsigned PUT may start an out-of-band sync, which registers the URL this request was sent
    /// to (its `Host` header) unless `serve_origin` is set. False answers it 401; a signed PUT
    /// still syncs. Dev mode never asks for a signature.
    std::optional<bool> enable_unauthed_sync{};
    /// Extra PEM CA bundle trusted for HTTPS, on top of the system store (for a self-hosted
    /// Inngest behind a private CA).
    std::optional<std::string> tls_ca_file{};
    /// Timeout of each outbound HTTP request (event API, registration).
    std::chrono::milliseconds http_timeout{10000};
    /// Where SDK log lines go; default: JSON lines on stderr, level from `INNGEST_LOG_LEVEL`.
    LogSink log_sink{};
    /// Where the client reads the time it stamps on sent events (`ts`); the system clock when
    /// empty. Tests that fast-forward a local executor's clock pass the same clock here.
    std::function<std::chrono::system_clock::time_point()> clock{};
};

namespace detail {
struct Settings;
}

/// The Inngest client of one app.
///
/// @par Errors
/// The constructor and `create_function` throw `ConfigError` for invalid settings; nothing
/// later does.
/// @par Thread safety
/// Register functions first, from one thread; afterwards every const member is thread-safe.
class Client {
public:
    explicit Client(ClientOptions options, const Environment& environment = Environment::process());
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Registers a function. `body` is callable as `body(Context&)` and returns any
    /// Boost.JSON-convertible value (or nothing).
    template <class Body>
    const Function& create_function(FunctionOptions options, Body&& body) {
        using Result = std::invoke_result_t<Body&, Context&>;
        if constexpr (std::is_convertible_v<std::decay_t<Body>, Handler> &&
                      std::is_same_v<Result, boost::json::value>) {
            return add_function(std::move(options), Handler(std::forward<Body>(body)));
        } else {
            return add_function(std::move(options),
                                Handler([fn = std::forward<Body>(body)](
                                            Context& ctx) mutable -> boost::json::value {
                                    if constexpr (std::is_void_v<Result>) {
                                        fn(ctx);
                                        return nullptr;
                                    } else {
                                        return boost::json::value_from(fn(ctx));
                                    }
                                }));
        }
    }

    /// Sends one event to the event API. Retries network errors and 5xx answers with backoff
    /// (deduplicated by the server through `x-inngest-event-id-seed`).
    Result<SendEventResult> send(const Event& event) const;
    /// Sends several events in one request (at most 5000).
    Result<SendEventResult> send(const std::vector<Event>& events) const;

    /// `send` on a background thread: the caller's thread never blocks on the network.
    std::future<Result<SendEventResult>> send_async(std::vector<Event> events) const;

    const std::string& app_id() const noexcept;
    /// True in dev mode.
    bool dev_mode() const noexcept;
    /// All functions, failure handlers included, in registration order.
    const std::vector<std::unique_ptr<Function>>& functions() const noexcept;
    /// The function with this synced id, or null.
    const Function* find_function(std::string_view slug) const noexcept;
    /// The log sink in use.
    const LogSink& log_sink() const noexcept;

    /// Resolved settings (internal).
    const detail::Settings& settings() const noexcept { return *settings_; }

private:
    const Function& add_function(FunctionOptions options, Handler handler);

    std::unique_ptr<detail::Settings> settings_{};
    std::vector<std::unique_ptr<Function>> functions_{};
};

}  // namespace inngest
