// The app end to end: real PostgreSQL, the app in process with its embedded executor, real HTTP.

#include "app.hpp"
#include "app/app_under_test.hpp"
#include "app/approvals_support.hpp"
#include "core/auth/jwt.hpp"
#include "core/db/database.hpp"
#include "core/http/websocket_hub.hpp"
#include "core/log/logger.hpp"
#include "crypto/signing_key.hpp"
#include "support/call_builder.hpp"
#include "support/child_process.hpp"
#include "support/temp_postgres.hpp"
#include "transport/http_client.hpp"

#include <inngest/http_server.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace json = boost::json;
using riveredge::core::Principal;
using riveredge::core::TenantId;

namespace {

using riveredge_test::AppUnderTest;
using riveredge_test::Response;

std::string send_body(const std::string& recipients, const std::string& key = {}) {
    std::string body =
        R"({"subject":"审批通知: 采购单 PO-1","body":"请在今天审批。","channels":["in_app"],"recipients":)" +
        recipients;
    if (!key.empty()) {
        body += R"(,"idempotency_key":")" + key + "\"";
    }
    return body + "}";
}

// A message's deliveries by `key` (channel or recipient): their status, from the delivery log.
std::map<std::string, std::string> delivery_statuses(const AppUnderTest& t,
                                                     const std::string& token,
                                                     const json::value& message_id,
                                                     const char* key) {
    const auto log = t.call(
        "GET", "/api/v1/messages/" + std::to_string(message_id.as_int64()) + "/deliveries", token);
    REQUIRE(log.status == 200);
    INFO(json::serialize(log.body));
    std::map<std::string, std::string> statuses;
    for (const auto& delivery : log.body.at("deliveries").as_array()) {
        statuses[std::string(delivery.at(key).as_string())] =
            std::string(delivery.at("status").as_string());
    }
    return statuses;
}

}  // namespace

TEST_CASE("health, readiness and the OpenAPI document", "[app]") {
    AppUnderTest t;
    CHECK(t.call("GET", "/healthz").status == 200);
    const auto ready = t.call("GET", "/readyz");
    CHECK(ready.status == 200);
    CHECK(ready.body.at("migrated") == true);
    const auto doc = t.call("GET", "/api/openapi.json");
    REQUIRE(doc.status == 200);
    CHECK(doc.body.at("openapi") == "3.0.3");
    const auto& paths = doc.body.at("paths").as_object();
    for (const auto& route : t.app().routes()) {
        CAPTURE(route);
        const auto space = route.find(' ');
        std::string method = route.substr(0, space);
        std::transform(method.begin(), method.end(), method.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        const auto* path = paths.if_contains(route.substr(space + 1));
        REQUIRE(path != nullptr);
        CHECK(path->as_object().contains(method));
    }
    // Documented routes carry their real schemas, not a generic object.
    const auto& send = paths.at("/api/v1/messages/send").at("post");
    CHECK(send.at("requestBody")
              .at("content")
              .at("application/json")
              .at("schema")
              .at("properties")
              .as_object()
              .contains("idempotency_key"));
}

TEST_CASE("a message is delivered durably to each recipient's inbox", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto carol = t.token("acme", "carol");
    const auto sent = t.call("POST", "/api/v1/messages/send", alice,
                             send_body(R"(["bob","carol","bob"])", "po-1"));
    REQUIRE(sent.status == 201);
    CHECK(sent.body.at("deliveries") == 2);
    REQUIRE(t.wait_unread(bob, 1));
    REQUIRE(t.wait_unread(carol, 1));

    const auto inbox = t.call("GET", "/api/v1/messages/inbox", bob);
    REQUIRE(inbox.status == 200);
    const auto& items = inbox.body.at("items").as_array();
    REQUIRE(items.size() == 1);
    CHECK(items[0].at("subject") == "审批通知: 采购单 PO-1");
    CHECK(items[0].at("read") == false);

    const auto message_id = sent.body.at("message_id").as_int64();
    const auto log =
        t.call("GET", "/api/v1/messages/" + std::to_string(message_id) + "/deliveries", alice);
    REQUIRE(log.status == 200);
    for (const auto& delivery : log.body.at("deliveries").as_array()) {
        CHECK(delivery.at("status") == "sent");
        CHECK(delivery.at("attempts") == 1);
    }

    // The same idempotency key: the first message, no second delivery.
    const auto again =
        t.call("POST", "/api/v1/messages/send", alice, send_body(R"(["bob"])", "po-1"));
    CHECK(again.status == 200);
    CHECK(again.body.at("message_id") == message_id);
    CHECK(again.body.at("created") == false);
    REQUIRE(t.app().wait_settled(10s));
    CHECK(t.call("GET", "/api/v1/messages/inbox", bob).body.at("items").as_array().size() == 1);

    // A key is its sender's own: another sender's "po-1" is a message of its own (a user cannot
    // take the place of a message someone else sends with a key).
    const auto others =
        t.call("POST", "/api/v1/messages/send", carol, send_body(R"(["bob"])", "po-1"));
    CHECK(others.status == 201);
    CHECK(others.body.at("created") == true);
    CHECK(others.body.at("message_id") != message_id);
    REQUIRE(t.wait_unread(bob, 2));
}

TEST_CASE("a user named like one of the app's own senders cannot take its idempotency keys",
          "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto carol = t.token("acme", "carol");
    const auto impostor = t.token("acme", "approvals");  // a token's sub is any text
    // An approval for bob to decide; its end is told to alice under "approval-finished-<id>".
    const auto definition = t.call(
        "POST", "/api/v1/approvals/definitions", alice,
        R"({"source":{"key":"one","nodes":[{"id":"start","type":"startEvent"},{"id":"ok","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},{"id":"end","type":"endEvent"}],"edges":[{"id":"e0","source":"start","target":"ok"},{"id":"e1","source":"ok","target":"end"}]}})");
    REQUIRE(definition.status == 201);
    const auto definition_id = std::to_string(definition.body.at("id").as_int64());
    REQUIRE(t.call("POST", "/api/v1/approvals/definitions/" + definition_id + "/publish", alice)
                .status == 201);
    const auto instance = t.call("POST", "/api/v1/approvals/instances", alice,
                                 R"({"definition_id":)" + definition_id + "}");
    REQUIRE(instance.status == 201);
    const auto instance_id = instance.body.at("id").as_int64();
    json::array tasks;
    for (int i = 0; i < 400 && tasks.empty(); ++i) {
        tasks = t.call("GET", "/api/v1/approvals/tasks", bob).body.at("items").as_array();
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(tasks.size() == 1);

    // The user "approvals" sends first with the key the approvals engine will use: a message of
    // its own, whose deliveries it may read.
    const auto own =
        t.call("POST", "/api/v1/messages/send", impostor,
               send_body(R"(["carol"])", "approval-finished-" + std::to_string(instance_id)));
    REQUIRE(own.status == 201);
    CHECK(own.body.at("created") == true);
    CHECK(t.call("GET",
                 "/api/v1/messages/" + std::to_string(own.body.at("message_id").as_int64()) +
                     "/deliveries",
                 impostor)
              .status == 200);
    REQUIRE(t.wait_unread(carol, 1));

    // The approval ends: alice is still told, under the engine's own key.
    REQUIRE(t.call("POST",
                   "/api/v1/approvals/tasks/" + std::to_string(tasks[0].at("id").as_int64()) +
                       "/approve",
                   bob, "{}")
                .status == 200);
    json::array told;
    for (int i = 0; i < 400 && told.empty(); ++i) {
        told = t.call("GET", "/api/v1/messages/inbox", alice).body.at("items").as_array();
        std::this_thread::sleep_for(25ms);
    }
    INFO(json::serialize(told));
    REQUIRE(told.size() == 1);
    CHECK(told[0].at("subject").as_string() ==
          "Your approval request #" + std::to_string(instance_id) + " is completed");
    // The engine's notice is not the user's message: its deliveries are not the user's to read.
    CHECK(t.call("GET",
                 "/api/v1/messages/" + std::to_string(told[0].at("message_id").as_int64()) +
                     "/deliveries",
                 impostor)
              .status == 403);
}

TEST_CASE("the inbox marks read, reads all and archives", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    REQUIRE(t.call("POST", "/api/v1/messages/send", alice, send_body(R"(["bob"])")).status == 201);
    REQUIRE(t.call("POST", "/api/v1/messages/send", alice, send_body(R"(["bob"])")).status == 201);
    REQUIRE(t.wait_unread(bob, 2));
    const auto items =
        t.call("GET", "/api/v1/messages/inbox?status=unread", bob).body.at("items").as_array();
    REQUIRE(items.size() == 2);
    const auto first = std::to_string(items[0].at("id").as_int64());
    CHECK(t.call("POST", "/api/v1/messages/inbox/" + first + "/read", bob).status == 200);
    CHECK(t.wait_unread(bob, 1));
    CHECK(t.call("GET", "/api/v1/messages/inbox?status=read", bob)
              .body.at("items")
              .as_array()
              .size() == 1);
    CHECK(t.call("POST", "/api/v1/messages/inbox/read-all", bob).body.at("marked") == 1);
    CHECK(t.wait_unread(bob, 0));
    CHECK(t.call("POST", "/api/v1/messages/inbox/" + first + "/archive", bob).status == 200);
    CHECK(t.call("GET", "/api/v1/messages/inbox?status=archived", bob)
              .body.at("items")
              .as_array()
              .size() == 1);
    CHECK(t.call("GET", "/api/v1/messages/inbox", bob).body.at("items").as_array().size() == 1);
    CHECK(t.call("GET", "/api/v1/messages/inbox?page=1&page_size=1", bob)
              .body.at("items")
              .as_array()
              .size() == 1);
}

TEST_CASE("one tenant cannot read, change or detect another tenant's messages", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto other_bob = t.token("globex", "bob", {"admin"});  // same user id, other tenant
    const auto other_alice = t.token("globex", "alice", {"admin"});
    const auto sent =
        t.call("POST", "/api/v1/messages/send", alice, send_body(R"(["bob"])", "shared-key"));
    REQUIRE(sent.status == 201);
    REQUIRE(t.wait_unread(bob, 1));
    const auto item =
        t.call("GET", "/api/v1/messages/inbox", bob).body.at("items").at(0).at("id").as_int64();
    const auto message = sent.body.at("message_id").as_int64();

    CHECK(t.call("GET", "/api/v1/messages/inbox", other_bob).body.at("items").as_array().empty());
    CHECK(t.call("GET", "/api/v1/messages/inbox/unread-count", other_bob).body.at("unread") == 0);
    CHECK(t.call("POST", "/api/v1/messages/inbox/" + std::to_string(item) + "/read", other_bob)
              .status == 404);
    CHECK(t.call("POST", "/api/v1/messages/inbox/" + std::to_string(item) + "/archive", other_bob)
              .status == 404);
    CHECK(t.call("POST", "/api/v1/messages/inbox/read-all", other_bob).body.at("marked") == 0);
    CHECK(t.call("GET", "/api/v1/messages/" + std::to_string(message) + "/deliveries", other_alice)
              .status == 404);
    // The same idempotency key in another tenant is another message.
    const auto theirs =
        t.call("POST", "/api/v1/messages/send", other_alice, send_body(R"(["bob"])", "shared-key"));
    CHECK(theirs.status == 201);
    CHECK(theirs.body.at("message_id") != message);
    // And acme's bob still has exactly his one unread item.
    CHECK(t.wait_unread(bob, 1));

    // Defence in depth: a query that forgets its tenant filter still sees only its tenant's rows.
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    {
        riveredge::core::db::Transaction tx(pool, TenantId::trusted("globex"));
        const auto rows = tx.exec("SELECT tenant_id FROM messages");
        REQUIRE(rows.size() == 1);
        CHECK(rows.text(0, "tenant_id") == "globex");
    }
    riveredge::core::db::Transaction none(pool, std::nullopt);
    CHECK(none.exec("SELECT id FROM inbox_items").empty());
}

TEST_CASE("bad input gets precise 4xx answers and changes nothing", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto code = [](const Response& r) {
        return std::string(r.body.at("error").at("code").as_string());
    };
    CHECK(t.call("GET", "/api/v1/messages/inbox").status == 401);
    CHECK(t.call("GET", "/api/v1/messages/inbox", "not.a.token").status == 401);
    CHECK(t.call("GET", "/api/v1/messages/inbox",
                 riveredge::core::issue_token(Principal{TenantId::trusted("acme"), "alice", {}},
                                              "another-secret-0123456789abcdef0123"))
              .status == 401);
    auto r = t.call("POST", "/api/v1/messages/send", alice, "{not json");
    CHECK(r.status == 400);
    CHECK(code(r) == "bad_request");
    r = t.call("POST", "/api/v1/messages/send", alice, "[]");
    CHECK(r.status == 400);
    r = t.call("POST", "/api/v1/messages/send", alice,
               R"({"subject":"","channels":["fax"],"recipients":[1]})");
    CHECK(r.status == 422);
    CHECK(r.body.at("error").at("details").at("fields").as_object().contains("channels"));
    CHECK(r.body.at("error").at("details").at("fields").as_object().contains("recipients"));
    CHECK(r.body.at("error").at("details").at("fields").as_object().contains("body"));
    CHECK(t.call("POST", "/api/v1/messages/inbox/abc/read", alice).status == 422);
    CHECK(t.call("POST", "/api/v1/messages/inbox/999999/read", alice).status == 404);
    CHECK(t.call("GET", "/api/v1/messages/inbox?status=bogus", alice).status == 422);
    CHECK(t.call("GET", "/api/v1/messages/inbox?page_size=100000", alice).status == 422);
    CHECK(t.call("DELETE", "/api/v1/messages/inbox/read-all", alice).status == 405);
    CHECK(t.call("GET", "/nowhere", alice).status == 404);
    // A send by template follows the rules of a direct send: its fields are checked as sent,
    // under their own names, and what the template renders is held to the direct limits.
    REQUIRE(t.call("POST", "/api/v1/messages/templates", alice,
                   R"({"key":"welcome","channel":"in_app","subject":"{{s}}","body":"{{b}}"})")
                .status == 201);
    REQUIRE(t.call("POST", "/api/v1/messages/templates", alice,
                   R"({"key":"welcome","channel":"email","subject":"{{s}}","body":"{{b}}",)"
                   R"("html_body":"<p>{{h}}</p>"})")
                .status == 201);
    const auto fields = [](const Response& response) {
        INFO(json::serialize(response.body));
        return response.body.at("error").at("details").at("fields").as_object();
    };
    const auto by_template = [](const std::string& fields_json,
                                const std::string& channel = "in_app",
                                const std::string& recipient = "bob") {
        return R"({"channels":[")" + channel + R"("],"recipients":[")" + recipient + R"("],)" +
               fields_json + "}";
    };
    r = t.call("POST", "/api/v1/messages/send", alice,
               by_template(R"("template_key":"welcome","locale":5)"));
    CHECK(r.status == 422);
    CHECK(fields(r).contains("locale"));
    r = t.call("POST", "/api/v1/messages/send", alice,
               by_template(R"("template_key":"welcome","locale":"")"));
    CHECK(r.status == 422);
    CHECK(fields(r).contains("locale"));
    r = t.call("POST", "/api/v1/messages/send", alice, by_template(R"("template_key":5)"));
    CHECK(r.status == 422);
    CHECK(fields(r).contains("template_key"));
    CHECK_FALSE(fields(r).contains("key"));
    r = t.call("POST", "/api/v1/messages/send", alice,
               by_template(R"("template_key":"welcome","variables":{"s":")" +
                           std::string(600, 's') + R"(","b":"b"})"));
    CHECK(r.status == 422);
    CHECK(fields(r).contains("subject"));
    CHECK(json::serialize(r.body).find("500 bytes") != std::string::npos);
    r = t.call("POST", "/api/v1/messages/send", alice,
               by_template(R"("template_key":"welcome","variables":{"s":"a\u0000b","b":"b"})"));
    CHECK(r.status == 422);
    CHECK(fields(r).contains("subject"));
    r = t.call("POST", "/api/v1/messages/send", alice,
               by_template(R"("template_key":"welcome","variables":{"s":"s","b":")" +
                           std::string(70000, 'b') + R"("})"));
    CHECK(r.status == 422);
    CHECK(fields(r).contains("body"));
    r = t.call("POST", "/api/v1/messages/send", alice,
               by_template(R"("template_key":"welcome","variables":{"s":"s","b":"b","h":")" +
                               std::string(70000, 'h') + R"("})",
                           "email", "bob@example.com"));
    CHECK(r.status == 422);
    CHECK(fields(r).contains("html"));
    // The preview reads its key, channel and locale by the same rules.
    r = t.call("POST", "/api/v1/messages/templates/preview", alice,
               R"({"key":"welcome","channel":5})");
    CHECK(r.status == 422);
    CHECK(fields(r).contains("channel"));
    r = t.call("POST", "/api/v1/messages/templates/preview", alice,
               R"({"key":"welcome","locale":["en"]})");
    CHECK(r.status == 422);
    CHECK(fields(r).contains("locale"));
    CHECK(t.call("POST", "/api/v1/messages/templates/preview", alice,
                 R"({"key":"welcome","locale":"zh-CN","variables":{"s":"s","b":"b"}})")
              .status == 200);
    // SQL metacharacters are data, nothing else.
    const std::string evil = R"(["x'); DROP TABLE messages; --"])";
    CHECK(t.call("POST", "/api/v1/messages/send", alice, send_body(evil)).status == 201);
    CHECK(t.call("GET", "/readyz").status == 200);
    const auto evil_user = t.token("acme", "x'); DROP TABLE messages; --");
    CHECK(t.wait_unread(evil_user, 1));
    REQUIRE(t.app().wait_settled(10s));
    CHECK(t.call("GET", "/api/v1/messages/inbox", t.token("acme", "bob"))
              .body.at("items")
              .as_array()
              .empty());
    // None of the rejected requests left a message behind.
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::core::db::Transaction tx(pool, TenantId::trusted("acme"));
    CHECK(tx.exec("SELECT id FROM messages").size() == 1);
}

namespace {

std::string base64_decode(const std::string& text) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (const char c : text) {
        int value = -1;
        if (c >= 'A' && c <= 'Z')
            value = c - 'A';
        else if (c >= 'a' && c <= 'z')
            value = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            value = c - '0' + 52;
        else if (c == '+')
            value = 62;
        else if (c == '/')
            value = 63;
        if (value < 0)
            continue;
        buffer = (buffer << 6U) | static_cast<unsigned>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> static_cast<unsigned>(bits)) & 0xFFU));
        }
    }
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

json::value delivery_of(const AppUnderTest& t,
                        const std::string& token,
                        std::int64_t message,
                        const std::string& status) {
    for (int i = 0; i < 400; ++i) {
        const auto log =
            t.call("GET", "/api/v1/messages/" + std::to_string(message) + "/deliveries", token);
        if (log.status == 200 &&
            log.body.at("deliveries").at(0).at("status") == json::value(status)) {
            return log.body.at("deliveries").at(0);
        }
        std::this_thread::sleep_for(25ms);
    }
    return nullptr;
}

// The test SMTP server (aiosmtpd) in a child process, with its own mail folder.
struct SmtpServer {
    explicit SmtpServer(std::vector<std::string> options = {})
        : port(inngest_test::free_port()),
          maildir("/tmp/riveredge-mail-" + std::to_string(getpid()) + "-" + std::to_string(port)) {
        std::filesystem::remove_all(maildir);
        std::vector<std::string> command{
            "/usr/bin/python3", std::string(PROJECT_SOURCE_DIR) + "/tests/support/smtp_server.py",
            std::to_string(port), maildir};
        command.insert(command.end(), options.begin(), options.end());
        process = std::make_unique<inngest_test::ChildProcess>(command, std::vector<std::string>{},
                                                               maildir + ".log");
        for (int i = 0; i < 100 && process->log().find("smtp server") == std::string::npos; ++i) {
            std::this_thread::sleep_for(50ms);
        }
        REQUIRE(process->log().find("smtp server") != std::string::npos);
    }
    ~SmtpServer() {
        process.reset();
        std::filesystem::remove_all(maildir);
        std::filesystem::remove(maildir + ".log");
    }
    SmtpServer(const SmtpServer&) = delete;
    SmtpServer& operator=(const SmtpServer&) = delete;

    std::size_t mail_count() const {
        std::size_t n = 0;
        if (std::filesystem::exists(maildir)) {
            for (const auto& entry : std::filesystem::directory_iterator(maildir)) {
                n += entry.path().extension() == ".eml" ? 1 : 0;
            }
        }
        return n;
    }

    int port;
    std::string maildir;
    std::unique_ptr<inngest_test::ChildProcess> process;
};

// A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in `dir`).
void make_certificate(const std::string& dir) {
    std::filesystem::create_directories(dir);
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=smtp-test -addext subjectAltName=IP:127.0.0.1 -keyout '" +
        dir + "/key.pem' -out '" + dir + "/cert.pem' >/dev/null 2>&1";
    REQUIRE(std::system(command.c_str()) == 0);
}

// The decoded content of the MIME part of `eml` with this content type.
std::string mime_part(const std::string& eml, const std::string& content_type) {
    const auto header = eml.find("Content-Type: " + content_type + "; charset=UTF-8");
    if (header == std::string::npos) {
        return {};
    }
    const auto start = eml.find("\r\n\r\n", header);
    const auto end = eml.find("\r\n--", start);
    return base64_decode(
        eml.substr(start + 4, end == std::string::npos ? std::string::npos : end - start - 4));
}

}  // namespace

TEST_CASE("email reaches a real SMTP server intact, with retries on 4xx and none on 5xx",
          "[app][smtp]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    SmtpServer smtp;
    const int smtp_port = smtp.port;
    const std::string& maildir = smtp.maildir;

    // Settings: the password is stored but never comes back.
    auto settings = t.call(
        "PUT", "/api/v1/messages/settings/smtp", alice,
        R"({"host":"127.0.0.1","port":)" + std::to_string(smtp_port) +
            R"(,"tls_mode":"none","username":null,"password":"s3cret-pw","from_address":"noreply@acme.example","from_name":"河流 审批"})");
    REQUIRE(settings.status == 200);
    CHECK(settings.body.at("has_password") == true);
    CHECK(json::serialize(settings.body).find("s3cret-pw") == std::string::npos);
    CHECK(
        t.call("GET", "/api/v1/messages/settings/smtp", t.token("globex", "x", {"admin"})).status ==
        404);
    CHECK(t.call("PUT", "/api/v1/messages/settings/smtp", alice, R"({"host":"","port":70000})")
              .status == 422);

    // A Chinese message arrives intact.
    const auto sent = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"审批通知：采购单 PO-7 待您处理","body":"您好，\n请审批采购单 PO-7。谢谢！","channels":["email"],"recipients":["bob@example.com"]})");
    REQUIRE(sent.status == 201);
    const auto message = sent.body.at("message_id").as_int64();
    const auto delivered = delivery_of(t, alice, message, "sent");
    REQUIRE(delivered.is_object());
    CHECK(delivered.at("attempts") == 1);
    const std::string eml = read_file(maildir + "/1.eml");
    REQUIRE_FALSE(eml.empty());
    CHECK(eml.find("To: <bob@example.com>") != std::string::npos);
    CHECK(eml.find("Message-ID: <delivery-" + std::to_string(delivered.at("id").as_int64()) +
                   ".acme@riveredge-flow>") != std::string::npos);
    CHECK(eml.find("Content-Type: text/plain; charset=UTF-8") != std::string::npos);
    const auto subject_at = eml.find("Subject: ");
    REQUIRE(subject_at != std::string::npos);
    std::string subject;
    std::size_t pos = subject_at;
    while ((pos = eml.find("=?UTF-8?B?", pos)) != std::string::npos && pos < eml.find("Date:")) {
        const auto end = eml.find("?=", pos + 10);
        subject += base64_decode(eml.substr(pos + 10, end - pos - 10));
        pos = end;
    }
    CHECK(subject == "审批通知：采购单 PO-7 待您处理");
    const auto body_start = eml.find("\r\n\r\n");
    REQUIRE(body_start != std::string::npos);
    CHECK(base64_decode(eml.substr(body_start + 4)) == "您好，\n请审批采购单 PO-7。谢谢！");

    // 451 first: retried by the durable function, then sent; 2 attempts.
    const auto flaky = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"retry","body":"x","channels":["email"],"recipients":["flaky@example.com"]})");
    REQUIRE(flaky.status == 201);
    const auto retried = delivery_of(t, alice, flaky.body.at("message_id").as_int64(), "sent");
    REQUIRE(retried.is_object());
    CHECK(retried.at("attempts") == 2);

    // 550: failed for good after one attempt.
    const auto rejected = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"nope","body":"x","channels":["email"],"recipients":["reject@example.com"]})");
    REQUIRE(rejected.status == 201);
    const auto failed = delivery_of(t, alice, rejected.body.at("message_id").as_int64(), "failed");
    REQUIRE(failed.is_object());
    CHECK(failed.at("attempts") == 1);
    // No retry is pending: every delivery run has ended (a scheduled retry would keep its run
    // running), and the attempt count stayed at one.
    REQUIRE(t.app().wait_settled(10s));
    const auto deliveries = t.app().executor()->runs("riveredge-flow-messages-deliver");
    REQUIRE(deliveries.size() == 3);
    for (const auto& run : deliveries) {
        CHECK(run.status != inngest::local::RunStatus::kRunning);
    }
    CHECK(
        delivery_of(t, alice, rejected.body.at("message_id").as_int64(), "failed").at("attempts") ==
        1);

    // Header injection through an address is refused before anything is stored.
    CHECK(
        t.call(
             "POST", "/api/v1/messages/send", alice,
             R"({"subject":"x","body":"x","channels":["email"],"recipients":["a@b.c>\r\nBcc: evil@x.y"]})")
            .status == 422);
    std::filesystem::remove_all(maildir);
}

TEST_CASE("HTML mail goes as multipart/alternative with the text part", "[app][smtp]") {
    AppUnderTest t;
    SmtpServer smtp;
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(t.call("PUT", "/api/v1/messages/settings/smtp", alice,
                   R"({"host":"127.0.0.1","port":)" + std::to_string(smtp.port) +
                       R"(,"tls_mode":"none","from_address":"noreply@acme.example"})")
                .status == 200);
    const auto sent = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"月报","body":"纯文本：本月共 3 单。","html":"<h1>月报</h1><p>本月共 <b>3</b> 单。</p>","channels":["email"],"recipients":["carol@example.com"]})");
    REQUIRE(sent.status == 201);
    REQUIRE(delivery_of(t, alice, sent.body.at("message_id").as_int64(), "sent").is_object());
    const std::string eml = read_file(smtp.maildir + "/1.eml");
    CHECK(eml.find("Content-Type: multipart/alternative; boundary=\"=_riveredge_") !=
          std::string::npos);
    CHECK(mime_part(eml, "text/plain") == "纯文本：本月共 3 单。");
    CHECK(mime_part(eml, "text/html") == "<h1>月报</h1><p>本月共 <b>3</b> 单。</p>");

    // An email template's HTML body escapes variables; its text body does not.
    REQUIRE(
        t.call(
             "POST", "/api/v1/messages/templates", alice,
             R"({"key":"report","channel":"email","subject":"Report for {{who}}","body":"Hello {{who}}","html_body":"<p>Hello {{who}}</p>"})")
            .status == 201);
    CHECK(
        t.call("POST", "/api/v1/messages/templates", alice,
               R"({"key":"x","channel":"in_app","subject":"s","body":"b","html_body":"<p>b</p>"})")
            .status == 422);
    const auto templated = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"template_key":"report","channels":["email"],"variables":{"who":"A&B <Ltd>"},"recipients":["dave@example.com"]})");
    REQUIRE(templated.status == 201);
    REQUIRE(delivery_of(t, alice, templated.body.at("message_id").as_int64(), "sent").is_object());
    const std::string second = read_file(smtp.maildir + "/2.eml");
    CHECK(mime_part(second, "text/plain") == "Hello A&B <Ltd>");
    CHECK(mime_part(second, "text/html") == "<p>Hello A&amp;B &lt;Ltd&gt;</p>");
}

TEST_CASE("STARTTLS and SMTPS with AUTH: right credentials deliver and wrong ones fail for good",
          "[app][smtp]") {
    const std::string certs = "/tmp/riveredge-smtp-certs-" + std::to_string(getpid());
    make_certificate(certs);
    AppUnderTest t(certs + "/cert.pem");
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("beta", "bob", {"admin"});
    SmtpServer starttls(
        {"--starttls", certs + "/cert.pem", certs + "/key.pem", "--auth", "mailer:correct horse"});
    SmtpServer smtps(
        {"--smtps", certs + "/cert.pem", certs + "/key.pem", "--auth", "mailer:correct horse"});
    const auto configure = [&](const std::string& token, int port, const std::string& mode,
                               const std::string& password) {
        REQUIRE(t.call("PUT", "/api/v1/messages/settings/smtp", token,
                       R"({"host":"127.0.0.1","port":)" + std::to_string(port) +
                           R"(,"tls_mode":")" + mode + R"(","username":"mailer","password":")" +
                           password + R"(","from_address":"noreply@example.com"})")
                    .status == 200);
    };
    const auto send = [&](const std::string& token, const std::string& to) {
        const auto sent = t.call("POST", "/api/v1/messages/send", token,
                                 R"({"subject":"tls","body":"secret body","channels":["email"],)"
                                 R"("recipients":[")" +
                                     to + R"("]})");
        REQUIRE(sent.status == 201);
        return sent.body.at("message_id").as_int64();
    };

    configure(alice, starttls.port, "starttls", "correct horse");
    REQUIRE(delivery_of(t, alice, send(alice, "x@example.com"), "sent").is_object());
    CHECK(starttls.mail_count() == 1);
    CHECK(mime_part(read_file(starttls.maildir + "/1.eml"), "text/plain") == "secret body");

    configure(bob, smtps.port, "smtps", "correct horse");
    REQUIRE(delivery_of(t, bob, send(bob, "y@example.com"), "sent").is_object());
    CHECK(smtps.mail_count() == 1);

    // A wrong password is a 535: permanent, one attempt, nothing delivered.
    configure(alice, starttls.port, "starttls", "wrong");
    const auto refused = delivery_of(t, alice, send(alice, "z@example.com"), "failed");
    REQUIRE(refused.is_object());
    CHECK(refused.at("attempts") == 1);
    CHECK(starttls.mail_count() == 1);

    // Plain SMTP to a server that insists on STARTTLS never sends the password in the clear.
    configure(alice, starttls.port, "none", "correct horse");
    const auto plain = delivery_of(t, alice, send(alice, "w@example.com"), "failed");
    REQUIRE(plain.is_object());
    CHECK(starttls.mail_count() == 1);
    std::filesystem::remove_all(certs);
}

TEST_CASE("a delivery step re-run after a lost answer does not send the email twice",
          "[app][smtp]") {
    AppUnderTest t;
    SmtpServer smtp;
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(t.call("PUT", "/api/v1/messages/settings/smtp", alice,
                   R"({"host":"127.0.0.1","port":)" + std::to_string(smtp.port) +
                       R"(,"tls_mode":"none","from_address":"noreply@acme.example"})")
                .status == 200);
    const auto sent =
        t.call("POST", "/api/v1/messages/send", alice,
               R"({"subject":"once","body":"x","channels":["email"],"recipients":["e@x.org"]})");
    REQUIRE(sent.status == 201);
    const auto message = sent.body.at("message_id").as_int64();
    const auto delivery = delivery_of(t, alice, message, "sent");
    REQUIRE(delivery.is_object());
    REQUIRE(smtp.mail_count() == 1);

    // What Inngest does when the process died after sending but before its answer arrived: it
    // calls the function again with the state it had, where the delivery step is not memoized.
    inngest_test::CallBuilder call;
    call.fn_slug = "riveredge-flow-messages-deliver";
    call.event =
        json::object{{"name", "messages/message.requested"},
                     {"data", json::object{{"tenant_id", "acme"}, {"message_id", message}}}};
    call.data("load-deliveries",
              json::array{json::object{{"id", delivery.at("id")}, {"channel", "email"}}});
    const auto [status, reply] = t.replay(call);
    REQUIRE(status == 206);
    const auto ops = reply.as_array();
    REQUIRE(ops.size() == 1);
    CHECK(ops[0].at("op") == "StepRun");
    CHECK(ops[0].at("data").at("status") == "sent");
    CHECK(ops[0].at("data").at("changed") == false);
    REQUIRE(t.app().wait_settled(10s));
    CHECK(smtp.mail_count() == 1);
    CHECK(delivery_of(t, alice, message, "sent").at("attempts") == 1);
}

TEST_CASE("templates are versioned, previewed and used to send", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    auto created = t.call(
        "POST", "/api/v1/messages/templates", alice,
        R"({"key":"approval.pending","channel":"in_app","locale":"zh-CN","subject":"待审批：{{title}}","body":"{{applicant}} 提交了 {{title}}，金额 {{amount}} 元。"})");
    REQUIRE(created.status == 201);
    CHECK(created.body.at("version") == 1);
    created = t.call(
        "POST", "/api/v1/messages/templates", alice,
        R"({"key":"approval.pending","channel":"in_app","locale":"zh-CN","subject":"【待审批】{{title}}","body":"{{applicant}} 提交了 {{title}}（{{amount}} 元）"})");
    CHECK(created.body.at("version") == 2);
    CHECK(t.call("POST", "/api/v1/messages/templates", alice,
                 R"({"key":"broken","channel":"in_app","subject":"{{#open}}","body":"x"})")
              .status == 422);
    const auto listed =
        t.call("GET", "/api/v1/messages/templates", alice).body.at("templates").as_array();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].at("version") == 2);
    CHECK(t.call("GET", "/api/v1/messages/templates", t.token("globex", "x", {"admin"}))
              .body.at("templates")
              .as_array()
              .empty());

    const auto preview = t.call(
        "POST", "/api/v1/messages/templates/preview", alice,
        R"({"key":"approval.pending","channel":"in_app","variables":{"title":"采购单 <PO-9>","applicant":"张三","amount":1234.5}})");
    REQUIRE(preview.status == 200);
    CHECK(preview.body.at("subject") == "【待审批】采购单 <PO-9>");
    CHECK(preview.body.at("body") == "张三 提交了 采购单 <PO-9>（1234.5 元）");
    const auto html = t.call(
        "POST", "/api/v1/messages/templates/preview", alice,
        R"({"subject":"s","body":"<p>{{name}}</p>","channel":"email","variables":{"name":"<b>x</b>"}})");
    CHECK(html.status == 200);
    const auto inline_preview =
        t.call("POST", "/api/v1/messages/templates/preview", alice,
               R"({"subject":"Hi {{name}}","body":"Body","variables":{"name":"Ada"}})");
    CHECK(inline_preview.body.at("subject") == "Hi Ada");
    // Sections over lists multiply: a short template over a long list is refused before it runs
    // (it would keep a thread busy for good), and so is one whose text grows past 1 MiB.
    json::array many;
    for (int i = 0; i < 5000; ++i) {
        many.emplace_back(i);
    }
    const auto started = std::chrono::steady_clock::now();
    const auto nested =
        t.call("POST", "/api/v1/messages/templates/preview", alice,
               json::serialize(json::object{{"subject", "s"},
                                            {"body", "{{#a}}{{#a}}{{#a}}{{.}}{{/a}}{{/a}}{{/a}}"},
                                            {"variables", json::object{{"a", many}}}}));
    CHECK(nested.status == 422);
    CHECK(json::serialize(nested.body).find("render too much") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    // kainjow reads a tag trimmed, so spaces do not hide a section, nor a change of delimiters.
    const auto spaced =
        t.call("POST", "/api/v1/messages/templates/preview", alice,
               json::serialize(json::object{{"subject", "s"},
                                            {"body", "{{ #a}}{{ #a}}{{ #a}}{{ /a}}{{ /a}}{{ /a}}"},
                                            {"variables", json::object{{"a", many}}}}));
    CHECK(spaced.status == 422);
    CHECK(t.call("POST", "/api/v1/messages/templates/preview", alice,
                 R"({"subject":"s","body":"{{ =<% %>=}}<%#a%><%/a%>"})")
              .status == 422);
    // A long value repeated by two levels is counted before it is built.
    const auto repeated =
        t.call("POST", "/api/v1/messages/templates/preview", alice,
               json::serialize(json::object{
                   {"subject", "s"},
                   {"body", "{{#a}}{{#a}}{{big}}{{/a}}{{/a}}"},
                   {"variables", json::object{{"a", json::array{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
                                              {"big", std::string(100000, 'b')}}}}));
    CHECK(repeated.status == 422);
    // Within the estimate, the text itself is still capped as it grows.
    const auto huge =
        t.call("POST", "/api/v1/messages/templates/preview", alice,
               json::serialize(json::object{{"subject", "s"},
                                            {"body", "{{#a}}" + std::string(250, 'x') + "{{/a}}"},
                                            {"variables", json::object{{"a", many}}}}));
    CHECK(huge.status == 422);
    CHECK(json::serialize(huge.body).find("1048576 bytes") != std::string::npos);
    // One level over the same list renders.
    const auto flat =
        t.call("POST", "/api/v1/messages/templates/preview", alice,
               json::serialize(json::object{{"subject", "s"},
                                            {"body", "{{#a}}.{{/a}}"},
                                            {"variables", json::object{{"a", many}}}}));
    REQUIRE(flat.status == 200);
    CHECK(flat.body.at("body").as_string().size() == 5000);
    CHECK(t.call("POST", "/api/v1/messages/templates/preview", alice,
                 R"({"subject":"s","body":"{{=<% %>=}}<%x%>"})")
              .status == 422);

    const auto sent = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"template_key":"approval.pending","variables":{"title":"报销单","applicant":"李四","amount":88},"channels":["in_app"],"recipients":["bob"]})");
    REQUIRE(sent.status == 201);
    REQUIRE(t.wait_unread(bob, 1));
    const auto item = t.call("GET", "/api/v1/messages/inbox", bob).body.at("items").at(0);
    CHECK(item.at("subject") == "【待审批】报销单");
    CHECK(item.at("body") == "李四 提交了 报销单（88 元）");
    CHECK(t.call("POST", "/api/v1/messages/send", alice,
                 R"({"template_key":"missing","channels":["in_app"],"recipients":["bob"]})")
              .status == 404);
}

TEST_CASE("the delivery log filters by status, channel, recipient and time", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(
        t.call("POST", "/api/v1/messages/send", alice, send_body(R"(["bob","carol"])")).status ==
        201);
    REQUIRE(t.wait_unread(t.token("acme", "bob"), 1));
    REQUIRE(t.wait_unread(t.token("acme", "carol"), 1));
    auto log = t.call("GET", "/api/v1/messages/deliveries?status=sent&channel=in_app", alice);
    REQUIRE(log.status == 200);
    CHECK(log.body.at("items").as_array().size() == 2);
    log = t.call("GET", "/api/v1/messages/deliveries?recipient=bob", alice);
    REQUIRE(log.body.at("items").as_array().size() == 1);
    CHECK(log.body.at("items").at(0).at("subject") == "审批通知: 采购单 PO-1");
    CHECK(t.call("GET", "/api/v1/messages/deliveries?status=queued", alice)
              .body.at("items")
              .as_array()
              .empty());
    CHECK(t.call("GET", "/api/v1/messages/deliveries?since=2999-01-01T00:00:00Z", alice)
              .body.at("items")
              .as_array()
              .empty());
    CHECK(t.call("GET", "/api/v1/messages/deliveries?until=2999-01-01T00:00:00Z", alice)
              .body.at("items")
              .as_array()
              .size() == 2);
    // A filter's value is checked against its declared schema before any SQL runs.
    const auto bad_time = t.call("GET", "/api/v1/messages/deliveries?since=yesterday-ish", alice);
    CHECK(bad_time.status == 422);
    CHECK(bad_time.body.at("error").at("details").at("fields").as_object().contains("since"));
    CHECK(t.call("GET", "/api/v1/messages/deliveries?channel=fax", alice).status == 422);
    CHECK(t.call("GET", "/api/v1/messages/deliveries?status=lost", alice).status == 422);
    CHECK(t.call("GET", "/api/v1/messages/deliveries", t.token("globex", "alice", {"admin"}))
              .body.at("items")
              .as_array()
              .empty());
}

namespace {

// A real WebSocket client (Boost.Beast) with a receive timeout.
class WsClient {
public:
    // `receive_buffer`: the socket's receive buffer in bytes (0: the system's default).
    WsClient(unsigned short port, const std::string& token, int receive_buffer = 0) : ws_(io_) {
        auto& socket = ws_.next_layer();
        socket.open(boost::asio::ip::tcp::v4());
        if (receive_buffer > 0) {
            socket.set_option(boost::asio::socket_base::receive_buffer_size(receive_buffer));
        }
        socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
        ws_.handshake("127.0.0.1:" + std::to_string(port), "/api/v1/messages/ws?token=" + token);
    }
    // Sends a text frame; false when the connection failed meanwhile.
    bool send(const std::string& text) {
        boost::beast::error_code ec;
        ws_.text(true);
        ws_.write(boost::asio::buffer(text), ec);
        return !ec;
    }
    // Starts a masked text frame of `length` bytes: its header only, written on the socket.
    void send_frame_header(std::uint64_t length) {
        std::string header = {'\x81', '\xFF'};  // FIN + text; masked, 64-bit length
        for (int shift = 56; shift >= 0; shift -= 8) {
            header.push_back(static_cast<char>((length >> shift) & 0xFFU));
        }
        header.append(4, '\0');  // the masking key
        boost::asio::write(ws_.next_layer(), boost::asio::buffer(header));
    }
    // The next text frame, or nullopt after `timeout` (the connection is then shut down) or
    // once the connection was closed (see timed_out and close_code).
    std::optional<std::string> receive(std::chrono::milliseconds timeout) {
        auto pending = std::async(std::launch::async, [this]() -> std::optional<std::string> {
            boost::beast::flat_buffer buffer;
            boost::beast::error_code ec;
            ws_.read(buffer, ec);
            if (ec) {
                error_ = ec.message();
                return std::nullopt;
            }
            return boost::beast::buffers_to_string(buffer.data());
        });
        if (pending.wait_for(timeout) != std::future_status::ready) {
            timed_out_ = true;
            ::shutdown(ws_.next_layer().native_handle(), SHUT_RDWR);
        }
        return pending.get();
    }
    bool timed_out() const { return timed_out_; }
    // How the last receive failed.
    const std::string& error() const { return error_; }
    // The code of the close frame the server sent (0 when none came).
    unsigned close_code() const { return static_cast<unsigned>(ws_.reason().code); }

private:
    bool timed_out_ = false;
    std::string error_;
    boost::asio::io_context io_;
    boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
};

}  // namespace

TEST_CASE("a new inbox item is pushed at once to the recipient's open WebSocket", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    WsClient bob(t.app().port(), t.token("acme", "bob"));
    WsClient other_bob(t.app().port(), t.token("globex", "bob", {"admin"}));
    CHECK_THROWS(WsClient(t.app().port(), "invalid-token"));
    CHECK_THROWS(WsClient(t.app().port(), "%zz"));  // a malformed escape: refused, nothing else
    CHECK(t.call("GET", "/api/v1/messages/ws").status == 426);

    REQUIRE(t.call("POST", "/api/v1/messages/send", alice, send_body(R"(["bob"])")).status == 201);
    const auto pushed = bob.receive(5s);
    REQUIRE(pushed.has_value());
    const auto note = json::parse(*pushed);
    CHECK(note.at("type") == "inbox.item");
    CHECK(note.at("user_id") == "bob");
    CHECK(note.at("item").at("subject") == "审批通知: 采购单 PO-1");
    CHECK_FALSE(other_bob.receive(500ms).has_value());  // same user id, other tenant: nothing
}

TEST_CASE("a WebSocket closes when its token expires, and a user's sockets are capped",
          "[app][security]") {
    AppUnderTest t;
    const auto short_lived = riveredge::core::issue_token(
        riveredge::core::Principal{riveredge::core::TenantId::trusted("acme"), "bob", {}},
        riveredge_test::kSecret, std::chrono::seconds(2));
    WsClient expiring(t.app().port(), short_lived);
    const auto opened = std::chrono::steady_clock::now();
    // Nothing is pushed: the read ends when the server closes the socket at the token's end.
    CHECK_FALSE(expiring.receive(6s).has_value());
    const auto lasted = std::chrono::steady_clock::now() - opened;
    CHECK(lasted >= 1s);
    CHECK(lasted < 5s);

    const auto carol = t.token("acme", "carol");
    std::vector<std::unique_ptr<WsClient>> sockets;
    for (std::size_t i = 0; i < riveredge::core::WebSocketHub::kMaxConnectionsPerUser; ++i) {
        sockets.push_back(std::make_unique<WsClient>(t.app().port(), carol));
    }
    CHECK_THROWS(WsClient(t.app().port(), carol));
    WsClient dave(t.app().port(), t.token("acme", "dave"));  // other users are not affected
    sockets.pop_back();
    // The closed socket's place is free again once the server has seen it go.
    bool reopened = false;
    for (int i = 0; i < 100 && !reopened; ++i) {
        try {
            WsClient again(t.app().port(), carol);
            reopened = true;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(20ms);
        }
    }
    CHECK(reopened);
}

TEST_CASE("a WebSocket client's frame over the hub's small limit closes its socket (1009)",
          "[app][security]") {
    AppUnderTest t;
    WsClient socket(t.app().port(), t.token("acme", "bob"));
    CHECK(socket.send("ping"));  // a small frame is read and ignored
    CHECK_FALSE(socket.receive(300ms).has_value());
    CHECK(socket.timed_out());

    WsClient big(t.app().port(), t.token("acme", "bob"));
    // A frame of 1 MiB: the server refuses it from its header on, its bytes need not follow.
    big.send_frame_header(std::uint64_t{1} << 20);
    CHECK_FALSE(big.receive(10s).has_value());
    INFO("the read ended with " << big.error());
    CHECK_FALSE(big.timed_out());  // the server closed it
    CHECK(big.close_code() == 1009);
}

TEST_CASE("a WebSocket that reads nothing is closed once 1 MiB waits for it; others go on",
          "[app][security]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice");
    const auto bob = t.token("acme", "bob");
    WsClient stuck(t.app().port(), bob, 4096);  // reads nothing until the end
    // Pushes of about 60 KB each, several times what the sockets' buffers and the 1 MiB of the
    // session's queue hold.
    const std::string body(60000, 'x');
    constexpr int kSends = 120;
    for (int i = 0; i < kSends; ++i) {
        REQUIRE(t.call("POST", "/api/v1/messages/send", alice,
                       json::serialize(json::object{{"subject", "flood " + std::to_string(i)},
                                                    {"body", body},
                                                    {"channels", json::array{"in_app"}},
                                                    {"recipients", json::array{"bob"}}}))
                    .status == 201);
    }
    // A new socket of the same user connects and gets the next message, after the flood's.
    WsClient fresh(t.app().port(), bob);
    REQUIRE(t.call("POST", "/api/v1/messages/send", alice,
                   json::serialize(json::object{{"subject", "last"},
                                                {"body", "after the flood"},
                                                {"channels", json::array{"in_app"}},
                                                {"recipients", json::array{"bob"}}}))
                .status == 201);
    bool last = false;
    while (!last) {
        const auto pushed = fresh.receive(60s);
        REQUIRE(pushed.has_value());
        last = json::parse(*pushed).at("item").at("subject") == "last";
    }
    REQUIRE(last);
    // By now every message was handed to the stuck socket's session: it was closed (1008 after
    // the frame under way, or at once when that frame waited 30 s) instead of queueing them all.
    int received = 0;
    while (stuck.receive(10s)) {
        ++received;
    }
    INFO("the stuck socket received " << received << " pushes, then " << stuck.error()
                                      << ", close code " << stuck.close_code());
    CHECK_FALSE(stuck.timed_out());  // the server ended the connection
    CHECK(received < kSends);
}

TEST_CASE("an in-app message over NOTIFY's 8000-byte cap is delivered and pushed", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice");
    const auto bob = t.token("acme", "bob");
    WsClient socket(t.app().port(), bob);
    std::string body;
    while (body.size() < 10000) {
        body += "审批";  // 3 bytes a character
    }
    REQUIRE(t.call("POST", "/api/v1/messages/send", alice,
                   json::serialize(json::object{{"subject", "长消息"},
                                                {"body", body},
                                                {"channels", json::array{"in_app"}},
                                                {"recipients", json::array{"bob"}}}))
                .status == 201);
    const auto pushed = socket.receive(5s);
    REQUIRE(pushed.has_value());
    CHECK(json::parse(*pushed).at("item").at("body") == body.c_str());
    REQUIRE(t.wait_unread(bob, 1));
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", bob);
    REQUIRE(inbox.status == 200);
    CHECK(inbox.body.at("items").at(0).at("body") == body.c_str());
}

namespace {

// FakeSmsGateway: a stand-in for a commercial SMS gateway (none is reachable here), over real
// loopback HTTP. It records requests; "...429" numbers are throttled once, "...400" refused,
// "...777" accepted with a reply holding a NUL and cut inside a character.
class FakeSmsGateway {
public:
    FakeSmsGateway()
        : server_({.host = "127.0.0.1",
                   .port = 0,
                   .routes = [this](const inngest::HttpRequest& request)
                       -> std::optional<inngest::HttpResponse> {
                       const std::lock_guard lock(mutex_);
                       requests_.push_back(request);
                       const auto phone =
                           std::string(json::parse(request.body).at("phone").as_string());
                       if (phone.ends_with("429") && throttled_.insert(phone).second) {
                           return inngest::HttpResponse{429, {}, R"({"code":"Throttling"})"};
                       }
                       if (phone.ends_with("400")) {
                           return inngest::HttpResponse{400, {}, R"({"code":"InvalidPhone"})"};
                       }
                       if (phone.ends_with("777")) {
                           // "ok", NUL, 收 and the first two of 的's three bytes.
                           return inngest::HttpResponse{200, {}, std::string("ok\0收\xE7\x9A", 8)};
                       }
                       return inngest::HttpResponse{200, {}, R"({"code":"OK"})"};
                   }}) {
        server_.start();
    }
    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(server_.port()) + "/sms/send";
    }
    std::vector<inngest::HttpRequest> requests() {
        const std::lock_guard lock(mutex_);
        return requests_;
    }

private:
    std::mutex mutex_;
    std::vector<inngest::HttpRequest> requests_;
    std::set<std::string> throttled_;
    inngest::HttpServer server_;
};

}  // namespace

TEST_CASE("SMS goes through the tenant's gateway with sign name and template, retrying throttles",
          "[app]") {
    AppUnderTest t;
    FakeSmsGateway gateway;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto settings =
        t.call("PUT", "/api/v1/messages/settings/sms", alice,
               R"({"endpoint":")" + gateway.url() +
                   R"(","api_key":"sms-key-123","sign_name":"河流科技","template_id":"SMS_1001"})");
    REQUIRE(settings.status == 200);
    CHECK(settings.body.at("has_api_key") == true);
    CHECK(json::serialize(settings.body).find("sms-key-123") == std::string::npos);
    CHECK(
        t.call("PUT", "/api/v1/messages/settings/sms", alice, R"({"endpoint":"ftp://x"})").status ==
        422);

    const auto sent = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"验证码","body":"您的验证码是 123456","channels":["sms"],"recipients":["+8613800000001","13800000002"]})");
    REQUIRE(sent.status == 201);
    CHECK(sent.body.at("deliveries") == 2);
    const auto id = sent.body.at("message_id").as_int64();
    REQUIRE(delivery_of(t, alice, id, "sent").is_object());
    // Both deliveries run as separate steps: wait until the second one is sent too.
    Response log;
    for (int i = 0; i < 400; ++i) {
        log = t.call("GET", "/api/v1/messages/deliveries?channel=sms&status=sent", alice);
        if (log.body.at("items").as_array().size() == 2) {
            break;
        }
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(log.body.at("items").as_array().size() == 2);
    const auto requests = gateway.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].header("Authorization") == "Bearer sms-key-123");
    const auto payload = json::parse(requests[0].body);
    CHECK(payload.at("sign_name") == "河流科技");
    CHECK(payload.at("template_id") == "SMS_1001");
    CHECK(payload.at("params").at("body") == "您的验证码是 123456");

    const auto throttled =
        t.call("POST", "/api/v1/messages/send", alice,
               R"({"subject":"s","body":"b","channels":["sms"],"recipients":["+8613800000429"]})");
    const auto retried = delivery_of(t, alice, throttled.body.at("message_id").as_int64(), "sent");
    REQUIRE(retried.is_object());
    CHECK(retried.at("attempts") == 2);

    const auto refused =
        t.call("POST", "/api/v1/messages/send", alice,
               R"({"subject":"s","body":"b","channels":["sms"],"recipients":["+8613800000400"]})");
    const auto failed = delivery_of(t, alice, refused.body.at("message_id").as_int64(), "failed");
    REQUIRE(failed.is_object());
    CHECK(failed.at("attempts") == 1);
    CHECK(t.call("POST", "/api/v1/messages/send", alice,
                 R"({"subject":"s","body":"b","channels":["sms"],"recipients":["12345"]})")
              .status == 422);
}

TEST_CASE("an SMS step re-run after the gateway accepted posts again under the same key", "[app]") {
    AppUnderTest t;
    FakeSmsGateway gateway;
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(t.call("PUT", "/api/v1/messages/settings/sms", alice,
                   R"({"endpoint":")" + gateway.url() +
                       R"(","api_key":"k","sign_name":"河流科技","template_id":"SMS_1001"})")
                .status == 200);
    // The gateway accepts, then the `sent` update dies once: the step runs again and posts again,
    // with the key the gateway dedupes on.
    riveredge_test::approvals::fail_first_update(t, "sms_sent_dies", "message_deliveries",
                                                 "NEW.status = 'sent' AND NEW.channel = 'sms'");
    const auto sent =
        t.call("POST", "/api/v1/messages/send", alice,
               R"({"subject":"s","body":"b","channels":["sms"],"recipients":["+8613800000001"]})");
    REQUIRE(sent.status == 201);
    const auto delivery = delivery_of(t, alice, sent.body.at("message_id").as_int64(), "sent");
    REQUIRE(delivery.is_object());
    const auto requests = gateway.requests();
    REQUIRE(requests.size() == 2);
    const std::string key(requests[0].header("Idempotency-Key"));
    CHECK(key == "delivery-" + std::to_string(delivery.at("id").as_int64()) + ".acme");
    CHECK(requests[1].header("Idempotency-Key") == key);
}

TEST_CASE("an SMS gateway's reply with a NUL and a cut character is stored, and sent once",
          "[app]") {
    AppUnderTest t;
    FakeSmsGateway gateway;
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(t.call("PUT", "/api/v1/messages/settings/sms", alice,
                   R"({"endpoint":")" + gateway.url() +
                       R"(","api_key":"k","sign_name":"河流科技","template_id":"SMS_1001"})")
                .status == 200);
    const auto sent =
        t.call("POST", "/api/v1/messages/send", alice,
               R"({"subject":"s","body":"b","channels":["sms"],"recipients":["+8613800000777"]})");
    REQUIRE(sent.status == 201);
    const auto delivery = delivery_of(t, alice, sent.body.at("message_id").as_int64(), "sent");
    CHECK(t.app().wait_settled(10s));
    // Once: storing the reply did not fail the step after the gateway had accepted.
    CHECK(gateway.requests().size() == 1);
    INFO(json::serialize(delivery));
    REQUIRE(delivery.is_object());
    CHECK(delivery.at("attempts") == 1);
    // The reply is kept with U+FFFD for the NUL and for each byte of the cut character.
    const auto log = t.call("GET", "/api/v1/messages/deliveries?channel=sms", alice);
    REQUIRE(log.body.at("items").as_array().size() == 1);
    const auto& kept = log.body.at("items").at(0);
    CHECK(kept.at("status") == "sent");
    const std::string fffd = "\xEF\xBF\xBD";
    CHECK(kept.at("provider_reply") == json::value("200 ok" + fffd + "收" + fffd + fffd));
}

TEST_CASE("an email whose server stays unreachable is failed after the last attempt, not queued",
          "[app][smtp]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(riveredge_test::AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    REQUIRE(t.call("PUT", "/api/v1/messages/settings/smtp", alice,
                   R"({"host":"127.0.0.1","port":)" + std::to_string(inngest_test::free_port()) +
                       R"(,"tls_mode":"none","from_address":"noreply@acme.example"})")
                .status == 200);
    const auto sent = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"s","body":"b","channels":["email"],"recipients":["bob@example.com"]})");
    REQUIRE(sent.status == 201);
    const auto id = sent.body.at("message_id").as_int64();
    // Six attempts (five retries), each backoff under a minute of the executor's clock.
    for (int i = 0; i < 8; ++i) {
        REQUIRE(t.app().wait_settled(10s));
        clock->advance(std::chrono::minutes(1));
        t.app().executor()->poke();
    }
    REQUIRE(t.app().wait_settled(10s));
    const auto delivery = delivery_of(t, alice, id, "failed");
    REQUIRE(delivery.is_object());
    CHECK(delivery.at("attempts") == 6);
    const auto log = t.call("GET", "/api/v1/messages/deliveries", alice).body.at("items").at(0);
    CHECK(std::string(log.at("provider_reply").as_string()).find("gave up") != std::string::npos);
    const auto runs = t.app().executor()->runs("riveredge-flow-messages-deliver");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].status == inngest::local::RunStatus::kFailed);
}

TEST_CASE("a delivery that fails for good does not stop the message's other deliveries", "[app]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    // No SMTP settings: the email fails for good; bob's inbox still gets the message.
    const auto sent = t.call(
        "POST", "/api/v1/messages/send", alice,
        R"({"subject":"s","body":"b","channels":["email","in_app"],"recipients":["e@x.org","bob"]})");
    REQUIRE(sent.status == 201);
    REQUIRE(sent.body.at("deliveries") == 2);
    REQUIRE(t.app().wait_settled(10s));
    CHECK(t.wait_unread(bob, 1));
    auto statuses = delivery_statuses(t, alice, sent.body.at("message_id"), "channel");
    CHECK(statuses["email"] == "failed");
    CHECK(statuses["in_app"] == "sent");
    // The run still ends failed: one of its deliveries did.
    const auto runs = t.app().executor()->runs("riveredge-flow-messages-deliver");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].status == inngest::local::RunStatus::kFailed);
}

TEST_CASE("a delivery whose step fails through every retry ends failed, not queued", "[app]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(riveredge_test::AppUnderTestOptions{.clock = clock});
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto carol = t.token("acme", "carol");
    // bob's inbox item can never be written (the database refuses it on every attempt).
    riveredge_test::approvals::fail_every_insert(t, "bob_inbox_dies", "inbox_items",
                                                 "NEW.user_id = 'bob'");
    const auto sent =
        t.call("POST", "/api/v1/messages/send", alice, send_body(R"(["bob","carol"])"));
    REQUIRE(sent.status == 201);
    for (int i = 0; i < 8; ++i) {
        REQUIRE(t.app().wait_settled(10s));
        clock->advance(std::chrono::minutes(1));
        t.app().executor()->poke();
    }
    REQUIRE(t.app().wait_settled(10s));
    CHECK(t.wait_unread(carol, 1));
    auto statuses = delivery_statuses(t, alice, sent.body.at("message_id"), "recipient");
    CHECK(statuses["bob"] == "failed");
    CHECK(statuses["carol"] == "sent");
}
