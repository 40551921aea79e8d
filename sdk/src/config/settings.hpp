#pragma once

// The client's settings after resolving options, environment and defaults (protocol §2).

#include "crypto/signing_key.hpp"

#include <inngest/client.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace inngest::detail {

struct Settings {
    std::string app_id;
    bool dev = false;
    std::string api_origin;
    std::string event_origin;
    std::optional<std::string> event_key;
    std::optional<SigningKey> signing_key;
    std::optional<SigningKey> signing_key_fallback;
    std::optional<std::string> env;
    std::optional<std::string> serve_origin;
    std::optional<std::string> serve_path;
    std::optional<std::string> app_version;
    bool allow_in_band_sync = true;
    bool enable_unauthed_sync = true;
    std::chrono::milliseconds http_timeout{10000};
    std::optional<std::string> tls_ca_file;
    LogSink log_sink;
    std::function<std::chrono::system_clock::time_point()> clock;
};

/// Resolves `options` against `environment`. Throws `ConfigError` for invalid values.
Settings resolve_settings(const ClientOptions& options, const Environment& environment);

/// The `X-Inngest-SDK` value, `inngest-cpp:v<version>`.
const std::string& sdk_header_value();
/// The `sdk` of a sync, `cpp:v<version>`: the server takes the app's language from the text
/// before the colon (the TS SDK likewise sends `inngest-js:v…` as header, `js:v…` here).
const std::string& sdk_sync_value();

}  // namespace inngest::detail
