#pragma once

// A print template as the frontend designer sends it: a page in millimetres and absolutely
// positioned elements. Parsing validates everything once and names the element and field at
// fault, so rendering never meets a malformed template.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::print {

struct Page {
    double width_mm = 210;  // A4 portrait
    double height_mm = 297;
    /// top, right, bottom, left in mm.
    std::array<double, 4> margins{0, 0, 0, 0};
};

enum class ElementKind { kText, kLine, kBox, kTable, kImage, kBarcode };
enum class Symbology { kQr, kCode128, kDataMatrix };
enum class Align { kLeft, kCenter, kRight };
/// What a text does when it does not fit its box.
enum class Overflow { kWrap, kShrink, kClip };
/// Which pages of a document an element is drawn on.
enum class ShowOn { kAll, kFirst, kLast };

struct Column {
    std::string header;
    /// Bound against the row (an object; `_row` is its 1-based number).
    std::string text;
    double width = 20;  // mm
    Align align = Align::kLeft;
};

/// A page's running total of one numeric row field, in the last row of each page.
struct Subtotal {
    std::string label;
    std::size_t column = 0;
    std::string path;
    /// A formatter for the sum: `currency`, `number:2`…
    std::string format;
};

struct Element {
    ElementKind kind = ElementKind::kText;
    // Position and size in mm from the page's top-left corner; a line runs (x, y) -> (x2, y2).
    double x = 0;
    double y = 0;
    double width = 0;
    double height = 0;
    double x2 = 0;
    double y2 = 0;
    // Text: `{{path | formatter:argument}}` placeholders bound to the data.
    std::string text;
    double font_size = 10;  // pt
    double line_height = 1.2;
    Align align = Align::kLeft;
    Overflow overflow = Overflow::kWrap;
    // Lines and boxes.
    double stroke_width = 0.5;                // pt
    std::optional<std::string> stroke_color;  // #rrggbb
    std::optional<std::string> fill_color;
    /// Drawn only when this data path holds a truthy value.
    std::optional<std::string> visible_if;
    ShowOn show_on = ShowOn::kAll;
    // Table: rows from an array in the data, flowing over as many pages as they need inside the
    // element's box, the header repeated on each page.
    std::string rows;
    std::vector<Column> columns;
    std::optional<std::string> header_fill;
    std::optional<Subtotal> subtotal;
    // Image: a PNG or JPEG as a data URI (`data:image/png;base64,…`), given or bound
    // (`{{logo}}`), fitted into the box keeping its proportions.
    std::string src;
    // Barcode: the data to encode (placeholders allowed), drawn as vector rectangles.
    Symbology symbology = Symbology::kQr;
    std::string data;
};

struct PrintTemplate {
    Page page;
    std::vector<Element> elements;
};

/// Parses and validates a template; throws `core::DomainError` 422 whose fields name each
/// problem (`elements[2].font_size`).
PrintTemplate parse_template(const boost::json::value& source);

}  // namespace riveredge::print
