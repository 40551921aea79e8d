// Print templates over REST against a real PostgreSQL and the embedded executor: a design
// validated with the field at fault, a preview with Chinese that poppler reads back, a durable
// render whose PDF is stored by its hash (never in a step's output), and the refusals.

#include "app/command_output.hpp"
#include "app/records_support.hpp"
#include "core/db/database.hpp"
#include "core/json/canonical.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <thread>

using namespace riveredge_test;
using namespace riveredge_test::records;

namespace {

const char* kInvoice = R"({"page":{"size":"A5","orientation":"landscape"},"elements":[
  {"type":"text","x":10,"y":8,"width":190,"height":10,"text":"销售发票 {{number}}","font_size":16,"align":"center"},
  {"type":"line","x":10,"y":20,"x2":200,"y2":20},
  {"type":"text","x":10,"y":24,"width":190,"height":8,"text":"客户：{{customer}}"},
  {"type":"text","x":10,"y":34,"width":190,"height":8,"text":"金额：{{total | currency}}（{{total | cn_amount}}）"},
  {"type":"text","x":10,"y":44,"width":190,"height":8,"text":"日期：{{date | cn_date}}"},
  {"type":"text","x":150,"y":135,"width":50,"height":6,"text":"第 {{page}} 页 共 {{pages}} 页","font_size":8,"align":"right"}]})";

// The PDF's text without spaces (pdftotext drops or adds them between CJK and digits).
std::string packed_text(const std::string& pdf) {
    auto text = riveredge_test::pdf_text(
        pdf, "/tmp/riveredge-print-test-" + std::to_string(getpid()) + ".pdf");
    text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
    return text;
}

std::string header(const inngest::detail::InboundResponse& r, const std::string& name) {
    for (const auto& [key, value] : r.headers) {
        if (key == name) {
            return value;
        }
    }
    return {};
}

std::int64_t create_template(const AppUnderTest& t,
                             const std::string& admin,
                             const std::string& key = "invoice") {
    const auto r =
        t.call("POST", "/api/v1/print/templates", admin,
               R"({"key":")" + key + R"(","name":"销售发票","template":)" + kInvoice + "}");
    INFO(json::serialize(r.body));
    REQUIRE(r.status == 201);
    return r.body.at("id").as_int64();
}

json::value wait_render(const AppUnderTest& t, const std::string& token, std::int64_t id) {
    for (int i = 0; i < 400; ++i) {
        const auto r = t.call("GET", "/api/v1/print/renders/" + std::to_string(id), token);
        if (r.status == 200 && r.body.at("status") != "queued") {
            return r.body;
        }
        std::this_thread::sleep_for(25ms);
    }
    return nullptr;
}

}  // namespace

TEST_CASE("print: a template previews with Chinese data and validation names the field",
          "[app][print]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto id = create_template(t, admin);
    create_template(t, admin, "label");
    // The list pages, sorts and filters like every list.
    auto listed = t.call("GET", "/api/v1/print/templates?sort=-key&page_size=1", bob);
    REQUIRE(listed.status == 200);
    CHECK(listed.body.at("total") == 2);
    CHECK(listed.body.at("items").as_array().size() == 1);
    CHECK(listed.body.at("items").at(0).at("key") == "label");
    listed = t.call("GET", "/api/v1/print/templates?q=VOI", bob);
    CHECK(listed.body.at("total") == 1);
    CHECK(listed.body.at("items").at(0).at("id") == id);
    CHECK(t.call("GET", "/api/v1/print/templates?sort=bogus", bob).status == 422);
    CHECK(t.call("GET", "/api/v1/print/templates", t.token("globex", "gina")).body.at("total") ==
          0);
    // Only administrators design; a bad design names the element and field.
    CHECK(t.call("POST", "/api/v1/print/templates", bob,
                 R"({"key":"x","name":"x","template":)" + std::string(kInvoice) + "}")
              .status == 403);
    const auto unnamed = t.call("POST", "/api/v1/print/templates", admin,
                                R"({"key":"","template":)" + std::string(kInvoice) + "}");
    CHECK(unnamed.status == 422);
    CHECK(unnamed.body.at("error").at("details").at("fields") ==
          boost::json::parse(R"({"key":"a non-empty string of at most 100 bytes",
                                 "name":"required"})"));
    const auto bad = t.call(
        "POST", "/api/v1/print/templates", admin,
        R"({"key":"bad","name":"bad","template":{"page":{"size":"A4"},"elements":[{"type":"text","x":10,"y":10,"width":50,"height":10,"text":"x","font_size":999}]}})");
    CHECK(bad.status == 422);
    CHECK(bad.body.at("error").at("details").at("fields").as_object().contains(
        "elements[0].font_size"));
    CHECK(t.call("POST", "/api/v1/print/templates", admin,
                 R"({"key":"invoice","name":"again","template":)" + std::string(kInvoice) + "}")
              .status == 409);

    const std::string data =
        R"({"data":{"number":"INV-2026-0042","customer":"华东精密机械有限公司","total":98765.4,"date":"2026-12-06"}})";
    const auto preview =
        raw_call(t, "POST", "/api/v1/print/templates/" + std::to_string(id) + "/preview", bob,
                 "application/json", data);
    REQUIRE(preview.status == 200);
    CHECK(header(preview, "Content-Type") == "application/pdf");
    CHECK(preview.body.rfind("%PDF-", 0) == 0);
    const auto text = packed_text(preview.body);
    INFO(text);
    CHECK(text.find("销售发票INV-2026-0042") != std::string::npos);
    CHECK(text.find("华东精密机械有限公司") != std::string::npos);
    CHECK(text.find("¥98,765.40") != std::string::npos);
    CHECK(text.find("玖万捌仟柒佰陆拾伍元肆角整") != std::string::npos);
    CHECK(text.find("2026年12月6日") != std::string::npos);

    // An unsaved design, answered as JSON for a designer that shows the warnings.
    auto json_preview = raw_call(
        t, "POST", "/api/v1/print/preview", bob, "application/json",
        R"({"template":{"page":{"width":60,"height":40},"elements":[{"type":"text","x":2,"y":2,"width":56,"height":10,"text":"{{name}}"}]},"data":{"name":"吉𠮷"}})");
    CHECK(json_preview.status == 200);
    CHECK(header(json_preview, "X-Print-Warnings") == "1");  // 𠮷 is outside the BMP
    CHECK(packed_text(json_preview.body).find("吉") != std::string::npos);

    // A missing value is a 422 naming the placeholder and the element; nothing is drawn.
    const auto missing =
        t.call("POST", "/api/v1/print/templates/" + std::to_string(id) + "/preview", bob,
               R"({"data":{"number":"1","total":1,"date":"2026-12-06"}})");
    CHECK(missing.status == 422);
    INFO(json::serialize(missing.body));
    CHECK(
        missing.body.at("error").at("details").at("fields").as_object().contains("data.customer"));
    CHECK(t.call("POST", "/api/v1/print/preview", bob, R"({"template":{"page":{}}})").status ==
          422);
    CHECK(t.call("POST", "/api/v1/print/preview", bob, "{oops").status == 400);
}

TEST_CASE("print: a render is drawn durably and its PDF is kept by its hash", "[app][print]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto id = create_template(t, admin);
    const std::string items = R"("items":[
        {"number":"INV-1","customer":"华东精密","total":100,"date":"2026-12-01"},
        {"number":"INV-2","customer":"Acme GmbH","total":2500.5,"date":"2026-12-02"}])";
    // Renders take published versions only.
    CHECK(t.call("POST", "/api/v1/print/renders", bob,
                 R"({"template_id":)" + std::to_string(id) + "," + items + "}")
              .status == 409);
    const auto published =
        t.call("POST", "/api/v1/print/templates/" + std::to_string(id) + "/publish", admin);
    REQUIRE(published.status == 201);
    CHECK(published.body.at("version") == 1);
    CHECK(
        t.call("POST", "/api/v1/print/templates/" + std::to_string(id) + "/publish", bob).status ==
        403);
    // A draft that jsonb keeps with a whole number past 2^53 (1e16 comes back as one) has no
    // canonical form to hash: a 422 naming the template, not a 500.
    const auto huge = t.call("POST", "/api/v1/print/templates", admin,
                             R"({"key":"huge","name":"x","template":{"page":{"width":60,)"
                             R"("height":40,"note":1e16},"elements":[]}})");
    INFO(json::serialize(huge.body));
    REQUIRE(huge.status == 201);
    const auto unhashable = t.call(
        "POST",
        "/api/v1/print/templates/" + std::to_string(huge.body.at("id").as_int64()) + "/publish",
        admin);
    CHECK(unhashable.status == 422);
    CHECK(unhashable.body.at("error").at("details").at("fields").as_object().contains("template"));

    // A missing value in the second item: 422 naming it, and no render is recorded.
    const auto refused = t.call(
        "POST", "/api/v1/print/renders", bob,
        R"({"template_id":)" + std::to_string(id) +
            R"(,"items":[{"number":"1","customer":"x","total":1,"date":"2026-12-01"},{"number":"2","total":1,"date":"2026-12-01"}]})");
    CHECK(refused.status == 422);
    CHECK(refused.body.at("error").at("details").at("fields").as_object().contains(
        "items[1].customer"));

    const auto asked = t.call("POST", "/api/v1/print/renders", bob,
                              R"({"template_id":)" + std::to_string(id) + "," + items +
                                  R"(,"idempotency_key":"batch-7"})");
    INFO(json::serialize(asked.body));
    REQUIRE(asked.status == 202);
    const auto render_id = asked.body.at("id").as_int64();
    CHECK(render_id == 1);  // the refused request recorded nothing
    // The same key for other items: refused.
    CHECK(
        t.call(
             "POST", "/api/v1/print/renders", bob,
             R"({"template_id":)" + std::to_string(id) +
                 R"(,"items":[{"number":"X","customer":"x","total":1,"date":"2026-12-01"}],"idempotency_key":"batch-7"})")
            .status == 409);
    // The same key again: the same render.
    CHECK(t.call("POST", "/api/v1/print/renders", bob,
                 R"({"template_id":)" + std::to_string(id) + "," + items +
                     R"(,"idempotency_key":"batch-7"})")
              .body.at("id") == render_id);
    const auto done = wait_render(t, bob, render_id);
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "done");
    CHECK(done.at("pages") == 2);

    const auto pdf =
        raw_call(t, "GET", "/api/v1/print/renders/" + std::to_string(render_id) + "/pdf", bob);
    REQUIRE(pdf.status == 200);
    CHECK(header(pdf, "X-Content-SHA256") == riveredge::core::sha256_hex(pdf.body));
    CHECK(done.at("output_sha256") == json::value(riveredge::core::sha256_hex(pdf.body)));
    const auto text = packed_text(pdf.body);
    CHECK(text.find("销售发票INV-1") != std::string::npos);
    CHECK(text.find("AcmeGmbH") != std::string::npos);
    CHECK(text.find("第2页共2页") != std::string::npos);
    // The run's output names the PDF; it never carries it.
    REQUIRE(t.app().wait_settled(20s));
    const auto runs = t.app().executor()->runs("riveredge-flow-print-render");
    REQUIRE(runs.size() == 1);
    const auto output = json::serialize(runs[0].output);
    CHECK(output.find("%PDF") == std::string::npos);
    CHECK(output.find(riveredge::core::sha256_hex(pdf.body)) != std::string::npos);
    // The step run again (as when its answer was lost) answers what the first run answered.
    const auto [again_status, again] =
        t.replay(t.call_again_at("riveredge-flow-print-render", "render"));
    REQUIRE(again_status == 206);
    INFO(json::serialize(again));
    CHECK(again.as_array().at(0).at("data") == runs[0].output);

    // A version number past the range of versions is refused, not read as another version
    // (4294967297 is 1 modulo 2^32).
    const std::string preview = "/api/v1/print/templates/" + std::to_string(id) + "/preview";
    const std::string sample =
        R"("data":{"number":"1","customer":"x","total":1,"date":"2026-12-01"})";
    CHECK(t.call("POST", preview, bob, R"({"version":1,)" + sample + "}").status == 200);
    CHECK(t.call("POST", preview, bob, R"({"version":4294967297,)" + sample + "}").status == 422);
    CHECK(t.call("POST", preview, bob, R"({"version":0,)" + sample + "}").status == 422);

    // Another tenant sees none of it.
    const auto globex = t.token("globex", "bob");
    CHECK(t.call("GET", "/api/v1/print/templates/" + std::to_string(id), globex).status == 404);
    CHECK(t.call("GET", "/api/v1/print/renders/" + std::to_string(render_id), globex).status ==
          404);
    CHECK(raw_call(t, "GET", "/api/v1/print/renders/" + std::to_string(render_id) + "/pdf", globex)
              .status == 404);
    CHECK(t.call("POST", "/api/v1/print/renders", globex,
                 R"({"template_id":)" + std::to_string(id) + "," + items + "}")
              .status == 404);

    // The same request again under its key is the same render, however its numbers are written:
    // 1e2 comes back from the database as 100.
    const std::string hundred =
        R"({"template_id":)" + std::to_string(id) +
        R"(,"items":[{"number":"INV-3","customer":"x","total":1e2,"date":"2026-12-03"}],)"
        R"("idempotency_key":"batch-8"})";
    const auto first = t.call("POST", "/api/v1/print/renders", bob, hundred);
    REQUIRE(first.status == 202);
    const auto second = t.call("POST", "/api/v1/print/renders", bob, hundred);
    INFO(json::serialize(second.body));
    CHECK(second.status == 202);
    CHECK(second.body.at("id") == first.body.at("id"));
    // Other items under that key are still refused.
    CHECK(t.call("POST", "/api/v1/print/renders", bob,
                 R"({"template_id":)" + std::to_string(id) +
                     R"(,"items":[{"number":"INV-3","customer":"x","total":100.5,)"
                     R"("date":"2026-12-03"}],"idempotency_key":"batch-8"})")
              .status == 409);
}

TEST_CASE("print: a render whose run fails through its retries ends failed, not queued",
          "[app][print]") {
    auto clock = std::make_shared<inngest::local::ManualClock>();
    AppUnderTest t(AppUnderTestOptions{.clock = clock});
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto id = create_template(t, admin);
    REQUIRE(t.call("POST", "/api/v1/print/templates/" + std::to_string(id) + "/publish", admin)
                .status == 201);
    // The database refuses every render's output (standing in for a step that fails each
    // attempt: persistent database errors, or bad_alloc, which the step rethrows).
    {
        riveredge::core::db::Pool pool(*t.settings().migration_database_url, 1);
        riveredge::core::db::transact(pool, std::nullopt, [](riveredge::core::db::Transaction& tx) {
            tx.exec(
                "CREATE FUNCTION refuse_output() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'storing is refused'; END $$");
            tx.exec(
                "CREATE TRIGGER refuse_output BEFORE UPDATE ON print_renders FOR EACH ROW WHEN "
                "(NEW.status = 'done') EXECUTE FUNCTION refuse_output()");
        });
    }
    const auto asked =
        t.call("POST", "/api/v1/print/renders", admin,
               R"({"template_id":)" + std::to_string(id) +
                   R"(,"data":{"number":"INV-9","customer":"x","total":1,"date":"2026-12-01"}})");
    REQUIRE(asked.status == 202);
    const auto path = "/api/v1/print/renders/" + std::to_string(asked.body.at("id").as_int64());
    // The run retries its step on the app's clock until it fails through its retries.
    const auto ended = [&] {
        const auto runs = t.app().executor()->runs("riveredge-flow-print-render");
        return runs.size() == 1 && runs[0].status == inngest::local::RunStatus::kFailed;
    };
    for (int i = 0; i < 40 && !ended(); ++i) {
        REQUIRE(t.app().executor()->wait_idle(10s));
        clock->advance(70s);
        t.app().executor()->poke();
        std::this_thread::sleep_for(100ms);
    }
    REQUIRE(ended());
    REQUIRE(t.app().wait_settled(20s));
    const auto render = t.call("GET", path, admin).body;
    INFO(json::serialize(render));
    CHECK(render.at("status") == "failed");
    CHECK(render.at("error").as_string().find("every attempt") != json::string::npos);
    CHECK(render.at("error").as_string().find("refused") == json::string::npos);  // log only
}

TEST_CASE("print: the designer gets a page of the preview as a PNG", "[app][print]") {
    AppUnderTest t;
    const auto bob = t.token("acme", "bob");
    const std::string body =
        R"({"template":{"page":{"width":60,"height":40},"elements":[{"type":"text","x":2,"y":2,"width":56,"height":10,"text":"标签 {{n}}"}]},"items":[{"n":1},{"n":2}]})";
    const auto png = raw_call(t, "POST", "/api/v1/print/preview?format=png&page=2&dpi=72", bob,
                              "application/json", body);
    REQUIRE(png.status == 200);
    CHECK(header(png, "Content-Type") == "image/png");
    CHECK(header(png, "X-Pages") == "2");
    REQUIRE(png.body.size() > 8);
    CHECK(png.body.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
    // 60 mm at 72 dpi is 170 pixels wide (the IHDR width, big-endian at byte 16).
    const auto width =
        (static_cast<unsigned char>(png.body[18]) << 8) | static_cast<unsigned char>(png.body[19]);
    CHECK(width == 170);
    CHECK(raw_call(t, "POST", "/api/v1/print/preview?format=png&page=3", bob, "application/json",
                   body)
              .status == 404);
    CHECK(raw_call(t, "POST", "/api/v1/print/preview?format=gif", bob, "application/json", body)
              .status == 422);
    CHECK(raw_call(t, "POST", "/api/v1/print/preview?format=png&dpi=5000", bob, "application/json",
                   body)
              .status == 422);
}

namespace {

// A table of one column; each row of `lines` is a number.
const char* kLines = R"({"page":{"size":"A4"},"elements":[
  {"type":"table","x":10,"y":10,"width":100,"height":250,"rows":"lines","font_size":6,
   "columns":[{"header":"n","text":"{{_row}}: {{value}}","width":100}]}]})";

// `count` rows for kLines.
std::string lines(std::size_t count) {
    std::string out = R"({"lines":[)";
    for (std::size_t i = 0; i < count; ++i) {
        out += i == 0 ? "7" : ",7";
    }
    return out + "]}";
}

}  // namespace

TEST_CASE("print: a preview or render past the table-row limit is refused before drawing",
          "[app][print]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    // 10,001 rows: a 422 naming the rows, not a PDF of some 180 pages drawn under the lock every
    // tenant's previews and renders share.
    const auto started = std::chrono::steady_clock::now();
    const auto refused =
        t.call("POST", "/api/v1/print/preview", bob,
               std::string(R"({"template":)") + kLines + R"(,"data":)" + lines(10001) + "}");
    INFO(json::serialize(refused.body).substr(0, 400));  // not a whole PDF
    CHECK(refused.status == 422);
    CHECK(refused.body.at("error").at("details").at("fields").as_object().contains("data.lines"));
    CHECK(std::chrono::steady_clock::now() - started < 5s);

    // A durable render is refused when asked for, and records nothing.
    const auto created =
        t.call("POST", "/api/v1/print/templates", admin,
               std::string(R"({"key":"lines","name":"lines","template":)") + kLines + "}");
    REQUIRE(created.status == 201);
    const auto id = std::to_string(created.body.at("id").as_int64());
    REQUIRE(t.call("POST", "/api/v1/print/templates/" + id + "/publish", admin).status == 201);
    // Over several items: the rows count together.
    const auto over = t.call(
        "POST", "/api/v1/print/renders", bob,
        R"({"template_id":)" + id + R"(,"items":[)" + lines(5000) + "," + lines(5001) + "]}");
    INFO(json::serialize(over.body).substr(0, 400));
    CHECK(over.status == 422);
    CHECK(over.body.at("error").at("details").at("fields").as_object().contains("items[1].lines"));
    const auto fine = t.call("POST", "/api/v1/print/renders", bob,
                             R"({"template_id":)" + id + R"(,"data":)" + lines(3) + "}");
    REQUIRE(fine.status == 202);
    CHECK(fine.body.at("id") == 1);  // the refused request recorded nothing

    // Past 1,000 pages (a row a page here): a preview is refused before drawing; a durable
    // render ends failed naming why, on its first attempt (the same items fail the same way).
    const std::string row_a_page = R"({"page":{"size":"A6"},"elements":[
      {"type":"table","x":5,"y":20,"width":90,"height":8,"rows":"lines",
       "columns":[{"header":"n","text":"{{value}}","width":90}]}]})";
    const auto pages = t.call(
        "POST", "/api/v1/print/preview", bob,
        R"({"template":)" + row_a_page + R"(,"items":[)" + lines(501) + "," + lines(501) + "]}");
    INFO(json::serialize(pages.body).substr(0, 400));
    CHECK(pages.status == 422);
    CHECK(pages.body.at("error").at("details").at("fields").as_object().contains("pages"));
    const auto tall = t.call("POST", "/api/v1/print/templates", admin,
                             R"({"key":"tall","name":"tall","template":)" + row_a_page + "}");
    REQUIRE(tall.status == 201);
    const auto tall_id = std::to_string(tall.body.at("id").as_int64());
    REQUIRE(t.call("POST", "/api/v1/print/templates/" + tall_id + "/publish", admin).status == 201);
    const auto asked = t.call(
        "POST", "/api/v1/print/renders", bob,
        R"({"template_id":)" + tall_id + R"(,"items":[)" + lines(501) + "," + lines(501) + "]}");
    REQUIRE(asked.status == 202);
    const auto ended = wait_render(t, bob, asked.body.at("id").as_int64());
    INFO(json::serialize(ended));
    REQUIRE(ended.is_object());
    CHECK(ended.at("status") == "failed");
    CHECK(ended.at("error").as_string().find("1,002 pages") != json::string::npos);
}

TEST_CASE("print: a text past 64 KiB or a render past 4 MiB of text is refused, naming it",
          "[app][print]") {
    AppUnderTest t;
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    // Whether a 422 names `field`.
    const auto names = [](const auto& response, const char* field) {
        return response.body.is_object() && response.body.as_object().contains("error") &&
               response.body.at("error").at("details").at("fields").as_object().contains(field);
    };
    // A cell of {{v}} 40 times over a 2,000-byte value is 80,000 bytes once bound: a 422
    // naming the row's value and the element, not a PDF.
    std::string repeated;
    for (int i = 0; i < 40; ++i) {
        repeated += "{{v}}";
    }
    const std::string cell = R"({"page":{"size":"A6"},"elements":[
      {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
       "columns":[{"header":"v","text":")" +
                             repeated + R"(","width":90}]}]})";
    auto started = std::chrono::steady_clock::now();
    const auto long_cell = t.call("POST", "/api/v1/print/preview", bob,
                                  R"({"template":)" + cell + R"(,"data":{"lines":[{"v":")" +
                                      std::string(2000, 'v') + R"("}]}})");
    INFO(json::serialize(long_cell.body).substr(0, 400));
    CHECK(long_cell.status == 422);
    CHECK(names(long_cell, "data.lines[0].v"));
    CHECK(std::chrono::steady_clock::now() - started < 2s);

    // 2 × 35 rows of 60,000 bytes: 4,200,000 bytes of cells. A preview and a render request
    // are refused naming the text, before anything is laid out; nothing is recorded.
    const std::string cells = R"({"page":{"size":"A6"},"elements":[
      {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
       "columns":[{"header":"t","text":"{{t}}","width":90}]}]})";
    std::string rows = R"({"lines":[)";
    for (int i = 0; i < 35; ++i) {
        rows += (i == 0 ? R"({"t":")" : R"(,{"t":")") + std::string(60000, 'x') + R"("})";
    }
    rows += "]}";
    started = std::chrono::steady_clock::now();
    const auto preview =
        t.call("POST", "/api/v1/print/preview", bob,
               R"({"template":)" + cells + R"(,"items":[)" + rows + "," + rows + "]}");
    INFO(json::serialize(preview.body).substr(0, 400));
    CHECK(preview.status == 422);
    CHECK(names(preview, "text"));
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    const auto created = t.call("POST", "/api/v1/print/templates", admin,
                                R"({"key":"cells","name":"cells","template":)" + cells + "}");
    REQUIRE(created.status == 201);
    const auto id = std::to_string(created.body.at("id").as_int64());
    REQUIRE(t.call("POST", "/api/v1/print/templates/" + id + "/publish", admin).status == 201);
    const auto over =
        t.call("POST", "/api/v1/print/renders", bob,
               R"({"template_id":)" + id + R"(,"items":[)" + rows + "," + rows + "]}");
    INFO(json::serialize(over.body).substr(0, 400));
    CHECK(over.status == 422);
    CHECK(names(over, "text"));
    CHECK(json::serialize(over.body).find("4,194,304") != std::string::npos);

    // A text on every page counts on every page, which is known once the table is cut into
    // pages: 15,000 bytes on 300 pages (a row a page). The request is taken; the render ends
    // failed naming the text, on its first attempt.
    const std::string every_page = R"({"page":{"size":"A6"},"elements":[
      {"type":"text","x":5,"y":5,"width":90,"height":10,"overflow":"clip","text":")" +
                                   std::string(15000, 'y') + R"("},
      {"type":"table","x":5,"y":20,"width":90,"height":8,"rows":"lines",
       "columns":[{"header":"n","text":"{{value}}","width":90}]}]})";
    const auto tall = t.call("POST", "/api/v1/print/templates", admin,
                             R"({"key":"tall","name":"tall","template":)" + every_page + "}");
    REQUIRE(tall.status == 201);
    const auto tall_id = std::to_string(tall.body.at("id").as_int64());
    REQUIRE(t.call("POST", "/api/v1/print/templates/" + tall_id + "/publish", admin).status == 201);
    const auto asked = t.call("POST", "/api/v1/print/renders", bob,
                              R"({"template_id":)" + tall_id + R"(,"data":)" + lines(300) + "}");
    REQUIRE(asked.status == 202);
    CHECK(asked.body.at("id") == 1);  // the refused request recorded nothing
    const auto ended = wait_render(t, bob, asked.body.at("id").as_int64());
    INFO(json::serialize(ended));
    REQUIRE(ended.is_object());
    CHECK(ended.at("status") == "failed");
    CHECK(ended.at("error").as_string().find("bytes of text") != json::string::npos);
    CHECK(ended.at("error").as_string().find("4,194,304") != json::string::npos);
}
