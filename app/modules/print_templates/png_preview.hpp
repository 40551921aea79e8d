#pragma once

// PNG pages of a PDF for the designer's preview, rasterised by poppler (Debian's
// libpoppler-cpp): the same engine the tests read PDFs back with.

#include <optional>
#include <string>

namespace riveredge::print {

/// Page `page` (1-based) of `pdf` as a PNG at `dpi`; nullopt when the PDF has no such page.
/// Throws `std::runtime_error` when poppler cannot read the PDF or write the image.
std::optional<std::string> pdf_page_png(const std::string& pdf, int page, int dpi);

}  // namespace riveredge::print
