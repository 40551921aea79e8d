// The print templates' PDF core, with the real fonts from Debian's packages and poppler's tools
// reading the PDF back: Chinese text that extracts as it was written, fonts embedded as subsets
// with Identity-H, the formatters (大写金额 above all), and validation that names the field.

#include "app/command_output.hpp"
#include "core/errors.hpp"
#include "modules/print_templates/fonts.hpp"
#include "modules/print_templates/pdf_renderer.hpp"
#include "modules/print_templates/template_model.hpp"
#include "modules/print_templates/text_binding.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

namespace json = boost::json;
using namespace riveredge::print;
using namespace std::chrono_literals;

namespace {

std::string cache_dir() {
    return "/tmp/riveredge-fonts-test-" + std::to_string(getpid());
}

const std::shared_ptr<const FontChain>& fonts() {
    static const auto chain = FontChain::from_system(cache_dir());
    return chain;
}

// Runs a poppler tool on the PDF and returns what it printed.
std::string poppler(const std::string& tool, const std::string& pdf, const std::string& args = "") {
    const std::string file = "/tmp/riveredge-pdf-test-" + std::to_string(getpid()) + ".pdf";
    riveredge_test::write_file(file, pdf);
    return riveredge_test::command_output(tool + " " + args + " " + file +
                                          (tool == "pdftotext" ? " -" : ""));
}

std::string field_problems(const std::string& source) {
    try {
        parse_template(json::parse(source));
    } catch (const riveredge::core::DomainError& error) {
        return json::serialize(error.details());
    }
    return "";
}

}  // namespace

TEST_CASE("Chinese capital amounts read as a cheque writes them", "[print][unit]") {
    CHECK(chinese_capital_amount(123450) == "壹仟贰佰叁拾肆元伍角整");
    CHECK(chinese_capital_amount(100500) == "壹仟零伍元整");
    CHECK(chinese_capital_amount(10000000) == "壹拾万元整");
    CHECK(chinese_capital_amount(1005) == "壹拾元零伍分");
    CHECK(chinese_capital_amount(50) == "伍角整");
    CHECK(chinese_capital_amount(5) == "伍分");
    CHECK(chinese_capital_amount(0) == "零元整");
    CHECK(chinese_capital_amount(10000000500) == "壹亿零伍元整");
    CHECK(chinese_capital_amount(1000100) == "壹万零壹元整");
    CHECK(chinese_capital_amount(-2500) == "负贰拾伍元整");
    CHECK(chinese_capital_amount(123456789012) == "壹拾贰亿叁仟肆佰伍拾陆万柒仟捌佰玖拾元壹角贰分");
}

TEST_CASE("placeholders bind paths through formatters, and a missing one names its path",
          "[print][unit]") {
    const auto data = json::parse(
        R"({"customer":{"name":"华东精密"},"total":"1234.5","date":"2026-12-06T09:30:00Z",
            "items":[{"qty":3}],"note":null})");
    CHECK(bind_text("客户: {{customer.name}}", data) == "客户: 华东精密");
    CHECK(bind_text("{{ total | currency }}", data) == "¥1,234.50");
    CHECK(bind_text("{{total|currency:USD}}", data) == "$1,234.50");
    CHECK(bind_text("{{total | number:1}}", data) == "1,234.5");
    CHECK(bind_text("{{total | cn_amount}}", data) == "壹仟贰佰叁拾肆元伍角整");
    CHECK(bind_text("{{date | cn_date}}", data) == "2026年12月6日");
    CHECK(bind_text("{{date | date:YYYY/MM/DD HH:mm}}", data) == "2026/12/06 09:30");
    CHECK(bind_text("{{items[0].qty}} pcs", data) == "3 pcs");
    CHECK(bind_text("{{note | default:—}}", data) == "—");
    CHECK(truthy(data, "items"));
    CHECK_FALSE(truthy(data, "note"));
    try {
        bind_text("{{customer.phone}}", data);
        FAIL("a missing value must not bind");
    } catch (const BindingError& error) {
        CHECK(error.placeholder() == "customer.phone");
    }
    CHECK_THROWS_AS(bind_text("{{customer.name | cn_amount}}", data), BindingError);
    CHECK_THROWS_AS(bind_text("{{total | rot13}}", data), BindingError);
    CHECK_THROWS_AS(bind_text("{{total", data), BindingError);
}

TEST_CASE("template validation names the element and field at fault", "[print][unit]") {
    CHECK(field_problems(R"({"page":{"size":"A4"},"elements":[]})").empty());
    const auto problems = field_problems(R"({"page":{"size":"A9"},"elements":[
        {"type":"text","x":10,"y":10,"width":50,"height":10,"text":"x","font_size":500},
        {"type":"circle","x":1,"y":1,"width":1,"height":1},
        {"type":"box","x":200,"y":10,"width":50,"height":10},
        {"type":"line","x":0,"y":0,"x2":10},
        {"type":"text","x":0,"y":0,"width":10,"height":10}]})");
    INFO(problems);
    CHECK(problems.find("page.size") != std::string::npos);
    CHECK(problems.find("elements[0].font_size") != std::string::npos);
    CHECK(problems.find("elements[1].type") != std::string::npos);
    CHECK(problems.find("elements[2].width") != std::string::npos);  // beyond the page
    CHECK(problems.find("elements[3].y2") != std::string::npos);
    CHECK(problems.find("elements[4].text") != std::string::npos);
    CHECK(field_problems(R"([1,2])").find("template") != std::string::npos);
}

TEST_CASE("the CJK face comes out of its collection as a font FreeType reads", "[print][unit]") {
    const auto& chain = *fonts();
    REQUIRE(chain.faces().size() >= 1);
    CHECK(chain.faces()[0].name() == "WenQuanYi Micro Hei");
    CHECK(chain.faces()[0].covers(U'中'));
    CHECK(chain.faces()[0].covers(U'A'));
    CHECK(chain.face_for(U'中') == std::optional<std::size_t>(0));
    CHECK_FALSE(chain.face_for(U'\U00020BB7'));  // 𠮷, outside the BMP: no face has it
    CHECK_THROWS(extract_collection_face("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0,
                                         cache_dir() + "/not-a-collection.ttf"));
}

TEST_CASE("a PDF with Chinese text embeds subset fonts and extracts as written", "[print]") {
    const auto layout =
        parse_template(json::parse(R"({"page":{"width":148,"height":105},"elements":[
        {"type":"text","x":10,"y":8,"width":128,"height":10,"text":"销售订单 {{order}}","font_size":16,"align":"center"},
        {"type":"line","x":10,"y":20,"x2":138,"y2":20,"stroke_width":1},
        {"type":"text","x":10,"y":24,"width":128,"height":20,"text":"客户：{{customer}}  金额：{{total | currency}}（{{total | cn_amount}}）"},
        {"type":"box","x":10,"y":50,"width":60,"height":20,"stroke_color":"#333333","fill_color":"#eeeeee"},
        {"type":"text","x":12,"y":52,"width":56,"height":16,"text":"备注 {{note | default:无}} ①②③ {{rare}}","overflow":"shrink"},
        {"type":"text","x":10,"y":90,"width":128,"height":6,"text":"第 {{page}} 页 / 共 {{pages}} 页","font_size":8,"align":"right"},
        {"type":"text","x":100,"y":50,"width":38,"height":8,"text":"VOID","visible_if":"void"}]})"));
    PdfRenderer renderer(fonts());
    const auto pdf = renderer.render(
        layout,
        {json::parse(
             R"({"order":"SO-2026-001","customer":"华东精密机械有限公司","total":1234.5,"rare":"𠮷"})"),
         json::parse(
             R"({"order":"SO-2026-002","customer":"Acme GmbH","total":99,"rare":"x","void":true})")});
    REQUIRE(pdf.bytes.rfind("%PDF-", 0) == 0);
    CHECK(pdf.pages == 2);
    CHECK(pdf.bytes.size() < 200 * 1024);  // subsets, not the 5 MB collection

    const auto text = poppler("pdftotext", pdf.bytes, "-layout");
    INFO(text);
    CHECK(text.find("销售订单 SO-2026-001") != std::string::npos);
    CHECK(text.find("华东精密机械有限公司") != std::string::npos);
    CHECK(text.find("¥1,234.50") != std::string::npos);
    CHECK(text.find("壹仟贰佰叁拾肆元伍角整") != std::string::npos);
    CHECK(text.find("①②③") != std::string::npos);
    // pdftotext drops the narrow spaces between CJK and digits; compare without spaces.
    std::string packed = text;
    packed.erase(std::remove(packed.begin(), packed.end(), ' '), packed.end());
    CHECK(packed.find("第1页/共2页") != std::string::npos);
    CHECK(packed.find("第2页/共2页") != std::string::npos);
    CHECK(text.find("Acme GmbH") != std::string::npos);
    // visible_if: only the second page says VOID.
    const auto first_page = poppler("pdftotext", pdf.bytes, "-f 1 -l 1");
    CHECK(first_page.find("VOID") == std::string::npos);
    CHECK(text.find("VOID") != std::string::npos);

    const auto fonts_list = poppler("pdffonts", pdf.bytes);
    INFO(fonts_list);
    CHECK(fonts_list.find("WenQuanYi") != std::string::npos);
    CHECK(fonts_list.find("CID TrueType") != std::string::npos);
    CHECK(fonts_list.find("Identity-H") != std::string::npos);
    CHECK(fonts_list.find("yes yes yes") != std::string::npos);  // embedded, subset, ToUnicode

    // The character outside the Basic Multilingual Plane is named in a warning.
    bool warned = false;
    for (const auto& warning : pdf.warnings) {
        warned = warned || warning.find("U+20BB7") != std::string::npos;
    }
    CHECK(warned);
}

TEST_CASE("a missing value names the element, the item and the path", "[print][unit]") {
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"line","x":0,"y":0,"x2":10,"y2":0},
        {"type":"text","x":5,"y":5,"width":50,"height":10,"text":"{{customer.name}}"}]})"));
    PdfRenderer renderer(fonts());
    try {
        renderer.render(layout, {json::parse(R"({"customer":{"name":"x"}})"), json::parse("{}")});
        FAIL("the second item has no customer");
    } catch (const ElementBindingError& error) {
        CHECK(error.item() == 1);
        CHECK(error.element() == 1);
        CHECK(error.placeholder() == "customer.name");
    }
}

namespace {

// The amount after the first ¥ in `line` (commas dropped); nullopt when there is none.
std::optional<double> amount_in(const std::string& line) {
    const auto at = line.find("¥");
    if (at == std::string::npos) {
        return std::nullopt;
    }
    std::string digits;
    for (std::size_t i = at + std::string("¥").size(); i < line.size(); ++i) {
        if (std::isdigit(static_cast<unsigned char>(line[i])) || line[i] == '.') {
            digits.push_back(line[i]);
        } else if (line[i] != ',') {
            break;
        }
    }
    return digits.empty() ? std::nullopt : std::optional(std::stod(digits));
}

}  // namespace

TEST_CASE("a table flows over pages with its header repeated and a subtotal on each page",
          "[print]") {
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A5"},"elements":[
        {"type":"text","x":10,"y":8,"width":128,"height":8,"text":"出库单 {{number}}","font_size":14,"align":"center"},
        {"type":"table","x":10,"y":20,"width":128,"height":150,"rows":"lines","font_size":9,"header_fill":"#e0e0e0",
         "columns":[{"header":"序号","text":"{{_row}}","width":14,"align":"right"},
                    {"header":"品名","text":"精密轴承 批次 {{lot}}","width":74},
                    {"header":"金额","text":"{{amount | currency}}","width":40,"align":"right"}],
         "subtotal":{"label":"本页小计","column":2,"path":"amount","format":"currency"}},
        {"type":"text","x":10,"y":175,"width":128,"height":8,"text":"合计 {{total | currency}}","align":"right","show_on":"last"},
        {"type":"text","x":10,"y":195,"width":128,"height":6,"text":"第 {{doc_page}} 页 共 {{doc_pages}} 页","font_size":8,"align":"center"}]})"));
    json::array lines;
    for (int i = 1; i <= 45; ++i) {
        lines.push_back(
            json::object{{"lot", "L" + std::to_string(1000 + i)}, {"amount", 10.0 * i}});
    }
    json::object data{{"number", "OUT-7"}, {"lines", lines}, {"total", 10350.0}};
    PdfRenderer renderer(fonts());
    const auto pdf = renderer.render(layout, {data});
    REQUIRE(pdf.pages >= 2);
    INFO(pdf.pages << " pages");

    double total = 0;
    std::set<std::string> lots;
    for (int page = 1; page <= pdf.pages; ++page) {
        const auto text =
            poppler("pdftotext", pdf.bytes,
                    "-layout -f " + std::to_string(page) + " -l " + std::to_string(page));
        INFO(text);
        std::string packed = text;
        packed.erase(std::remove(packed.begin(), packed.end(), ' '), packed.end());
        CHECK(packed.find("品名") != std::string::npos);  // the header on every page
        CHECK(packed.find("第" + std::to_string(page) + "页共" + std::to_string(pdf.pages) +
                          "页") != std::string::npos);
        CHECK((packed.find("合计¥10,350.00") != std::string::npos) == (page == pdf.pages));
        double rows = 0;
        std::optional<double> subtotal;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);) {
            if (line.find("本页小计") != std::string::npos) {
                subtotal = amount_in(line);
            } else if (const auto lot = line.find("批次 L"); lot != std::string::npos) {
                lots.insert(line.substr(lot, 12));
                rows += amount_in(line).value_or(0);
            }
        }
        REQUIRE(subtotal);
        CHECK(*subtotal == Approx(rows));
        total += *subtotal;
    }
    CHECK(lots.size() == 45);  // every row once
    CHECK(total == Approx(10350.0));
}

TEST_CASE("a table row with a missing value names the row", "[print][unit]") {
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
         "columns":[{"header":"品名","text":"{{name}}","width":90}]}]})"));
    PdfRenderer renderer(fonts());
    try {
        renderer.render(layout, {json::parse(R"({"lines":[{"name":"a"},{"nom":"b"}]})")});
        FAIL("row 2 has no name");
    } catch (const ElementBindingError& error) {
        CHECK(error.placeholder() == "lines[1].name");
    }
    CHECK_THROWS_AS(renderer.render(layout, {json::parse(R"({"lines":"none"})")}),
                    ElementBindingError);
    CHECK_THROWS_AS(parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
         "columns":[{"header":"a","text":"{{a}}","width":80},{"header":"b","text":"{{b}}","width":20}]}]})")),
                    riveredge::core::DomainError);  // wider than the table
}

namespace {

// Draws the PDF's first page at 200 dpi and reads every barcode on it with zbar.
std::string scan_barcodes(const std::string& pdf) {
    const std::string base = "/tmp/riveredge-scan-" + std::to_string(getpid());
    riveredge_test::write_file(base + ".pdf", pdf);
    return riveredge_test::command_output("pdftoppm -r 200 -f 1 -l 1 -png -singlefile " + base +
                                          ".pdf " + base + " && zbarimg --quiet " + base + ".png");
}

// A 1×1 PNG.
constexpr const char* kPixelPng =
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+"
    "M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

}  // namespace

TEST_CASE("barcodes are drawn as vectors that a scanner reads back", "[print]") {
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"barcode","symbology":"qr","x":10,"y":10,"width":30,"height":30,"data":"{{serial}}"},
        {"type":"barcode","symbology":"code128","x":10,"y":50,"width":80,"height":15,"data":"{{order}}"},
        {"type":"barcode","symbology":"datamatrix","x":50,"y":10,"width":20,"height":20,"data":"{{serial}}"}]})"));
    PdfRenderer renderer(fonts());
    const auto pdf = renderer.render(
        layout, {json::parse(R"({"serial":"SN-2026-0001 批次A","order":"INV-0042"})")});
    const auto scanned = scan_barcodes(pdf.bytes);
    INFO(scanned);
    CHECK(scanned.find("QR-Code:SN-2026-0001 批次A") != std::string::npos);
    CHECK(scanned.find("CODE-128:INV-0042") != std::string::npos);
    // No raster inside: the symbols are paths (pdfimages lists its two header lines only).
    const auto listed = poppler("pdfimages", pdf.bytes, "-list");
    CHECK(std::count(listed.begin(), listed.end(), '\n') == 2);

    // Code 128 cannot carry Chinese: the element and its data are named.
    const auto refused = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"barcode","symbology":"code128","x":10,"y":50,"width":80,"height":15,"data":"{{order}}"}]})"));
    try {
        renderer.render(refused, {json::parse(R"({"order":"订单"})")});
        FAIL("Code 128 has no Chinese");
    } catch (const ElementBindingError& error) {
        CHECK(error.element() == 0);
        CHECK(std::string(error.what()).find("订单") != std::string::npos);
    }
}

TEST_CASE("images from data URIs are embedded, and anything else is refused by name", "[print]") {
    PdfRenderer renderer(fonts());
    const auto layout = parse_template(json::parse(
        std::string(
            R"({"page":{"size":"A6"},"elements":[{"type":"image","x":10,"y":10,"width":20,"height":10,"src":")") +
        kPixelPng +
        R"("},{"type":"image","x":10,"y":30,"width":20,"height":20,"src":"{{signature}}"}]})"));
    const auto pdf = renderer.render(layout, {json::value(json::object{{"signature", kPixelPng}})});
    const auto images = poppler("pdfimages", pdf.bytes, "-list");
    INFO(images);
    // Both placements draw the one image object (loaded once per document).
    std::size_t placements = 0;
    for (std::size_t at = images.find("  rgb "); at != std::string::npos;
         at = images.find("  rgb ", at + 1)) {
        ++placements;
    }
    CHECK(placements == 2);
    CHECK(pdf.bytes.size() < 60 * 1024);
    try {
        renderer.render(
            layout,
            {json::value(json::object{{"signature", "data:image/png;base64,bm90IGFuIGltYWdl"}})});
        FAIL("not an image");
    } catch (const ElementBindingError& error) {
        CHECK(error.element() == 1);
    }
    CHECK(
        field_problems(
            R"({"page":{"size":"A6"},"elements":[{"type":"image","x":1,"y":1,"width":5,"height":5,"src":"http://example.com/logo.png"}]})")
            .find("elements[0].src") != std::string::npos);
}

namespace {

struct GrayImage {
    int width = 0;
    int height = 0;
    std::string pixels;
};

// A binary PGM (what `pdftoppm -gray` writes).
GrayImage read_pgm(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string magic;
    GrayImage image;
    int maximum = 0;
    in >> magic >> image.width >> image.height >> maximum;
    in.get();
    REQUIRE(magic == "P5");
    REQUIRE(maximum == 255);
    image.pixels.resize(static_cast<std::size_t>(image.width) *
                        static_cast<std::size_t>(image.height));
    in.read(image.pixels.data(), static_cast<std::streamsize>(image.pixels.size()));
    REQUIRE(in.gcount() == static_cast<std::streamsize>(image.pixels.size()));
    return image;
}

}  // namespace

TEST_CASE("a rendered label matches its reference image within a tolerance", "[print]") {
    // A 60×40 mm product label: Chinese and Latin text, a box, a line, a QR code.
    const auto layout = parse_template(json::parse(R"({"page":{"width":60,"height":40},"elements":[
        {"type":"box","x":1,"y":1,"width":58,"height":38,"stroke_width":0.8},
        {"type":"text","x":3,"y":3,"width":34,"height":7,"text":"{{name}}","font_size":11},
        {"type":"text","x":3,"y":11,"width":34,"height":5,"text":"批号 Lot {{lot}}","font_size":7},
        {"type":"text","x":3,"y":16,"width":34,"height":5,"text":"数量 {{qty | number:0}} 件","font_size":7},
        {"type":"line","x":3,"y":23,"x2":37,"y2":23,"stroke_width":0.4},
        {"type":"text","x":3,"y":25,"width":34,"height":12,"text":"有效期至 {{expiry | cn_date}}","font_size":7},
        {"type":"barcode","symbology":"qr","x":39,"y":4,"width":18,"height":18,"data":"{{lot}}"}]})"));
    PdfRenderer renderer(fonts());
    const auto pdf = renderer.render(
        layout,
        {json::parse(
            R"({"name":"精密轴承 6204","lot":"L-2026-1206","qty":1200,"expiry":"2028-12-31"})")});
    const std::string base = "/tmp/riveredge-label-" + std::to_string(getpid());
    {
        std::ofstream out(base + ".pdf", std::ios::binary);
        out.write(pdf.bytes.data(), static_cast<std::streamsize>(pdf.bytes.size()));
    }
    REQUIRE(std::system(("pdftoppm -gray -r 150 -singlefile " + base + ".pdf " + base).c_str()) ==
            0);
    const auto actual = read_pgm(base + ".pgm");
    const std::string reference_path =
        std::string(PROJECT_SOURCE_DIR) + "/tests/app/fixtures/print_label_reference.pgm";
    INFO("this render: " << base << ".pgm; reference: " << reference_path);
    REQUIRE(std::filesystem::exists(reference_path));
    const auto reference = read_pgm(reference_path);
    REQUIRE(actual.width == reference.width);
    REQUIRE(actual.height == reference.height);
    double total = 0;
    std::size_t far = 0;
    std::size_t ink = 0;
    for (std::size_t i = 0; i < actual.pixels.size(); ++i) {
        const int a = static_cast<unsigned char>(actual.pixels[i]);
        const int b = static_cast<unsigned char>(reference.pixels[i]);
        total += std::abs(a - b);
        far += std::abs(a - b) > 64 ? 1 : 0;
        ink += b < 128 ? 1 : 0;
    }
    const double pixels = static_cast<double>(actual.pixels.size());
    CHECK(ink > actual.pixels.size() / 50);  // the reference is not blank
    CHECK(total / pixels < 2.0);             // mean difference, of 255
    CHECK(static_cast<double>(far) / pixels < 0.005);
}

TEST_CASE("margins move the printable area and bound where elements may go", "[print]") {
    const auto layout = parse_template(json::parse(R"({"page":{"width":100,"height":50,
        "margins":{"top":10,"left":20,"right":5,"bottom":5}},"elements":[
        {"type":"text","x":0,"y":0,"width":40,"height":8,"text":"MARGIN","font_size":10}]})"));
    PdfRenderer renderer(fonts());
    const auto pdf = renderer.render(layout, {json::parse("{}")});
    const auto boxes = poppler("pdftotext", pdf.bytes, "-bbox");
    INFO(boxes);
    const auto word = boxes.find(">MARGIN<");
    REQUIRE(word != std::string::npos);
    const auto line = boxes.substr(boxes.rfind("<word", word), word - boxes.rfind("<word", word));
    double x_min = 0;
    double y_min = 0;
    REQUIRE(std::sscanf(line.c_str(), "<word xMin=\"%lf\" yMin=\"%lf\"", &x_min, &y_min) == 2);
    CHECK(x_min == Approx(20 * 72 / 25.4).margin(1.5));  // 20 mm from the left edge
    CHECK(y_min == Approx(10 * 72 / 25.4).margin(3.0));  // 10 mm from the top
    // The printable area is 75 × 35 mm: an element may not leave it, and the margins must
    // leave room.
    CHECK(field_problems(R"({"page":{"width":100,"height":50,"margins":{"left":20,"right":5}},
        "elements":[{"type":"box","x":50,"y":0,"width":30,"height":5}]})")
              .find("elements[0].width") != std::string::npos);
    CHECK(field_problems(R"({"page":{"width":100,"height":50,"margins":60},"elements":[]})")
              .find("page.margins") != std::string::npos);
}

TEST_CASE("bad dates, huge numbers and huge images are refused, not printed wrong",
          "[print][unit]") {
    const auto data = json::parse(
        R"({"feb31":"2026-02-31","hour25":"2026-12-06T25:00","junk":"2026-12-06xyz",
            "offset":"2026-12-06T09:30:00.123+08:00","leap":"2028-02-29","big":1e60,"trillion":1e12,
            "almost":999999999999.999,"under":-999999999999.995,"top":999999999999.99})");
    CHECK_THROWS_AS(bind_text("{{feb31 | cn_date}}", data), BindingError);
    CHECK_THROWS_AS(bind_text("{{hour25 | date}}", data), BindingError);
    CHECK_THROWS_AS(bind_text("{{junk | date}}", data), BindingError);
    CHECK(bind_text("{{offset | date:YYYY-MM-DD HH:mm}}", data) == "2026-12-06 09:30");
    CHECK(bind_text("{{leap | cn_date}}", data) == "2028年2月29日");
    CHECK_THROWS_AS(bind_text("{{big | number}}", data), BindingError);
    CHECK_THROWS_AS(bind_text("{{big | currency}}", data), BindingError);
    CHECK_THROWS_AS(bind_text("{{trillion | cn_amount}}", data), BindingError);
    // Below 10^12 but 10^12 once rounded to the fen.
    CHECK_THROWS_AS(bind_text("{{almost | cn_amount}}", data), BindingError);
    CHECK_THROWS_AS(bind_text("{{under | cn_amount}}", data), BindingError);
    CHECK(bind_text("{{top | cn_amount}}", data) ==
          "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分");
    CHECK(chinese_capital_amount(99999999999999) ==
          "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分");
    CHECK_THROWS_AS(chinese_capital_amount(100000000000000), std::out_of_range);

    // A PNG that declares 20000 × 20000 pixels is refused before anything is decoded.
    std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x4e\x20\0\0\x4e\x20\x08\x06\0\0\0", 29);
    png += std::string(64, '\0');
    std::string base64;
    {
        static const char* digits =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (std::size_t i = 0; i < png.size(); i += 3) {
            const std::uint32_t n =
                (static_cast<unsigned char>(png[i]) << 16) |
                (i + 1 < png.size() ? static_cast<unsigned char>(png[i + 1]) << 8 : 0) |
                (i + 2 < png.size() ? static_cast<unsigned char>(png[i + 2]) : 0);
            base64 += digits[(n >> 18) & 63];
            base64 += digits[(n >> 12) & 63];
            base64 += i + 1 < png.size() ? digits[(n >> 6) & 63] : '=';
            base64 += i + 2 < png.size() ? digits[n & 63] : '=';
        }
    }
    const auto layout = parse_template(json::parse(
        R"({"page":{"size":"A6"},"elements":[{"type":"image","x":1,"y":1,"width":50,"height":50,"src":"{{img}}"}]})"));
    PdfRenderer renderer(fonts());
    CHECK_THROWS_AS(
        renderer.render(layout,
                        {json::value(json::object{{"img", "data:image/png;base64," + base64}})}),
        ElementBindingError);
}

TEST_CASE("a page subtotal refuses rows without a number, and tables flow on every page",
          "[print][unit]") {
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
         "columns":[{"header":"a","text":"{{name}}","width":60},{"header":"b","text":"{{amount}}","width":30}],
         "subtotal":{"label":"小计","column":1,"path":"amount","format":"number:2"}}]})"));
    PdfRenderer renderer(fonts());
    try {
        renderer.render(
            layout,
            {json::parse(
                R"({"lines":[{"name":"a","amount":1},{"name":"b","amount":"1,234.50"}]})")});
        FAIL("'1,234.50' is not a number to add");
    } catch (const ElementBindingError& error) {
        CHECK(error.placeholder() == "lines[1].amount");
    }
    CHECK(field_problems(R"({"page":{"size":"A6"},"elements":[
        {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines","show_on":"first",
         "columns":[{"header":"a","text":"{{a}}","width":90}]}]})")
              .find("elements[0].show_on") != std::string::npos);
}

TEST_CASE("a render past the page limit is refused before anything is drawn", "[print]") {
    // One row a page: the table has room for its header only.
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"text","x":5,"y":5,"width":90,"height":10,"text":"第 {{page}} 页"},
        {"type":"table","x":5,"y":20,"width":90,"height":8,"rows":"lines",
         "columns":[{"header":"a","text":"{{value}}","width":90}]}]})"));
    json::array rows(1001, json::value(1));
    PdfRenderer renderer(fonts());
    const auto started = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(renderer.render(layout, {json::value(json::object{{"lines", rows}})}),
                      Catch::Contains("1,001 pages") && Catch::Contains("at most 1,000"));
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    try {
        renderer.render(layout, {json::value(json::object{{"lines", rows}})});
        FAIL("1,001 pages");
    } catch (const RenderLimitError& error) {
        CHECK(error.field() == "pages");
    }
    rows.resize(1000);
    CHECK(renderer.render(layout, {json::value(json::object{{"lines", rows}})}).pages == 1000);
}

TEST_CASE("a PoDoFo failure comes out as a std::exception, which the callers handle",
          "[print][unit]") {
    // DejaVu Sans without its glyf table: FreeType still reads it (its characters are covered),
    // PoDoFo cannot subset it and throws its own PdfError, which is no std::exception.
    std::ifstream in(fonts()->faces().back().path(), std::ios::binary);
    std::string font((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t tables =
        (static_cast<unsigned char>(font[4]) << 8) | static_cast<unsigned char>(font[5]);
    bool renamed = false;
    for (std::size_t t = 0; t < tables; ++t) {
        if (font.compare(12 + 16 * t, 4, "glyf") == 0) {
            font[12 + 16 * t] = 'x';
            renamed = true;
        }
    }
    REQUIRE(renamed);
    const std::string path = cache_dir() + "/no-glyf.ttf";
    riveredge_test::write_file(path, font);
    std::vector<FontFace> faces;
    faces.emplace_back("No Glyf", path);
    REQUIRE(faces[0].covers(U'A'));
    PdfRenderer renderer(std::make_shared<const FontChain>(std::move(faces)));
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"text","x":5,"y":5,"width":90,"height":10,"text":"Hello {{name}}"}]})"));
    CHECK_THROWS_WITH(renderer.render(layout, {json::parse(R"({"name":"World"})")}),
                      Catch::Contains("PoDoFo"));
    // The renderer draws again afterwards (the lock was released).
    CHECK(PdfRenderer(fonts()).render(layout, {json::parse(R"({"name":"World"})")}).pages == 1);
}

TEST_CASE("a bound text stops at 64 KiB while binding, naming the placeholder it passes at",
          "[print][unit]") {
    // {{v}} 400 times over a 1 MiB value is 400 MiB when built whole: refused at the first.
    std::string repeated;
    for (int i = 0; i < 400; ++i) {
        repeated += "{{v}}";
    }
    const json::value big(json::object{{"v", std::string(std::size_t{1024} * 1024, 'x')}});
    auto started = std::chrono::steady_clock::now();
    try {
        const auto bound = bind_text(repeated, big);
        FAIL_CHECK("bound " << bound.size() << " bytes");
    } catch (const BindingError& error) {
        CHECK(error.placeholder() == "v");
        CHECK_THAT(error.what(), Catch::Contains("65,536 bytes"));
    }
    CHECK(std::chrono::steady_clock::now() - started < 2s);

    // Values that are small alone: stopped once past, naming the placeholder.
    const json::value small(json::object{{"v", std::string(1000, 'y')},
                                         {"w", std::string(1024, 'z')},
                                         {"list", json::array(20000, json::value(12345))}});
    CHECK_THROWS_AS(bind_text(repeated, small), BindingError);  // 400,000 bytes
    // Exactly 64 KiB binds; a byte more is refused, also when literal text passes it.
    std::string sixty_four;
    for (int i = 0; i < 64; ++i) {
        sixty_four += "{{w}}";
    }
    CHECK(bind_text(sixty_four, small).size() == 65536);
    try {
        const auto bound = bind_text(sixty_four + "!", small);
        FAIL_CHECK("bound " << bound.size() << " bytes");
    } catch (const BindingError& error) {
        CHECK(error.placeholder() == "w");
    }
    // A value printed as JSON (120,000 bytes here), also through upper.
    CHECK_THROWS_AS(bind_text("{{list}}", small), BindingError);
    CHECK_THROWS_AS(bind_text("{{list | upper}}", small), BindingError);
    CHECK_THROWS_AS(bind_text("{{none | default:x}}" + repeated, small), BindingError);

    // In a render: the cell of row 1 names its row and the value, before any layout.
    const auto layout =
        parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
         "columns":[{"header":"a","text":"{{a}}","width":30},{"header":"b","text":")" +
                                   repeated.substr(0, 200) + R"(","width":60}]}]})"));
    json::array rows{json::object{{"a", 1}, {"v", "short"}},
                     json::object{{"a", 2}, {"v", std::string(2000, 'q')}}};
    // The renderer is made first: the first one of a process loads the system's fonts.
    PdfRenderer renderer(fonts());
    started = std::chrono::steady_clock::now();
    try {
        const auto pdf = renderer.render(layout, {json::object{{"lines", rows}}});
        FAIL_CHECK("drew " << pdf.pages << " pages");
    } catch (const ElementBindingError& error) {
        CHECK(error.placeholder() == "lines[1].v");
        CHECK(error.element() == 0);
    }
    CHECK(std::chrono::steady_clock::now() - started < 2s);
}

namespace {

// A stock report of `count` rows, such as an ERP prints: codes, Chinese names, amounts and a
// remark; a title and "page X of Y" on every page.
std::pair<PrintTemplate, json::value> stock_report(std::size_t count, const std::string& remark) {
    auto layout = parse_template(json::parse(R"({"page":{"size":"A4"},"elements":[
        {"type":"text","x":10,"y":8,"width":190,"height":8,"text":"库存明细 {{warehouse}}","font_size":14,"align":"center"},
        {"type":"table","x":10,"y":20,"width":190,"height":255,"rows":"lines","font_size":8,
         "columns":[{"header":"序号","text":"{{_row}}","width":14,"align":"right"},
                    {"header":"物料编码","text":"{{code}}","width":26},
                    {"header":"品名规格","text":"{{name}} {{spec}}","width":50},
                    {"header":"数量","text":"{{qty | number:0}}","width":16,"align":"right"},
                    {"header":"金额","text":"{{amount | currency}}","width":24,"align":"right"},
                    {"header":"备注","text":"{{remark | default:}}","width":60}]},
        {"type":"text","x":10,"y":280,"width":190,"height":6,"text":"第 {{page}} 页 共 {{pages}} 页","font_size":8,"align":"right"}]})"));
    json::array lines;
    for (std::size_t i = 0; i < count; ++i) {
        lines.push_back(json::object{{"code", "MAT-" + std::to_string(100000 + i)},
                                     {"name", "深沟球轴承"},
                                     {"spec", "6204-2RS 20×47×14"},
                                     {"qty", static_cast<std::int64_t>(i % 97 + 1)},
                                     {"amount", 12.5 * static_cast<double>(i % 97 + 1)},
                                     {"remark", remark}});
    }
    return {std::move(layout),
            json::value(json::object{{"warehouse", "华东一号仓"}, {"lines", std::move(lines)}})};
}

}  // namespace

TEST_CASE("a render past 4 MiB of text is refused before its text is laid out", "[print]") {
    PdfRenderer renderer(fonts());
    // Table cells: 70 rows of 60,000 bytes are 4,200,000 bytes, refused before the layout.
    const auto cells = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
         "columns":[{"header":"t","text":"{{t}}","width":90}]}]})"));
    json::array rows(70, json::value(json::object{{"t", std::string(60000, 'x')}}));
    auto started = std::chrono::steady_clock::now();
    try {
        const auto pdf = renderer.render(cells, {json::object{{"lines", rows}}});
        FAIL_CHECK("drew " << pdf.pages << " pages");
    } catch (const RenderLimitError& error) {
        CHECK(error.field() == "text");
        CHECK_THAT(error.what(), Catch::Contains("4,194,304") && Catch::Contains("split it"));
    }
    CHECK(std::chrono::steady_clock::now() - started < 2s);

    // A text drawn on every page counts on every page: 15,000 bytes on 300 pages (a row a
    // page) are 4,500,000 bytes, refused once the pages are known, before drawing.
    const auto repeated = parse_template(json::parse(
        R"({"page":{"size":"A6"},"elements":[
        {"type":"text","x":5,"y":5,"width":90,"height":10,"overflow":"clip","text":")" +
        std::string(15000, 'y') + R"("},
        {"type":"table","x":5,"y":20,"width":90,"height":8,"rows":"lines",
         "columns":[{"header":"a","text":"{{value}}","width":90}]}]})"));
    json::array one_a_page(300, json::value(7));
    started = std::chrono::steady_clock::now();
    try {
        const auto pdf = renderer.render(repeated, {json::object{{"lines", one_a_page}}});
        FAIL_CHECK("drew " << pdf.pages << " pages");
    } catch (const RenderLimitError& error) {
        CHECK(error.field() == "text");
        CHECK_THAT(error.what(), Catch::Contains("4,194,304"));
    }
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    one_a_page.resize(250);  // 3,750,000 bytes
    CHECK(renderer.render(repeated, {json::object{{"lines", one_a_page}}}).pages == 250);
}

TEST_CASE("a 10,000-row report and a 64 KiB cell are drawn under the text limits", "[print]") {
    PdfRenderer renderer(fonts());
    // 10,000 rows, the most a render takes, with a remark of 33 Chinese characters: some 160
    // bytes of text a row, 1.6 MB.
    const auto [layout, data] =
        stock_report(10000, "按合同分批交货，质检合格后入库；来料批次号见随货同行单及质检报告。");
    const auto started = std::chrono::steady_clock::now();
    const auto pdf = renderer.render(layout, {data});
    INFO(pdf.pages
         << " pages in "
         << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
         << " s");
    CHECK(pdf.pages > 100);
    CHECK(pdf.pages <= 1000);
    CHECK(pdf.warnings.empty());
    const auto last =
        poppler("pdftotext", pdf.bytes,
                "-f " + std::to_string(pdf.pages) + " -l " + std::to_string(pdf.pages));
    CHECK(last.find("MAT-109999") != std::string::npos);

    // One cell of exactly 64 KiB once bound (64 × 1,024 bytes) is drawn, cut to its row.
    std::string sixty_four;
    for (int i = 0; i < 64; ++i) {
        sixty_four += "{{w}}";
    }
    const auto wide = parse_template(json::parse(R"({"page":{"size":"A6"},"elements":[
        {"type":"table","x":5,"y":5,"width":90,"height":100,"rows":"lines",
         "columns":[{"header":"w","text":")" + sixty_four +
                                                 R"(","width":90}]}]})"));
    const auto drawn = renderer.render(
        wide, {json::object{{"lines", json::array{json::object{{"w", std::string(1024, 'w')}}}}}});
    CHECK(drawn.pages == 1);
}

TEST_CASE("a shrinking text ends at the size it always did, without a layout at every size",
          "[print]") {
    PdfRenderer renderer(fonts());
    const auto boxed = [](const char* overflow, double size, double height) {
        return parse_template(json::value(
            json::object{{"page", json::object{{"size", "A4"}}},
                         {"elements", json::array{json::object{{"type", "text"},
                                                               {"x", 5},
                                                               {"y", 5},
                                                               {"width", 60},
                                                               {"height", height},
                                                               {"font_size", size},
                                                               {"overflow", overflow},
                                                               {"text", "{{t}}"}}}}}));
    };
    // Words, Chinese and paragraphs in a 60 × 40 mm box from 40 pt: the size it takes is the
    // first of 40, 36, 32.4, … (10% smaller each time) at which it is drawn whole.
    std::string text;
    for (int i = 0; i < 40; ++i) {
        text += i % 7 == 6 ? "精密轴承批次合格。\n" : "lorem ipsum dolor ";
    }
    const json::value data(json::object{{"t", text}});
    const auto shrunk = renderer.render(boxed("shrink", 40, 40), {data});
    CHECK(shrunk.warnings.empty());
    double size = 40;
    auto wrapped = renderer.render(boxed("wrap", size, 40), {data});
    while (!wrapped.warnings.empty() && size > 4) {
        size = std::max(4.0, size * 0.9);
        wrapped = renderer.render(boxed("wrap", size, 40), {data});
    }
    INFO("the text fits at " << size << " pt");
    CHECK(size < 20);
    const auto words = [](const std::string& pdf) {
        std::istringstream in(poppler("pdftotext", pdf, "-bbox"));
        std::string out;
        for (std::string line; std::getline(in, line);) {
            out += line.find("<word") != std::string::npos ? line + "\n" : "";
        }
        return out;
    };
    CHECK(words(shrunk.bytes).size() > 1000);
    CHECK(words(shrunk.bytes) == words(wrapped.bytes));

    // Four texts of 64 KiB shrinking from 200 pt: laid out at a few sizes near the one they
    // fit at, not at each of the 37 sizes down to 4 pt.
    std::string long_text;
    while (long_text.size() < 65000) {
        long_text += "lorem ipsum dolor sit amet ";
    }
    // Timed against the same texts laid out once (wrapped at 4 pt, below any size a shrink
    // ends at): a ratio, which holds on a slow or busy machine as well as a fast one. At every
    // size, the shrink took about 37 layouts.
    const auto timed = [&](const json::value& document) {
        const auto started = std::chrono::steady_clock::now();
        const auto pdf =
            renderer.render(parse_template(document), {json::object{{"t", long_text}}});
        CHECK(pdf.pages == 1);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    const auto four_texts = [&](const char* overflow, double font_size) {
        json::array elements;
        for (int i = 0; i < 4; ++i) {
            elements.push_back(json::object{{"type", "text"},
                                            {"x", 5},
                                            {"y", 5 + 70 * i},
                                            {"width", 190},
                                            {"height", 65},
                                            {"font_size", font_size},
                                            {"overflow", overflow},
                                            {"text", "{{t}}"}});
        }
        return json::value(json::object{{"page", json::object{{"size", "A4"}}},
                                        {"elements", std::move(elements)}});
    };
    const double once = timed(four_texts("wrap", 4));
    const double shrinking = timed(four_texts("shrink", 200));
    WARN("laid out once " << once << " s, shrinking from 200 pt " << shrinking << " s");
    CHECK(shrinking < 12 * once);
}
