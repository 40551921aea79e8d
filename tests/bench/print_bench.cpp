// Pages per second and PDF size for a one-page A4 invoice with a 20-row table, through the whole
// path a render takes: parse the design, bind the data, lay the table out, draw with subset CJK
// fonts and a QR code, write the PDF.

#include "modules/print_templates/fonts.hpp"
#include "modules/print_templates/pdf_renderer.hpp"
#include "modules/print_templates/template_model.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <unistd.h>

namespace json = boost::json;
using namespace riveredge::print;

int main(int argc, char** argv) {
    const int documents = argc > 1 ? std::atoi(argv[1]) : 200;
    const auto layout = parse_template(json::parse(R"({"page":{"size":"A4"},"elements":[
      {"type":"text","x":15,"y":12,"width":150,"height":12,"text":"销售发票 {{number}}","font_size":18},
      {"type":"barcode","symbology":"qr","x":170,"y":8,"width":25,"height":25,"data":"{{number}}"},
      {"type":"text","x":15,"y":28,"width":150,"height":8,"text":"客户：{{customer}}　日期：{{date | cn_date}}"},
      {"type":"table","x":15,"y":40,"width":180,"height":200,"rows":"rows","header_fill":"#e6e6e6",
       "columns":[{"header":"序号","text":"{{_row}}","width":15,"align":"right"},
                  {"header":"品名","text":"{{name}}","width":95},
                  {"header":"数量","text":"{{qty | number:0}}","width":25,"align":"right"},
                  {"header":"金额","text":"{{amount | currency}}","width":45,"align":"right"}]},
      {"type":"text","x":15,"y":250,"width":180,"height":8,"align":"right",
       "text":"合计：{{total | currency}}（{{total | cn_amount}}）"},
      {"type":"text","x":15,"y":285,"width":180,"height":6,"font_size":8,"align":"center",
       "text":"第 {{page}} 页 共 {{pages}} 页"}]})"));
    json::array rows;
    for (int i = 0; i < 20; ++i) {
        rows.push_back(json::object{{"name", "精密轴承 6204-2RS 第" + std::to_string(i + 1) + "批"},
                                    {"qty", 100 * (i + 1)},
                                    {"amount", 1234.5 * (i + 1)}});
    }
    const json::value data = json::object{{"number", "INV-2026-0042"},
                                          {"customer", "华东精密机械有限公司"},
                                          {"date", "2026-12-06"},
                                          {"rows", std::move(rows)},
                                          {"total", 259245.0}};
    PdfRenderer renderer(
        FontChain::from_system("/tmp/riveredge-fonts-" + std::to_string(getuid())));
    const auto first = renderer.render(layout, {data});  // warm-up: fonts loaded once per process
    if (first.pages != 1) {
        std::fprintf(stderr, "the invoice should fit one page, got %d\n", first.pages);
        return 1;
    }
    std::size_t bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < documents; ++i) {
        bytes = renderer.render(layout, {data}).bytes.size();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The same invoice 50 times in one render (a batch): the fonts are subset once per PDF.
    const std::vector<json::value> batch(50, data);
    const auto batch_start = std::chrono::steady_clock::now();
    const auto batched = renderer.render(layout, batch);
    const double batch_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - batch_start).count();
    std::printf(
        "{\"documents\":%d,\"pages_per_second\":%.1f,\"ms_per_page\":%.2f,\"pdf_bytes\":%zu,"
        "\"batch_pages\":%d,\"batch_pages_per_second\":%.1f,\"batch_pdf_bytes\":%zu}\n",
        documents, documents / seconds, 1000 * seconds / documents, bytes, batched.pages,
        batched.pages / batch_seconds, batched.bytes.size());
    return 0;
}
