// HTTP in and out for print templates: parse, call the service, write JSON or the PDF.

#include "core/errors.hpp"
#include "core/found.hpp"
#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "core/text/base64.hpp"
#include "core/text/integers.hpp"
#include "modules/print_templates/png_preview.hpp"
#include "modules/print_templates/service.hpp"

namespace riveredge::print {
namespace {

namespace json = boost::json;
using enum core::Access;
using core::Call;
using inngest::HttpResponse;

constexpr const char* kTemplateSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"key":{"type":"string"},"name":{"type":"string"},
    "template":{"type":"object","description":"page {size|width,height (mm), orientation} and elements [{type text|line|box, x, y, width, height (mm), text with {{path | formatter}}, font_size, align, overflow wrap|shrink|clip, stroke_width, stroke_color, fill_color, visible_if}]"},
    "latest_version":{"type":"integer"},"created_by":{"type":"string"},
    "created_at":{"type":"string","format":"date-time"},"updated_at":{"type":"string","format":"date-time"}}})";

constexpr const char* kRenderSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"template_id":{"type":"integer"},"version":{"type":"integer"},
    "items":{"type":"integer"},"status":{"enum":["queued","done","failed"]},
    "output_sha256":{"type":"string","nullable":true},"pages":{"type":"integer","nullable":true},
    "warnings":{"type":"array","items":{"type":"string"}},"error":{"type":"string","nullable":true},
    "requested_by":{"type":"string"},"created_at":{"type":"string","format":"date-time"},
    "finished_at":{"type":"string","format":"date-time","nullable":true}}})";

constexpr const char* kPreviewRequest = R"({"type":"object","properties":{
    "template":{"type":"object"},"version":{"type":"integer"},"data":{"type":"object"},
    "items":{"type":"array","items":{"type":"object"},"maxItems":500}}})";

// A PDF or a page image, with how many pages and warnings the drawing had.
HttpResponse drawn_response(const std::string& content_type,
                            std::string bytes,
                            int pages,
                            std::size_t warnings) {
    return core::bytes_response(
        content_type, std::move(bytes),
        {{"X-Pages", std::to_string(pages)}, {"X-Print-Warnings", std::to_string(warnings)}});
}

// The PDF itself; `?format=png&page=N&dpi=D` one page as a PNG for the designer; or (Accept:
// application/json) its pages, warnings and bytes in base64 for a designer that shows the
// warnings beside the preview.
HttpResponse preview_response(const Call& call, RenderedPdf pdf) {
    if (const auto format = call.query("format"); format && *format != "pdf") {
        if (*format != "png") {
            throw core::DomainError::validation(json::object{{"format", "pdf or png"}});
        }
        const auto number = [&](const char* name, int fallback, int low, int high) {
            const auto found = call.query(name);
            if (!found) {
                return fallback;
            }
            const auto value = core::parse_integer_in<int>(*found, low, high);
            if (!value) {
                throw core::DomainError::validation(
                    json::object{{name, "an integer from " + std::to_string(low) + " to " +
                                            std::to_string(high)}});
            }
            return *value;
        };
        const int page = number("page", 1, 1, 100000);
        const int dpi = number("dpi", 96, 36, 300);
        // A page may be up to 2 m square: the raster is capped, not the request refused blindly.
        const double pixels = (pdf.width_mm / 25.4 * dpi) * (pdf.height_mm / 25.4 * dpi);
        if (pixels > 40e6) {
            throw core::DomainError::validation(
                json::object{{"dpi", "this page at " + std::to_string(dpi) +
                                         " dpi would be over 40 megapixels; ask for a lower dpi"}});
        }
        auto png = core::found(pdf_page_png(pdf.bytes, page, dpi),
                               "page " + std::to_string(page) + " (the preview has " +
                                   std::to_string(pdf.pages) + ")");
        return drawn_response("image/png", std::move(png), pdf.pages, pdf.warnings.size());
    }
    if (call.request.header("Accept").find("application/json") != std::string_view::npos) {
        json::array warnings(pdf.warnings.begin(), pdf.warnings.end());
        return core::json_response(
            200, json::object{{"pages", pdf.pages},
                              {"size", static_cast<std::int64_t>(pdf.bytes.size())},
                              {"warnings", std::move(warnings)},
                              {"pdf_base64", core::to_base64(pdf.bytes)}});
    }
    const auto warnings = pdf.warnings.size();
    return drawn_response("application/pdf", std::move(pdf.bytes), pdf.pages, warnings);
}

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router
        .post("/api/v1/print/templates", kAdmin,
              "Create a print template (its draft; validation names "
              "the element and field at fault)")
        .accepts(R"({"type":"object","required":["key","name","template"],
        "properties":{"key":{"type":"string"},"name":{"type":"string"},"template":{"type":"object"}}})")
        .returns(kTemplateSchema)
        .status(201)
        .to([&service](Call& call) { return service.create(call.who(), call.body()).to_json(); });
    router.get("/api/v1/print/templates", kUser, "The tenant's print templates")
        .lists(kTemplateList)
        .to([&service](Call& call) {
            return call.list(service.repository().list(call.tenant(), call.paging()));
        });
    router
        .post("/api/v1/print/preview", kUser,
              "Draw an unsaved design over sample data at once: the "
              "PDF, one page as a PNG (?format=png&page=1&dpi=96), "
              "or with Accept: application/json its pages, warnings "
              "and base64 bytes")
        .accepts(kPreviewRequest)
        .to([&service](Call& call) {
            return preview_response(call,
                                    service.preview(call.tenant(), std::nullopt, call.body()));
        });
    router
        .post("/api/v1/print/renders", kUser,
              "Render a published version over data items, durably "
              "(202; the print-render function draws it)")
        .accepts(R"({"type":"object","required":["template_id"],
        "properties":{"template_id":{"type":"integer"},"version":{"type":"integer"},
        "data":{"type":"object"},"items":{"type":"array","items":{"type":"object"},"maxItems":500},
        "idempotency_key":{"type":"string"}}})")
        .returns(kRenderSchema)
        .status(202)
        .to([&service](Call& call) { return service.request_render(call.who(), call.body()); });
    router
        .get("/api/v1/print/renders/{id}", kUser,
             "A render's status, pages, warnings and output hash")
        .returns(kRenderSchema)
        .to([&service](Call& call) { return service.render_status(call.tenant(), call.id()); });
    router
        .get("/api/v1/print/renders/{id}/pdf", kUser,
             "The PDF a render produced (409 until it is done)")
        .to([&service](Call& call) {
            auto output = service.render_output(call.tenant(), call.id());
            auto response =
                drawn_response("application/pdf", std::move(output.bytes), output.pages, 0);
            response.headers.emplace_back("X-Content-SHA256", output.sha256);
            return response;
        });
    router.get("/api/v1/print/templates/{id}", kUser, "A print template with its draft")
        .returns(kTemplateSchema)
        .to([&service](Call& call) { return service.get(call.tenant(), call.id()).to_json(); });
    router.put("/api/v1/print/templates/{id}", kAdmin, "Replace the draft (validated)")
        .accepts(R"({"type":"object","required":["template"],
        "properties":{"name":{"type":"string"},"template":{"type":"object"}}})")
        .returns(kTemplateSchema)
        .to([&service](Call& call) {
            return service.update(call.who(), call.id(), call.body()).to_json();
        });
    router
        .post("/api/v1/print/templates/{id}/publish", kAdmin,
              "The draft becomes the next immutable version")
        .status(201)
        .to([&service](Call& call) { return service.publish(call.who(), call.id()); });
    router
        .post("/api/v1/print/templates/{id}/preview", kUser,
              "Draw the draft (or `version`) over sample data at once")
        .accepts(kPreviewRequest)
        .to([&service](Call& call) {
            return preview_response(
                call, service.preview(call.tenant(), call.id(), call.body_or_empty()));
        });
    core::add_version_routes(router, {"/api/v1/print/templates/{id}", "print template"}, service);
}

}  // namespace riveredge::print
