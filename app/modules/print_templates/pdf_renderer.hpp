#pragma once

// Draws bound print templates into a PDF with PoDoFo: fonts embedded as subsets (Identity-H
// with a ToUnicode map, so text extracts and searches), each character in the first face of the
// chain that has it, text wrapped, shrunk or clipped to its box.

#include "modules/print_templates/fonts.hpp"
#include "modules/print_templates/template_model.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace riveredge::print {

/// Table rows one render takes at most, all tables of all its items together: an ERP print of
/// thousands of lines fits, a request that would hold the renderer (one document at a time in
/// the process) for minutes does not.
inline constexpr std::size_t kMaxTableRows = 10'000;
/// Pages one render (one PDF) has at most.
inline constexpr std::size_t kMaxPages = 1'000;
/// Text one render lays out at most, in bytes (UTF-8) once bound to the data: its text elements
/// on every page they are drawn on, its table's header on every page and each table cell once.
/// A 10,000-row report of some 400 bytes a row fits; laying out that much keeps the renderer
/// (one document at a time in the process) busy for some 10 s of Chinese, not for half an hour.
inline constexpr std::size_t kMaxRenderText = std::size_t{4} * 1024 * 1024;

struct RenderedPdf {
    std::string bytes;
    int pages = 0;
    /// The page size (every page of a render has it).
    double width_mm = 0;
    double height_mm = 0;
    /// What the reader should know: characters no font has, characters outside the Basic
    /// Multilingual Plane (PoDoFo 0.9.8 cannot draw them), text cut to fit.
    std::vector<std::string> warnings;
};

/// A render past a limit (kMaxTableRows, kMaxPages, kMaxRenderText), found before anything is
/// drawn: `field` names what is too large (`data.lines`, `items[3].lines`, `pages`, `text`).
class RenderLimitError : public std::runtime_error {
public:
    RenderLimitError(std::string field, const std::string& message)
        : std::runtime_error(message), field_(std::move(field)) {}
    const std::string& field() const noexcept { return field_; }

private:
    std::string field_;
};

/// Throws `RenderLimitError` when the items' tables (every table element, shown or not) have
/// more than kMaxTableRows rows together. Counts only: nothing is bound.
void check_table_rows(const PrintTemplate& layout, const std::vector<boost::json::value>& items);

/// Binds every placeholder of every item as a render does, without drawing (and without waiting
/// for the renderer): throws `ElementBindingError` for the first that cannot be bound, and
/// `RenderLimitError` once the bound text passes kMaxRenderText, each text counted once per item
/// (how many pages it is drawn on is known only once the table is laid out).
void check_binding(const PrintTemplate& layout, const std::vector<boost::json::value>& items);

class PdfRenderer {
public:
    explicit PdfRenderer(std::shared_ptr<const FontChain> fonts) : fonts_(std::move(fonts)) {}

    /// One page per data item; `{{page}}` and `{{pages}}` count them. Throws
    /// `ElementBindingError` (turned by the caller into a 422 naming the element) when the data
    /// does not fit, and `RenderLimitError` before drawing a render past kMaxTableRows,
    /// kMaxPages or kMaxRenderText (the rows and the text once per item before waiting for the
    /// lock, the pages and the text on every page once the table is laid out); a failure of
    /// PoDoFo (such as a font it cannot subset) as a `std::runtime_error`.
    RenderedPdf render(const PrintTemplate& layout,
                       const std::vector<boost::json::value>& items) const;

private:
    std::shared_ptr<const FontChain> fonts_;
};

/// A binding problem of one element: which element, and the BindingError's message.
class ElementBindingError : public std::runtime_error {
public:
    ElementBindingError(std::size_t item,
                        std::size_t element,
                        std::string placeholder,
                        const std::string& message)
        : std::runtime_error(message),
          item_(item),
          element_(element),
          placeholder_(std::move(placeholder)) {}
    std::size_t item() const noexcept { return item_; }
    std::size_t element() const noexcept { return element_; }
    const std::string& placeholder() const noexcept { return placeholder_; }

private:
    std::size_t item_;
    std::size_t element_;
    std::string placeholder_;
};

}  // namespace riveredge::print
