// One route declaration: a JSON route answers the success status it declares and the OpenAPI
// document states that status; the readers of `core::Call` refuse what the routes refused before.

#include "core/http/router.hpp"

#include "app/app_under_test.hpp"
#include "core/db/database.hpp"
#include "core/http/openapi.hpp"

#include <boost/json.hpp>

#include <set>
#include <stdexcept>

using riveredge::core::Access;
using riveredge::core::Call;
using riveredge::core::Router;
using riveredge::core::RouteSpec;
using riveredge_test::AppUnderTest;
namespace json = boost::json;

namespace {

struct Answer {
    int status;
    json::value body;
};

Answer dispatch(const Router& router,
                const std::string& method,
                const std::string& path,
                const std::string& query = "",
                const std::string& body = "") {
    inngest::HttpRequest request;
    request.method = method;
    request.path = path;
    request.query = query;
    request.body = body;
    request.headers.emplace_back("User-Agent", std::string(400, 'u'));
    request.remote_address = "192.0.2.1";
    const auto response = router.dispatch(request);
    return {response.status, response.body.empty() ? json::value() : json::parse(response.body)};
}

std::string error_code(const Answer& answer) {
    return std::string(answer.body.at("error").at("code").as_string());
}

const json::object& responses(const json::object& document,
                              const std::string& pattern,
                              const std::string& method) {
    return document.at("paths").at(pattern).at(method).at("responses").as_object();
}

}  // namespace

TEST_CASE("a JSON route answers the status it declares, and the document states it",
          "[app][router]") {
    Router router("secret-0123456789abcdef0123456789", {});
    router.add(RouteSpec{.method = "POST",
                         .pattern = "/things",
                         .access = Access::kPublic,
                         .summary = "Create a thing",
                         .response_schema = R"({"type":"object"})",
                         .status = 201},
               [](Call& call) {
                   return json::object{{"made", call.body()}};
               });
    router.add(RouteSpec{.method = "GET",
                         .pattern = "/things/{id}",
                         .access = Access::kPublic,
                         .summary = "One thing"},
               [](Call& call) {
                   return json::object{{"id", call.id()}};
               });
    router.add(RouteSpec{.method = "POST",
                         .pattern = "/things/{id}/run",
                         .access = Access::kPublic,
                         .summary = "Run now, or queue",
                         .other_status = 202},
               [](Call& call) {
                   const auto body = call.body_or_empty();
                   if (body.contains("queue")) {
                       call.answer(202);
                   }
                   if (body.contains("teapot")) {
                       call.answer(418);  // not declared: the router refuses to answer it
                   }
                   return json::object{{"queued", body.contains("queue")}};
               });

    const auto created = dispatch(router, "POST", "/things", "", R"({"name":"a"})");
    CHECK(created.status == 201);
    CHECK(created.body.at("made").at("name") == "a");
    CHECK(dispatch(router, "GET", "/things/7").body.at("id") == 7);
    CHECK(dispatch(router, "GET", "/things/7").status == 200);
    CHECK(dispatch(router, "POST", "/things/7/run").status == 200);
    CHECK(dispatch(router, "POST", "/things/7/run", "", R"({"queue":true})").status == 202);
    CHECK(dispatch(router, "POST", "/things/7/run", "", R"({"teapot":true})").status == 500);

    const auto document = riveredge::core::openapi_document(router);
    const auto& create = responses(document, "/things", "post");
    CHECK(create.contains("201"));
    CHECK_FALSE(create.contains("200"));
    CHECK(create.at("201").at("content").at("application/json").at("schema").at("type") ==
          "object");
    CHECK(create.contains("default"));
    const auto& read = responses(document, "/things/{id}", "get");
    CHECK(read.contains("200"));
    CHECK_FALSE(read.contains("201"));
    const auto& run = responses(document, "/things/{id}/run", "post");
    CHECK(run.contains("200"));
    CHECK(run.contains("202"));
}

TEST_CASE("a text PostgreSQL cannot store is the caller's 400, not a 500", "[app][router]") {
    Router router("secret-0123456789abcdef0123456789", {});
    router.add(
        RouteSpec{
            .method = "POST", .pattern = "/store", .access = Access::kPublic, .summary = "test"},
        [](Call& call) -> json::object {
            // What core::db answers for a NUL in a text parameter, and what jsonb answers for a
            // \u0000 in a string.
            throw riveredge::core::db::DbError(std::string(call.body().at("state").as_string()),
                                               "refused");
        });
    for (const std::string state : {"22021", "22P05"}) {
        INFO(state);
        const auto refused =
            dispatch(router, "POST", "/store", "", R"({"state":")" + state + "\"}");
        CHECK(refused.status == 400);
        CHECK(error_code(refused) == "bad_request");
        CHECK(refused.body.at("error").at("message").as_string().find("NUL") != json::string::npos);
    }
}

TEST_CASE("a route's success statuses are 2xx and distinct", "[app][router]") {
    Router router("secret-0123456789abcdef0123456789", {});
    const auto handler = [](Call&) {
        return json::object{};
    };
    CHECK_THROWS_AS(
        router.add(RouteSpec{.method = "GET", .pattern = "/a", .summary = "test", .status = 404},
                   handler),
        std::logic_error);
    CHECK_THROWS_AS(
        router.add(
            RouteSpec{.method = "GET", .pattern = "/b", .summary = "test", .other_status = 200},
            handler),
        std::logic_error);
    CHECK_THROWS_AS(
        router.add(
            RouteSpec{.method = "GET", .pattern = "/c", .summary = "test", .other_status = 302},
            handler),
        std::logic_error);
    CHECK_NOTHROW(router.add(
        RouteSpec{.method = "GET", .pattern = "/d", .summary = "test", .status = 204}, handler));
}

TEST_CASE("a list's filter schemas are checked when its route is added", "[app][router]") {
    Router router("secret-0123456789abcdef0123456789", {});
    const auto handler = [](Call&) {
        return json::object{};
    };
    // Each would otherwise fail only on the first request that sends the filter.
    static const riveredge::core::db::ListSpec not_an_object{
        .sort_fields = {},
        .default_sort = "",
        .tiebreak_sql = "x.id",
        .filters = {{"status", "a status", R"(["queued"])", "x.status = $?"}}};
    static const riveredge::core::db::ListSpec enum_of_numbers{
        .sort_fields = {},
        .default_sort = "",
        .tiebreak_sql = "x.id",
        .filters = {{"status", "a status", R"({"enum":[1,2]})", "x.status = $?"}}};
    static const riveredge::core::db::ListSpec fine{
        .sort_fields = {},
        .default_sort = "",
        .tiebreak_sql = "x.id",
        .filters = {{"status", "a status", R"({"enum":["queued"]})", "x.status = $?"}}};
    CHECK_THROWS_AS(router.get("/a", Access::kUser, "test").lists(not_an_object).to(handler),
                    std::logic_error);
    CHECK_THROWS_AS(router.get("/b", Access::kUser, "test").lists(enum_of_numbers).to(handler),
                    std::logic_error);
    CHECK_NOTHROW(router.get("/c", Access::kUser, "test").lists(fine).to(handler));
}

TEST_CASE("the readers of a call refuse what the routes refuse", "[app][router]") {
    Router router("secret-0123456789abcdef0123456789", {});
    router.add(
        RouteSpec{
            .method = "POST", .pattern = "/body", .access = Access::kPublic, .summary = "test"},
        [](Call& call) { return call.body(); });
    router.add(
        RouteSpec{
            .method = "POST", .pattern = "/optional", .access = Access::kPublic, .summary = "test"},
        [](Call& call) { return call.body_or_empty(); });
    router.add(RouteSpec{.method = "GET",
                         .pattern = "/ids/{id}/{other}",
                         .access = Access::kPublic,
                         .summary = "test"},
               [](Call& call) {
                   return json::object{{"id", call.id()},
                                       {"other", call.id("other")},
                                       {"raw", call.param("other")}};
               });
    router.add(
        RouteSpec{
            .method = "GET", .pattern = "/query", .access = Access::kPublic, .summary = "test"},
        [](Call& call) {
            const auto raw = call.query("q");
            const auto filter = call.filter("q");
            return json::object{{"q", filter ? json::value(*filter) : json::value()},
                                {"raw", raw ? json::value(*raw) : json::value()},
                                {"n", call.int_query("n", 5, 1, 10)}};
        });
    router.add(
        RouteSpec{.method = "GET", .pattern = "/who", .access = Access::kPublic, .summary = "test"},
        [](Call& call) {
            return json::object{{"user", call.who().user_id}};
        });
    router.add(RouteSpec{.method = "GET", .pattern = "/private", .summary = "test"},
               [](Call& call) {
                   return json::object{{"q", call.query("q").value_or("")}};
               });
    router.add(
        RouteSpec{
            .method = "GET", .pattern = "/origin", .access = Access::kPublic, .summary = "test"},
        [](Call& call) {
            const auto origin = call.origin();
            return json::object{{"address", origin.address}, {"user_agent", origin.user_agent}};
        });

    SECTION("the body is a JSON object") {
        CHECK(dispatch(router, "POST", "/body", "", R"({"a":1})").body.at("a") == 1);
        for (const std::string body : {"", "not json", "[1]", "3"}) {
            INFO(body);
            const auto refused = dispatch(router, "POST", "/body", "", body);
            CHECK(refused.status == 400);
            CHECK(error_code(refused) == "bad_request");
        }
        CHECK(dispatch(router, "POST", "/optional").body == json::object{});
        CHECK(dispatch(router, "POST", "/optional", "", "[1]").status == 400);
    }
    SECTION("path ids are positive integers") {
        const auto found = dispatch(router, "GET", "/ids/3/4");
        CHECK(found.body.at("id") == 3);
        CHECK(found.body.at("other") == 4);
        CHECK(found.body.at("raw") == "4");
        for (const std::string path : {"/ids/0/4", "/ids/x/4", "/ids/3/-1"}) {
            INFO(path);
            const auto refused = dispatch(router, "GET", path);
            CHECK(refused.status == 422);
            CHECK(error_code(refused) == "validation_failed");
        }
        CHECK(dispatch(router, "GET", "/ids/3/x")
                  .body.at("error")
                  .at("details")
                  .at("fields")
                  .at("other") == "a positive integer");
    }
    SECTION("query filters and integers") {
        const auto plain = dispatch(router, "GET", "/query");
        CHECK(plain.body.at("q").is_null());
        CHECK(plain.body.at("n") == 5);
        const auto given = dispatch(router, "GET", "/query", "q=a%20b&n=10");
        CHECK(given.body.at("q") == "a b");
        CHECK(given.body.at("n") == 10);
        CHECK(plain.body.at("raw").is_null());
        CHECK(given.body.at("raw") == "a b");
        const auto empty = dispatch(router, "GET", "/query", "q=");
        CHECK(empty.body.at("q").is_null());
        CHECK(empty.body.at("raw") == "");
        CHECK(dispatch(router, "GET", "/query", "n=11").status == 422);
        CHECK(dispatch(router, "GET", "/query", "n=x").status == 422);
        CHECK(dispatch(router, "GET", "/query", "q=%E6%B1%89+%41%2b").body.at("q") == "汉 A+");
    }
    SECTION("a malformed percent-escape is refused, naming it and its parameter") {
        for (const auto& [query, escape, name] :
             std::vector<std::tuple<std::string, std::string, std::string>>{
                 {"q=%zz", "%zz", "q"},
                 {"n=1&q=ab%4", "%4", "q"},
                 {"q=%4x1", "%4x", "q"},
                 {"q=%-1", "%-1", "q"},
                 {"q=%+f", "%+f", "q"},
                 {"q=%", "%", "q"},
                 {"%zzq=1", "%zz", "%zzq"}}) {
            INFO(query);
            const auto refused = dispatch(router, "GET", "/query", query);
            CHECK(refused.status == 400);
            CHECK(error_code(refused) == "bad_request");
            const std::string message(refused.body.at("error").at("message").as_string());
            CHECK(message.find("'" + escape + "'") != std::string::npos);
            CHECK(message.find("query parameter '" + name + "'") != std::string::npos);
            CHECK(message.find("NUL") == std::string::npos);
        }
        const auto path = dispatch(router, "GET", "/ids/3/%zz");
        CHECK(path.status == 400);
        CHECK(path.body.at("error").at("message").as_string().find("'%zz'") != json::string::npos);
        CHECK(dispatch(router, "GET", "/ids/3/%34").body.at("other") == 4);
    }
    SECTION("who is asked only of an authenticated call") {
        CHECK(dispatch(router, "GET", "/who").status == 401);
        // A route for users: a caller without a token learns nothing of its query, 401 before
        // the malformed escape's 400.
        CHECK(dispatch(router, "GET", "/private", "q=%zz").status == 401);
    }
    SECTION("the origin, for audit trails, keeps 300 bytes of the User-Agent") {
        const auto origin = dispatch(router, "GET", "/origin");
        CHECK(origin.body.at("address") == "192.0.2.1");
        CHECK(origin.body.at("user_agent").as_string().size() == 300);
    }
    SECTION("the origin's User-Agent is cut between characters and made storable") {
        const auto with_agent = [&](const std::string& agent) {
            inngest::HttpRequest request;
            request.method = "GET";
            request.path = "/origin";
            request.headers.emplace_back("User-Agent", agent);
            const auto response = router.dispatch(request);
            REQUIRE(response.status == 200);
            return std::string(json::parse(response.body).at("user_agent").as_string());
        };
        CHECK(with_agent(std::string(299, 'a') + "é") == std::string(299, 'a'));
        CHECK(with_agent(std::string(298, 'a') + "é") == std::string(298, 'a') + "é");
        CHECK(with_agent("Mozilla \xE9t\xE9") == "Mozilla \xEF\xBF\xBDt\xEF\xBF\xBD");
        CHECK(with_agent(std::string("a\0b", 3)) ==
              "a\xEF\xBF\xBD"
              "b");
    }
}

TEST_CASE("routes that answer on their own keep working beside JSON routes", "[app][router]") {
    Router router("secret-0123456789abcdef0123456789", {});
    router.add(
        RouteSpec{.method = "GET", .pattern = "/raw", .access = Access::kPublic, .summary = "test"},
        [](const inngest::HttpRequest&, riveredge::core::RequestContext&) {
            return riveredge::core::bytes_response("text/plain", "raw");
        });
    router.add(RouteSpec{.method = "GET",
                         .pattern = "/bytes/{id}",
                         .access = Access::kPublic,
                         .summary = "test"},
               [](Call& call) -> inngest::HttpResponse {
                   return riveredge::core::bytes_response("text/plain",
                                                          std::to_string(call.id() * 2));
               });
    router.add(
        RouteSpec{
            .method = "GET", .pattern = "/created", .access = Access::kPublic, .summary = "test"},
        [](Call&) {
            auto response = riveredge::core::bytes_response("text/plain", "made");
            response.status = 201;  // not declared: the router refuses to answer it
            return response;
        });
    CHECK(dispatch(router, "GET", "/created").status == 500);
    inngest::HttpRequest request;
    request.method = "GET";
    request.path = "/raw";
    CHECK(router.dispatch(request).body == "raw");
    request.path = "/bytes/21";
    const auto response = router.dispatch(request);
    CHECK(response.status == 200);
    CHECK(response.body == "42");
    CHECK(response.header("Content-Type") == "text/plain");
}

TEST_CASE("the API document states each route's success status as the route answers it",
          "[app][router]") {
    AppUnderTest t;
    const auto document = t.call("GET", "/api/openapi.json");
    REQUIRE(document.status == 200);
    const auto& doc = document.body.as_object();
    const auto statuses = [&doc](const std::string& pattern, const std::string& method) {
        std::set<std::string> found;
        for (const auto& [status, response] : responses(doc, pattern, method)) {
            (void)response;
            if (status != "default") {
                found.emplace(status);
            }
        }
        return found;
    };
    using Set = std::set<std::string>;
    CHECK(statuses("/api/v1/scripts", "post") == Set{"201"});
    CHECK(statuses("/api/v1/scripts", "get") == Set{"200"});
    CHECK(statuses("/api/v1/scripts/{id}/run", "post") == Set{"200", "202"});
    CHECK(statuses("/api/v1/print/jobs", "post") == Set{"202"});
    CHECK(statuses("/api/v1/messages/send", "post") == Set{"200", "201"});
    CHECK(statuses("/api/v1/records/{id}/signatures", "post") == Set{"201"});
    CHECK(statuses("/healthz", "get") == Set{"200"});

    // And the route answers what the document says.
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto created =
        t.call("POST", "/api/v1/scripts", admin,
               json::serialize(json::object{{"name", "status-check"},
                                            {"code", "function main(a, c) { return 1; }"}}));
    CHECK(created.status == 201);
}
