// Durability with real processes: riveredge-flow killed with SIGKILL in the middle of work and
// started again on the same database finishes that work exactly once, because its embedded
// executor keeps runs, queued retries and dedupe keys in PostgreSQL.

#include "app/app_under_test.hpp"
#include "core/text/base64.hpp"
#include "support/child_process.hpp"
#include "support/temp_cups.hpp"
#include "time_format.hpp"

#include <filesystem>
#include <map>

using riveredge_test::kExecutorKey;
using riveredge_test::kSecret;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// The app as its own process, as scripts/dev runs it.
class AppProcess {
public:
    AppProcess(std::string database,
               int port,
               int executor_port,
               std::string log,
               std::vector<std::string> extra_env = {})
        : database_(std::move(database)),
          port_(port),
          executor_port_(executor_port),
          log_(std::move(log)),
          extra_env_(std::move(extra_env)) {
        // Bound elsewhere than 127.0.0.1: reach the app and the executor where they listen.
        for (const auto& entry : extra_env_) {
            const auto bracketed = [](const std::string& host) {
                return host.find(':') != std::string::npos ? "[" + host + "]" : host;
            };
            if (entry.rfind("RIVEREDGE_HOST=", 0) == 0) {
                host_ = bracketed(entry.substr(entry.find('=') + 1));
            } else if (entry.rfind("RIVEREDGE_EXECUTOR_HOST=", 0) == 0) {
                executor_host_ = bracketed(entry.substr(entry.find('=') + 1));
            }
        }
    }

    void start() {
        // Split roles, as scripts/dev runs it: the owner migrates, the runtime role serves.
        std::vector<std::string> env{
            "RIVEREDGE_DATABASE_URL=" + inngest_test::as_role(database_, "riveredge"),
            "RIVEREDGE_MIGRATION_DATABASE_URL=" + database_,
            std::string("RIVEREDGE_JWT_SECRET=") + kSecret,
            "RIVEREDGE_PORT=" + std::to_string(port_),
            "RIVEREDGE_EXECUTOR_PORT=" + std::to_string(executor_port_),
            std::string("RIVEREDGE_EXECUTOR_SIGNING_KEY=") + kExecutorKey,
            std::string("RIVEREDGE_SCRIPT_WORKER=") + SCRIPT_WORKER_PATH,
            // as scripts/dev: the local SMTP server is on loopback
            "RIVEREDGE_OUTBOUND_NETWORKS=127.0.0.0/8,::1/128",
            "RIVEREDGE_OUTBOUND_PORTS=1024-65535"};
        env.insert(env.end(), extra_env_.begin(), extra_env_.end());
        process_ = std::make_unique<inngest_test::ChildProcess>(
            std::vector<std::string>{RIVEREDGE_FLOW_PATH}, env, log_);
        REQUIRE(process_->wait_healthy(url("/healthz"), 60s));
    }
    void kill_now() { process_->kill_now(); }
    bool running() const { return process_ && process_->running(); }
    // Waits for the process to stop dead at its failpoint; true when it did.
    bool stopped_at_failpoint() const {
        for (int i = 0; i < 400 && running(); ++i) {
            std::this_thread::sleep_for(25ms);
        }
        return !running() && log().find("failpoint reached") != std::string::npos;
    }
    // The print job at `path` once it has finished (completed, failed or canceled), or as it is
    // after 30 s.
    json::value finished_job(const std::string& path, const std::string& token) const {
        json::value job;
        for (int i = 0; i < 600; ++i) {
            job = api("GET", path, token).body;
            if (job.at("status") == "completed" || job.at("status") == "failed" ||
                job.at("status") == "canceled") {
                break;
            }
            std::this_thread::sleep_for(50ms);
        }
        return job;
    }
    std::string log() const { return process_ ? process_->log() : std::string(); }

    std::string url(const std::string& path) const {
        return "http://" + host_ + ":" + std::to_string(port_) + path;
    }

    riveredge_test::Response call(const std::string& method,
                                  const std::string& url,
                                  const std::string& bearer,
                                  const std::string& body = {}) const {
        return riveredge_test::call_url(method, url, bearer, body);
    }
    riveredge_test::Response api(const std::string& method,
                                 const std::string& path,
                                 const std::string& token,
                                 const std::string& body = {}) const {
        return call(method, url(path), token, body);
    }
    // Waits until the function's only run waits for `event` (step.wait_for_event is in place).
    bool wait_parked(const std::string& function_id, const std::string& event) const {
        for (int i = 0; i < 800; ++i) {
            const auto runs = executor_runs(function_id);
            if (runs.size() == 1 && runs[0].at("waiting_for") == json::array{json::value(event)}) {
                return true;
            }
            std::this_thread::sleep_for(25ms);
        }
        return false;
    }
    // Waits until no run of the functions is running (up to 10 s); true when none is.
    bool runs_ended(const std::vector<std::string>& function_ids) const {
        const auto ended = [&] {
            for (const auto& function_id : function_ids) {
                for (const auto& run : executor_runs(function_id)) {
                    if (run.at("status") == "Running") {
                        return false;
                    }
                }
            }
            return true;
        };
        for (int i = 0; i < 400 && !ended(); ++i) {
            std::this_thread::sleep_for(25ms);
        }
        return ended();
    }
    json::array executor_runs(const std::string& function_id) const {
        const auto r = call("GET",
                            "http://" + executor_host_ + ":" + std::to_string(executor_port_) +
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
    std::vector<std::string> extra_env_;
    std::string host_ = "127.0.0.1";
    std::string executor_host_ = "127.0.0.1";
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

TEST_CASE("bound to ::1 with its executor on 127.0.0.2, the app syncs, stays up and delivers",
          "[app][durability]") {
    // Neither address is 127.0.0.1: the app's sync of its functions and its client's and the
    // outbox relay's posts to the executor go where the two servers listen.
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-bind-" + std::to_string(getpid()) + ".log";
    AppProcess app(database, inngest_test::free_port(), inngest_test::free_port(), log,
                   {"RIVEREDGE_HOST=::1", "RIVEREDGE_EXECUTOR_HOST=127.0.0.2"});
    app.start();
    INFO(app.log());
    // Ready, with the executor active: the sync to [::1] went through and the process lives.
    json::value ready;
    for (int i = 0; i < 400; ++i) {
        const auto r = app.api("GET", "/readyz", "");
        ready = r.body;
        if (r.status == 200 && ready.at("executor") == "active" &&
            app.log().find("embedded executor active") != std::string::npos) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(ready.at("executor") == "active");
    REQUIRE(app.log().find("embedded executor active") != std::string::npos);
    REQUIRE(app.running());

    // A message: its event goes from the outbox to the executor at 127.0.0.2, which calls the
    // delivery function back at [::1].
    const std::string alice = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "alice", {"admin"}},
        kSecret);
    const std::string bob = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "bob", {}}, kSecret);
    const auto sent =
        app.api("POST", "/api/v1/messages/send", alice,
                R"({"subject":"bound","body":"here","channels":["in_app"],"recipients":["bob"]})");
    REQUIRE(sent.status == 201);
    json::value inbox;
    for (int i = 0; i < 400; ++i) {
        inbox = app.api("GET", "/api/v1/messages/inbox", bob).body;
        if (!inbox.at("items").as_array().empty()) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(inbox.at("items").as_array().size() == 1);
    CHECK(inbox.at("items").at(0).at("subject") == "bound");
    const auto runs = app.executor_runs("riveredge-flow-messages-deliver");
    REQUIRE(runs.size() == 1);
    CHECK(app.running());
    app.kill_now();
    std::filesystem::remove(log);
}

TEST_CASE("an approval waiting, an armed schedule fire and an async script survive kill -9",
          "[app][durability]") {
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-durability-2-" + std::to_string(getpid()) + ".log";
    AppProcess app(database, inngest_test::free_port(), inngest_test::free_port(), log);
    app.start();
    const auto token = [](const char* user, std::vector<std::string> roles = {}) {
        return riveredge::core::issue_token(
            riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), user,
                                       std::move(roles)},
            kSecret);
    };
    const auto alice = token("alice", {"admin"});
    const auto bob = token("bob");

    // An approval waits for bob.
    const std::string definition_source =
        R"({"key":"one","nodes":[{"id":"start","type":"startEvent"},{"id":"ok","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},{"id":"end","type":"endEvent"}],"edges":[{"id":"e0","source":"start","target":"ok"},{"id":"e1","source":"ok","target":"end"}]})";
    const auto created = app.api("POST", "/api/v1/approvals/definitions", alice,
                                 R"({"source":)" + definition_source + "}");
    REQUIRE(created.status == 201);
    const auto definition = created.body.at("id").as_int64();
    REQUIRE(app.api("POST",
                    "/api/v1/approvals/definitions/" + std::to_string(definition) + "/publish",
                    alice)
                .status == 201);
    const auto instance = app.api("POST", "/api/v1/approvals/instances", alice,
                                  R"({"definition_id":)" + std::to_string(definition) + "}");
    REQUIRE(instance.status == 201);
    const auto instance_id = instance.body.at("id").as_int64();
    json::array tasks;
    for (int i = 0; i < 400 && tasks.empty(); ++i) {
        tasks = app.api("GET", "/api/v1/approvals/tasks", bob).body.at("items").as_array();
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(tasks.size() == 1);

    // A schedule fires once, 6 s from now: after the restart.
    const auto at = std::chrono::system_clock::now() + 6s;
    const auto at_text = inngest::detail::format_rfc3339(at);
    const auto schedule = app.api(
        "POST", "/api/v1/schedules", alice,
        R"({"name":"Once","code":"once","trigger":{"kind":"once","at":")" + at_text +
            R"("},"action":{"type":"message","recipients":["bob"],"subject":"scheduled","body":"b"}})");
    INFO(json::serialize(schedule.body));
    REQUIRE(schedule.status == 201);
    const auto schedule_id = schedule.body.at("id").as_int64();

    // An async script run, queued just before the kill.
    const auto script = app.api(
        "POST", "/api/v1/scripts", alice,
        R"({"name":"sum","code":"function main(a) { return a.x + 1; }","parameters":[{"name":"x","type":"number","required":true}]})");
    REQUIRE(script.status == 201);
    const auto run = app.api(
        "POST", "/api/v1/scripts/" + std::to_string(script.body.at("id").as_int64()) + "/run",
        alice, R"({"mode":"async","arguments":{"x":41}})");
    REQUIRE(run.status == 202);
    // The approval run has parked on its wait (a decision made before a wait exists is noticed
    // only at the next re-check, minutes later; that case has its own test).
    REQUIRE(app.wait_parked("riveredge-flow-approvals-instance", "approvals/instance.wake"));
    app.kill_now();
    app.start();
    REQUIRE(app.wait_parked("riveredge-flow-approvals-instance", "approvals/instance.wake"));

    // The approval goes on where it was: bob approves, the instance completes once.
    tasks = app.api("GET", "/api/v1/approvals/tasks", bob).body.at("items").as_array();
    REQUIRE(tasks.size() == 1);
    REQUIRE(app.api("POST",
                    "/api/v1/approvals/tasks/" + std::to_string(tasks[0].at("id").as_int64()) +
                        "/approve",
                    bob, "{}")
                .status == 200);
    json::value done;
    for (int i = 0; i < 400; ++i) {
        done = app.api("GET", "/api/v1/approvals/instances/" + std::to_string(instance_id), alice)
                   .body;
        if (done.at("status") != "running") {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    CHECK(done.at("status") == "completed");
    CHECK(done.at("generation") == 0);  // the stored run went on; no hand-over was needed

    // The async script ran, once.
    json::value script_run;
    for (int i = 0; i < 400; ++i) {
        script_run =
            app.api("GET", "/api/v1/script-runs/" + std::to_string(run.body.at("id").as_int64()),
                    alice)
                .body;
        if (script_run.at("status") == "succeeded" || script_run.at("status") == "failed") {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    CHECK(script_run.at("status") == "succeeded");
    CHECK(script_run.at("result") == 42);

    // The schedule fired at its time, once: one succeeded fire and one message to bob.
    json::array fires;
    for (int i = 0; i < 600; ++i) {
        fires = app.api("GET", "/api/v1/schedules/" + std::to_string(schedule_id) + "/fires", alice)
                    .body.at("items")
                    .as_array();
        if (!fires.empty() && fires[0].at("status") == "succeeded") {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(fires.size() == 1);
    CHECK(fires[0].at("status") == "succeeded");
    // bob's inbox: the task notification once, the scheduled message once.
    std::map<std::string, int> subjects;
    for (int i = 0; i < 400 && subjects.count("scheduled") == 0; ++i) {
        subjects.clear();
        const auto inbox = app.api("GET", "/api/v1/messages/inbox", bob);
        for (const auto& item : inbox.body.at("items").as_array()) {
            ++subjects[std::string(item.at("subject").as_string())];
        }
        std::this_thread::sleep_for(25ms);
    }
    CHECK(subjects["scheduled"] == 1);
    CHECK(subjects.size() == 2);
    for (const auto& [subject, count] : subjects) {
        INFO(subject);
        CHECK(count == 1);
    }
    const auto instance_runs = app.executor_runs("riveredge-flow-approvals-instance");
    CHECK(instance_runs.size() == 1);
    std::filesystem::remove(log);
}

TEST_CASE("PostgreSQL restarted under a running app: no request fails and work goes on",
          "[app][durability]") {
    riveredge_test::AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto send = [&](const std::string& subject) {
        return t.call("POST", "/api/v1/messages/send", alice,
                      R"({"subject":")" + subject +
                          R"(","body":"b","channels":["in_app"],"recipients":["bob"]})");
    };
    REQUIRE(send("before").status == 201);
    REQUIRE(t.wait_unread(bob, 1));
    // Warm every pooled connection, so each of them is broken by the restart.
    for (int i = 0; i < 12; ++i) {
        REQUIRE(t.call("GET", "/api/v1/messages/inbox", bob).status == 200);
    }

    inngest_test::shared_postgres().restart();

    for (int i = 0; i < 12; ++i) {
        const auto r = t.call("GET", "/api/v1/messages/inbox", bob);
        INFO(json::serialize(r.body));
        REQUIRE(r.status == 200);
    }
    // The executor's store reconnects too: a new message is stored, run and delivered.
    const auto after = send("after");
    INFO(json::serialize(after.body));
    REQUIRE(after.status == 201);
    REQUIRE(t.wait_unread(bob, 2));
}

TEST_CASE(
    "two app processes on one database: the standby serves REST, takes over after kill -9, "
    "and nothing runs twice",
    "[app][durability]") {
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-durability-3-" + std::to_string(getpid());
    AppProcess first(database, inngest_test::free_port(), inngest_test::free_port(), log + ".a");
    first.start();
    AppProcess second(database, inngest_test::free_port(), inngest_test::free_port(), log + ".b");
    second.start();
    const auto role = [](const AppProcess& app) {
        const auto ready = app.call("GET", app.url("/readyz"), "");
        return ready.status == 200 ? std::string(ready.body.at("executor").as_string())
                                   : "status " + std::to_string(ready.status);
    };
    CHECK(role(first) == "active");
    CHECK(role(second) == "standby");
    const std::string alice = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "alice", {"admin"}},
        kSecret);
    const std::string bob = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "bob", {}}, kSecret);
    const auto unread = [&](const AppProcess& app) {
        return app.api("GET", "/api/v1/messages/inbox/unread-count", bob)
            .body.at("unread")
            .as_int64();
    };
    const auto wait_unread = [&](const AppProcess& app, std::int64_t n) {
        for (int i = 0; i < 600 && unread(app) < n; ++i) {
            std::this_thread::sleep_for(25ms);
        }
        return unread(app) == n;
    };

    // A message sent through the standby: its event waits in the outbox, the active process
    // relays and runs it.
    REQUIRE(
        second
            .api(
                "POST", "/api/v1/messages/send", alice,
                R"({"subject":"via standby","body":"b","channels":["in_app"],"recipients":["bob"]})")
            .status == 201);
    REQUIRE(wait_unread(second, 1));

    // An email through the standby, to an SMTP server that is not up: the active one retries.
    const int smtp_port = inngest_test::free_port();
    REQUIRE(second
                .api("PUT", "/api/v1/messages/settings/smtp", alice,
                     R"({"host":"127.0.0.1","port":)" + std::to_string(smtp_port) +
                         R"(,"tls_mode":"none","from_address":"noreply@acme.example"})")
                .status == 200);
    const auto sent = second.api(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"failover","body":"once","channels":["email"],"recipients":["bob@example.com"]})");
    REQUIRE(sent.status == 201);
    const std::string deliveries =
        "/api/v1/messages/" + std::to_string(sent.body.at("message_id").as_int64()) + "/deliveries";
    json::value delivery;
    for (int i = 0; i < 400; ++i) {
        delivery = second.api("GET", deliveries, alice).body.at("deliveries").at(0);
        if (delivery.at("attempts").as_int64() >= 1) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(delivery.at("attempts").as_int64() >= 1);

    // The active process dies; the SMTP server comes up; the standby takes over.
    first.kill_now();
    const std::string maildir = "/tmp/riveredge-failover-mail-" + std::to_string(getpid());
    std::filesystem::remove_all(maildir);
    inngest_test::ChildProcess smtp(
        {"/usr/bin/python3", std::string(PROJECT_SOURCE_DIR) + "/tests/support/smtp_server.py",
         std::to_string(smtp_port), maildir},
        {}, maildir + ".log");
    for (int i = 0; i < 400 && role(second) != "active"; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    INFO(second.log());
    REQUIRE(role(second) == "active");

    // The retry the dead process had queued is delivered by the new one, once, by the same run.
    for (int i = 0; i < 1200 && mails_in(maildir) == 0; ++i) {
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(mails_in(maildir) == 1);
    json::array runs;
    for (int i = 0; i < 400; ++i) {
        runs = second.executor_runs("riveredge-flow-messages-deliver");
        bool finished = !runs.empty();
        for (const auto& run : runs) {
            finished = finished && run.at("status") != "Running";
        }
        if (finished) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    // The email's run, resumed from the store (the finished in-app run stayed with the dead
    // process's memory); no second run was started for it.
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].at("status") == "Completed");
    // New work runs on the new active process; the killed one comes back as the standby.
    REQUIRE(second
                .api("POST", "/api/v1/messages/send", alice,
                     R"({"subject":"after","body":"b","channels":["in_app"],"recipients":["bob"]})")
                .status == 201);
    REQUIRE(wait_unread(second, 2));
    first.start();
    CHECK(role(first) == "standby");
    CHECK(mails_in(maildir) == 1);
    CHECK(second.api("GET", deliveries, alice).body.at("deliveries").at(0).at("status") == "sent");
    std::filesystem::remove_all(maildir);
    std::filesystem::remove(maildir + ".log");
    std::filesystem::remove(log + ".a");
    std::filesystem::remove(log + ".b");
}

TEST_CASE("with Inngest down, a send is accepted and its event relayed from the outbox later",
          "[app][durability]") {
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-durability-4-" + std::to_string(getpid()) + ".log";
    const int inngest_port = inngest_test::free_port();
    AppProcess app(database, inngest_test::free_port(), inngest_test::free_port(), log,
                   {"INNGEST_DEV=http://127.0.0.1:" + std::to_string(inngest_port)});
    app.start();
    const auto ready = [&app] {
        return app.call("GET", app.url("/readyz"), "").body;
    };
    CHECK(ready().at("executor") == "external");
    const auto alice = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "alice", {"admin"}},
        kSecret);
    const auto bob = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "bob", {}}, kSecret);

    // Nothing listens where Inngest should be: the message is still accepted, its event kept.
    REQUIRE(app.api("POST", "/api/v1/messages/send", alice,
                    R"({"subject":"kept","body":"b","channels":["in_app"],"recipients":["bob"]})")
                .status == 201);
    for (int i = 0; i < 400 && app.log().find("outbox relay: send failed") == std::string::npos;
         ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(app.log().find("outbox relay: send failed") != std::string::npos);
    CHECK(ready().at("outbox").at("unsent") == 1);

    // Inngest comes up (the local executor in dev mode, standing in for `inngest dev`) and
    // syncs the app: the relay's next attempt delivers the event, and the message its item.
    inngest::local::ExecutorOptions options;
    options.port = static_cast<unsigned short>(inngest_port);
    inngest::local::Executor inngest(options);
    inngest.start();
    REQUIRE(inngest.sync_app(app.url("/api/inngest")).has_value());
    std::int64_t unread = 0;
    for (int i = 0; i < 1200 && unread == 0; ++i) {
        unread =
            app.api("GET", "/api/v1/messages/inbox/unread-count", bob).body.at("unread").as_int64();
        std::this_thread::sleep_for(25ms);
    }
    INFO(app.log());
    CHECK(unread == 1);
    CHECK(ready().at("outbox").at("unsent") == 0);
    REQUIRE(inngest.wait_idle(10s));
    CHECK(inngest.runs("riveredge-flow-messages-deliver").size() == 1);
    inngest.stop();
    std::filesystem::remove(log);
}

TEST_CASE(
    "a print job whose process dies between CUPS taking it and the job recording it "
    "prints once after the restart",
    "[app][durability][print_devices]") {
    inngest_test::RawPrinterListener label_printer;
    auto& cups = inngest_test::shared_cups();
    const std::string queue = "acme-crash" + std::to_string(getpid());
    cups.add_raw_queue(queue, "socket://127.0.0.1:" + std::to_string(label_printer.port()));
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-print-crash-" + std::to_string(getpid()) + ".log";
    const int port = inngest_test::free_port();
    const int executor_port = inngest_test::free_port();
    const std::string cups_server = "RIVEREDGE_CUPS_SERVER=" + cups.server();
    // The first process stops dead right after CUPS has taken the job (a failpoint, as kill -9
    // at that line would), before the CUPS job id is recorded.
    AppProcess first(database, port, executor_port, log,
                     {cups_server, "RIVEREDGE_FAILPOINTS=print.after_submit"});
    first.start();
    const std::string alice = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "alice", {"admin"}},
        kSecret);
    const auto printer =
        first.api("POST", "/api/v1/print/printers", alice,
                  R"({"name":"Label","kind":"label","cups_queue":")" + queue + "\"}");
    REQUIRE(printer.status == 201);
    const std::string zpl = "^XA^FO20,20^A0N,30,30^FDcrash-test^FS^XZ";
    const auto asked =
        first.api("POST", "/api/v1/print/jobs", alice,
                  R"({"printer_id":)" + std::to_string(printer.body.at("id").as_int64()) +
                      R"(,"raw_base64":")" + riveredge::core::to_base64(zpl) + "\"}");
    REQUIRE(asked.status == 202);
    const auto job_path = "/api/v1/print/jobs/" + std::to_string(asked.body.at("id").as_int64());
    const bool stopped = first.stopped_at_failpoint();
    INFO(first.log());
    REQUIRE(stopped);
    REQUIRE(cups.job_lines(queue).size() == 1);

    AppProcess second(database, port, executor_port, log + ".2", {cups_server});
    second.start();
    const auto job = second.finished_job(job_path, alice);
    INFO(second.log());
    REQUIRE(job.at("status") == "completed");
    CHECK(second.log().find("found in CUPS from an earlier attempt") != std::string::npos);
    // One job in CUPS, one printout: the retry found the first submission by its token.
    CHECK(cups.job_lines(queue).size() == 1);
    CHECK(label_printer.wait_for(1, 10s).size() == 1);
    // Once CUPS holds no unfinished job of the queue it sends the printer nothing more, so what
    // arrived is all that ever will.
    for (int i = 0; i < 200 && !cups.unfinished_job_lines(queue).empty(); ++i) {
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(cups.unfinished_job_lines(queue).empty());
    const auto printed = label_printer.received();
    REQUIRE(printed.size() == 1);
    CHECK(printed[0] == zpl);
    std::filesystem::remove(log);
    std::filesystem::remove(log + ".2");
}

TEST_CASE(
    "a print job that fails while its process dies between telling its requester and recording "
    "the failure tells the requester once after the restart",
    "[app][durability][print_devices]") {
    auto& cups = inngest_test::shared_cups();
    const std::string queue = "acme-refusing" + std::to_string(getpid());
    cups.add_raw_queue(queue, "socket://127.0.0.1:9");
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-print-fail-" + std::to_string(getpid()) + ".log";
    const int port = inngest_test::free_port();
    const int executor_port = inngest_test::free_port();
    const std::string cups_server = "RIVEREDGE_CUPS_SERVER=" + cups.server();
    // The first process stops dead in the middle of failing the job: after one of its two
    // writes, the notice and the job's final state.
    AppProcess first(database, port, executor_port, log,
                     {cups_server, "RIVEREDGE_FAILPOINTS=print.job_failing"});
    first.start();
    const auto alice = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "alice", {"admin"}},
        kSecret);
    const auto bob = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "bob", {}}, kSecret);
    const auto printer = first.api(
        "POST", "/api/v1/print/printers", alice,
        R"({"name":"Refusing","kind":"label","cups_queue":")" + queue + R"(","owners":["alice"]})");
    REQUIRE(printer.status == 201);
    // The queue stops accepting jobs: CUPS refuses bob's for good, and the job fails.
    REQUIRE(std::system(("cupsreject -h '" + cups.server() + "' '" + queue + "' >/dev/null 2>&1")
                            .c_str()) == 0);
    const auto asked =
        first.api("POST", "/api/v1/print/jobs", bob,
                  R"({"printer_id":)" + std::to_string(printer.body.at("id").as_int64()) +
                      R"(,"raw_base64":")" + riveredge::core::to_base64("^XA^XZ") + "\"}");
    REQUIRE(asked.status == 202);
    const auto job_path = "/api/v1/print/jobs/" + std::to_string(asked.body.at("id").as_int64());
    const bool stopped = first.stopped_at_failpoint();
    INFO(first.log());
    REQUIRE(stopped);

    AppProcess second(database, port, executor_port, log + ".2", {cups_server});
    second.start();
    const auto job = second.finished_job(job_path, bob);
    INFO(second.log());
    REQUIRE(job.at("status") == "failed");
    CHECK(job.at("error").as_string().find("not accepting jobs") != json::string::npos);
    // The requester (not an owner, so told of nothing else) has the failure's notice: once,
    // though it was sent before the crash and again by the retried step.
    const auto unread = [&] {
        return second.api("GET", "/api/v1/messages/inbox/unread-count", bob)
            .body.at("unread")
            .as_int64();
    };
    for (int i = 0; i < 400 && unread() < 1; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    CHECK(unread() == 1);
    // Once the job's run and every delivery run have ended, no second notice can come.
    CHECK(second.runs_ended({"riveredge-flow-print-job", "riveredge-flow-messages-deliver"}));
    CHECK(unread() == 1);
    const auto inbox = second.api("GET", "/api/v1/messages/inbox", bob);
    CHECK(json::serialize(inbox.body).find("failed") != std::string::npos);
    REQUIRE(std::system(("cupsaccept -h '" + cups.server() + "' '" + queue + "' >/dev/null 2>&1")
                            .c_str()) == 0);
    std::filesystem::remove(log);
    std::filesystem::remove(log + ".2");
}

TEST_CASE(
    "a print job cancelled in CUPS at its deadline while its process dies before recording the "
    "failure fails by its deadline after the restart and tells the requester once",
    "[app][durability][print_devices]") {
    // Where the first process stops dead: right after the cancel (nobody told yet), or after
    // the notice, before the failure is saved. Either way the retried poll finds the job
    // cancelled in CUPS already.
    const std::string failpoint = GENERATE("print.job_cancelled_in_cups", "print.job_failing");
    INFO(failpoint);
    auto& cups = inngest_test::shared_cups();
    const std::string queue = "acme-late" + std::to_string(getpid());
    // Nothing listens there: CUPS' backend retries for ever and the job stays "processing".
    cups.add_raw_queue(queue, "socket://127.0.0.1:" + std::to_string(inngest_test::free_port()));
    const std::string database = inngest_test::shared_postgres().fresh_database();
    const std::string log = "/tmp/riveredge-print-late-" + std::to_string(getpid()) + ".log";
    const int port = inngest_test::free_port();
    const int executor_port = inngest_test::free_port();
    const std::string cups_server = "RIVEREDGE_CUPS_SERVER=" + cups.server();
    AppProcess first(database, port, executor_port, log,
                     {cups_server, "RIVEREDGE_FAILPOINTS=" + failpoint});
    first.start();
    const auto alice = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "alice", {"admin"}},
        kSecret);
    const auto bob = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "bob", {}}, kSecret);
    const auto printer = first.api(
        "POST", "/api/v1/print/printers", alice,
        R"({"name":"Late","kind":"label","cups_queue":")" + queue + R"(","owners":["alice"]})");
    REQUIRE(printer.status == 201);
    const auto asked =
        first.api("POST", "/api/v1/print/jobs", bob,
                  R"({"printer_id":)" + std::to_string(printer.body.at("id").as_int64()) +
                      R"(,"raw_base64":")" + riveredge::core::to_base64("^XA^XZ") +
                      R"(","deadline_seconds":5})");
    REQUIRE(asked.status == 202);
    const auto job_path = "/api/v1/print/jobs/" + std::to_string(asked.body.at("id").as_int64());
    const bool stopped = first.stopped_at_failpoint();
    INFO(first.log());
    REQUIRE(stopped);
    REQUIRE(first.log().find("\"failpoint\":\"" + failpoint + "\"") != std::string::npos);

    AppProcess second(database, port, executor_port, log + ".2", {cups_server});
    second.start();
    const auto job = second.finished_job(job_path, bob);
    INFO(second.log());
    // It failed by its deadline, as it would have without the crash: not "canceled" (by someone
    // in CUPS, as the retry would otherwise read CUPS' state).
    CHECK(job.at("status") == "failed");
    CHECK(job.at("error").as_string().find("deadline") != json::string::npos);
    // The requester (not an owner, so told of nothing else) is told once, of the failure. The
    // notice's delivery run may not exist yet when the job has ended: wait for the notice, then
    // for every run to end, so that a second notice would have come by then.
    const auto items = [&] {
        return second.api("GET", "/api/v1/messages/inbox", bob).body.at("items").as_array();
    };
    for (int i = 0; i < 400 && items().empty(); ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(second.runs_ended({"riveredge-flow-print-job", "riveredge-flow-messages-deliver"}));
    const json::value inbox = items();
    INFO(json::serialize(inbox));
    REQUIRE(inbox.as_array().size() == 1);
    CHECK(inbox.at(0).at("subject").as_string().ends_with(" failed"));
    std::filesystem::remove(log);
    std::filesystem::remove(log + ".2");
}
