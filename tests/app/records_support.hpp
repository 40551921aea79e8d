#pragma once

// Helpers for the electronic-records tests: a seal key made by the openssl command line, people
// with tokens, SQL as a superuser or as the app's role, and the common REST calls.

#include "app/app_under_test.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <thread>

namespace riveredge_test::records {

// One Ed25519 key for the whole run, made by the openssl command line as an operator would.
inline const std::string& seal_key_file() {
    static const std::string path = [] {
        const std::string file = "/tmp/riveredge-records-seal-" + std::to_string(getpid()) + ".pem";
        const std::string command =
            "openssl genpkey -algorithm ed25519 -out " + file + " 2>/dev/null";
        REQUIRE(std::system(command.c_str()) == 0);
        return file;
    }();
    return path;
}

// Another Ed25519 key (a rotation), made the same way.
inline std::string make_seal_key(const std::string& name) {
    const std::string file =
        "/tmp/riveredge-records-seal-" + name + "-" + std::to_string(getpid()) + ".pem";
    const std::string command = "openssl genpkey -algorithm ed25519 -out " + file + " 2>/dev/null";
    REQUIRE(std::system(command.c_str()) == 0);
    return file;
}

// One request with a body of any media type; the answer's status, headers and raw bytes.
inline inngest::detail::InboundResponse raw_call(AppUnderTest& t,
                                                 const std::string& method,
                                                 const std::string& path,
                                                 const std::string& token,
                                                 const std::string& content_type = {},
                                                 const std::string& body = {}) {
    inngest::detail::OutboundRequest request{
        method,      "http://127.0.0.1:" + std::to_string(t.app().port()) + path, {}, body, 10s,
        std::nullopt};
    request.headers = {{"Authorization", "Bearer " + token}};
    if (!content_type.empty()) {
        request.headers.emplace_back("Content-Type", content_type);
    }
    auto response = inngest::detail::send_http(request);
    REQUIRE(response.has_value());
    return *response;
}

inline AppUnderTest records_app() {
    AppUnderTestOptions options;
    options.records_seal_key_file = seal_key_file();
    return AppUnderTest(std::move(options));
}

// SQL as the cluster's superuser, on the app's database: what a DBA could do.
inline void as_superuser(const AppUnderTest& t, const std::string& sql) {
    const std::string url = inngest_test::as_role(t.settings().database_url, "postgres");
    PGconn* conn = PQconnectdb(url.c_str());
    REQUIRE(PQstatus(conn) == CONNECTION_OK);
    PGresult* result = PQexec(conn, sql.c_str());
    INFO(PQresultErrorMessage(result));
    CHECK(
        (PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK));
    PQclear(result);
    PQfinish(conn);
}

// SQL as the app's own database role; returns the SQLSTATE of a failure ("" on success).
inline std::string as_app_role(const AppUnderTest& t, const std::string& sql) {
    PGconn* conn = PQconnectdb(t.settings().database_url.c_str());
    REQUIRE(PQstatus(conn) == CONNECTION_OK);
    // In the tenant's scope, as the app's transactions are (row-level security applies).
    PGresult* scope = PQexec(conn, "SELECT set_config('app.tenant_id', 'acme', false)");
    PQclear(scope);
    PGresult* result = PQexec(conn, sql.c_str());
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    std::string out = state != nullptr ? state : "";
    PQclear(result);
    PQfinish(conn);
    return out;
}

struct People {
    std::string alice;  // admin
    std::string bob;
    std::string carol;
};

inline People people(const AppUnderTest& t, const std::string& tenant = "acme") {
    return {t.token(tenant, "alice", {"admin"}), t.token(tenant, "bob"), t.token(tenant, "carol")};
}

inline void set_password(const AppUnderTest& t,
                         const std::string& token,
                         const std::string& name,
                         const std::string& password = "correct horse battery") {
    const auto r = t.call("PUT", "/api/v1/records/signing-password", token,
                          R"({"password":")" + password + R"(","printed_name":")" + name + "\"}");
    INFO(json::serialize(r.body));
    REQUIRE(r.status == 200);
}

inline std::int64_t create_record(const AppUnderTest& t,
                                  const std::string& token,
                                  const std::string& key = "BR-001",
                                  const std::string& content = R"({"lot":"A7","yield":98.5})") {
    const auto r = t.call("POST", "/api/v1/records", token,
                          R"({"type":"batch_record","business_key":")" + key +
                              R"(","title":"Batch A7","content":)" + content + "}");
    INFO(json::serialize(r.body));
    REQUIRE(r.status == 201);
    return r.body.at("id").as_int64();
}

inline Response sign(const AppUnderTest& t,
                     const std::string& token,
                     std::int64_t id,
                     const std::string& user,
                     const std::string& meaning,
                     const std::string& password = "correct horse battery") {
    json::object body{
        {"meaning", meaning}, {"reason", "checked against the batch"}, {"password", password}};
    if (!user.empty()) {
        body["user_id"] = user;
    }
    return t.call("POST", "/api/v1/records/" + std::to_string(id) + "/signatures", token,
                  json::serialize(body));
}

inline Response move(const AppUnderTest& t,
                     const std::string& token,
                     std::int64_t id,
                     const std::string& action,
                     const std::string& reason = {}) {
    json::object body{{"action", action}};
    if (!reason.empty()) {
        body["reason"] = reason;
    }
    return t.call("POST", "/api/v1/records/" + std::to_string(id) + "/transitions", token,
                  json::serialize(body));
}

inline std::string path(std::int64_t id, const std::string& rest = {}) {
    return "/api/v1/records/" + std::to_string(id) + rest;
}

// Waits for the record to reach `state` (a function moves it).
inline bool wait_state(const AppUnderTest& t,
                       const std::string& token,
                       std::int64_t id,
                       const std::string& state) {
    for (int i = 0; i < 400; ++i) {
        const auto r = t.call("GET", "/api/v1/records/" + std::to_string(id), token);
        if (r.status == 200 && r.body.at("state") == json::value(state)) {
            return true;
        }
        std::this_thread::sleep_for(25ms);
    }
    return false;
}

}  // namespace riveredge_test::records
