// The one list shape every collection route returns ({items, total, page, page_size, sort}),
// its paging and sorting, the refusals of bad page and sort values, and its API documentation.

#include "app/app_under_test.hpp"

#include <algorithm>
#include <set>

using riveredge_test::AppUnderTest;
namespace json = boost::json;

namespace {

std::vector<std::string> names_of(const json::value& body) {
    std::vector<std::string> names;
    for (const auto& item : body.at("items").as_array()) {
        names.emplace_back(item.at("name").as_string());
    }
    return names;
}

void create_scripts(const AppUnderTest& t, const std::string& admin, int count) {
    for (int i = 0; i < count; ++i) {
        // Names out of creation order, so sorting by name and by time differ.
        const std::string name = "report-" + std::string(1, static_cast<char>('g' - i));
        const auto created =
            t.call("POST", "/api/v1/scripts", admin,
                   json::serialize(json::object{{"name", name},
                                                {"code", "function main(a, c) { return 1; }"}}));
        REQUIRE(created.status == 201);
    }
}

}  // namespace

TEST_CASE("lists page and sort, and count every match", "[app][lists]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    create_scripts(t, admin, 7);  // report-g ... report-a

    const auto first = t.call("GET", "/api/v1/scripts?page_size=3", admin);
    REQUIRE(first.status == 200);
    CHECK(first.body.at("total") == 7);
    CHECK(first.body.at("page") == 1);
    CHECK(first.body.at("page_size") == 3);
    CHECK(first.body.at("sort") == "name");
    CHECK(names_of(first.body) == std::vector<std::string>{"report-a", "report-b", "report-c"});

    const auto third = t.call("GET", "/api/v1/scripts?page_size=3&page=3", admin);
    CHECK(third.body.at("total") == 7);
    CHECK(names_of(third.body) == std::vector<std::string>{"report-g"});

    // Past the last page: no items, and still the total.
    const auto past = t.call("GET", "/api/v1/scripts?page_size=3&page=9", admin);
    REQUIRE(past.status == 200);
    CHECK(past.body.at("items").as_array().empty());
    CHECK(past.body.at("total") == 7);

    const auto descending = t.call("GET", "/api/v1/scripts?sort=-name&page_size=2", admin);
    CHECK(descending.body.at("sort") == "-name");
    CHECK(names_of(descending.body) == std::vector<std::string>{"report-g", "report-f"});

    // Created g first: by creation time, oldest first, g leads; the newest is a.
    const auto by_time = t.call("GET", "/api/v1/scripts?sort=-created_at&page_size=1", admin);
    CHECK(names_of(by_time.body) == std::vector<std::string>{"report-a"});

    // Filters narrow the total too.
    const auto filtered = t.call("GET", "/api/v1/scripts?q=REPORT-B", admin);
    CHECK(filtered.body.at("total") == 1);

    // Paging through every page by name visits each item exactly once.
    std::set<std::string> seen;
    for (int page = 1; page <= 4; ++page) {
        const auto part = t.call(
            "GET", "/api/v1/scripts?sort=created_at&page_size=2&page=" + std::to_string(page),
            admin);
        for (const auto& name : names_of(part.body)) {
            CHECK(seen.insert(name).second);
        }
    }
    CHECK(seen.size() == 7);

    // Another tenant counts nothing of acme's.
    const auto other = t.call("GET", "/api/v1/scripts", t.token("globex", "gina", {"admin"}));
    CHECK(other.body.at("total") == 0);
}

TEST_CASE("bad page and sort values are refused with the field named", "[app][lists]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    create_scripts(t, admin, 1);
    const auto refused = [&](const std::string& query, const char* field) {
        const auto r = t.call("GET", "/api/v1/scripts?" + query, admin);
        INFO(query << " -> " << r.status << " " << json::serialize(r.body));
        CHECK(r.status == 422);
        CHECK(r.body.at("error").at("details").at("fields").as_object().contains(field));
    };
    refused("sort=code", "sort");                              // not a sort field here
    refused("sort=name%3BDROP%20TABLE%20scripts", "sort");     // SQL is never taken from input
    refused("sort=name,-name", "sort");                        // a field twice
    refused("sort=created_at)%20desc%2C(select%201", "sort");  // an expression
    refused("page=0", "page");
    refused("page=abc", "page");
    refused("page_size=501", "page_size");
    refused("page_size=-1", "page_size");
    // The table is intact after the attempts.
    CHECK(t.call("GET", "/api/v1/scripts", admin).body.at("total") == 1);
    // The refusal names the fields a client may use.
    const auto r = t.call("GET", "/api/v1/scripts?sort=bogus", admin);
    const std::string reason(r.body.at("error").at("details").at("fields").at("sort").as_string());
    CHECK(reason.find("created_at") != std::string::npos);
}

TEST_CASE("every list route documents its paging, sort fields and filters", "[app][lists]") {
    AppUnderTest t;
    const auto document = t.call("GET", "/api/openapi.json");
    REQUIRE(document.status == 200);
    const std::vector<std::string> lists{"/api/v1/messages/inbox",
                                         "/api/v1/messages/deliveries",
                                         "/api/v1/schedules",
                                         "/api/v1/schedules/{id}/fires",
                                         "/api/v1/scripts",
                                         "/api/v1/scripts/{id}/runs",
                                         "/api/v1/approvals/definitions",
                                         "/api/v1/approvals/instances",
                                         "/api/v1/approvals/tasks",
                                         "/api/v1/records",
                                         "/api/v1/print/printers",
                                         "/api/v1/print/jobs",
                                         "/api/v1/print/templates",
                                         "/api/v1/workflows/definitions",
                                         "/api/v1/workflows/executions",
                                         "/api/v1/workflows/executions/{id}/history"};
    int documented = 0;
    for (const auto& [path, item] : document.body.at("paths").as_object()) {
        const auto* get = item.as_object().if_contains("get");
        if (get == nullptr) {
            continue;
        }
        const auto& schema =
            get->at("responses").at("200").at("content").at("application/json").at("schema");
        const bool is_list = schema.as_object().contains("properties") &&
                             schema.at("properties").as_object().contains("total");
        const bool expected =
            std::find(lists.begin(), lists.end(), std::string(path)) != lists.end();
        INFO(std::string(path));
        CHECK(is_list == expected);
        if (!is_list) {
            continue;
        }
        ++documented;
        std::set<std::string> parameters;
        for (const auto& p : get->at("parameters").as_array()) {
            parameters.emplace(p.at("name").as_string());
        }
        CHECK(parameters.count("page") == 1);
        CHECK(parameters.count("page_size") == 1);
        CHECK(parameters.count("sort") == 1);
        CHECK(parameters.size() > 3);  // at least one documented filter
    }
    CHECK(documented == static_cast<int>(lists.size()));
}

TEST_CASE("declared filters are checked against their schema and narrow page and total",
          "[app][lists]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    create_scripts(t, admin, 3);  // report-g, report-f, report-e
    const auto listed = t.call("GET", "/api/v1/scripts?q=report-f", admin);
    REQUIRE(listed.body.at("items").as_array().size() == 1);
    const auto id = listed.body.at("items").at(0).at("id").as_int64();
    REQUIRE(t.call("PUT", "/api/v1/scripts/" + std::to_string(id), admin, R"({"enabled":false})")
                .status == 200);

    // Each filter sent adds its condition; together they narrow with AND.
    CHECK(t.call("GET", "/api/v1/scripts?enabled=false", admin).body.at("total") == 1);
    CHECK(t.call("GET", "/api/v1/scripts?enabled=true", admin).body.at("total") == 2);
    CHECK(t.call("GET", "/api/v1/scripts?enabled=true&q=report-f", admin).body.at("total") == 0);
    CHECK(t.call("GET", "/api/v1/scripts?enabled=false&q=REPORT-F", admin).body.at("total") == 1);
    // An empty value is a filter not sent.
    CHECK(t.call("GET", "/api/v1/scripts?enabled=&q=", admin).body.at("total") == 3);
    // Past the last page the total is counted with the same conditions.
    const auto past = t.call("GET", "/api/v1/scripts?enabled=true&page=9&page_size=1", admin);
    CHECK(past.body.at("items").as_array().empty());
    CHECK(past.body.at("total") == 2);
    // A value is only ever a parameter: quotes and semicolons match nothing and harm nothing.
    CHECK(t.call("GET", "/api/v1/scripts?q=%27%29%3B%20DROP%20TABLE%20scripts%3B--", admin)
              .body.at("total") == 0);
    CHECK(t.call("GET", "/api/v1/scripts", admin).body.at("total") == 3);

    const auto refused = [&](const std::string& target, const char* field, const char* reason) {
        const auto r = t.call("GET", target, admin);
        INFO(target << " -> " << r.status << " " << json::serialize(r.body));
        CHECK(r.status == 422);
        const auto& fields = r.body.at("error").at("details").at("fields");
        REQUIRE(fields.as_object().contains(field));
        CHECK(std::string(fields.at(field).as_string()).find(reason) != std::string::npos);
    };
    refused("/api/v1/scripts?enabled=yes", "enabled", "true or false");
    refused("/api/v1/scripts/" + std::to_string(id) + "/runs?status=exploded", "status",
            "syntax_error");
    refused("/api/v1/workflows/executions?definition_id=1%3BDROP", "definition_id", "number");
    refused("/api/v1/schedules/1/fires?since=tomorrow", "since", "RFC 3339");
    // RFC 3339 forms PostgreSQL would refuse are refused here, with the field named, not by the
    // database; the forms it takes reach it in one format (a lower-case t, an offset).
    refused("/api/v1/schedules/1/fires?since=2026-01-01T00:00:00%2B99:00", "since", "RFC 3339");
    refused("/api/v1/schedules/1/fires?until=0000-01-01T00:00:00Z", "until", "RFC 3339");
    CHECK(t.call("GET", "/api/v1/messages/deliveries?since=2026-01-01t08:00:00.5%2B08:00", admin)
              .status == 200);
    refused("/api/v1/approvals/tasks?box=started", "box", "todo, done");

    // The document states each filter's schema, so clients see the allowed values.
    const auto document = t.call("GET", "/api/openapi.json");
    const auto& runs = document.body.at("paths").at("/api/v1/scripts/{id}/runs").at("get");
    bool status_documented = false;
    for (const auto& p : runs.at("parameters").as_array()) {
        if (p.at("name") == "status") {
            status_documented = p.at("schema").as_object().contains("enum");
        }
    }
    CHECK(status_documented);
}

TEST_CASE("a filter whose SQL has OR stays inside the list's own condition", "[app][lists]") {
    // The schedule list leaves deleted schedules out in its base WHERE, and its q filter is
    // "the name matches OR the code matches". The filter is bracketed after the base condition,
    // so a deleted schedule that matches by code stays out of the page and of the total.
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto create = [&](const std::string& token, const std::string& code) {
        const auto created = t.call(
            "POST", "/api/v1/schedules", token,
            json::serialize(json::object{{"name", "Schedule " + code},
                                         {"code", code},
                                         {"trigger", {{"kind", "cron"}, {"cron", "0 0 1 1 *"}}},
                                         {"action", json::object{{"type", "message"},
                                                                 {"recipients", json::array{"bob"}},
                                                                 {"subject", "Audit"},
                                                                 {"body", "Due."}}}}));
        INFO(json::serialize(created.body));
        REQUIRE(created.status == 201);
        return created.body.at("id").as_int64();
    };
    const auto kept = create(admin, "audit-kept");
    const auto gone = create(admin, "audit-gone");
    REQUIRE(t.call("DELETE", "/api/v1/schedules/" + std::to_string(gone), admin).status == 200);
    create(t.token("globex", "gina", {"admin"}), "audit-other");  // another tenant's match

    const auto deleted = t.call("GET", "/api/v1/schedules?q=audit-gone", admin);
    REQUIRE(deleted.status == 200);
    CHECK(deleted.body.at("items").as_array().empty());
    CHECK(deleted.body.at("total") == 0);

    const auto matching = t.call("GET", "/api/v1/schedules?q=audit", admin);
    REQUIRE(matching.body.at("items").as_array().size() == 1);
    CHECK(matching.body.at("items").at(0).at("id") == kept);
    CHECK(matching.body.at("total") == 1);
    // Past the last page the total is counted by a statement of its own, with the same WHERE.
    const auto past = t.call("GET", "/api/v1/schedules?q=audit&page=2&page_size=1", admin);
    CHECK(past.body.at("items").as_array().empty());
    CHECK(past.body.at("total") == 1);
}
