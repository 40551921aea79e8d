#pragma once

// The app's settings: environment variables (and an optional KEY=VALUE file), validated once at
// start-up. Secrets are kept out of `describe()`.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::core {

struct Settings {
    std::string host = "127.0.0.1";
    unsigned short port = 8200;
    /// libpq connection string, e.g. `host=127.0.0.1 port=5433 dbname=riveredge user=postgres`.
    std::string database_url;
    /// The connection string of the role that owns the tables (`RIVEREDGE_MIGRATION_DATABASE_URL`):
    /// migrations run as it and grant the runtime role (`database_url`) only SELECT, INSERT,
    /// UPDATE and DELETE. Unset: migrations run as the runtime role, which then owns the tables.
    std::optional<std::string> migration_database_url;
    int database_pool_size = 8;
    /// HS256 secret for bearer tokens (at least 32 bytes).
    std::string jwt_secret;
    /// Origins allowed by CORS (the React frontend).
    std::vector<std::string> cors_origins{"http://localhost:5173", "http://127.0.0.1:5173"};
    /// The largest request body (`RIVEREDGE_MAX_BODY_BYTES`, 1 MiB to 1 GiB): over it 413.
    std::size_t max_body_bytes = std::size_t{8} * 1024 * 1024;
    /// Empty: embedded local executor. Else the external Inngest (`INNGEST_DEV` URL or Cloud).
    std::optional<std::string> inngest_dev;
    bool inngest_cloud = false;
    /// Every `INNGEST_*` value, from the environment or the config file: the SDK's client reads
    /// its settings from these (never from the process environment behind them).
    std::map<std::string, std::string> inngest_environment;
    /// Port of the embedded executor (0: any free port) and the address it binds.
    unsigned short executor_port = 0;
    std::string executor_host = "127.0.0.1";
    /// The key the embedded executor signs calls with and its API requires (bearer of the
    /// hashed key, as Inngest's); random per process when not configured.
    std::optional<std::string> executor_signing_key;
    /// The event key the embedded executor's event API requires; random when not configured.
    std::optional<std::string> executor_event_key;
    /// The bearer `/metrics` wants (`RIVEREDGE_METRICS_TOKEN`); unset, `/metrics` is off.
    std::optional<std::string> metrics_token;
    /// Dev mode (`INNGEST_DEV`) serves unsigned calls: only on a loopback address unless this
    /// is set explicitly (`RIVEREDGE_ALLOW_DEV_MODE_OFF_LOOPBACK=1`).
    bool allow_dev_mode_off_loopback = false;
    std::string log_level = "info";
    /// An extra CA bundle for SMTP relays with a private CA (system trust store otherwise).
    std::optional<std::string> smtp_ca_file;
    /// The script sandbox's worker executable (empty: next to the running executable).
    std::string script_worker;
    /// Steps an approval instance's run takes before it hands over to a fresh run (Inngest
    /// caps a run at 1000 steps).
    int approvals_step_budget = 800;
    /// Workflow executions of one tenant that run steps at once (Inngest's concurrency limit
    /// keyed by tenant); the others wait their turn, by priority.
    /// `RIVEREDGE_WORKFLOWS_TENANT_CONCURRENCY`.
    int workflows_tenant_concurrency = 10;
    /// The Ed25519 private key (PEM file) that seals electronic signatures; signing answers 503
    /// without one. `RIVEREDGE_RECORDS_SEAL_KEY`.
    std::optional<std::string> records_seal_key_file;
    /// Where fonts prepared for PDF output are kept (the CJK face taken out of its collection);
    /// empty: /tmp/riveredge-fonts-<uid>.
    std::string font_cache_dir;
    /// The CUPS server print devices use: a socket path, `host` or `host:port`
    /// (`RIVEREDGE_CUPS_SERVER`, else `CUPS_SERVER`); empty: libcups' default.
    std::string cups_server;
    /// Networks (CIDR) the calls tenants configure may reach besides public addresses
    /// (`RIVEREDGE_OUTBOUND_NETWORKS`, comma-separated; scripts/dev: loopback). Empty: public
    /// addresses only, as in production.
    std::vector<std::string> outbound_networks;
    /// Ports those calls may use (`RIVEREDGE_OUTBOUND_PORTS`: ports and ranges, comma-separated).
    std::vector<std::string> outbound_ports{"80", "443", "25", "465", "587"};
    /// Named points where the process stops at once, as if killed (`RIVEREDGE_FAILPOINTS`,
    /// comma-separated): for crash tests only, never set in a deployment.
    std::vector<std::string> failpoints;

    /// A printable summary without secrets.
    std::string describe() const;
};

/// Reads `RIVEREDGE_*`/`INNGEST_*` variables from `env` (and `RIVEREDGE_CONFIG_FILE`, a file of
/// KEY=VALUE lines, for values the environment does not set). Throws `std::invalid_argument`
/// with every problem listed.
Settings load_settings(const std::map<std::string, std::string>& env);

/// Only what minting a token needs: the JWT secret from `RIVEREDGE_JWT_SECRET`, the config file,
/// or the file `scripts/dev` keeps it in (`.data/jwt_secret` under the working directory).
/// Throws `std::invalid_argument` when none is found.
std::string load_jwt_secret(const std::map<std::string, std::string>& env);

/// True for 127.0.0.0/8, ::1 and localhost.
bool is_loopback_host(const std::string& host);

/// The process environment as a map.
std::map<std::string, std::string> process_environment();

}  // namespace riveredge::core
