#include "modules/print_templates/png_preview.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include <poppler-document.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>
#include <unistd.h>

namespace riveredge::print {

std::optional<std::string> pdf_page_png(const std::string& pdf, int page, int dpi) {
    std::unique_ptr<poppler::document> document(
        poppler::document::load_from_raw_data(pdf.data(), static_cast<int>(pdf.size())));
    if (!document) {
        throw std::runtime_error("poppler cannot read the PDF");
    }
    if (page < 1 || page > document->pages()) {
        return std::nullopt;
    }
    std::unique_ptr<poppler::page> drawn(document->create_page(page - 1));
    poppler::page_renderer renderer;
    renderer.set_render_hint(poppler::page_renderer::antialiasing);
    renderer.set_render_hint(poppler::page_renderer::text_antialiasing);
    const auto image = renderer.render_page(drawn.get(), dpi, dpi);
    // poppler writes images to files only: a private temporary one, read back and removed.
    char path[] = "/tmp/riveredge-preview-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) {
        throw std::runtime_error("no temporary file for the PNG");
    }
    close(fd);
    const bool saved = image.is_valid() && image.save(path, "png", dpi);
    std::ifstream in(path, std::ios::binary);
    std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(path);
    if (!saved || png.empty()) {
        throw std::runtime_error("poppler could not write the PNG");
    }
    return png;
}

}  // namespace riveredge::print
