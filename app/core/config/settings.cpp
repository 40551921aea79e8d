#include "core/config/settings.hpp"

#include "core/http/outbound_policy.hpp"
#include "core/text/integers.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

extern char** environ;

namespace riveredge::core {
namespace {

std::map<std::string, std::string> read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::invalid_argument("RIVEREDGE_CONFIG_FILE: cannot read " + path);
    }
    std::map<std::string, std::string> values;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        const auto eq = line.find('=');
        if (eq != std::string::npos) {
            values[line.substr(0, eq)] = line.substr(eq + 1);
        }
    }
    return values;
}

std::map<std::string, std::string> with_config_file(const std::map<std::string, std::string>& env) {
    std::map<std::string, std::string> merged = env;
    if (const auto file = env.find("RIVEREDGE_CONFIG_FILE"); file != env.end()) {
        for (const auto& [key, value] : read_file(file->second)) {
            merged.emplace(key, value);  // the environment wins
        }
    }
    return merged;
}

// `signkey-<env>-<hex>` or bare hex, at least 32 bytes of key.
bool valid_signing_key(const std::string& key) {
    std::string hex = key;
    if (hex.starts_with("signkey-")) {
        const auto dash = hex.find('-', 8);
        hex = dash == std::string::npos ? std::string() : hex.substr(dash + 1);
    }
    return hex.size() >= 64 && hex.size() % 2 == 0 &&
           hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

}  // namespace

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

std::string load_jwt_secret(const std::map<std::string, std::string>& environment) {
    const auto env = with_config_file(environment);
    if (const auto it = env.find("RIVEREDGE_JWT_SECRET"); it != env.end() && !it->second.empty()) {
        return it->second;
    }
    std::ifstream kept(".data/jwt_secret");
    std::string secret;
    if (kept && std::getline(kept, secret) && secret.size() >= 32) {
        return secret;
    }
    throw std::invalid_argument(
        "no JWT secret: set RIVEREDGE_JWT_SECRET, or run from the directory where scripts/dev "
        "keeps .data/jwt_secret");
}

std::map<std::string, std::string> process_environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry(*e);
        const auto eq = entry.find('=');
        if (eq != std::string::npos) {
            env[entry.substr(0, eq)] = entry.substr(eq + 1);
        }
    }
    return env;
}

Settings load_settings(const std::map<std::string, std::string>& environment) {
    const std::map<std::string, std::string> env = with_config_file(environment);
    const auto get = [&](const char* name) -> std::optional<std::string> {
        const auto it = env.find(name);
        if (it == env.end() || it->second.empty()) {
            return std::nullopt;
        }
        return it->second;
    };
    Settings settings;
    std::vector<std::string> problems;
    const auto number = [&](const char* name, int low, int high, int fallback) {
        const auto text = get(name);
        if (!text) {
            return fallback;
        }
        try {
            std::size_t used = 0;
            const int value = std::stoi(*text, &used);
            if (used != text->size() || value < low || value > high) {
                throw std::out_of_range(name);
            }
            return value;
        } catch (const std::exception&) {
            problems.push_back(std::string(name) + " must be a number between " +
                               std::to_string(low) + " and " + std::to_string(high));
            return fallback;
        }
    };
    settings.host = get("RIVEREDGE_HOST").value_or(settings.host);
    settings.port = static_cast<unsigned short>(number("RIVEREDGE_PORT", 1, 65535, settings.port));
    settings.database_pool_size =
        number("RIVEREDGE_DB_POOL_SIZE", 1, 256, settings.database_pool_size);
    settings.executor_port =
        static_cast<unsigned short>(number("RIVEREDGE_EXECUTOR_PORT", 0, 65535, 0));
    if (const auto text = get("RIVEREDGE_MAX_BODY_BYTES")) {
        // Bounded below by what the serve endpoint takes (a run's state comes in one body) and
        // what an upload needs, above by what one request may hold in memory.
        constexpr std::size_t kLow = std::size_t{1} << 20;
        constexpr std::size_t kHigh = std::size_t{1} << 30;
        if (const auto bytes = parse_integer_in<std::size_t>(*text, kLow, kHigh)) {
            settings.max_body_bytes = *bytes;
        } else {
            problems.emplace_back(
                "RIVEREDGE_MAX_BODY_BYTES must be a number of bytes between 1048576 (1 MiB) and "
                "1073741824 (1 GiB), without a unit; it was '" +
                *text + "'");
        }
    }
    if (const auto url = get("RIVEREDGE_DATABASE_URL")) {
        settings.database_url = *url;
    } else {
        problems.emplace_back("RIVEREDGE_DATABASE_URL is required (a libpq connection string)");
    }
    settings.migration_database_url = get("RIVEREDGE_MIGRATION_DATABASE_URL");
    if (const auto secret = get("RIVEREDGE_JWT_SECRET")) {
        settings.jwt_secret = *secret;
        if (secret->size() < 32) {
            problems.emplace_back("RIVEREDGE_JWT_SECRET must be at least 32 characters");
        }
    } else {
        problems.emplace_back("RIVEREDGE_JWT_SECRET is required");
    }
    if (const auto origins = get("RIVEREDGE_CORS_ORIGINS")) {
        settings.cors_origins.clear();
        std::stringstream list(*origins);
        std::string origin;
        while (std::getline(list, origin, ',')) {
            if (!origin.empty()) {
                settings.cors_origins.push_back(origin);
            }
        }
    }
    const auto comma_list = [](const std::string& text) {
        std::vector<std::string> out;
        std::stringstream list(text);
        std::string item;
        while (std::getline(list, item, ',')) {
            item.erase(0, item.find_first_not_of(" \t"));
            item.erase(item.find_last_not_of(" \t") + 1);
            if (!item.empty()) {
                out.push_back(item);
            }
        }
        return out;
    };
    if (const auto networks = get("RIVEREDGE_OUTBOUND_NETWORKS")) {
        settings.outbound_networks = comma_list(*networks);
    }
    if (const auto ports = get("RIVEREDGE_OUTBOUND_PORTS")) {
        settings.outbound_ports = comma_list(*ports);
    }
    try {
        OutboundPolicy(settings.outbound_networks, settings.outbound_ports);
    } catch (const std::invalid_argument& error) {
        problems.emplace_back(std::string("RIVEREDGE_OUTBOUND_*: ") + error.what());
    }
    settings.executor_host = get("RIVEREDGE_EXECUTOR_HOST").value_or(settings.executor_host);
    settings.executor_signing_key = get("RIVEREDGE_EXECUTOR_SIGNING_KEY");
    if (settings.executor_signing_key && !valid_signing_key(*settings.executor_signing_key)) {
        problems.emplace_back(
            "RIVEREDGE_EXECUTOR_SIGNING_KEY must be at least 64 hex characters, optionally "
            "prefixed by signkey-<env>-");
    }
    settings.metrics_token = get("RIVEREDGE_METRICS_TOKEN");
    if (settings.metrics_token && settings.metrics_token->size() < 16) {
        problems.emplace_back("RIVEREDGE_METRICS_TOKEN must be at least 16 characters");
    }
    settings.executor_event_key = get("RIVEREDGE_EXECUTOR_EVENT_KEY");
    if (settings.executor_event_key && settings.executor_event_key->size() < 16) {
        problems.emplace_back("RIVEREDGE_EXECUTOR_EVENT_KEY must be at least 16 characters");
    }
    for (const auto& [key, value] : env) {
        if (key.rfind("INNGEST_", 0) == 0 && !value.empty()) {
            settings.inngest_environment.emplace(key, value);
        }
    }
    settings.inngest_dev = get("INNGEST_DEV");
    if (settings.inngest_dev &&
        (*settings.inngest_dev == "0" || *settings.inngest_dev == "false")) {
        settings.inngest_dev.reset();  // INNGEST_DEV=0 means cloud mode, as in the SDKs
    }
    settings.allow_dev_mode_off_loopback =
        get("RIVEREDGE_ALLOW_DEV_MODE_OFF_LOOPBACK").value_or("0") == "1";
    if (settings.inngest_dev && !is_loopback_host(settings.host) &&
        !settings.allow_dev_mode_off_loopback) {
        problems.emplace_back(
            "INNGEST_DEV runs functions for unsigned calls: RIVEREDGE_HOST must then be a loopback "
            "address (127.0.0.1, ::1, localhost), or set RIVEREDGE_ALLOW_DEV_MODE_OFF_LOOPBACK=1 "
            "to serve dev mode on a network on purpose");
    }
    settings.inngest_cloud = get("INNGEST_SIGNING_KEY").has_value() && !settings.inngest_dev;
    settings.log_level = get("LOG_LEVEL").value_or("info");
    settings.smtp_ca_file = get("RIVEREDGE_SMTP_CA_FILE");
    settings.script_worker = get("RIVEREDGE_SCRIPT_WORKER").value_or("");
    settings.approvals_step_budget =
        number("RIVEREDGE_APPROVALS_STEP_BUDGET", 20, 950, settings.approvals_step_budget);
    settings.workflows_tenant_concurrency = number("RIVEREDGE_WORKFLOWS_TENANT_CONCURRENCY", 1,
                                                   1000, settings.workflows_tenant_concurrency);
    settings.records_seal_key_file = get("RIVEREDGE_RECORDS_SEAL_KEY");
    settings.cups_server = get("RIVEREDGE_CUPS_SERVER").value_or(get("CUPS_SERVER").value_or(""));
    if (const auto failpoints = get("RIVEREDGE_FAILPOINTS")) {
        std::string_view rest = *failpoints;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            if (const auto name = rest.substr(0, comma); !name.empty()) {
                settings.failpoints.emplace_back(name);
            }
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    settings.font_cache_dir =
        get("RIVEREDGE_FONT_CACHE").value_or("/tmp/riveredge-fonts-" + std::to_string(getuid()));
    if (settings.records_seal_key_file &&
        access(settings.records_seal_key_file->c_str(), R_OK) != 0) {
        problems.emplace_back("RIVEREDGE_RECORDS_SEAL_KEY is not a readable file: " +
                              *settings.records_seal_key_file);
    }
    if (settings.smtp_ca_file && access(settings.smtp_ca_file->c_str(), R_OK) != 0) {
        problems.emplace_back("RIVEREDGE_SMTP_CA_FILE is not a readable file: " +
                              *settings.smtp_ca_file);
    }
    if (!problems.empty()) {
        std::string message = "invalid configuration:";
        for (const auto& problem : problems) {
            message += "\n  - " + problem;
        }
        throw std::invalid_argument(message);
    }
    return settings;
}

std::string Settings::describe() const {
    std::string inngest = inngest_dev     ? "external dev server " + *inngest_dev
                          : inngest_cloud ? "Inngest Cloud"
                                          : "embedded local executor";
    return "listening on " + host + ":" + std::to_string(port) + ", database pool " +
           std::to_string(database_pool_size) + ", Inngest: " + inngest +
           ", outbound: " + OutboundPolicy(outbound_networks, outbound_ports).describe();
}

}  // namespace riveredge::core
