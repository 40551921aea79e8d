#include "app.hpp"

#include "core/app_context.hpp"
#include "core/auth/jwt.hpp"
#include "core/errors.hpp"
#include "core/http/openapi.hpp"
#include "core/log/logger.hpp"
#include "core/outbox/outbox.hpp"
#include "core/text/hex.hpp"
#include "modules/approvals/module.hpp"
#include "modules/messages/module.hpp"
#include "modules/print_devices/module.hpp"
#include "modules/print_templates/module.hpp"
#include "modules/records/module.hpp"
#include "modules/schedules/module.hpp"
#include "modules/scripts/module.hpp"
#include "modules/workflows/module.hpp"

#include <inngest/inngest.hpp>
#include <inngest/local/executor.hpp>
#include <inngest/local/postgres_state_store.hpp>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/ip/address.hpp>
#include <libpq-fe.h>

#include <cstdlib>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace riveredge {
namespace {

// Host and port of an http(s) URL ("http://127.0.0.1:8288" -> {"127.0.0.1", 8288}).
std::optional<std::pair<std::string, int>> url_endpoint(const std::string& url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
        return std::nullopt;
    }
    const std::string rest = url.substr(scheme_end + 3);
    const std::string authority = rest.substr(0, rest.find_first_of("/?#"));
    const auto colon = authority.rfind(':');
    const bool has_port =
        colon != std::string::npos && authority.find(']', colon) == std::string::npos;
    const std::string host = has_port ? authority.substr(0, colon) : authority;
    const int port = has_port ? std::atoi(authority.c_str() + colon + 1)
                              : (url.rfind("https", 0) == 0 ? 443 : 80);
    return std::pair{
        host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host, port};
}

// The app's own endpoints no tenant-configured call may reach: its database (every TCP host
// of the connection string) and, when external, its Inngest server.
void reserve_own_endpoints(core::OutboundPolicy& policy, const core::Settings& settings) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(settings.database_url.c_str(), &error);
    if (error != nullptr) {
        PQfreemem(error);
    }
    if (options != nullptr) {
        std::string hosts = "localhost";
        std::string ports = "5432";
        for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
            if (option->val != nullptr && std::string(option->keyword) == "host") {
                hosts = option->val;
            } else if (option->val != nullptr && std::string(option->keyword) == "port") {
                ports = option->val;
            }
        }
        PQconninfoFree(options);
        std::stringstream host_list(hosts);
        std::stringstream port_list(ports);
        std::string host;
        std::string port = "5432";
        while (std::getline(host_list, host, ',')) {
            std::string next_port;
            if (std::getline(port_list, next_port, ',') && !next_port.empty()) {
                port = next_port;
            }
            if (!host.empty() && host.front() != '/') {  // a Unix socket is not reachable by URL
                policy.reserve(host, std::atoi(port.c_str()));
            }
        }
    }
    if (settings.inngest_dev) {
        if (const auto endpoint = url_endpoint(*settings.inngest_dev)) {
            policy.reserve(endpoint->first, endpoint->second);
        }
    }
}

}  // namespace

class App::Impl {
public:
    Impl(core::Settings settings, std::shared_ptr<inngest::local::Clock> clock)
        : settings_(std::move(settings)),
          clock_(clock ? std::move(clock) : std::make_shared<inngest::local::SystemClock>()),
          pool_(settings_.database_url, settings_.database_pool_size),
          router_(settings_.jwt_secret, settings_.cors_origins),
          hub_(settings_.jwt_secret),
          outbound_(settings_.outbound_networks, settings_.outbound_ports) {
        reserve_own_endpoints(outbound_, settings_);
        describe_metrics();
        router_.set_metrics(&metrics_);
        if (settings_.port != 0) {
            outbound_.reserve(settings_.host, settings_.port);
        }
    }

    // Migrations run as the owner role when one is configured; the runtime role then reads and
    // writes rows only, so nothing it runs can change the schema or the security policies.
    void prepare_database() {
        if (!settings_.migration_database_url) {
            log_migrations(core::db::migrate(pool_, migrations()));
            core::log(core::LogLevel::kWarn,
                      "no RIVEREDGE_MIGRATION_DATABASE_URL: the runtime role owns the tables");
            return;
        }
        core::db::Pool owner(*settings_.migration_database_url, 1);
        log_migrations(core::db::migrate(owner, migrations()));
        if (embedded_executor()) {
            inngest::local::create_postgres_state_tables(
                {.url = *settings_.migration_database_url});
        }
        const auto access = core::db::grant_runtime_access(owner, pool_);
        if (access.owner_role == access.runtime_role) {
            core::log(core::LogLevel::kWarn,
                      "the migration and runtime database roles are the same role: it owns the "
                      "tables");
        }
        if (access.bypasses_row_security) {
            core::log(core::LogLevel::kWarn,
                      "the runtime database role bypasses row-level security (superuser or "
                      "BYPASSRLS): tenant isolation rests on the queries alone",
                      {{"role", access.runtime_role}});
        }
    }

    static void log_migrations(const std::vector<std::string>& applied) {
        for (const auto& name : applied) {
            core::log(core::LogLevel::kInfo, "migration applied", {{"migration", name}});
        }
    }

    bool embedded_executor() const { return !settings_.inngest_dev && !settings_.inngest_cloud; }

    void start() {
        prepare_database();
        inngest::ClientOptions options{.app_id = "riveredge-flow"};
        if (!settings_.inngest_dev && !settings_.inngest_cloud) {
            // Embedded mode is signed like Cloud: the executor signs every call and sync, our
            // serve endpoint verifies them, and its API wants the same key (or the event key).
            const std::string signing_key =
                settings_.executor_signing_key.value_or("signkey-local-" + core::random_hex(32));
            const std::string event_key =
                settings_.executor_event_key.value_or(core::random_hex(24));
            inngest::local::ExecutorOptions executor_options;
            executor_options.host = settings_.executor_host;
            executor_options.port = settings_.executor_port;
            executor_options.signing_key = signing_key;
            executor_options.event_keys = {event_key};
            executor_options.clock = clock_;
            // The app serves its steps in-process, and its HTTP server's stop waits for their
            // bodies anyway: abandoning the calls would only throw their results away, and the
            // next process would run those steps again. So its stop waits for them.
            executor_options.stop_grace = executor_options.call_timeout;
            // Runs, queued work and dedupe keys live in the app's database: after a crash the
            // executor resumes them. One executor per database is active; in a second process
            // it stands by (the REST API still serves) and takes over when the first one dies.
            executor_options.open_state = [this] {
                // With an owner role, its migrations created the tables and this role may
                // not.
                return inngest::local::make_postgres_state_store(
                    {.url = settings_.database_url,
                     .create_tables = !settings_.migration_database_url.has_value()});
            };
            executor_options.on_active = [this] {
                executor_became_active();
            };
            executor_options.on_replaced = [](const std::string& why) {
                // Another process holds the database's executor now; acting on would run work
                // twice. Exit for the supervisor to restart us, as a standby.
                core::log(core::LogLevel::kError,
                          "embedded executor replaced by another process; exiting",
                          {{"reason", why}});
                std::_Exit(75);
            };
            executor_options.log_sink = [](inngest::LogLevel level, std::string_view line) {
                if (level >= inngest::LogLevel::kWarn) {
                    core::log(core::LogLevel::kWarn, line, {{"component", "executor"}});
                }
            };
            executor_ = std::make_unique<inngest::local::Executor>(executor_options);
            executor_->start();
            if (const auto endpoint = url_endpoint(executor_->url())) {
                outbound_.reserve(settings_.executor_host, endpoint->second);
            }
            options.dev = false;
            options.signing_key = signing_key;
            options.event_key = event_key;
            options.base_url = executor_->url();
        }
        options.log_sink = [](inngest::LogLevel level, std::string_view line) {
            core::log(
                level >= inngest::LogLevel::kWarn ? core::LogLevel::kWarn : core::LogLevel::kDebug,
                line, {{"component", "inngest"}});
        };
        options.clock = [clock = clock_] {
            return clock->now();
        };
        // INNGEST_* from the environment or the config file, whichever gave them.
        client_ = std::make_unique<inngest::Client>(
            options, inngest::Environment::from_map(settings_.inngest_environment));
        inngest::ServeOptions serve_options;
        // Dev mode off loopback on purpose: the dev server calls us by a network name.
        serve_options.dev_any_host = settings_.allow_dev_mode_off_loopback;
        serve_ = std::make_unique<inngest::ServeHandler>(*client_, serve_options);

        core::AppContext context{settings_,
                                 pool_,
                                 *client_,
                                 router_,
                                 hub_,
                                 capabilities_,
                                 [clock = clock_] { return clock->now(); },
                                 outbound_,
                                 metrics_};
        // The module list: a module that provides a capability comes before its users.
        for (const auto make :
             {messages::make_messages_module, scripts::make_scripts_module,
              schedules::make_schedules_module, print::make_print_templates_module,
              devices::make_print_devices_module, records::make_records_module,
              approvals::make_approvals_module, workflows::make_workflows_module}) {
            modules_.push_back(make(context));
        }

        router_.mount("/api/inngest", [this](const inngest::HttpRequest& request) {
            if (request.method != "PUT") {
                return serve_->handle(request);
            }
            // A sync registers the URL it derives from the Host header: pin it to our own
            // address, so no caller can re-point the functions elsewhere
            // (INNGEST_SERVE_ORIGIN, when set, still wins inside the SDK).
            inngest::HttpRequest pinned = request;
            std::erase_if(pinned.headers, [](const auto& header) {
                return boost::iequals(header.first, "Host") ||
                       boost::iequals(header.first, "X-Forwarded-Host") ||
                       boost::iequals(header.first, "Forwarded");
            });
            pinned.headers.emplace_back("Host", own_authority());
            return serve_->handle(pinned);
        });
        router_.get("/healthz", core::Access::kPublic, "Liveness").to([](core::Call&) {
            return boost::json::object{{"status", "ok"}};
        });
        router_
            .get("/readyz", core::Access::kPublic,
                 "Readiness: database reachable and migrated; the "
                 "embedded executor's role (active, standby or "
                 "external) and the outbox backlog")
            .to([this](core::Call&) {
                try {
                    auto connection = pool_.acquire();
                    const auto rows =
                        connection->exec("SELECT count(*) AS n FROM schema_migrations");
                    const bool migrated =
                        rows.integer(0, "n") >= static_cast<std::int64_t>(migrations().size());
                    const auto backlog = core::outbox::backlog(pool_);
                    return core::json_response(
                        migrated ? 200 : 503,
                        boost::json::object{{"database", "ok"},
                                            {"migrated", migrated},
                                            {"executor", executor_role()},
                                            {"outbox",
                                             {{"unsent", backlog.unsent},
                                              {"oldest_seconds", backlog.oldest_seconds}}}});
                } catch (const std::exception&) {
                    return core::json_response(503,
                                               boost::json::object{{"database", "unreachable"}});
                }
            });
        router_
            .get("/metrics", core::Access::kPublic,
                 "Prometheus metrics, for the deployment's scraper "
                 "(bearer: RIVEREDGE_METRICS_TOKEN; off when unset)")
            .to([this](core::Call& call) { return metrics_response(call.request); });
        router_.get("/api/openapi.json", core::Access::kPublic, "This API's OpenAPI 3 document")
            .to([this](core::Call&) { return core::openapi_document(router_); });

        server_ = std::make_unique<inngest::HttpServer>(inngest::HttpServerOptions{
            .host = settings_.host,
            .port = settings_.port,
            // REST and function bodies (the serve endpoint) have handler slots of their own:
            // slow steps (SMTP, HTTP, scripts) never stall REST, nor REST the steps; the
            // liveness probe needs no slot at all.
            .worker_threads = 8,
            .isolated_prefixes = {"/api/inngest"},
            .isolated_worker_threads = 8,
            .inline_paths = {"/healthz"},
            .max_body_bytes = settings_.max_body_bytes,
            .routes = [this](const inngest::HttpRequest& request)
                -> std::optional<inngest::HttpResponse> { return router_.dispatch(request); },
            .accepts_upgrade =
                [](const inngest::HttpRequest& request) {
                    return request.path == "/api/v1/messages/ws";
                },
            .on_upgrade =
                [this](inngest::HttpRequest request, int socket) {
                    hub_.adopt(request, socket);
                }});
        server_->start();
        outbound_.reserve(settings_.host, server_->port());
        relay_ = std::make_unique<core::outbox::Relay>(settings_.database_url, *client_);
        if (!executor_) {
            relay_->start();  // an external Inngest takes events from every process
        } else {
            std::unique_lock lock(takeover_mutex_);
            serving_ = true;
            if (executor_active_) {
                take_over(lock);
            }
        }
        core::log(core::LogLevel::kInfo, "riveredge-flow started",
                  {{"port", server_->port()},
                   {"executor", executor_role()},
                   {"settings", settings_.describe()}});
    }

    // The embedded executor is active (at start, or a standby took over): sync our functions
    // with it and relay the outbox into it. Standbys relay nothing: their events wait in the
    // outbox for the active process.
    void executor_became_active() {
        std::unique_lock lock(takeover_mutex_);
        executor_active_ = true;
        if (serving_) {
            take_over(lock);
        }
    }

    void take_over(std::unique_lock<std::mutex>& lock) {
        if (took_over_) {
            return;
        }
        took_over_ = true;
        lock.unlock();
        const auto synced = executor_->sync_app("http://" + own_authority() + "/api/inngest");
        if (!synced) {
            // Our own server refused: nothing here can run; let the supervisor retry.
            core::log(core::LogLevel::kError, "syncing with the embedded executor failed",
                      {{"error", synced.error().message}});
            std::_Exit(75);
        }
        relay_->start();
        core::log(core::LogLevel::kInfo, "embedded executor active",
                  {{"functions", static_cast<std::int64_t>(*synced)}});
    }

    std::string executor_role() const {
        if (!executor_) {
            return "external";
        }
        return executor_->active() ? "active" : "standby";
    }

    void stop() {
        // The relay first (it sends through the executor), then the executor: its calls into our
        // server finish while the server still answers (stopped the other way round, a call in
        // flight waits out its timeout).
        if (relay_) {
            relay_->stop();
        }
        if (executor_) {
            executor_->stop();
        }
        if (server_) {
            server_->stop(std::chrono::milliseconds(5000));
        }
    }

    unsigned short port() const { return server_ ? server_->port() : 0; }
    // Where this process reaches its own server: the bound address, or loopback of the same
    // family when bound to every address; IPv6 bracketed.
    std::string own_authority() const {
        boost::system::error_code ec;
        const auto address = boost::asio::ip::make_address(settings_.host, ec);
        std::string host;
        if (settings_.host.empty()) {
            host = "127.0.0.1";
        } else if (ec) {
            host = settings_.host;
        } else if (address.is_unspecified()) {
            host = address.is_v6() ? "[::1]" : "127.0.0.1";
        } else if (address.is_v6()) {
            host = "[" + settings_.host + "]";
        } else {
            host = settings_.host;
        }
        return host + ":" + std::to_string(port());
    }
    inngest::local::Executor* executor() { return executor_.get(); }

    void describe_metrics() {
        using inngest::MetricType;
        metrics_.describe("riveredge_http_requests_total",
                          "HTTP requests, by route pattern, method and status",
                          MetricType::kCounter);
        metrics_.describe("riveredge_http_request_duration_seconds",
                          "HTTP request handling time, by route pattern and method",
                          MetricType::kHistogram, inngest::Metrics::duration_buckets());
        metrics_.describe("riveredge_db_pool_connections",
                          "Database pool: size, open, in_use, and callers waiting",
                          MetricType::kGauge);
        metrics_.describe("riveredge_outbox_unsent", "Outbox events due and not yet accepted",
                          MetricType::kGauge);
        metrics_.describe("riveredge_script_runs_total", "Script runs ended, by outcome",
                          MetricType::kCounter);
        metrics_.describe("riveredge_message_deliveries_total",
                          "Message deliveries attempted, by channel and result",
                          MetricType::kCounter);
    }

    // Deployment-wide figures, for the operator's scraper only: no tenant token opens them, and
    // without a configured token the route does not exist.
    inngest::HttpResponse metrics_response(const inngest::HttpRequest& request) {
        if (!settings_.metrics_token) {
            throw core::DomainError::not_found("/metrics (set RIVEREDGE_METRICS_TOKEN)");
        }
        const std::string_view header = request.header("Authorization");
        if (!header.starts_with("Bearer ") ||
            !core::constant_time_equal(header.substr(7), *settings_.metrics_token)) {
            throw core::DomainError::unauthorized();
        }
        const auto pool = pool_.usage();
        for (const auto& [state, value] :
             {std::pair{"size", pool.size}, std::pair{"open", pool.open},
              std::pair{"in_use", pool.in_use}, std::pair{"waiting", pool.waiting}}) {
            metrics_.set("riveredge_db_pool_connections", {{"state", state}}, value);
        }
        metrics_.set("riveredge_outbox_unsent", {},
                     static_cast<double>(core::outbox::backlog(pool_).unsent));
        return inngest::HttpResponse{
            200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}}, metrics_.text()};
    }
    std::string executor_url() const { return executor_ ? executor_->url() : std::string(); }
    bool wait_settled(std::chrono::milliseconds timeout) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            const auto relayed = relay_ ? relay_->relayed() : 0;
            if (core::outbox::backlog(pool_).unsent > 0) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                continue;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (executor_ && !executor_->wait_idle(left)) {
                return false;
            }
            // Idle with nothing relayed meanwhile: no run is left to add to the outbox.
            if ((relay_ ? relay_->relayed() : 0) == relayed &&
                core::outbox::backlog(pool_).unsent == 0) {
                return true;
            }
        }
        return false;
    }
    std::vector<std::string> routes() const {
        std::vector<std::string> out;
        for (const auto& route : router_.routes()) {
            out.push_back(route.method + " " + route.pattern);
        }
        return out;
    }

private:
    core::Settings settings_;
    std::shared_ptr<inngest::local::Clock> clock_;
    core::db::Pool pool_;
    core::Router router_;
    core::WebSocketHub hub_;
    core::OutboundPolicy outbound_;
    std::unique_ptr<inngest::local::Executor> executor_;
    std::unique_ptr<inngest::Client> client_;
    std::unique_ptr<inngest::ServeHandler> serve_;
    core::Capabilities capabilities_;
    inngest::Metrics metrics_;
    std::vector<std::unique_ptr<core::Module>> modules_;
    std::unique_ptr<inngest::HttpServer> server_;
    std::unique_ptr<core::outbox::Relay> relay_;
    // Takeover happens once both the executor is active and our server answers (see take_over).
    std::mutex takeover_mutex_;
    bool serving_ = false;
    bool executor_active_ = false;
    bool took_over_ = false;
};

App::App(core::Settings settings, std::shared_ptr<inngest::local::Clock> clock)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(clock))) {}
inngest::local::Executor* App::executor() {
    return impl_->executor();
}
App::~App() {
    impl_->stop();
}
void App::start() {
    impl_->start();
}
void App::stop() {
    impl_->stop();
}
unsigned short App::port() const {
    return impl_->port();
}
std::string App::executor_url() const {
    return impl_->executor_url();
}
bool App::wait_settled(std::chrono::milliseconds timeout) {
    return impl_->wait_settled(timeout);
}
std::vector<std::string> App::routes() const {
    return impl_->routes();
}

}  // namespace riveredge
