#pragma once

// The app in process for end-to-end tests: a fresh database on the shared test PostgreSQL, the
// embedded executor, real HTTP on a free port, and helpers to call it as a tenant's user.

#include "app.hpp"
#include "core/auth/jwt.hpp"
#include "core/log/logger.hpp"
#include "crypto/signing_key.hpp"
#include "support/call_builder.hpp"
#include "support/temp_postgres.hpp"
#include "transport/http_client.hpp"

#include <inngest/local/executor.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace riveredge_test {

namespace json = boost::json;
using namespace std::chrono_literals;
using riveredge::core::Principal;
using riveredge::core::TenantId;

inline constexpr const char* kSecret = "test-secret-0123456789abcdef0123456789";
/// The embedded executor's signing key in these tests (calls to /api/inngest must carry it).
inline constexpr const char* kExecutorKey =
    "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Response {
    int status = 0;
    json::value body;
};

struct AppUnderTestOptions {
    std::optional<std::string> smtp_ca_file{};
    /// The embedded executor's and the modules' clock (a ManualClock to fast-forward).
    std::shared_ptr<inngest::local::Clock> clock{};
    /// Reuse a database (a restart; any role's URL of it); a fresh one when empty.
    std::string database_url{};
    /// Steps before an approval run hands over (0: the default).
    int approvals_step_budget = 0;
    /// The electronic-records seal key (an Ed25519 PEM file); signing is off without one.
    std::optional<std::string> records_seal_key_file{};
    /// The CUPS server print devices use (a socket path); libcups' default when empty.
    std::string cups_server{};
    /// The production outbound policy (public addresses on the default ports) instead of the
    /// development one the local SMTP and webhook servers of most tests need (loopback open).
    bool production_outbound = false;
    /// `INNGEST_*` settings for an external Inngest (`INNGEST_DEV`, or Cloud keys and
    /// `INNGEST_BASE_URL`); empty: the embedded executor.
    std::map<std::string, std::string> inngest_environment{};
    /// The bearer `/metrics` wants; off when unset.
    std::optional<std::string> metrics_token{};
    /// Workflow executions of a tenant that run at once (0: the default).
    int workflows_tenant_concurrency = 0;
};

/// One JSON request over loopback HTTP, with a bearer token when given; a body that is not JSON
/// comes back as a string.
inline Response call_url(const std::string& method,
                         const std::string& url,
                         const std::string& token = {},
                         const std::string& body = {}) {
    inngest::detail::OutboundRequest request{method, url, {}, body, 10s, std::nullopt};
    request.headers = {{"Content-Type", "application/json"}};
    if (!token.empty()) {
        request.headers.emplace_back("Authorization", "Bearer " + token);
    }
    auto response = inngest::detail::send_http(request);
    REQUIRE(response.has_value());
    boost::system::error_code ec;
    auto parsed = json::parse(response->body, ec);
    return {response->status, ec ? json::value(response->body) : parsed};
}

class AppUnderTest {
public:
    explicit AppUnderTest(std::optional<std::string> smtp_ca_file = std::nullopt)
        : AppUnderTest(AppUnderTestOptions{.smtp_ca_file = std::move(smtp_ca_file)}) {}

    explicit AppUnderTest(AppUnderTestOptions options) {
        settings_.script_worker = SCRIPT_WORKER_PATH;
        riveredge::core::set_log_level(riveredge::core::LogLevel::kWarn);
        settings_.port = 0;
        settings_.executor_port = 0;
        // Split roles, as scripts/dev runs the app: the owner migrates, the runtime role serves.
        const std::string owner =
            options.database_url.empty()
                ? inngest_test::shared_postgres().fresh_database()
                : inngest_test::as_role(options.database_url, "riveredge_owner");
        settings_.migration_database_url = owner;
        settings_.database_url = inngest_test::as_role(owner, "riveredge");
        settings_.jwt_secret = kSecret;
        settings_.executor_signing_key = kExecutorKey;
        settings_.database_pool_size = 4;
        settings_.smtp_ca_file = std::move(options.smtp_ca_file);
        settings_.records_seal_key_file = std::move(options.records_seal_key_file);
        settings_.cups_server = std::move(options.cups_server);
        if (!options.production_outbound) {
            settings_.outbound_networks = {"127.0.0.0/8", "::1/128"};
            settings_.outbound_ports = {"80", "443", "25", "465", "587", "1024-65535"};
        }
        settings_.inngest_environment = options.inngest_environment;
        settings_.metrics_token = options.metrics_token;
        if (const auto dev = options.inngest_environment.find("INNGEST_DEV");
            dev != options.inngest_environment.end() && dev->second != "0") {
            settings_.inngest_dev = dev->second;
        } else {
            settings_.inngest_cloud = options.inngest_environment.contains("INNGEST_SIGNING_KEY");
        }
        if (options.approvals_step_budget > 0) {
            settings_.approvals_step_budget = options.approvals_step_budget;
        }
        if (options.workflows_tenant_concurrency > 0) {
            settings_.workflows_tenant_concurrency = options.workflows_tenant_concurrency;
        }
        app_ = std::make_unique<riveredge::App>(settings_, std::move(options.clock));
        app_->start();
    }

    std::string token(const std::string& tenant,
                      const std::string& user,
                      std::vector<std::string> roles = {}) const {
        return riveredge::core::issue_token(
            Principal{TenantId::trusted(tenant), user, std::move(roles)}, kSecret);
    }

    Response call(const std::string& method,
                  const std::string& path,
                  const std::string& token = {},
                  const std::string& body = {}) const {
        return call_url(method, "http://127.0.0.1:" + std::to_string(app_->port()) + path, token,
                        body);
    }

    /// Calls function `call.fn_slug` as the executor would (signed with the shared key), with the
    /// state in `call`: what Inngest does when a step's answer was lost. Answers the function's
    /// status and its JSON reply (the ops of a 206).
    std::pair<int, boost::json::value> replay(const inngest_test::CallBuilder& call) const {
        const auto body = call.body();
        inngest::detail::OutboundRequest request{
            "POST",
            "http://127.0.0.1:" + std::to_string(app_->port()) +
                "/api/inngest?fnId=" + call.fn_slug + "&stepId=step",
            {{"Content-Type", "application/json"}},
            body,
            std::chrono::seconds(10),
            std::nullopt};
        request.headers.emplace_back(
            "X-Inngest-Signature",
            inngest::detail::sign_body(inngest::detail::SigningKey::parse(kExecutorKey), body,
                                       std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count()));
        const auto reply = inngest::detail::send_http(request);
        REQUIRE(reply.has_value());
        return {reply->status, boost::json::parse(reply->body)};
    }

    /// The call Inngest makes again when step `step_id`'s answer was lost: the one run of function
    /// `fn_slug` with every step before that one memoized (a run's result as {data}, a wait's or
    /// sleep's as it is; failed attempts left out).
    inngest_test::CallBuilder call_again_at(const std::string& fn_slug,
                                            const std::string& step_id) const {
        const auto runs = app_->executor()->runs(fn_slug);
        REQUIRE(runs.size() == 1);
        inngest_test::CallBuilder call;
        call.fn_slug = fn_slug;
        call.event = runs[0].event;
        call.attempt = 1;
        const auto step = inngest_test::step_hash(step_id);
        bool reached = false;
        for (const auto& done : runs[0].history) {
            reached = reached || done.hashed_id == step;
            if (reached || done.op == "StepError") {
                continue;
            }
            call.steps[done.hashed_id] =
                done.op == "StepRun" ? json::value(json::object{{"data", done.data}}) : done.data;
            call.stack.push_back(done.hashed_id);
        }
        REQUIRE(reached);
        return call;
    }

    // Waits until `user` has `count` unread items (the delivery runs through Inngest).
    bool wait_unread(const std::string& token, std::int64_t count) const {
        for (int i = 0; i < 200; ++i) {
            const auto r = call("GET", "/api/v1/messages/inbox/unread-count", token);
            if (r.status == 200 && r.body.at("unread") == count) {
                return true;
            }
            std::this_thread::sleep_for(25ms);
        }
        return false;
    }

    riveredge::App& app() { return *app_; }
    unsigned short port() const { return app_->port(); }
    const riveredge::core::Settings& settings() const { return settings_; }

private:
    riveredge::core::Settings settings_;
    std::unique_ptr<riveredge::App> app_;
};

}  // namespace riveredge_test
