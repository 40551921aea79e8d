#include "config/settings.hpp"

#include <inngest/errors.hpp>
#include <inngest/version.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace inngest {

Environment Environment::process() {
    Environment environment;
    environment.from_process_ = true;
    return environment;
}

Environment::Environment(std::initializer_list<std::pair<const std::string, std::string>> values)
    : values_(values.begin(), values.end()) {}

Environment Environment::from_map(const std::map<std::string, std::string>& values) {
    Environment environment;
    environment.values_.insert(values.begin(), values.end());
    return environment;
}

std::optional<std::string> Environment::get(std::string_view name) const {
    if (from_process_) {
        const char* value = std::getenv(std::string(name).c_str());
        if (value == nullptr || *value == '\0') {
            return std::nullopt;
        }
        return std::string(value);
    }
    const auto it = values_.find(name);
    if (it == values_.end() || it->second.empty()) {
        return std::nullopt;
    }
    return it->second;
}

namespace detail {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string trim_trailing_slash(std::string url) {
    while (!url.empty() && url.back() == '/') {
        url.pop_back();
    }
    return url;
}

bool looks_like_url(std::string_view text) {
    return text.starts_with("http://") || text.starts_with("https://");
}

// TS rules for INNGEST_DEV (protocol §2): 1/true -> dev, 0/false -> cloud, URL -> dev at URL.
struct DevSetting {
    std::optional<bool> dev;
    std::optional<std::string> url;
};

DevSetting parse_dev(const std::optional<std::string>& raw) {
    if (!raw) {
        return {};
    }
    const std::string value = lower(*raw);
    if (value == "1" || value == "true" || value == "yes" || value == "on") {
        return {true, std::nullopt};
    }
    if (value == "0" || value == "false" || value == "no" || value == "off") {
        return {false, std::nullopt};
    }
    if (value.empty() || value == "undefined") {
        return {};
    }
    // As the TS SDK: any other value is the dev server's URL, `http://` assumed when it names
    // no scheme ("localhost:8288"); a value that makes no URL leaves the mode unset (cloud).
    const std::string url = raw->find("://") == std::string::npos ? "http://" + *raw : *raw;
    const auto host_start = url.find("://") + 3;
    const bool usable = host_start < url.size() && url[host_start] != '/' &&
                        url.find_first_of(" \t\r\n") == std::string::npos;
    if (usable) {
        return {true, trim_trailing_slash(url)};
    }
    return {};
}

std::optional<bool> parse_bool(const std::optional<std::string>& raw, std::string_view name) {
    if (!raw) {
        return std::nullopt;
    }
    const std::string value = lower(*raw);
    if (value == "1" || value == "true" || value == "yes" || value == "on") {
        return true;
    }
    if (value == "0" || value == "false" || value == "no" || value == "off") {
        return false;
    }
    throw ConfigError(std::string(name) + " must be true or false");
}

template <class T>
std::optional<T> first_of(const std::optional<T>& a, const std::optional<T>& b) {
    return a ? a : b;
}

void check_origin(const std::string& url, std::string_view what) {
    if (!looks_like_url(url)) {
        throw ConfigError(std::string(what) + " must start with http:// or https://");
    }
}

}  // namespace

Settings resolve_settings(const ClientOptions& options, const Environment& environment) {
    Settings settings;
    if (options.app_id.empty()) {
        throw ConfigError("ClientOptions.app_id is required");
    }
    settings.app_id = options.app_id;

    const DevSetting dev_env = parse_dev(environment.get("INNGEST_DEV"));
    settings.dev = options.dev.value_or(dev_env.dev.value_or(false));

    // As the TS SDK: what the code says beats the environment (ClientOptions.base_url over
    // INNGEST_API_BASE_URL), the specific over the general, then the dev URL or the defaults.
    std::string default_origin = settings.dev ? "http://localhost:8288" : "https://api.inngest.com";
    std::string default_event_origin = settings.dev ? "http://localhost:8288" : "https://inn.gs";
    if (dev_env.url) {
        default_origin = *dev_env.url;
        default_event_origin = *dev_env.url;
    }
    const auto env_base = environment.get("INNGEST_BASE_URL");
    settings.api_origin =
        trim_trailing_slash(first_of(first_of(options.api_base_url, options.base_url),
                                     first_of(environment.get("INNGEST_API_BASE_URL"), env_base))
                                .value_or(default_origin));
    settings.event_origin = trim_trailing_slash(
        first_of(first_of(options.event_api_base_url, options.base_url),
                 first_of(environment.get("INNGEST_EVENT_API_BASE_URL"), env_base))
            .value_or(default_event_origin));
    check_origin(settings.api_origin, "the API base URL");
    check_origin(settings.event_origin, "the event API base URL");

    settings.event_key = first_of(options.event_key, environment.get("INNGEST_EVENT_KEY"));
    if (const auto key = first_of(options.signing_key, environment.get("INNGEST_SIGNING_KEY"))) {
        settings.signing_key = SigningKey::parse(*key);
    }
    if (const auto key = first_of(options.signing_key_fallback,
                                  environment.get("INNGEST_SIGNING_KEY_FALLBACK"))) {
        settings.signing_key_fallback = SigningKey::parse(*key);
    }
    settings.env = first_of(options.env, environment.get("INNGEST_ENV"));
    settings.serve_origin = first_of(
        options.serve_origin,
        first_of(environment.get("INNGEST_SERVE_ORIGIN"), environment.get("INNGEST_SERVE_HOST")));
    if (settings.serve_origin) {
        settings.serve_origin = trim_trailing_slash(*settings.serve_origin);
        check_origin(*settings.serve_origin, "the serve origin");
    }
    settings.serve_path = first_of(options.serve_path, environment.get("INNGEST_SERVE_PATH"));
    if (settings.serve_path && !settings.serve_path->empty() &&
        settings.serve_path->front() != '/') {
        settings.serve_path = "/" + *settings.serve_path;  // "api/inngest" means the path
    }
    settings.app_version = options.app_version;
    settings.allow_in_band_sync = options.allow_in_band_sync.value_or(
        parse_bool(environment.get("INNGEST_ALLOW_IN_BAND_SYNC"), "INNGEST_ALLOW_IN_BAND_SYNC")
            .value_or(true));
    settings.enable_unauthed_sync = options.enable_unauthed_sync.value_or(
        parse_bool(environment.get("INNGEST_ENABLE_UNAUTHED_SYNC"), "INNGEST_ENABLE_UNAUTHED_SYNC")
            .value_or(true));
    settings.http_timeout = options.http_timeout;
    settings.tls_ca_file = options.tls_ca_file;
    settings.clock = options.clock;
    settings.log_sink = options.log_sink
                            ? options.log_sink
                            : stderr_log_sink(parse_log_level(
                                  environment.get("INNGEST_LOG_LEVEL").value_or("info")));
    return settings;
}

const std::string& sdk_header_value() {
    static const std::string value = std::string(kSdkName) + ":v" + kSdkVersion;
    return value;
}

const std::string& sdk_sync_value() {
    static const std::string value = std::string(kSdkLanguage) + ":v" + kSdkVersion;
    return value;
}

}  // namespace detail
}  // namespace inngest
