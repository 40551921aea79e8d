// Pages per second and PDF size for a one-page A4 invoice with a 20-row item list (rows drawn as
// positioned text until the table element exists), through the whole path a render takes:
// parse the design, bind the data, lay out, draw with subset CJK fonts, write the PDF.

#include "modules/print_templates/fonts.hpp"
#include "modules/print_templates/pdf_renderer.hpp"
#include "modules/print_templates/template_model.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace json = boost::json;
using namespace riveredge::print;

int main(int argc, char** argv) {
    const int documents = argc > 1 ? std::atoi(argv[1]) : 200;
    json::array elements{
        json::parse(
            R"({"type":"text","x":15,"y":12,"width":180,"height":12,"text":"销售发票 {{number}}","font_size":18,"align":"center"})"),
        json::parse(
            R"({"type":"text","x":15,"y":28,"width":180,"height":8,"text":"客户：{{customer}}　日期：{{date | cn_date}}"})"),
        json::parse(R"({"type":"line","x":15,"y":38,"x2":195,"y2":38})")};
    json::object data{
        {"number", "INV-2026-0042"}, {"customer", "华东精密机械有限公司"}, {"date", "2026-12-06"}};
    json::array rows;
    for (int i = 0; i < 20; ++i) {
        const double y = 42 + i * 9.5;
        const std::string row = "rows[" + std::to_string(i) + "]";
        elements.push_back(json::object{{"type", "text"},
                                        {"x", 15},
                                        {"y", y},
                                        {"width", 120},
                                        {"height", 8},
                                        {"text", "{{" + row + ".name}}"}});
        elements.push_back(json::object{{"type", "text"},
                                        {"x", 140},
                                        {"y", y},
                                        {"width", 55},
                                        {"height", 8},
                                        {"text", "{{" + row + ".amount | currency}}"},
                                        {"align", "right"}});
        rows.push_back(json::object{{"name", "精密轴承 6204-2RS 第" + std::to_string(i + 1) + "批"},
                                    {"amount", 1234.5 * (i + 1)}});
    }
    elements.push_back(json::parse(
        R"({"type":"text","x":15,"y":240,"width":180,"height":8,"text":"合计：{{total | currency}}（{{total | cn_amount}}）","align":"right"})"));
    data["rows"] = std::move(rows);
    data["total"] = 259245.0;
    const auto layout = parse_template(
        json::object{{"page", json::object{{"size", "A4"}}}, {"elements", std::move(elements)}});
    PdfRenderer renderer(
        FontChain::from_system("/tmp/riveredge-fonts-" + std::to_string(getuid())));
    renderer.render(layout, {data});  // warm-up: fonts loaded once per process
    std::size_t bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < documents; ++i) {
        bytes = renderer.render(layout, {data}).bytes.size();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "{\"documents\":%d,\"pages_per_second\":%.1f,\"ms_per_page\":%.2f,\"pdf_bytes\":%zu}\n",
        documents, documents / seconds, 1000 * seconds / documents, bytes);
    return 0;
}
