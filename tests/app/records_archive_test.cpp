// Electronic records, second part, against a real PostgreSQL: attachments kept by content hash,
// the sealed archive made by an Inngest function (on request and nightly), seals that still
// verify after the server key rotates, and signing workflows on the approval engine.

#include "app/approvals_support.hpp"
#include "app/command_output.hpp"
#include "app/records_support.hpp"
#include "core/json/canonical.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <set>

using namespace riveredge_test;
using namespace riveredge_test::records;

namespace {

// Some bytes a text API would mangle: a NUL, a high byte, a CR LF.
const std::string kPdfBytes = std::string("%PDF-1.4\n%\xe2\xe3\xcf\xd3\r\n", 17) +
                              std::string("1 0 obj\0<< >>\nendobj\n", 22) + "%%EOF\n";

std::string upload(AppUnderTest& t, const std::string& token, const std::string& bytes) {
    const auto r =
        raw_call(t, "POST", "/api/v1/records/attachments", token, "application/pdf", bytes);
    INFO(r.body);
    REQUIRE(r.status == 201);
    return std::string(json::parse(r.body).at("sha256").as_string());
}

std::string with_attachment(const std::string& sha256, const std::string& name = "coa.pdf") {
    return R"({"lot":"A7","attachments":[{"name":")" + name + R"(","sha256":")" + sha256 +
           R"("}]})";
}

// A record made effective (an approval signature) and then superseded.
std::int64_t superseded_record(const AppUnderTest& t,
                               const People& p,
                               const std::string& key,
                               const std::string& content = R"({"lot":"A7","yield":98.5})") {
    const auto id = create_record(t, p.alice, key, content);
    REQUIRE(move(t, p.alice, id, "submit").status == 200);
    REQUIRE(sign(t, p.alice, id, "alice", "approval").status == 201);
    REQUIRE(move(t, p.alice, id, "make_effective").status == 200);
    REQUIRE(move(t, p.alice, id, "supersede", "replaced by BR-002").status == 200);
    return id;
}

}  // namespace

TEST_CASE("records: attachments are kept by content hash and their hash is signed",
          "[app][records]") {
    // 01:59:30 UTC: the nightly re-verification runs at 02:00.
    auto clock = std::make_shared<inngest::local::ManualClock>(
        std::chrono::system_clock::time_point(std::chrono::seconds(1796522370)));
    AppUnderTest t(AppUnderTestOptions{.clock = clock, .records_seal_key_file = seal_key_file()});
    const auto p = people(t);
    set_password(t, p.alice, "Alice");
    REQUIRE(t.call("PUT", "/api/v1/records/settings", p.alice, R"({"security_contacts":["alice"]})")
                .status == 200);

    const auto sha = upload(t, p.bob, kPdfBytes);
    CHECK(sha == riveredge::core::sha256_hex(kPdfBytes));
    // The same bytes again are kept once.
    const auto again =
        raw_call(t, "POST", "/api/v1/records/attachments", p.bob, "application/pdf", kPdfBytes);
    CHECK(json::parse(again.body).at("stored") == "already kept");

    const auto id = create_record(t, p.bob, "BR-ATT", with_attachment(sha));
    const auto download = raw_call(t, "GET", path(id, "/attachments/" + sha), p.bob);
    REQUIRE(download.status == 200);
    CHECK(download.body == kPdfBytes);
    bool typed = false;
    for (const auto& [name, value] : download.headers) {
        typed = typed || (name == "Content-Type" && value == "application/pdf");
    }
    CHECK(typed);
    // The content names the hash, so the content hash (and so every signature) covers it.
    const auto record = t.call("GET", path(id), p.bob);
    CHECK(record.body.at("content_hash") ==
          json::value(riveredge::core::sha256_hex(
              riveredge::core::canonical_json(record.body.at("content")))));
    CHECK(record.body.at("content").at("attachments").at(0).at("sha256") == json::value(sha));

    // Bytes never uploaded, a malformed hash, a duplicate name: 422 naming the member, and no
    // record is written.
    const std::string zeros(64, '0');
    const auto unknown = t.call("POST", "/api/v1/records", p.bob,
                                R"({"type":"batch_record","business_key":"BR-X","title":"x",)"
                                R"("content":)" +
                                    with_attachment(zeros) + "}");
    CHECK(unknown.status == 422);
    CHECK(unknown.body.at("error").at("details").at("fields").as_object().contains(
        "content.attachments[0].sha256"));
    const auto malformed = t.call("POST", "/api/v1/records", p.bob,
                                  R"({"type":"batch_record","business_key":"BR-X","title":"x",)"
                                  R"("content":{"attachments":[{"name":"a","sha256":"ABC"}]}})");
    CHECK(malformed.status == 422);
    const auto twice = t.call(
        "POST", "/api/v1/records", p.bob,
        R"({"type":"batch_record","business_key":"BR-X","title":"x","content":{"attachments":[)"
        R"({"name":"a","sha256":")" +
            sha + R"("},{"name":"a","sha256":")" + sha + R"("}]}})");
    CHECK(twice.status == 422);
    CHECK(t.call("GET", "/api/v1/records?business_key=BR-X", p.bob).body.at("total") == 0);
    CHECK(raw_call(t, "POST", "/api/v1/records/attachments", p.bob, "application/pdf", "").status ==
          422);
    CHECK(raw_call(t, "POST", "/api/v1/records/attachments", p.bob, "pdf", "x").status == 422);

    // Only through a record that names it, and only in its tenant.
    const auto other = create_record(t, p.bob, "BR-OTHER");
    CHECK(raw_call(t, "GET", path(other, "/attachments/" + sha), p.bob).status == 404);
    const auto globex = t.token("globex", "bob");
    CHECK(raw_call(t, "GET", path(id, "/attachments/" + sha), globex).status == 404);

    // Bytes changed behind the app's back: the download refuses them and the nightly check
    // tells the security contacts.
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_attachments SET content = "
                 "'forged'::bytea WHERE tenant_id = 'acme'");
    CHECK(raw_call(t, "GET", path(id, "/attachments/" + sha), p.bob).status == 409);
    clock->advance(std::chrono::seconds(45));
    t.app().executor()->poke();
    REQUIRE(t.app().wait_settled(20s));
    REQUIRE(t.wait_unread(p.alice, 1));
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", p.alice);
    CHECK(inbox.body.at("items").at(0).at("body").as_string().find(sha) != json::string::npos);
}

TEST_CASE("records: the archive is a sealed package made by the records-archive function",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.alice, "Alice");
    const auto id = superseded_record(t, p, "BR-ARC");
    CHECK(move(t, p.bob, id, "archive").status == 403);

    const auto asked = move(t, p.alice, id, "archive");
    CHECK(asked.status == 202);
    CHECK(asked.body.at("archive") == "requested");
    REQUIRE(wait_state(t, p.alice, id, "archived"));
    REQUIRE(t.app().wait_settled(20s));
    const auto runs = t.app().executor()->runs("riveredge-flow-records-archive");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].output.at("archived").as_bool());

    const auto archive = t.call("GET", path(id, "/archive"), p.bob);
    INFO(json::serialize(archive.body));
    REQUIRE(archive.status == 200);
    CHECK(archive.body.at("valid").as_bool());
    const auto& package = archive.body.at("package");
    CHECK(archive.body.at("package_hash") ==
          json::value(riveredge::core::sha256_hex(riveredge::core::canonical_json(package))));
    CHECK(package.at("signatures").as_array().size() == 1);
    CHECK(package.at("signatures_valid").as_bool());
    std::vector<std::string> actions;
    for (const auto& entry : package.at("audit_trail").as_array()) {
        actions.emplace_back(entry.at("action").as_string());
    }
    CHECK(std::find(actions.begin(), actions.end(), "archive_requested") != actions.end());
    // Reading the archive is in the trail; the archived record is not signed any more.
    const auto trail = t.call("GET", path(id, "/audit"), p.alice);
    bool read_audited = false;
    for (const auto& entry : trail.body.at("entries").as_array()) {
        read_audited = read_audited || entry.at("action") == "archive_read";
    }
    CHECK(read_audited);
    CHECK(sign(t, p.alice, id, "", "review").status == 409);

    // A package changed by a superuser no longer matches its hash.
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_archives SET package = "
                 "jsonb_set(package, '{record,title}', '\"forged\"')");
    const auto forged = t.call("GET", path(id, "/archive"), p.bob);
    CHECK_FALSE(forged.body.at("valid").as_bool());
    CHECK(forged.body.at("problem") == "the package changed after it was archived");
    // The app's own role cannot change or remove it.
    CHECK(as_app_role(t, "UPDATE record_archives SET package_hash = 'x'") == "42501");
    CHECK(as_app_role(t, "DELETE FROM record_archives") == "42501");
    // No archive for a record that has none.
    CHECK(t.call("GET", path(create_record(t, p.bob, "BR-NONE"), "/archive"), p.bob).status == 404);
}

TEST_CASE("records: an archive of content nested 30 levels deep reads back and verifies",
          "[app][records]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.alice, "Alice");
    // 30 levels: the request is 31, within what the router reads; the package nests it deeper.
    std::string content = R"({"lot":"A7"})";
    for (int level = 1; level < 30; ++level) {
        content = R"({"d":)" + content + "}";
    }
    const auto id = superseded_record(t, p, "BR-DEEP", content);
    REQUIRE(move(t, p.alice, id, "archive").status == 202);
    REQUIRE(wait_state(t, p.alice, id, "archived"));
    REQUIRE(t.app().wait_settled(20s));
    const auto runs = t.app().executor()->runs("riveredge-flow-records-archive");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].output.at("archived").as_bool());

    const auto archive = raw_call(t, "GET", path(id, "/archive"), p.bob);
    INFO(archive.body.substr(0, 2000));
    REQUIRE(archive.status == 200);
    json::parse_options deep;
    deep.max_depth = 64;
    const auto body = json::parse(archive.body, {}, deep);
    CHECK(body.at("valid").as_bool());
    const auto& package = body.at("package");
    CHECK(body.at("package_hash") ==
          json::value(riveredge::core::sha256_hex(riveredge::core::canonical_json(package))));
    CHECK(package.at("versions").at(0).at("content") == json::parse(content, {}, deep));
    // Read again (as a retried archive step reads it): the same, still valid.
    const auto again = raw_call(t, "GET", path(id, "/archive"), p.alice);
    REQUIRE(again.status == 200);
    CHECK(json::parse(again.body, {}, deep).at("package") == package);
}

TEST_CASE("records: an archive asked again after a run that failed through its retries runs again",
          "[app][records]") {
    // Noon UTC: no nightly run comes between.
    auto clock = std::make_shared<inngest::local::ManualClock>(
        std::chrono::system_clock::time_point(std::chrono::seconds(1796558400)));
    AppUnderTest t(AppUnderTestOptions{.clock = clock, .records_seal_key_file = seal_key_file()});
    const auto p = people(t);
    set_password(t, p.alice, "Alice");
    const auto id = superseded_record(t, p, "BR-AGAIN");
    approvals::fail_every_insert(t, "archive_dies", "record_archives", "true");
    REQUIRE(move(t, p.alice, id, "archive").status == 202);
    for (int i = 0; i < 8; ++i) {
        REQUIRE(t.app().wait_settled(10s));
        clock->advance(std::chrono::minutes(1));
        t.app().executor()->poke();
    }
    REQUIRE(t.app().wait_settled(10s));
    auto runs = t.app().executor()->runs("riveredge-flow-records-archive");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].status == inngest::local::RunStatus::kFailed);
    CHECK(t.call("GET", path(id), p.alice).body.at("state") == "superseded");

    // Within the outbox's 24 hours: the second request is a run of its own, and archives.
    approvals::drop_trigger(t, "archive_dies", "record_archives");
    REQUIRE(move(t, p.alice, id, "archive").status == 202);
    REQUIRE(wait_state(t, p.alice, id, "archived"));
    REQUIRE(t.app().wait_settled(10s));
    runs = t.app().executor()->runs("riveredge-flow-records-archive");
    CHECK(runs.size() == 2);
}

TEST_CASE("records: a record stored with a whole number past 2^53 is not archived, and says why",
          "[app][records]") {
    // 02:29:30 UTC: the nightly archive runs at 02:30.
    auto clock = std::make_shared<inngest::local::ManualClock>(
        std::chrono::system_clock::time_point(std::chrono::seconds(1796524170)));
    AppUnderTest t(AppUnderTestOptions{.clock = clock, .records_seal_key_file = seal_key_file()});
    const auto p = people(t);
    set_password(t, p.alice, "Alice");
    const auto big = superseded_record(t, p, "BR-BIG");
    // A version written before such numbers were refused: jsonb keeps 10000000000000000, which
    // JCS cannot write, so no package of it can be hashed.
    const std::string legacy = R"({"lot":"A7","n":10000000000000000})";
    as_superuser(t,
                 "SET session_replication_role = replica; UPDATE record_versions SET content = '" +
                     legacy + "', content_hash = '" + riveredge::core::sha256_hex(legacy) +
                     "' WHERE tenant_id = 'acme' AND record_id = " + std::to_string(big));
    REQUIRE(move(t, p.alice, big, "archive").status == 202);
    // Nothing a retry could change: the run fails at once, naming the number.
    REQUIRE(t.app().wait_settled(10s));
    const auto runs = t.app().executor()->runs("riveredge-flow-records-archive");
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].status == inngest::local::RunStatus::kFailed);
    INFO(json::serialize(runs[0].error));
    CHECK(json::serialize(runs[0].error).find("content.n") != std::string::npos);
    CHECK(t.call("GET", path(big), p.alice).body.at("state") == "superseded");

    // The nightly pass reports it and archives the record after it.
    const auto other = superseded_record(t, p, "BR-OTHER");
    REQUIRE(
        t.call("PUT", "/api/v1/records/settings", p.alice, R"({"archive_after_days":0})").status ==
        200);
    clock->advance(std::chrono::seconds(45));
    t.app().executor()->poke();
    REQUIRE(wait_state(t, p.alice, other, "archived"));
    REQUIRE(t.app().wait_settled(20s));
    CHECK(t.call("GET", path(big), p.alice).body.at("state") == "superseded");
}

TEST_CASE("records: the nightly archive takes records superseded longer than the setting",
          "[app][records]") {
    // 02:29:30 UTC: the nightly archive runs at 02:30.
    auto clock = std::make_shared<inngest::local::ManualClock>(
        std::chrono::system_clock::time_point(std::chrono::seconds(1796524170)));
    AppUnderTest t(AppUnderTestOptions{.clock = clock, .records_seal_key_file = seal_key_file()});
    const auto p = people(t);
    set_password(t, p.alice, "Alice");
    // Administrators only.
    CHECK(t.call("PUT", "/api/v1/records/settings", p.bob, R"({"archive_after_days":0})").status ==
          403);
    CHECK(
        t.call("PUT", "/api/v1/records/settings", p.alice, R"({"archive_after_days":-1})").status ==
        422);
    const auto due = superseded_record(t, p, "BR-DUE");
    const auto effective = create_record(t, p.alice, "BR-EFF");
    REQUIRE(move(t, p.alice, effective, "submit").status == 200);
    const auto kept = superseded_record(t, p, "BR-KEPT");
    (void)kept;
    const auto settings =
        t.call("PUT", "/api/v1/records/settings", p.alice, R"({"archive_after_days":0})");
    REQUIRE(settings.status == 200);
    CHECK(settings.body.at("archive_after_days") == 0);
    // Another tenant that archives nothing on its own keeps its superseded record.
    const auto globex = people(t, "globex");
    set_password(t, globex.alice, "Alice G");
    const auto theirs = superseded_record(t, globex, "BR-G");

    clock->advance(std::chrono::seconds(45));
    t.app().executor()->poke();
    REQUIRE(wait_state(t, p.alice, due, "archived"));
    REQUIRE(wait_state(t, p.alice, kept, "archived"));
    REQUIRE(t.app().wait_settled(20s));
    CHECK(t.call("GET", path(effective), p.alice).body.at("state") == "in_review");
    CHECK(t.call("GET", path(theirs), globex.alice).body.at("state") == "superseded");
    CHECK(t.call("GET", path(due, "/archive"), p.alice).body.at("valid").as_bool());
}

TEST_CASE("records: seals of an earlier server key still verify after the key rotates",
          "[app][records]") {
    const auto old_key = make_seal_key("old");
    const auto new_key = make_seal_key("new");
    std::string database;
    std::int64_t id = 0;
    std::string old_key_id;
    {
        AppUnderTest first(AppUnderTestOptions{.records_seal_key_file = old_key});
        database = first.settings().database_url;
        const auto p = people(first);
        set_password(first, p.alice, "Alice");
        id = create_record(first, p.alice, "BR-ROT");
        REQUIRE(move(first, p.alice, id, "submit").status == 200);
        const auto signed_ = sign(first, p.alice, id, "alice", "review");
        REQUIRE(signed_.status == 201);
        old_key_id = std::string(signed_.body.at("key_id").as_string());
    }
    AppUnderTest t(AppUnderTestOptions{.database_url = database, .records_seal_key_file = new_key});
    const auto p = people(t);
    const auto after = sign(t, p.alice, id, "alice", "approval");
    REQUIRE(after.status == 201);
    CHECK(after.body.at("key_id") != json::value(old_key_id));
    const auto verified = t.call("GET", path(id, "/signatures/verify"), p.alice);
    INFO(json::serialize(verified.body));
    CHECK(verified.body.at("valid").as_bool());
    CHECK(verified.body.at("signatures").as_array().size() == 2);
    // Each key entered the tenant's register once, in the audit trail; the register is
    // append-only for the app's role.
    CHECK(as_app_role(t, "UPDATE record_seal_keys SET public_key = 'x'") == "42501");
    CHECK(as_app_role(t, "DELETE FROM record_seal_keys") == "42501");
    // Without the old key in the register, its seal no longer verifies (and says why).
    as_superuser(
        t,
        "SET session_replication_role = replica; DELETE FROM record_seal_keys WHERE key_id "
        "= '" +
            old_key_id + "'");
    const auto orphaned = t.call("GET", path(id, "/signatures/verify"), p.alice);
    CHECK_FALSE(orphaned.body.at("valid").as_bool());
    CHECK(orphaned.body.at("signatures").at(0).at("problem") ==
          "the seal does not match what was signed");
    // A register row whose key does not match its id verifies nothing either.
    as_superuser(t,
                 "SET session_replication_role = replica; INSERT INTO record_seal_keys (tenant_id, "
                 "key_id, public_key) SELECT tenant_id, '" +
                     old_key_id + "', public_key FROM record_seal_keys WHERE key_id <> '" +
                     old_key_id + "'");
    CHECK_FALSE(t.call("GET", path(id, "/signatures/verify"), p.alice).body.at("valid").as_bool());
}

TEST_CASE(
    "records: a signing workflow on the approval engine seals each approval with its "
    "decision",
    "[app][records][approvals]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock, .records_seal_key_file = seal_key_file()});
    approvals::Flow flow{t, *clock};
    const auto p = people(t);
    const auto dave = t.token("acme", "dave");
    set_password(t, p.bob, "Bob Reviewer");
    set_password(t, p.carol, "Carol QA");
    set_password(t, dave, "Dave QP");
    // Review by bob, then approval by carol and dave in parallel (会签: both sign).
    const auto definition =
        flow.publish(p.alice, R"({"key":"release","name":"Batch release","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"review","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}],"signature":{"meaning":"review"}}}},
  {"id":"approve","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"carol"},{"type":"user","value":"dave"}],"mode":"all","signature":{"meaning":"approval","record_variable":"batch_record"}}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"review"},{"id":"2","source":"review","target":"approve"},{"id":"3","source":"approve","target":"end"}]})");
    // A deadline never signs for the signer.
    const auto auto_approve = t.call(
        "POST", "/api/v1/approvals/definitions/validate", p.alice,
        approvals::import_body(
            R"({"nodes":[{"id":"s","type":"startEvent"},)"
            R"({"id":"u","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}],"signature":{"meaning":"approval"},"deadline":{"duration":"P1D","action":"approve"}}}},)"
            R"({"id":"e","type":"endEvent"}],"edges":[{"id":"1","source":"s","target":"u"},{"id":"2","source":"u","target":"e"}]})"));
    CHECK(auto_approve.body.at("valid") == false);
    // A signing step names what signing means there.
    const auto checked = t.call(
        "POST", "/api/v1/approvals/definitions/validate", p.alice,
        approvals::import_body(
            R"({"nodes":[{"id":"s","type":"startEvent"},)"
            R"({"id":"u","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}],"signature":{}}}},)"
            R"({"id":"e","type":"endEvent"}],"edges":[{"id":"1","source":"s","target":"u"},{"id":"2","source":"u","target":"e"}]})"));
    REQUIRE(checked.status == 200);
    CHECK(checked.body.at("valid") == false);
    bool named = false;
    for (const auto& problem : checked.body.at("problems").as_array()) {
        named = named ||
                (problem.at("node") == "u" &&
                 problem.at("message").as_string().find("signature.meaning") != json::string::npos);
    }
    CHECK(named);

    const auto record = create_record(t, p.alice, "BR-WF");
    REQUIRE(move(t, p.alice, record, "submit").status == 200);
    const auto instance = flow.start(p.alice, definition,
                                     R"({"record_id":)" + std::to_string(record) +
                                         R"(,"batch_record":)" + std::to_string(record) + "}");
    const auto reviewing = flow.wait_pending(p.bob, instance, "review");
    REQUIRE(reviewing.is_object());
    const auto review_task = flow.pending_task(reviewing, "review");

    const auto signature = [](const std::string& user, const std::string& password) {
        return R"({"signature":{"user_id":")" + user + R"(","password":")" + password +
               R"(","reason":"batch record checked"}})";
    };
    // Approving a signing step needs the signature; the bearer token alone does not sign.
    const auto bare = flow.act(p.bob, review_task, "approve");
    CHECK(bare.status == 422);
    CHECK(bare.body.at("error").at("details").at("fields").as_object().contains("signature"));
    // A wrong password: refused, counted in the records trail, and the task is still open.
    CHECK(flow.act(p.bob, review_task, "approve", signature("bob", "wrong password!")).status ==
          403);
    CHECK(t.call("GET", path(record), p.bob).body.at("signatures").as_array().empty());
    // Someone else's user id: refused.
    CHECK(flow.act(p.bob, review_task, "approve", signature("carol", "correct horse battery"))
              .status == 403);
    const auto approved =
        flow.act(p.bob, review_task, "approve", signature("bob", "correct horse battery"));
    INFO(json::serialize(approved.body));
    REQUIRE(approved.status == 200);
    // A second decision of the same task: refused, and no second signature.
    CHECK(
        flow.act(p.bob, review_task, "approve", signature("bob", "correct horse battery")).status ==
        409);

    const auto approving = flow.wait_instance(p.carol, instance, [](const json::value& i) {
        return approvals::has_pending(i, "approve");
    });
    REQUIRE(approving.is_object());
    for (const auto& [token, user] :
         std::vector<std::pair<std::string, std::string>>{{p.carol, "carol"}, {dave, "dave"}}) {
        const auto task = flow.pending_task(approving, "approve", user);
        REQUIRE(task != 0);
        const auto r = flow.act(token, task, "approve", signature(user, "correct horse battery"));
        INFO(json::serialize(r.body));
        REQUIRE(r.status == 200);
    }
    const auto done = flow.wait_done(p.alice, instance);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");

    // Three signatures, each tied to its workflow step and valid; the record can take effect.
    const auto verified = t.call("GET", path(record, "/signatures/verify"), p.alice);
    INFO(json::serialize(verified.body));
    CHECK(verified.body.at("valid").as_bool());
    std::multiset<std::string> meanings;
    for (const auto& s : verified.body.at("signatures").as_array()) {
        meanings.emplace(s.at("meaning").as_string());
        CHECK(
            s.at("step_key").as_string().rfind("approvals:" + std::to_string(instance) + ":", 0) ==
            0);
    }
    CHECK(meanings == std::multiset<std::string>{"approval", "approval", "review"});
    CHECK(move(t, p.alice, record, "make_effective").status == 200);

    // An instance that names no record: the approval is refused and nothing is decided.
    const auto orphan = flow.start(p.alice, definition, "{}");
    const auto waiting = flow.wait_pending(p.bob, orphan, "review");
    REQUIRE(waiting.is_object());
    const auto orphan_task = flow.pending_task(waiting, "review");
    CHECK(
        flow.act(p.bob, orphan_task, "approve", signature("bob", "correct horse battery")).status ==
        409);
    CHECK(approvals::has_pending(
        t.call("GET", "/api/v1/approvals/instances/" + std::to_string(orphan), p.bob).body,
        "review"));
}

TEST_CASE("records: the PDF export shows each signature's manifestation and the trail",
          "[app][records][print]") {
    auto t = records_app();
    const auto p = people(t);
    set_password(t, p.alice, "Alice Admin");
    set_password(t, p.carol, "Carol QA");
    // A long field (longer than a page) is printed whole, over several rows.
    std::string notes;
    for (int i = 0; i < 400; ++i) {
        notes += "批记录复核第" + std::to_string(i) + "项；";
    }
    notes += "END-OF-NOTES";
    const auto id =
        create_record(t, p.carol, "BR-PDF",
                      R"({"lot":"A7","yield":98.5,"operator":"张伟","notes":")" + notes + R"("})");
    REQUIRE(move(t, p.carol, id, "submit").status == 200);
    REQUIRE(sign(t, p.carol, id, "carol", "review").status == 201);
    REQUIRE(sign(t, p.alice, id, "alice", "approval").status == 201);
    const auto pdf = raw_call(t, "GET", path(id, "/export/pdf"), p.bob);
    INFO(pdf.body.substr(0, 400));
    REQUIRE(pdf.status == 200);
    REQUIRE(pdf.body.rfind("%PDF-", 0) == 0);
    const std::string text =
        pdf_text(pdf.body, "/tmp/riveredge-records-export-" + std::to_string(getpid()) + ".pdf");
    INFO(text);
    CHECK(text.find("BR-PDF") != std::string::npos);
    CHECK(text.find("张伟") != std::string::npos);
    // The manifestation (Part 11.50): printed name, meaning, time, reason, verification.
    CHECK(text.find("Carol QA (carol)") != std::string::npos);
    CHECK(text.find("Alice Admin (alice)") != std::string::npos);
    CHECK(text.find("approval") != std::string::npos);
    CHECK(text.find("checked against the batch") != std::string::npos);
    CHECK(text.find("valid") != std::string::npos);
    CHECK(text.find("INVALID") == std::string::npos);
    CHECK(text.find("signed") != std::string::npos);  // the trail
    CHECK(text.find("END-OF-NOTES") != std::string::npos);
    CHECK(text.find("(continued)") != std::string::npos);
    // The export is in the trail.
    const auto trail = t.call("GET", path(id, "/audit"), p.alice);
    bool audited = false;
    for (const auto& entry : trail.body.at("entries").as_array()) {
        audited =
            audited || (entry.at("action") == "exported" && entry.at("new_value").is_object() &&
                        entry.at("new_value").at("format") == "pdf");
    }
    CHECK(audited);
    CHECK(raw_call(t, "GET", path(id, "/export/pdf"), t.token("globex", "bob")).status == 404);
}

TEST_CASE("records: a PDF export that would show a character as another is refused",
          "[app][records][print]") {
    auto t = records_app();
    const auto p = people(t);
    // 𠮷 (U+20BB7) is outside the Basic Multilingual Plane: the renderer draws it as □.
    set_password(t, p.carol, "𠮷田 Carol");
    const auto id = create_record(t, p.carol, "BR-NAME");
    REQUIRE(sign(t, p.carol, id, "carol", "authorship").status == 201);
    const auto refused = raw_call(t, "GET", path(id, "/export/pdf"), p.bob);
    INFO(refused.body.substr(0, 400));
    CHECK(refused.status == 409);
    CHECK(refused.body.find("export_incomplete") != std::string::npos);
    CHECK(refused.body.find("U+20BB7") != std::string::npos);

    // A character no font has (U+0378 is unassigned) in the content: □ too.
    const auto other = create_record(t, p.carol, "BR-GLYPH", R"({"note":"a\u0378b"})");
    const auto no_glyph = raw_call(t, "GET", path(other, "/export/pdf"), p.bob);
    INFO(no_glyph.body.substr(0, 400));
    CHECK(no_glyph.status == 409);
    CHECK(no_glyph.body.find("no glyph") != std::string::npos);

    // Neither copy was made, so neither is in the trail.
    for (const auto record : {id, other}) {
        const auto trail = t.call("GET", path(record, "/audit"), p.alice);
        for (const auto& entry : trail.body.at("entries").as_array()) {
            CHECK(entry.at("action") != "exported");
        }
    }
}
