// Approval definitions over REST: import both formats, validate, publish immutable versions,
// tenant isolation. (The engine that runs instances is not built yet.)

#include "app/app_under_test.hpp"
#include "core/db/database.hpp"

#include <fstream>
#include <set>
#include <sstream>

using riveredge_test::AppUnderTest;
namespace json = boost::json;

namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(PROJECT_SOURCE_DIR) + "/tests/app/fixtures/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string import_body(const std::string& source, const std::string& extra = "") {
    return R"({"source":)" + source + (extra.empty() ? "" : "," + extra) + "}";
}

}  // namespace

TEST_CASE("definitions import from ProFlow and the process format and publish as versions",
          "[app][approvals]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice");

    const auto seed = t.call("POST", "/api/v1/approvals/definitions", alice,
                             import_body(fixture("seed_user_registration.json")));
    REQUIRE(seed.status == 201);
    CHECK(seed.body.at("key") == "userRegistration");
    CHECK(seed.body.at("format") == "seed");
    CHECK(seed.body.at("valid") == true);
    CHECK(seed.body.at("latest_version") == 0);

    const auto created = t.call("POST", "/api/v1/approvals/definitions", alice,
                                import_body(fixture("proflow_leave_request.json")));
    REQUIRE(created.status == 201);
    CHECK(created.body.at("format") == "proflow");
    // The draft is kept verbatim for the designer, UI fields included.
    CHECK(created.body.at("draft").at("nodes").at(0).at("position").is_object());
    const auto id = created.body.at("id").as_int64();
    const auto path = "/api/v1/approvals/definitions/" + std::to_string(id);

    const auto v1 = t.call("POST", path + "/publish", alice);
    REQUIRE(v1.status == 201);
    CHECK(v1.body.at("version") == 1);
    CHECK(v1.body.at("compiled").at("nodes").as_array().size() == 5);
    CHECK(v1.body.at("content_hash").as_string().size() == 64);

    // A draft with a problem is saved, reported, and cannot be published.
    auto source = json::parse(fixture("proflow_leave_request.json")).as_object();
    source["edges"].as_array()[2].as_object().erase("data");  // e3 loses its condition
    const auto edited = t.call("PUT", path, alice, import_body(json::serialize(source)));
    REQUIRE(edited.status == 200);
    CHECK(edited.body.at("valid") == false);
    CHECK(edited.body.at("problems").at(0).at("edge") == "e3");
    const auto refused = t.call("POST", path + "/publish", alice);
    CHECK(refused.status == 422);
    CHECK(refused.body.at("error").at("details").at("problems").at(0).at("edge") == "e3");

    // Fixed: version 2; version 1 is unchanged.
    source["edges"].as_array()[2].as_object()["data"] =
        json::parse(R"({"condition":"${amount >= 5000}","priority":1})");
    REQUIRE(t.call("PUT", path, alice, import_body(json::serialize(source))).status == 200);
    const auto v2 = t.call("POST", path + "/publish", alice);
    REQUIRE(v2.status == 201);
    CHECK(v2.body.at("version") == 2);
    const auto versions = t.call("GET", path + "/versions", alice);
    REQUIRE(versions.body.at("versions").as_array().size() == 2);
    const auto first = t.call("GET", path + "/versions/1", alice);
    CHECK(json::serialize(first.body.at("compiled")).find("amount >= 1000") != std::string::npos);
    CHECK(t.call("GET", path + "/versions/3", alice).status == 404);
    riveredge::core::db::Pool pool(t.settings().database_url, 1);
    riveredge::core::db::Transaction tx(pool, riveredge::core::TenantId::trusted("acme"));
    CHECK_THROWS_AS(tx.exec("UPDATE approval_definition_versions SET content_hash = 'x'"),
                    riveredge::core::db::DbError);
}

TEST_CASE("definition validation over REST names nodes and edges and isolates tenants",
          "[app][approvals]") {
    AppUnderTest t;
    const auto alice = t.token("acme", "alice");
    const auto mallory = t.token("globex", "mallory");
    const auto checked =
        t.call("POST", "/api/v1/approvals/definitions/validate", alice,
               import_body(R"({"nodes":[{"id":"s","type":"startEvent"},{"id":"t","type":"userTask"},
                      {"id":"e","type":"endEvent"}],
                     "edges":[{"id":"a","source":"s","target":"t"},{"id":"b","source":"t","target":"gone"}]})"));
    REQUIRE(checked.status == 200);
    CHECK(checked.body.at("valid") == false);
    std::set<std::string> where;
    for (const auto& p : checked.body.at("problems").as_array()) {
        where.insert(p.at("node").is_string()   ? "node:" + std::string(p.at("node").as_string())
                     : p.at("edge").is_string() ? "edge:" + std::string(p.at("edge").as_string())
                                                : "process");
    }
    CHECK(where.count("edge:b") == 1);  // dangling
    CHECK(where.count("node:t") == 1);  // no approvers
    CHECK(where.count("node:e") == 1);  // no incoming flow
    CHECK(t.call("POST", "/api/v1/approvals/definitions/validate", alice, R"({"source":[]})")
              .status == 422);
    CHECK(t.call("POST", "/api/v1/approvals/definitions", alice, "{oops").status == 400);
    CHECK(t.call("POST", "/api/v1/approvals/definitions", alice,
                 import_body(fixture("proflow_leave_request.json"), R"("format":"bpmn-xml")"))
              .status == 422);

    const auto created = t.call("POST", "/api/v1/approvals/definitions", alice,
                                import_body(fixture("proflow_leave_request.json")));
    REQUIRE(created.status == 201);
    CHECK(t.call("POST", "/api/v1/approvals/definitions", alice,
                 import_body(fixture("proflow_leave_request.json")))
              .status == 409);
    const auto path =
        "/api/v1/approvals/definitions/" + std::to_string(created.body.at("id").as_int64());
    for (const auto& [method, target] :
         std::vector<std::pair<std::string, std::string>>{{"GET", path},
                                                          {"PUT", path},
                                                          {"POST", path + "/publish"},
                                                          {"GET", path + "/versions"},
                                                          {"GET", path + "/versions/1"}}) {
        CAPTURE(method, target);
        CHECK(t.call(method, target, mallory, import_body(fixture("proflow_leave_request.json")))
                  .status == 404);
    }
    CHECK(t.call("GET", "/api/v1/approvals/definitions", mallory)
              .body.at("definitions")
              .as_array()
              .empty());
    // The same key is free in another tenant.
    CHECK(t.call("POST", "/api/v1/approvals/definitions", mallory,
                 import_body(fixture("proflow_leave_request.json")))
              .status == 201);
    CHECK(t.call("GET", path, alice).body.at("latest_version") == 0);
}
