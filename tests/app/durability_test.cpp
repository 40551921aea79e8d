// Durability with real processes: riveredge-flow killed with SIGKILL in the middle of work and
// started again on the same database finishes that work exactly once, because its embedded
// executor keeps runs, queued retries and dedupe keys in PostgreSQL.

#include "app/app_under_test.hpp"
#include "support/child_process.hpp"

#include <filesystem>

using riveredge_test::kExecutorKey;
using riveredge_test::kSecret;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// The app as its own process, as scripts/dev runs it.
class AppProcess {
public:
    AppProcess(std::string database, int port, int executor_port, std::string log)
        : database_(std::move(database)),
          port_(port),
          executor_port_(executor_port),
          log_(std::move(log)) {}

    void start() {
        process_ = std::make_unique<inngest_test::ChildProcess>(
            std::vector<std::string>{RIVEREDGE_FLOW_PATH},
            std::vector<std::string>{"RIVEREDGE_DATABASE_URL=" + database_,
                                     std::string("RIVEREDGE_JWT_SECRET=") + kSecret,
                                     "RIVEREDGE_PORT=" + std::to_string(port_),
                                     "RIVEREDGE_EXECUTOR_PORT=" + std::to_string(executor_port_),
                                     std::string("RIVEREDGE_EXECUTOR_SIGNING_KEY=") + kExecutorKey,
                                     std::string("RIVEREDGE_SCRIPT_WORKER=") + SCRIPT_WORKER_PATH},
            log_);
        REQUIRE(process_->wait_healthy(url("/healthz"), 60s));
    }
    void kill_now() { process_->kill_now(); }
    std::string log() const { return process_ ? process_->log() : std::string(); }

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }

    riveredge_test::Response call(const std::string& method,
                                  const std::string& url,
                                  const std::string& bearer,
                                  const std::string& body = {}) const {
        inngest::detail::OutboundRequest request{method, url, {}, body, 10s, std::nullopt};
        request.headers = {{"Content-Type", "application/json"},
                           {"Authorization", "Bearer " + bearer}};
        auto response = inngest::detail::send_http(request);
        REQUIRE(response.has_value());
        boost::system::error_code ec;
        auto parsed = json::parse(response->body, ec);
        return {response->status, ec ? json::value(response->body) : parsed};
    }
    riveredge_test::Response api(const std::string& method,
                                 const std::string& path,
                                 const std::string& token,
                                 const std::string& body = {}) const {
        return call(method, url(path), token, body);
    }
    json::array executor_runs(const std::string& function_id) const {
        const auto r = call("GET",
                            "http://127.0.0.1:" + std::to_string(executor_port_) +
                                "/v1/runs?function_id=" + function_id,
                            kExecutorKey);
        REQUIRE(r.status == 200);
        return r.body.as_array();
    }

private:
    std::string database_;
    int port_;
    int executor_port_;
    std::string log_;
    std::unique_ptr<inngest_test::ChildProcess> process_;
};

std::size_t mails_in(const std::string& maildir) {
    std::size_t n = 0;
    if (std::filesystem::exists(maildir)) {
        for (const auto& entry : std::filesystem::directory_iterator(maildir)) {
            n += entry.path().extension() == ".eml" ? 1 : 0;
        }
    }
    return n;
}

}  // namespace

TEST_CASE("an email retrying when the app is killed -9 is delivered once after the restart",
          "[app][durability]") {
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-durability-" + std::to_string(getpid()) + ".log";
    AppProcess app(database, inngest_test::free_port(), inngest_test::free_port(), log);
    app.start();
    const std::string alice = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "alice", {"admin"}},
        kSecret);

    // SMTP points at a port nobody listens on yet.
    const int smtp_port = inngest_test::free_port();
    REQUIRE(app.api("PUT", "/api/v1/messages/settings/smtp", alice,
                    R"({"host":"127.0.0.1","port":)" + std::to_string(smtp_port) +
                        R"(,"tls_mode":"none","from_address":"noreply@acme.example"})")
                .status == 200);
    const auto sent = app.api(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"durable","body":"once","channels":["email"],"recipients":["bob@example.com"]})");
    REQUIRE(sent.status == 201);
    const std::string deliveries =
        "/api/v1/messages/" + std::to_string(sent.body.at("message_id").as_int64()) + "/deliveries";

    // Wait until the delivery has failed and a retry is queued, then kill the process.
    json::value delivery;
    for (int i = 0; i < 400; ++i) {
        delivery = app.api("GET", deliveries, alice).body.at("deliveries").at(0);
        if (delivery.at("attempts").as_int64() >= 1) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(delivery.at("attempts").as_int64() >= 1);
    CHECK(delivery.at("status") != "sent");
    app.kill_now();

    // The SMTP server comes up; the app starts again on the same database.
    const std::string maildir = "/tmp/riveredge-durable-mail-" + std::to_string(getpid());
    std::filesystem::remove_all(maildir);
    inngest_test::ChildProcess smtp(
        {"/usr/bin/python3", std::string(PROJECT_SOURCE_DIR) + "/tests/support/smtp_server.py",
         std::to_string(smtp_port), maildir},
        {}, maildir + ".log");
    for (int i = 0; i < 100 && smtp.log().find("smtp server") == std::string::npos; ++i) {
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(smtp.log().find("smtp server") != std::string::npos);
    app.start();

    // The stored retry fires: the mail arrives, once, and the run ends.
    for (int i = 0; i < 1200 && mails_in(maildir) == 0; ++i) {
        std::this_thread::sleep_for(50ms);
    }
    INFO(app.log());
    REQUIRE(mails_in(maildir) == 1);
    json::array runs;
    for (int i = 0; i < 400; ++i) {
        runs = app.executor_runs("riveredge-flow-messages-deliver");
        if (runs.size() == 1 && runs[0].at("status") != "Running") {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(runs.size() == 1);  // the same run resumed; no second run was started
    CHECK(runs[0].at("status") == "Completed");
    delivery = app.api("GET", deliveries, alice).body.at("deliveries").at(0);
    CHECK(delivery.at("status") == "sent");
    CHECK(mails_in(maildir) == 1);
    std::filesystem::remove_all(maildir);
    std::filesystem::remove(maildir + ".log");
    std::filesystem::remove(log);
}
