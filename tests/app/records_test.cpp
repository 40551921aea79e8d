// Electronic records against a real PostgreSQL: signatures sealed with a real Ed25519 key and
// re-authenticated with a signing password, a lifecycle that refuses what it must, retention, and
// an audit trail whose hash chain finds a row changed behind the app's back.

#include "app/records_support.hpp"
#include "core/db/database.hpp"
#include "core/json/canonical.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

using namespace riveredge_test;
using namespace riveredge_test::records;

namespace {

// What the process writes on stderr (the app's log lines) while it lives, written on to the real
// stderr when it ends.
class StderrCapture {
public:
    StderrCapture()
        : path_(std::filesystem::temp_directory_path() /
                ("records-stderr-" + std::to_string(::getpid()) + ".log")) {
        std::fflush(stderr);
        saved_ = ::dup(STDERR_FILENO);
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        REQUIRE(fd >= 0);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;
    ~StderrCapture() {
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        std::fputs(text().c_str(), stderr);
        std::filesystem::remove(path_);
    }

    std::string text() const {
        std::fflush(stderr);
        std::ifstream in(path_);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    // The lines that contain `needle`.
    std::vector<std::string> lines_with(const std::string& needle) const {
        std::vector<std::string> out;
        std::istringstream in(text());
        for (std::string line; std::getline(in, line);) {
            if (line.find(needle) != std::string::npos) {
                out.push_back(line);
            }
        }
        return out;
    }

private:
    std::filesystem::path path_;
    int saved_ = -1;
};

}  // namespace

TEST_CASE("JCS: RFC 8785's own examples canonicalise byte for byte", "[app][records][unit]") {
    using riveredge::core::canonical_json;
    // Numbers as C++ doubles: Boost.JSON 1.81's parser may round a 17-digit decimal's last
    // bit differently (consistent within the app, which parses the same text when it signs and
    // when it verifies), while RFC 8785's vectors assume correctly rounded doubles.
    const json::value sample = json::object{
        {"numbers",
         json::array{333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001}},
        {"string", "\u20ac$\x0f\nA'B\"\\\\\"/"},
        {"literals", json::array{nullptr, true, false}}};
    CHECK(canonical_json(sample) ==
          "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
          "\"string\":\"\xE2\x82\xAC$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
    // Member names sort by UTF-16 code units: the emoji (a surrogate pair) before U+FB33.
    const auto sorting = json::parse(
        R"({"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"})");
    const auto text = canonical_json(sorting);
    std::vector<std::string> order;
    for (const auto& value :
         {"Carriage Return", "One", "Control", "Latin Small", "Euro Sign", "Emoji", "Hebrew"}) {
        order.push_back(value);
    }
    std::size_t at = 0;
    for (const auto& name : order) {
        const auto found = text.find(name, at);
        INFO(name);
        REQUIRE(found != std::string::npos);
        at = found;
    }
    // ECMAScript number forms.
    const auto number = [](const char* json_text) {
        return canonical_json(json::parse(json_text));
    };
    CHECK(number("1e21") == "1e+21");
    CHECK(number("1e20") == "100000000000000000000");
    CHECK(number("1e-7") == "1e-7");
    CHECK(number("0.000001") == "0.000001");
    CHECK(number("-0.0") == "0");
    CHECK(number("5e-324") == "5e-324");
    CHECK(number("1.7976931348623157e308") == "1.7976931348623157e+308");
    CHECK(number("9007199254740992") == "9007199254740992");
    CHECK(number("-1.5") == "-1.5");
    CHECK(number("123.456e5") == "12345600");
    CHECK_THROWS_AS(canonical_json(json::value("\xC3")), riveredge::core::CanonicalJsonError);
    // Integers a double cannot hold exactly would share a form (and a hash) with a neighbour.
    CHECK(number("9007199254740992") == "9007199254740992");
    CHECK_THROWS_AS(canonical_json(json::parse("9007199254740993")),
                    riveredge::core::CanonicalJsonError);
    CHECK_THROWS_AS(canonical_json(json::parse("18446744073709551615")),
                    riveredge::core::CanonicalJsonError);
}

TEST_CASE("records: draft, review, two signatures, effective, verified signatures and chain",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.alice, "Alice Admin");
    set_password(t, p.bob, "Bob Reviewer");
    const auto id = create_record(t, p.bob);

    // bob writes, then submits for review.
    const auto signed_by_bob = sign(t, p.bob, id, "bob", "authorship");
    INFO(json::serialize(signed_by_bob.body));
    REQUIRE(signed_by_bob.status == 201);
    CHECK(signed_by_bob.body.at("printed_name") == "Bob Reviewer");
    CHECK(signed_by_bob.body.at("meaning") == "authorship");
    CHECK(signed_by_bob.body.at("version") == 1);
    CHECK(signed_by_bob.body.at("signed_at").as_string().size() == 24);  // RFC 3339 UTC, ms
    REQUIRE(move(t, p.bob, id, "submit").status == 200);
    // Not effective without an approval signature.
    CHECK(move(t, p.alice, id, "make_effective").status == 409);
    const auto approved = sign(t, p.alice, id, "alice", "approval");
    REQUIRE(approved.status == 201);
    const auto effective = move(t, p.alice, id, "make_effective");
    REQUIRE(effective.status == 200);
    CHECK(effective.body.at("state") == "effective");
    CHECK(effective.body.at("signatures_valid") == true);
    REQUIRE(effective.body.at("signatures").as_array().size() == 2);

    const auto verified = t.call("GET", path(id, "/signatures/verify"), p.carol);
    REQUIRE(verified.status == 200);
    CHECK(verified.body.at("valid") == true);
    for (const auto& s : verified.body.at("signatures").as_array()) {
        CHECK(s.at("valid") == true);
        CHECK(s.at("content_hash") == effective.body.at("content_hash"));
    }
    // The content hash is the SHA-256 of the content's canonical form.
    CHECK(effective.body.at("content_hash").as_string() ==
          riveredge::core::sha256_hex(R"({"lot":"A7","yield":98.5})"));

    // The trail: who did what, in order, with the printed names; reading it is audited.
    const auto trail = t.call("GET", path(id, "/audit"), p.carol);
    REQUIRE(trail.status == 200);
    std::vector<std::string> actions;
    for (const auto& entry : trail.body.at("entries").as_array()) {
        actions.emplace_back(entry.at("action").as_string());
    }
    CHECK(actions == std::vector<std::string>{"created", "signed", "state_changed", "signed",
                                              "state_changed", "trail_viewed"});
    const auto& first = trail.body.at("entries").at(0);
    CHECK(first.at("actor_id") == "bob");
    CHECK(first.at("printed_name") == "Bob Reviewer");
    CHECK(first.at("address") == "127.0.0.1");
    const auto chain = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    REQUIRE(chain.status == 200);
    CHECK(chain.body.at("valid") == true);
    CHECK(chain.body.at("rows").as_int64() >= 8);  // two passwords set, six record entries
    CHECK(t.call("GET", "/api/v1/records/audit/verify", p.bob).status == 403);

    // The export carries everything, and is audited itself.
    const auto exported = t.call("GET", path(id, "/export"), p.carol);
    REQUIRE(exported.status == 200);
    CHECK(exported.body.at("signatures_valid") == true);
    CHECK(exported.body.at("versions").as_array().size() == 1);
    const auto again = t.call("GET", path(id, "/audit"), p.carol);
    CHECK(again.body.at("entries").as_array().back().at("action") == "trail_viewed");
    CHECK(again.body.at("entries").as_array().at(6).at("action") == "exported");
}

TEST_CASE("records: a content change shows the signature invalid", "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    REQUIRE(sign(t, p.bob, id, "bob", "authorship").status == 201);

    // Through the API a draft's change is a new version; the signature stays on version 1.
    const auto changed =
        t.call("PUT", path(id), p.bob, R"({"content":{"lot":"A7","yield":97.0},"reason":"typo"})");
    REQUIRE(changed.status == 200);
    CHECK(changed.body.at("latest_version") == 2);
    CHECK(changed.body.at("signatures").at(0).at("version") == 1);
    CHECK(changed.body.at("signatures").at(0).at("valid") == true);
    CHECK(t.call("PUT", path(id), p.bob, R"({"content":{"a":1}})").status == 422);  // no reason
    const auto versions = t.call("GET", path(id, "/versions"), p.bob);
    REQUIRE(versions.status == 200);
    CHECK(versions.body.at("versions").as_array().size() == 2);

    // The app's role cannot change a version, the trail or a signature...
    CHECK(as_app_role(t, "UPDATE record_versions SET content = '{\"lot\":\"B9\"}'") == "42501");
    CHECK(as_app_role(t, "UPDATE record_audit SET reason = 'x'") == "42501");
    CHECK(as_app_role(t, "DELETE FROM record_audit") == "42501");
    CHECK(as_app_role(t, "DELETE FROM record_signatures") == "42501");
    // ...but a superuser can: the signature then shows invalid, naming why.
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_versions SET content = "
                 "'{\"lot\":\"A7\",\"yield\":99.9}' WHERE version = 1");
    const auto verified = t.call("GET", path(id, "/signatures/verify"), p.bob);
    REQUIRE(verified.status == 200);
    CHECK(verified.body.at("valid") == false);
    CHECK(verified.body.at("signatures").at(0).at("valid") == false);
    CHECK(verified.body.at("signatures").at(0).at("problem").as_string().find("content changed") !=
          json::string::npos);
}

TEST_CASE("records: a row of the audit trail changed or removed by SQL is found where it is",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    const auto id = create_record(t, p.bob);
    REQUIRE(move(t, p.bob, id, "submit").status == 200);
    REQUIRE(move(t, p.bob, id, "return", "needs the yield").status == 200);
    REQUIRE(move(t, p.bob, id, "submit").status == 200);
    const auto ok = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    REQUIRE(ok.body.at("valid") == true);
    CHECK(ok.body.at("rows") == 4);

    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_audit SET reason = "
                 "'approved by the director' WHERE seq = 3");
    const auto changed = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    REQUIRE(changed.status == 200);
    CHECK(changed.body.at("valid") == false);
    CHECK(changed.body.at("first_broken").at("seq") == 3);
    CHECK(changed.body.at("first_broken").at("problem").as_string().find("was changed") !=
          json::string::npos);
    // Recomputing that row's hash does not help: the next row no longer follows it.
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_audit SET reason = "
                 "'needs the yield' WHERE seq = 3");
    CHECK(t.call("GET", "/api/v1/records/audit/verify", p.alice).body.at("valid") == true);
    as_superuser(t,
                 "SET session_replication_role = replica; DELETE FROM record_audit WHERE seq = 2");
    const auto removed = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    CHECK(removed.body.at("valid") == false);
    CHECK(removed.body.at("first_broken").at("seq") == 3);
    CHECK(removed.body.at("first_broken").at("problem").as_string().find("missing") !=
          json::string::npos);
}

TEST_CASE("records: signing re-authenticates, and wrong passwords lock out and notify",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    REQUIRE(t.call("PUT", "/api/v1/records/settings", p.alice,
                   R"({"security_contacts":["alice"],"custom_meanings":["verified by QA"]})")
                .status == 200);
    const auto id = create_record(t, p.bob);

    // Never the token alone, never as someone else, and the first signing needs the user id.
    CHECK(t.call("POST", path(id, "/signatures"), p.bob, R"({"meaning":"review","reason":"r"})")
              .status == 422);
    CHECK(sign(t, p.bob, id, "carol", "review").status == 403);
    const auto first = sign(t, p.bob, id, "", "review");
    CHECK(first.status == 422);
    CHECK(first.body.at("error").at("details").at("fields").as_object().contains("user_id"));
    CHECK(sign(t, p.carol, id, "carol", "review").status == 409);  // no signing password yet
    // Within the session that a full signing opens, the password alone.
    REQUIRE(sign(t, p.bob, id, "bob", "review").status == 201);
    CHECK(sign(t, p.bob, id, "", "verified by QA").status == 201);
    CHECK(sign(t, p.bob, id, "", "approval", "wrong password 1").status == 403);
    // A wrong password ended the session: the user id is needed again.
    CHECK(sign(t, p.bob, id, "", "approval").status == 422);
    for (int i = 2; i <= 5; ++i) {
        const auto wrong = sign(t, p.bob, id, "bob", "approval", "wrong password");
        CHECK(wrong.status == 403);
        CHECK(wrong.body.at("error").at("message") == "wrong signing password");
    }
    const auto locked = sign(t, p.bob, id, "bob", "approval");
    CHECK(locked.status == 403);
    CHECK(locked.body.at("error").at("message").as_string().find("locked") != json::string::npos);
    // bob and the tenant's security contact are told, in their inboxes.
    CHECK(t.wait_unread(p.bob, 1));
    CHECK(t.wait_unread(p.alice, 1));
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", p.alice);
    CHECK(inbox.body.at("items").at(0).at("subject") == "Electronic signing locked");
    std::size_t failures = 0;
    const auto trail = t.call("GET", path(id, "/audit"), p.bob);  // kept: iterated below
    for (const auto& e : trail.body.at("entries").as_array()) {
        failures += e.at("action") == "signing_failed" ? 1 : 0;
    }
    CHECK(failures == 5);
    CHECK(t.call("GET", "/api/v1/records/audit/verify", p.alice).body.at("valid") == true);
}

TEST_CASE("records: guessing the current signing password counts towards the lockout",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto change = [&](const std::string& current) {
        return t.call("PUT", "/api/v1/records/signing-password", p.bob,
                      R"({"password":"a new password 1","printed_name":"Bob",)"
                      R"("current_password":")" +
                          current + "\"}");
    };
    CHECK(t.call("PUT", "/api/v1/records/signing-password", p.bob,
                 R"({"password":"a new password 1","printed_name":"Bob"})")
              .status == 422);  // the current one is required
    for (int i = 0; i < 5; ++i) {
        CHECK(change("guess " + std::to_string(i)).status == 403);
    }
    // Locked now: neither the right current password nor a signing gets through.
    const auto locked = change("correct horse battery");
    CHECK(locked.status == 403);
    CHECK(locked.body.at("error").at("message").as_string().find("locked") != json::string::npos);
    const auto id = create_record(t, p.bob);
    CHECK(sign(t, p.bob, id, "bob", "authorship").status == 403);
    CHECK(t.wait_unread(p.bob, 1));  // the lockout notice
}

TEST_CASE("records: two signings of one version at once make one signature", "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    std::atomic<int> created{0};
    std::atomic<int> conflicts{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            const auto r = sign(t, p.bob, id, "bob", "authorship");
            (r.status == 201 ? created : conflicts) += r.status == 201 || r.status == 409 ? 1 : 0;
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    CHECK(created == 1);
    CHECK(conflicts == 3);
    CHECK(t.call("GET", path(id), p.bob).body.at("signatures").as_array().size() == 1);
}

TEST_CASE("records: every forbidden lifecycle move is refused", "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.alice, "Alice");
    const std::vector<std::string> actions{"submit",   "return",  "make_effective", "supersede",
                                           "obsolete", "archive", "delete"};
    // The allowed moves, from each state.
    const std::map<std::string, std::set<std::string>> allowed{
        {"draft", {"submit", "delete"}},
        {"in_review", {"return", "make_effective", "delete"}},
        {"effective", {"supersede", "obsolete", "delete"}},
        {"superseded", {"archive", "delete"}},
        {"obsolete", {"archive", "delete"}},
        {"archived", {"delete"}},
        {"deleted", {}}};
    // A record brought to `state` by allowed moves.
    int n = 0;
    const auto record_in = [&](const std::string& state) {
        const auto id = create_record(t, p.alice, "K-" + std::to_string(++n));
        const auto go = [&](const std::string& action) {
            REQUIRE(move(t, p.alice, id, action, "because").status == 200);
        };
        if (state == "draft") {
            return id;
        }
        if (state == "deleted") {
            go("delete");
            return id;
        }
        go("submit");
        if (state == "in_review") {
            return id;
        }
        REQUIRE(sign(t, p.alice, id, "alice", "approval").status == 201);
        go("make_effective");
        if (state == "effective") {
            return id;
        }
        go(state == "obsolete" ? "obsolete" : "supersede");
        if (state == "archived") {
            REQUIRE(move(t, p.alice, id, "archive").status == 202);
            REQUIRE(wait_state(t, p.alice, id, "archived"));
        }
        return id;
    };
    for (const auto& [state, ok] : allowed) {
        const auto id = record_in(state);
        for (const auto& action : actions) {
            if (ok.count(action) != 0) {
                continue;
            }
            const auto r = move(t, p.alice, id, action, "because");
            INFO(state << " -> " << action << ": " << json::serialize(r.body));
            CHECK(r.status == 409);
        }
        CHECK(t.call("GET", path(id), p.alice).body.at("state").as_string() == state);
    }
    // Administrators only, and reasons where the move needs one.
    const auto id = record_in("in_review");
    CHECK(move(t, p.bob, id, "make_effective").status == 403);
    CHECK(move(t, p.bob, id, "return").status == 422);
    CHECK(move(t, p.alice, id, "delete").status == 422);
    CHECK(move(t, p.alice, id, "explode", "why not").status == 422);
}

TEST_CASE("records: a deleted record is kept for its retention, and the purge waits for it",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    const auto kept = create_record(t, p.alice, "KEEP");
    REQUIRE(move(t, p.alice, kept, "delete", "entered twice").status == 200);
    const auto deleted = t.call("GET", path(kept), p.alice);
    CHECK(deleted.body.at("state") == "deleted");
    CHECK(deleted.body.at("state_reason") == "entered twice");
    CHECK(deleted.body.at("retain_until").is_string());
    const auto refused = t.call("POST", path(kept, "/purge"), p.alice);
    CHECK(refused.status == 409);
    CHECK(refused.body.at("error").at("message").as_string().find("kept until") !=
          json::string::npos);
    CHECK(t.call("POST", path(kept, "/purge"), p.bob).status == 403);
    // Nor can the app's role remove it behind the API.
    CHECK(as_app_role(t, "DELETE FROM records") == "42501");

    // With no retention, the purge goes through; the trail keeps the purge.
    REQUIRE(t.call("PUT", "/api/v1/records/settings", p.alice, R"({"retention_days":0})").status ==
            200);
    const auto gone = create_record(t, p.alice, "GONE");
    REQUIRE(move(t, p.alice, gone, "delete", "test data").status == 200);
    std::this_thread::sleep_for(10ms);
    const auto purged = t.call("POST", path(gone, "/purge"), p.alice);
    INFO(json::serialize(purged.body));
    REQUIRE(purged.status == 200);
    CHECK(t.call("GET", path(gone), p.alice).status == 404);
    CHECK(t.call("GET", path(kept), p.alice).status == 200);
    const auto chain = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    CHECK(chain.body.at("valid") == true);
}

TEST_CASE("records: one tenant never sees or signs another's records", "[app][records]") {
    auto t = records_app();
    const auto acme = people(t, "acme");
    const auto other = people(t, "globex");
    set_password(t, other.bob, "Other Bob");
    const auto id = create_record(t, acme.bob);
    CHECK(t.call("GET", path(id), other.bob).status == 404);
    CHECK(t.call("GET", path(id, "/audit"), other.bob).status == 404);
    CHECK(t.call("GET", path(id, "/versions"), other.bob).status == 404);
    CHECK(sign(t, other.bob, id, "bob", "review").status == 404);
    CHECK(move(t, other.alice, id, "delete", "x").status == 404);
    CHECK(t.call("GET", "/api/v1/records", other.bob).body.at("total") == 0);
    CHECK(t.call("GET", "/api/v1/records", acme.bob).body.at("total") == 1);
    // Same business key in another tenant is another record.
    CHECK(create_record(t, other.bob) != id);
    CHECK(t.call("GET", "/api/v1/records/audit/verify", other.alice).body.at("valid") == true);
}

TEST_CASE("records: bad input gets a precise 4xx and writes nothing", "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    const auto audit_rows = [&] {
        return t.call("GET", "/api/v1/records/audit/verify", p.alice).body.at("rows").as_int64();
    };
    const auto before = audit_rows();

    const auto unknown = sign(t, p.bob, id, "bob", "vibes");
    CHECK(unknown.status == 422);
    CHECK(unknown.body.at("error").at("details").at("fields").as_object().contains("meaning"));
    const auto no_reason = t.call("POST", path(id, "/signatures"), p.bob,
                                  R"({"meaning":"review","password":"x","user_id":"bob"})");
    CHECK(no_reason.status == 422);
    CHECK(no_reason.body.at("error").at("details").at("fields").as_object().contains("reason"));
    const auto bad_content =
        t.call("POST", "/api/v1/records", p.bob,
               R"({"type":"t","business_key":"k","title":"x","content":"not an object"})");
    CHECK(bad_content.status == 422);
    CHECK(bad_content.body.at("error").at("details").at("fields").as_object().contains("content"));
    const auto huge =
        t.call("POST", "/api/v1/records", p.bob,
               R"({"type":"t","business_key":"big","title":"x","content":{"n":9007199254740993}})");
    CHECK(huge.status == 422);
    CHECK(t.call("POST", "/api/v1/records", p.bob, R"({"type":)").status == 400);
    CHECK(t.call("POST", "/api/v1/records", p.bob,
                 R"({"type":"batch_record","business_key":"BR-001","title":"t","content":{}})")
              .status == 409);
    CHECK(
        t.call(
             "POST", "/api/v1/records", p.bob,
             R"({"type":"x'; DROP TABLE records; --","business_key":"k","title":"t","content":{}})")
            .status == 201);
    CHECK(t.call("GET", path(999999), p.bob).status == 404);
    CHECK(t.call("GET", "/api/v1/records/abc", p.bob).status == 422);
    CHECK(t.call("GET", "/api/v1/records?state=draft", p.bob).body.at("total") == 2);
    CHECK(audit_rows() == before + 1);  // only the record that was created
}

TEST_CASE("records: a NUL in a reason or in the content is refused, and the trail still verifies",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    REQUIRE(move(t, p.bob, id, "submit").status == 200);
    const auto rows_before =
        t.call("GET", "/api/v1/records/audit/verify", p.alice).body.at("rows").as_int64();

    // The trail would hash "ok\0x" and PostgreSQL keep "ok": the row "changed" for ever.
    const auto returned = move(t, p.bob, id, "return", std::string("ok\0x", 4));
    INFO(json::serialize(returned.body));
    CHECK(returned.status == 422);
    CHECK(returned.body.at("error").at("details").at("fields").at("reason") == "no NUL characters");
    CHECK(t.call("GET", path(id), p.bob).body.at("state") == "in_review");
    // A signing reason: the seal would cover a text the database does not keep.
    json::object signing{{"meaning", "review"},
                         {"reason", std::string("checked\0 twice", 14)},
                         {"password", "correct horse battery"},
                         {"user_id", "bob"}};
    CHECK(t.call("POST", path(id, "/signatures"), p.bob, json::serialize(signing)).status == 422);

    // In the content the NUL is a JSON escape jsonb refuses: a 4xx, not a 500, and no record.
    const auto content =
        t.call("POST", "/api/v1/records", p.bob,
               R"({"type":"t","business_key":"nul","title":"x","content":{"note":"a\u0000b"}})");
    INFO(json::serialize(content.body));
    CHECK(content.status >= 400);
    CHECK(content.status < 500);
    CHECK(t.call("GET", "/api/v1/records", p.bob).body.at("total") == 1);

    const auto chain = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    CHECK(chain.body.at("valid") == true);
    CHECK(chain.body.at("rows").as_int64() == rows_before);  // nothing was written
}

TEST_CASE(
    "records: a User-Agent cut inside a character or not UTF-8 is kept readable, and the "
    "trail verifies",
    "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    const auto create_with = [&](const std::string& key, const std::string& user_agent) {
        inngest::detail::OutboundRequest request{
            "POST",
            "http://127.0.0.1:" + std::to_string(t.app().port()) + "/api/v1/records",
            {{"Authorization", "Bearer " + p.bob},
             {"Content-Type", "application/json"},
             {"User-Agent", user_agent}},
            R"({"type":"t","business_key":")" + key + R"(","title":"x","content":{"a":1}})",
            10s,
            std::nullopt};
        const auto response = inngest::detail::send_http(request);
        REQUIRE(response.has_value());
        INFO(response->body);
        REQUIRE(response->status == 201);
        return json::parse(response->body).at("id").as_int64();
    };
    // The audit trail keeps 300 bytes of the User-Agent: here they end inside the é.
    const auto cut = create_with("cut", std::string(299, 'a') + "é");
    const auto latin1 = create_with("latin1", "Mozilla \xE9t\xE9");  // Latin-1, not UTF-8
    const auto chain = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    INFO(json::serialize(chain.body));
    CHECK(chain.status == 200);
    CHECK(chain.body.at("valid") == true);
    const auto agent = [&](std::int64_t id) {
        const auto trail = t.call("GET", path(id, "/audit"), p.bob);
        INFO(json::serialize(trail.body));
        REQUIRE(trail.status == 200);
        const auto& rows = trail.body.at("entries").as_array();
        REQUIRE(!rows.empty());
        return rows.at(0).at("user_agent");
    };
    CHECK(agent(cut) == json::value(std::string(299, 'a')));
    CHECK(agent(latin1) == "Mozilla \xEF\xBF\xBDt\xEF\xBF\xBD");
}

TEST_CASE(
    "records: content is hashed as storage gives it back; a whole number past 2^53 is refused",
    "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    const auto audit_rows = [&] {
        return t.call("GET", "/api/v1/records/audit/verify", p.alice).body.at("rows").as_int64();
    };
    const auto before = audit_rows();
    const auto field_of = [](const Response& r, const std::string& name) {
        INFO(json::serialize(r.body));
        const auto& fields = r.body.at("error").at("details").at("fields").as_object();
        return fields.contains(name) ? fields.at(name) : json::value();
    };

    // 1e16 is read as a double and hashed so; jsonb gives back the integer 10000000000000000,
    // beyond 2^53, which has no canonical form: the trail and the signatures could not be
    // checked again.
    const auto whole =
        t.call("POST", "/api/v1/records", p.bob,
               R"({"type":"t","business_key":"e16","title":"x","content":{"n":1e16}})");
    CHECK(whole.status == 422);
    CHECK(field_of(whole, "content.n").is_string());
    const auto changed =
        t.call("PUT", path(id), p.bob, R"({"content":{"lot":"A7","n":1e16},"reason":"typo"})");
    CHECK(changed.status == 422);
    CHECK(field_of(changed, "content.n").is_string());
    // Boost.JSON 1.81 does not round every decimal it reads correctly: this one reads back
    // another double each time it is stored and read again, so no hash of it would verify.
    const auto drifting =
        t.call("POST", "/api/v1/records", p.bob,
               R"({"type":"t","business_key":"drift","title":"x","content":{"x":6.72535861e-22}})");
    CHECK(drifting.status == 422);
    CHECK(field_of(drifting, "content").is_string());

    CHECK(t.call("GET", "/api/v1/records", p.bob).body.at("total") == 1);
    CHECK(t.call("GET", path(id), p.bob).body.at("latest_version") == 1);
    CHECK(audit_rows() == before);

    // The rest is taken as jsonb gives it back, and keeps verifying: a 17-digit decimal that
    // Boost.JSON reads back from jsonb's plain notation a bit off included.
    const auto kept = t.call("PUT", path(id), p.bob,
                             R"({"content":{"a":1e15,"b":2e19,"c":0.1,"d":-3.0,"e":"1e16",)"
                             R"("f":9007199254740992,"g":1.5e300,"h":5e-324,)"
                             R"("m":[1,34846281429204.756]},"reason":"ok"})");
    INFO(json::serialize(kept.body));
    CHECK(kept.status == 200);
    REQUIRE(sign(t, p.bob, id, "bob", "authorship").status == 201);
    CHECK(t.call("GET", path(id, "/signatures/verify"), p.bob).body.at("valid") == true);
    const auto chain = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    CHECK(chain.body.at("valid") == true);
}

TEST_CASE("records: stored content with no canonical form shows broken, not a 500",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    REQUIRE(sign(t, p.bob, id, "bob", "authorship").status == 201);
    // What a row written before numbers were checked holds (or a DBA's edit): an integer
    // beyond 2^53, which JCS cannot represent.
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_versions SET content = "
                 "'{\"n\":10000000000000000}'; UPDATE record_audit SET new_value = new_value || "
                 "'{\"n\":10000000000000000}' WHERE action = 'created'");
    const auto chain = t.call("GET", "/api/v1/records/audit/verify", p.alice);
    INFO(json::serialize(chain.body));
    REQUIRE(chain.status == 200);
    CHECK(chain.body.at("valid") == false);
    CHECK(chain.body.at("first_broken").at("seq") == 2);
    CHECK(chain.body.at("first_broken").at("problem").as_string().find("canonical") !=
          json::string::npos);
    const auto signatures = t.call("GET", path(id, "/signatures/verify"), p.bob);
    INFO(json::serialize(signatures.body));
    REQUIRE(signatures.status == 200);
    CHECK(signatures.body.at("valid") == false);
    CHECK(signatures.body.at("signatures").at(0).at("problem").as_string().find("canonical") !=
          json::string::npos);
    const auto record = t.call("GET", path(id), p.bob);
    REQUIRE(record.status == 200);
    CHECK(record.body.at("signatures_valid") == false);
}

TEST_CASE("records: a draft stored with a whole number past 2^53 is replaced by PUT, not signed",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    // A version written before such numbers were refused: {"n":1e16} was hashed as the double
    // it reads as, and jsonb keeps the integer 10000000000000000, which JCS cannot write.
    const std::string legacy = R"({"lot":"A7","n":10000000000000000})";
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_versions SET content = '" +
                     legacy + "', content_hash = '" + riveredge::core::sha256_hex(legacy) +
                     "' WHERE tenant_id = 'acme' AND record_id = " + std::to_string(id));
    // A signature of it could never be verified: refused, naming the number.
    const auto signing = sign(t, p.bob, id, "bob", "authorship");
    INFO(json::serialize(signing.body));
    CHECK(signing.status == 409);
    CHECK(signing.body.at("error").at("message").as_string().find("content.n") !=
          json::string::npos);
    CHECK(t.call("GET", path(id), p.bob).body.at("signatures").as_array().empty());

    // Replacing the content is how it is mended: the number as text.
    const auto replaced =
        t.call("PUT", path(id), p.bob,
               R"({"content":{"lot":"A7","n":"10000000000000000"},"reason":"the number as text"})");
    INFO(json::serialize(replaced.body));
    REQUIRE(replaced.status == 200);
    CHECK(replaced.body.at("latest_version") == 2);
    CHECK(replaced.body.at("content").at("n") == "10000000000000000");
    // The trail keeps the old content whole, as its text (it has no canonical form to hash).
    const auto trail = t.call("GET", path(id, "/audit"), p.bob);
    const json::object* changed = nullptr;
    for (const auto& entry : trail.body.at("entries").as_array()) {
        if (entry.at("action") == "content_changed") {
            changed = &entry.at("old_value").as_object();
        }
    }
    REQUIRE(changed != nullptr);
    CHECK(changed->at("version") == 1);
    CHECK_FALSE(changed->contains("content"));
    CHECK(json::parse(changed->at("content_text").as_string()) == json::parse(legacy));
    // The new version signs, and its signature verifies.
    REQUIRE(sign(t, p.bob, id, "bob", "authorship").status == 201);
    CHECK(t.call("GET", path(id, "/signatures/verify"), p.bob).body.at("valid") == true);
}

TEST_CASE("records: without a seal key signing answers 503 and nothing is signed",
          "[app][records]") {
    AppUnderTest t;
    const auto p = people(t);
    set_password(t, p.bob, "Bob");
    const auto id = create_record(t, p.bob);
    const auto r = sign(t, p.bob, id, "bob", "authorship");
    CHECK(r.status == 503);
    CHECK(r.body.at("error").at("message").as_string().find("RIVEREDGE_RECORDS_SEAL_KEY") !=
          json::string::npos);
    CHECK(t.call("GET", path(id), p.bob).body.at("signatures").as_array().empty());
}

namespace {

// The app of a nightly re-verification test, with signing on: its clock at 01:59:30 UTC, half a
// minute before the check runs at 02:00; on `database` when the test prepared one.
struct NightlyApp {
    explicit NightlyApp(const std::string& database = {})
        : t(AppUnderTestOptions{
              .clock = clock, .database_url = database, .records_seal_key_file = seal_key_file()}) {
    }

    // Past 02:00, the executor woken: the check starts.
    void reach_the_check() {
        clock->advance(std::chrono::seconds(45));
        t.app().executor()->poke();
    }

    std::shared_ptr<inngest::local::ManualClock> clock =
        std::make_shared<inngest::local::ManualClock>(
            std::chrono::system_clock::time_point(std::chrono::seconds(1796522370)));
    AppUnderTest t;
};

struct TwoTenants {
    People acme;
    People globex;
};

// acme and globex, each with alice as its security contact and one record of bob's submitted.
TwoTenants submitted_in_two_tenants(const AppUnderTest& t) {
    const auto acme = people(t, "acme");
    const auto globex = people(t, "globex");
    for (const auto* tenant : {&acme, &globex}) {
        REQUIRE(t.call("PUT", "/api/v1/records/settings", tenant->alice,
                       R"({"security_contacts":["alice"]})")
                    .status == 200);
        const auto id = create_record(t, tenant->bob);
        REQUIRE(move(t, tenant->bob, id, "submit").status == 200);
    }
    return {acme, globex};
}

}  // namespace

TEST_CASE("records: the nightly re-verification tells the security contacts of a broken trail",
          "[app][records]") {
    NightlyApp nightly;
    auto& t = nightly.t;
    const auto [acme, globex] = submitted_in_two_tenants(t);
    // Someone with database access rewrites one of acme's rows.
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_audit SET actor_id = "
                 "'mallory' WHERE tenant_id = 'acme' AND seq = 2");
    nightly.reach_the_check();
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(t.wait_unread(acme.alice, 1));
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", acme.alice);
    const auto& item = inbox.body.at("items").at(0);
    CHECK(item.at("subject") == "Electronic records integrity check failed");
    CHECK(item.at("body").as_string().find("row 2") != json::string::npos);
    // The other tenant's trail is intact: nothing for its contact.
    CHECK(t.call("GET", "/api/v1/messages/inbox/unread-count", globex.alice).body.at("unread") ==
          0);
    const auto runs = t.app().executor()->runs("riveredge-flow-records-verify-integrity");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].output.at("failed") == json::array{json::value("acme")});
    // The notice is keyed by the day the check was scheduled for (the executor's 6 December),
    // not the wall clock's day when a step runs: a retry after midnight sends no second one.
    riveredge::core::db::Pool dba(inngest_test::as_role(t.settings().database_url, "postgres"), 1);
    const auto keys = riveredge::core::db::exec_once(
        dba, std::nullopt,
        "SELECT idempotency_key FROM messages WHERE tenant_id = 'acme' AND idempotency_key LIKE "
        "'records-integrity-%'");
    REQUIRE(keys.size() == 1);
    CHECK(keys.text(0, "idempotency_key") ==
          "records-integrity-" + std::to_string(1796522370 / 86400));
}

TEST_CASE("records: the nightly re-verification reads the seal key register once per page",
          "[app][records]") {
    // PostgreSQL's own log counts the statements: this test's database logs every statement of
    // the app's role, set before the app's first connection.
    const std::string database = inngest_test::shared_postgres().fresh_database();
    {
        riveredge::core::db::Pool dba(inngest_test::as_role(database, "postgres"), 1);
        riveredge::core::db::exec_once(
            dba, std::nullopt,
            "DO $$ BEGIN EXECUTE format('ALTER ROLE riveredge IN DATABASE %I SET log_statement = "
            "''all''', current_database()); END $$");
    }
    NightlyApp nightly(database);
    auto& t = nightly.t;
    const auto p = people(t);
    set_password(t, p.bob, "Bob Reviewer");
    constexpr int kRecords = 3;
    for (int i = 0; i < kRecords; ++i) {
        const auto id = create_record(t, p.bob, "BR-00" + std::to_string(i));
        REQUIRE(sign(t, p.bob, id, "bob", "authorship").status == 201);
    }
    const auto log = inngest_test::shared_postgres().log_file();
    const auto from = std::filesystem::file_size(log);
    nightly.reach_the_check();
    REQUIRE(t.app().wait_settled(20s));
    const auto runs = t.app().executor()->runs("riveredge-flow-records-verify-integrity");
    REQUIRE(runs.size() == 1);
    // Every record's signature checked against the register, and found valid.
    CHECK(runs[0].output.at("failed").as_array().empty());
    std::ifstream in(log);
    in.seekg(static_cast<std::streamoff>(from));
    int key_reads = 0;
    for (std::string line; std::getline(in, line);) {
        key_reads += line.find("FROM record_seal_keys") != std::string::npos ? 1 : 0;
    }
    // One page of three records: one read of the register (one per record before).
    CHECK(key_reads == 1);
}

TEST_CASE("records: the nightly re-verification checks every tenant when one tenant's check fails",
          "[app][records]") {
    NightlyApp nightly;
    auto& t = nightly.t;
    const auto [acme, globex] = submitted_in_two_tenants(t);
    // acme, checked first: a row whose content has no canonical form, and a notice that can
    // never be written, so its check fails on every attempt. globex: a rewritten row.
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_audit SET new_value = "
                 "new_value || '{\"n\":10000000000000000}' WHERE tenant_id = 'acme' AND action = "
                 "'created'; "
                 "UPDATE record_audit SET actor_id = 'mallory' WHERE tenant_id = 'globex' AND "
                 "seq = 2");
    {
        riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
        riveredge::core::db::transact(
            owner, std::nullopt, [&](riveredge::core::db::Transaction& tx) {
                tx.exec(
                    "CREATE FUNCTION acme_notice_dies() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'test: acme''s notice dies here'; END $$");
                tx.exec(
                    "CREATE TRIGGER acme_notice_dies BEFORE INSERT ON messages FOR EACH ROW WHEN "
                    "(NEW.tenant_id = 'acme') EXECUTE FUNCTION acme_notice_dies()");
            });
    }
    const StderrCapture log;
    nightly.reach_the_check();
    for (int i = 0; i < 8; ++i) {
        REQUIRE(t.app().wait_settled(10s));
        nightly.clock->advance(std::chrono::minutes(1));
        t.app().executor()->poke();
    }
    REQUIRE(t.app().wait_settled(10s));
    // acme's failure is logged once, when its last attempt failed, not again on each later
    // invocation that replays the failed step.
    const auto logged = log.lines_with("records integrity check could not be made");
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("\"tenant\":\"acme\"") != std::string::npos);
    // globex was checked, and its contact told.
    REQUIRE(t.wait_unread(globex.alice, 1));
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", globex.alice);
    CHECK(inbox.body.at("items").at(0).at("body").as_string().find("row 2") != json::string::npos);
    const auto runs = t.app().executor()->runs("riveredge-flow-records-verify-integrity");
    REQUIRE(runs.size() == 1);
    // The run ends failed, naming the tenant that could not be checked.
    CHECK(runs[0].status == inngest::local::RunStatus::kFailed);
    INFO(json::serialize(runs[0].error));
    CHECK(json::serialize(runs[0].error).find("acme") != std::string::npos);
}
