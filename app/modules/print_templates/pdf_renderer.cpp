#include "modules/print_templates/pdf_renderer.hpp"

#include "core/text/base64.hpp"
#include "modules/print_templates/text_binding.hpp"

#include <podofo/podofo.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include <zint.h>

namespace riveredge::print {
namespace {

namespace json = boost::json;
using namespace PoDoFo;

constexpr double kPointsPerMm = 72.0 / 25.4;
constexpr double kCellPaddingMm = 1.0;
/// Images decode to width × height × 4 bytes: at most 25 megapixels (100 MB) each.
constexpr std::uint64_t kMaxImagePixels = 25'000'000;
/// An image's `src` once bound: a data URI of an image of at most 2 MiB is at most 3 MiB of
/// base64 (data_uri_bytes), with room for line breaks in it.
constexpr std::size_t kMaxImageSource = std::size_t{4} * 1024 * 1024;

double pt(double mm) {
    return mm * kPointsPerMm;
}

void parse_color(const std::string& hex, double& r, double& g, double& b) {
    unsigned value = 0;
    std::sscanf(hex.c_str() + 1, "%6x", &value);
    r = ((value >> 16) & 0xff) / 255.0;
    g = ((value >> 8) & 0xff) / 255.0;
    b = (value & 0xff) / 255.0;
}

bool is_cjk(char32_t c) {
    return c >= 0x2E80;
}

// Text split into characters, each with the face that draws it.
struct Shaped {
    std::u32string chars;
    std::vector<std::size_t> faces;
};

// A run of characters drawn with one face.
struct Run {
    std::size_t face = 0;
    std::u32string text;
    double width = 0;  // pt
};
using Line = std::vector<Run>;

// A text's extent at one size (Canvas::extent).
struct Extent {
    std::vector<double> paragraphs;  // pt
    double widest = 0;               // pt
    double size = 0;
};

// The fewest lines Canvas::lay_out can give the text of `extent` at `size` within `width` (pt).
// A wrapped line is at most `width` and one character wide, and a break drops at most one
// space, so a paragraph takes at least its width over `width` plus twice the widest character.
// Widths scale with the size (with slack for rounding).
std::size_t fewest_lines(const Extent& extent, double width, double size) {
    const double scale = size / extent.size;
    const double line = width + 2 * extent.widest * scale * (1 + 1e-6);
    std::size_t lines = 0;
    for (const double paragraph : extent.paragraphs) {
        lines += static_cast<std::size_t>(
            std::max(1.0, std::ceil(paragraph * scale * (1 - 1e-6) / line)));
    }
    return lines;
}

class Warnings {
public:
    explicit Warnings(std::vector<std::string>& out) : out_(out) {}
    void add(const std::string& message) {
        if (seen_.insert(message).second) {
            out_.push_back(message);
        }
    }

private:
    std::vector<std::string>& out_;
    std::set<std::string> seen_;
};

// One PoDoFo document, its subset fonts and the text layout that measures with them.
class Canvas {
public:
    Canvas(const FontChain& chain, Warnings& warnings) : chain_(chain), warnings_(warnings) {}

    PdfMemDocument& doc() { return doc_; }

    /// The image of these bytes, loaded once per document; nullptr when they are not a PNG or
    /// JPEG PoDoFo can read.
    PdfImage* image(const std::string& bytes) {
        auto& slot = images_[bytes];
        if (!slot) {
            auto loaded = std::make_unique<PdfImage>(&doc_);
            try {
                loaded->LoadFromData(reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<pdf_long>(bytes.size()));
            } catch (const PdfError&) {
                images_.erase(bytes);
                return nullptr;
            }
            slot = std::move(loaded);
        }
        return slot.get();
    }

    PdfFont* font(std::size_t face) {
        if (fonts_.size() <= face) {
            fonts_.resize(face + 1, nullptr);
        }
        if (fonts_[face] == nullptr) {
            const auto& f = chain_.faces()[face];
            fonts_[face] = doc_.CreateFontSubset(
                f.name().c_str(), false, false, false,
                PdfEncodingFactory::GlobalIdentityEncodingInstance(), f.path().c_str());
            if (fonts_[face] == nullptr) {
                throw std::runtime_error("PoDoFo cannot load the font " + f.path());
            }
        }
        return fonts_[face];
    }

    double width_of(std::size_t face, char32_t c, double size) {
        PdfFont* f = font(face);
        f->SetFontSize(static_cast<float>(size));
        const std::string utf8 = encode_utf8(std::u32string(1, c));
        return f->GetFontMetrics()->StringWidth(
            PdfString(reinterpret_cast<const pdf_utf8*>(utf8.c_str())));
    }

    // Each character in the first face that has it; the others are named in a warning.
    Shaped shape(const std::string& text) {
        Shaped out;
        for (char32_t c : decode_utf8(text)) {
            if (c == U'\r' || c == U'\t') {
                c = U' ';
            }
            if (c > 0xFFFF) {
                char hex[16];
                std::snprintf(hex, sizeof hex, "%X", static_cast<unsigned>(c));
                warnings_.add(
                    "U+" + std::string(hex) + " (" + encode_utf8(std::u32string(1, c)) +
                    ") is outside the Basic Multilingual Plane, which PoDoFo 0.9.8 cannot "
                    "draw; it is shown as □");
                c = U'□';
            }
            std::optional<std::size_t> face =
                c == U'\n' ? std::optional<std::size_t>(0) : chain_.face_for(c);
            if (!face) {
                warnings_.add(encode_utf8(std::u32string(1, c)) +
                              " has no glyph in any font; it is shown as □");
                c = U'□';
                face = chain_.face_for(c).value_or(0);
            }
            out.chars.push_back(c);
            out.faces.push_back(*face);
        }
        return out;
    }

    // `text` measured at `size` for fewest_lines: each paragraph's characters laid end to end
    // (pt), and the widest character.
    Extent extent(const Shaped& text, double size) {
        Extent out{{0}, 0, size};
        for (std::size_t i = 0; i < text.chars.size(); ++i) {
            if (text.chars[i] == U'\n') {
                out.paragraphs.push_back(0);
                continue;
            }
            const double w = width_of(text.faces[i], text.chars[i], size);
            out.paragraphs.back() += w;
            out.widest = std::max(out.widest, w);
        }
        return out;
    }

    // Lines of `text` at `size` within `width` pt: breaks at newlines, before a Latin word that
    // would overflow (unless it fills the line alone), or between any two CJK characters.
    std::vector<Line> lay_out(const Shaped& text, double width, double size, bool wrap) {
        std::vector<Line> lines(1);
        std::vector<std::pair<char32_t, std::size_t>> current;
        std::vector<double> widths;
        double line_width = 0;
        const auto flush = [&](std::size_t count) {
            Line line;
            for (std::size_t i = 0; i < count; ++i) {
                if (line.empty() || line.back().face != current[i].second) {
                    line.push_back(Run{current[i].second, {}, 0});
                }
                line.back().text.push_back(current[i].first);
                line.back().width += widths[i];
            }
            lines.back() = std::move(line);
        };
        for (std::size_t i = 0; i < text.chars.size(); ++i) {
            const char32_t c = text.chars[i];
            if (c == U'\n') {
                flush(current.size());
                lines.emplace_back();
                current.clear();
                widths.clear();
                line_width = 0;
                continue;
            }
            const double w = width_of(text.faces[i], c, size);
            if (wrap && line_width + w > width && !current.empty()) {
                std::size_t cut = current.size();
                if (c != U' ' && !is_cjk(c)) {
                    std::size_t start = current.size();
                    while (start > 0 && current[start - 1].first != U' ' &&
                           !is_cjk(current[start - 1].first)) {
                        --start;
                    }
                    if (start > 0) {
                        cut = start;  // the word moves to the next line whole
                    }
                }
                std::vector<std::pair<char32_t, std::size_t>> rest(
                    current.begin() + static_cast<std::ptrdiff_t>(cut), current.end());
                std::vector<double> rest_widths(widths.begin() + static_cast<std::ptrdiff_t>(cut),
                                                widths.end());
                flush(cut);
                lines.emplace_back();
                current = std::move(rest);
                widths = std::move(rest_widths);
                line_width = 0;
                for (const double x : widths) {
                    line_width += x;
                }
                if (c == U' ' && current.empty()) {
                    continue;  // no leading space on a wrapped line
                }
            }
            current.emplace_back(c, text.faces[i]);
            widths.push_back(w);
            line_width += w;
        }
        flush(current.size());
        return lines;
    }

private:
    const FontChain& chain_;
    Warnings& warnings_;
    PdfMemDocument doc_;
    std::vector<PdfFont*> fonts_;
    std::map<std::string, std::unique_ptr<PdfImage>> images_;
};

struct Box {
    double x = 0;    // pt, left
    double top = 0;  // pt, PDF coordinates (from the bottom)
    double width = 0;
    double height = 0;
};

struct TextStyle {
    double size = 10;
    double line_height = 1.2;
    Align align = Align::kLeft;
    Overflow overflow = Overflow::kWrap;
    std::string color = "#000000";
};

void fill_rect(PdfPainter& painter,
               const Box& box,
               const std::optional<std::string>& fill,
               double stroke) {
    double r = 0;
    double g = 0;
    double b = 0;
    painter.Rectangle(box.x, box.top - box.height, box.width, box.height);
    if (fill) {
        parse_color(*fill, r, g, b);
        painter.SetColor(r, g, b);
    }
    if (stroke > 0) {
        painter.SetStrokingColor(0, 0, 0);
        painter.SetStrokeWidth(stroke);
    }
    if (fill && stroke > 0) {
        painter.FillAndStroke();
    } else if (fill) {
        painter.Fill();
    } else {
        painter.Stroke();
    }
}

// Draws text into a box under its style; what does not fit is cut and reported as `where`.
void draw_text(PdfPainter& painter,
               Canvas& canvas,
               const std::string& text,
               const Box& box,
               TextStyle style,
               Warnings& warnings,
               const std::string& where) {
    const Shaped shaped = canvas.shape(text);
    const bool wrap = style.overflow != Overflow::kClip;
    auto lines = canvas.lay_out(shaped, box.width, style.size, wrap);
    const auto too_tall = [&](std::size_t count, double size) {
        return static_cast<double>(count) * size * style.line_height > box.height + 0.01;
    };
    if (style.overflow == Overflow::kShrink && too_tall(lines.size(), style.size) &&
        style.size > 4) {
        // 10% smaller until it fits, down to 4 pt. A size at which the text has too many lines
        // by fewest_lines is passed over without laying it out: the same size is reached
        // without laying the text out at each of up to 37 sizes (200 pt to 4 pt).
        const auto measured = canvas.extent(shaped, style.size);
        while (style.size > 4) {
            style.size = std::max(4.0, style.size * 0.9);
            if (style.size > 4 &&
                too_tall(fewest_lines(measured, box.width, style.size), style.size)) {
                continue;
            }
            lines = canvas.lay_out(shaped, box.width, style.size, true);
            if (!too_tall(lines.size(), style.size)) {
                break;
            }
        }
    }
    const std::size_t fit = std::max<std::size_t>(
        1, static_cast<std::size_t>(
               std::floor((box.height + 0.01) / (style.size * style.line_height))));
    if (lines.size() > fit) {
        warnings.add(where + ": the text does not fit its box; " +
                     std::to_string(lines.size() - fit) + " line(s) are cut");
        lines.resize(fit);
    }
    double r = 0;
    double g = 0;
    double b = 0;
    parse_color(style.color, r, g, b);
    painter.SetColor(r, g, b);
    if (!wrap) {
        painter.Save();
        painter.SetClipRect(box.x, box.top - box.height, box.width, box.height);
    }
    for (std::size_t l = 0; l < lines.size(); ++l) {
        double width = 0;
        for (const auto& run : lines[l]) {
            width += run.width;
        }
        double x = box.x;
        if (style.align == Align::kCenter) {
            x += (box.width - width) / 2;
        } else if (style.align == Align::kRight) {
            x += box.width - width;
        }
        // Baseline: the line's top minus the ascent (about 0.85 of the size).
        const double baseline =
            box.top - static_cast<double>(l) * style.size * style.line_height - style.size * 0.85;
        for (const auto& run : lines[l]) {
            PdfFont* f = canvas.font(run.face);
            f->SetFontSize(static_cast<float>(style.size));
            painter.SetFont(f);
            const std::string utf8 = encode_utf8(run.text);
            painter.DrawText(x, baseline,
                             PdfString(reinterpret_cast<const pdf_utf8*>(utf8.c_str())));
            x += run.width;
        }
    }
    if (!wrap) {
        painter.Restore();
    }
}

// The bytes of a `data:image/…;base64,` URI; nullopt when it is not one (or over 2 MiB).
std::optional<std::string> data_uri_bytes(const std::string& uri) {
    const auto comma = uri.find(";base64,");
    if (uri.rfind("data:image/", 0) != 0 || comma == std::string::npos) {
        return std::nullopt;
    }
    std::string text = uri.substr(comma + 8);
    text.erase(
        std::remove_if(text.begin(), text.end(),
                       [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }),
        text.end());
    if (text.size() > std::size_t{3} * 1024 * 1024) {
        return std::nullopt;
    }
    return core::from_base64(text);
}

// The pixel size a PNG or JPEG declares in its header; nullopt when neither can be read. Checked
// before decoding, so a small file that declares a huge image is refused rather than decoded.
std::optional<std::pair<std::uint32_t, std::uint32_t>> declared_size(const std::string& bytes) {
    const auto byte = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]));
    };
    if (bytes.size() >= 24 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) {
        return std::pair{(byte(16) << 24) | (byte(17) << 16) | (byte(18) << 8) | byte(19),
                         (byte(20) << 24) | (byte(21) << 16) | (byte(22) << 8) | byte(23)};
    }
    if (bytes.size() >= 4 && byte(0) == 0xFF && byte(1) == 0xD8) {
        for (std::size_t at = 2; at + 9 < bytes.size();) {
            if (byte(at) != 0xFF) {
                return std::nullopt;
            }
            const auto marker = byte(at + 1);
            const auto length = (byte(at + 2) << 8) | byte(at + 3);
            const bool frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 &&
                               marker != 0xC8 && marker != 0xCC;
            if (frame) {
                return std::pair{(byte(at + 7) << 8) | byte(at + 8),
                                 (byte(at + 5) << 8) | byte(at + 6)};
            }
            at += 2 + length;
        }
    }
    return std::nullopt;
}

// Draws a barcode as vector rectangles from zint; 2D symbols keep their proportions, linear
// ones stretch to the box. An error names what zint refused.
std::optional<std::string> draw_barcode(PdfPainter& painter,
                                        Symbology symbology,
                                        const std::string& data,
                                        const Box& box) {
    zint_symbol* symbol = ZBarcode_Create();
    if (symbol == nullptr) {
        return "zint could not start";
    }
    symbol->symbology = symbology == Symbology::kQr        ? BARCODE_QRCODE
                        : symbology == Symbology::kCode128 ? BARCODE_CODE128
                                                           : BARCODE_DATAMATRIX;
    symbol->input_mode = UNICODE_MODE;
    symbol->show_hrt = 0;
    const int status = ZBarcode_Encode_and_Buffer_Vector(
        symbol, reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()),
        0);
    if (status >= ZINT_ERROR || symbol->vector == nullptr || symbol->vector->width <= 0 ||
        symbol->vector->height <= 0) {
        std::string message = symbol->errtxt;
        ZBarcode_Delete(symbol);
        return message.empty() ? "the barcode could not be made" : message;
    }
    const double vector_w = symbol->vector->width;
    const double vector_h = symbol->vector->height;
    double sx = box.width / vector_w;
    double sy = box.height / vector_h;
    if (symbology != Symbology::kCode128) {
        sx = sy = std::min(sx, sy);
    }
    const double left = box.x + (box.width - vector_w * sx) / 2;
    const double top = box.top - (box.height - vector_h * sy) / 2;
    for (const auto* r = symbol->vector->rectangles; r != nullptr; r = r->next) {
        if (r->colour == -1) {
            painter.Rectangle(left + r->x * sx, top - (r->y + r->height) * sy, r->width * sx,
                              r->height * sy);
        }
    }
    painter.SetColor(0, 0, 0);
    painter.Fill();
    ZBarcode_Delete(symbol);
    return std::nullopt;
}

// A bound table row: each cell's text and the row's height (pt).
struct TableRow {
    std::vector<std::string> cells;
    double height = 0;
    json::value source;
};

// One document (data item) bound, then laid out: how many pages, and which table rows go on
// each.
struct DocumentPlan {
    json::value data;
    bool table_shown = false;
    std::vector<TableRow> rows;
    std::vector<std::pair<std::size_t, std::size_t>> pages;  // [first, last) table rows per page
    double header_height = 0;
    double subtotal_height = 0;
    // Bytes of bound text: each text element's (0 for other elements and hidden ones), the
    // table's header and subtotal label (drawn on every page), all its cells.
    std::vector<std::size_t> text_bytes;
    std::size_t header_bytes = 0;
    std::size_t cell_bytes = 0;
};

// 10001 as "10,001".
std::string counted(std::size_t n) {
    // Built forwards: GCC 12's -O2 mistakes string::insert here for an overlapping memcpy
    // (-Wrestrict), which broke the optimised build.
    const std::string digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) {
            out += ',';
        }
        out += digits[i];
    }
    return out;
}

// The text a render lays out, counted against kMaxRenderText as it is bound or laid out.
class TextBudget {
public:
    // `bytes` drawn `times` times; refused as soon as the total passes the limit.
    void add(std::size_t bytes, std::size_t times = 1) {
        used_ += bytes * times;  // at most 64 KiB on 1,000 pages at a time
        if (used_ > kMaxRenderText) {
            throw RenderLimitError(
                "text", "the PDF would lay out at least " + counted(used_) +
                            " bytes of text (its texts and table cells bound to the data, on "
                            "every page they are drawn on); a render lays out at most " +
                            counted(kMaxRenderText) + " (4 MiB): split it into several renders");
        }
    }

private:
    std::size_t used_ = 0;
};

// Binding as the renderer does it; each throws ElementBindingError for element `element` of
// data item `item`.

// `text` bound to `data` (at most `limit` bytes); a BindingError's placeholder is named after
// `prefix`.
std::string bind_in(const std::string& text,
                    const json::value& data,
                    std::size_t item,
                    std::size_t element,
                    const std::string& prefix = {},
                    std::size_t limit = kMaxBoundText) {
    try {
        return bind_text(text, data, limit);
    } catch (const BindingError& error) {
        throw ElementBindingError(item, element, prefix + error.placeholder(), error.what());
    }
}

// The array of rows a table element reads (its `rows` path in `data`).
const json::array& table_rows(const Element& table,
                              const json::value& data,
                              std::size_t item,
                              std::size_t element) {
    const auto* rows = value_at(data, table.rows);
    if (rows == nullptr || !rows->is_array()) {
        throw ElementBindingError(item, element, table.rows,
                                  "no array of rows at " + table.rows + " in the data");
    }
    return rows->get_array();
}

// Row `r` as the cells bind it: an object as it is, any other value as `{"value": ...}`; `_row`
// is its number from 1.
json::value table_row(const json::array& rows, std::size_t r) {
    json::value row = rows[r].is_object() ? rows[r] : json::value(json::object{{"value", rows[r]}});
    row.as_object()["_row"] = static_cast<std::int64_t>(r + 1);
    return row;
}

// For a table with a page subtotal: refuses row `r` (as table_row gives it) when it has no
// number at the subtotal's path.
void check_subtotal(const Element& table,
                    const json::value& row,
                    std::size_t r,
                    std::size_t item,
                    std::size_t element) {
    if (!table.subtotal) {
        return;
    }
    const auto* value = value_at(row, table.subtotal->path);
    if (value == nullptr || !number_value(*value)) {
        throw ElementBindingError(
            item, element, table.rows + "[" + std::to_string(r) + "]." + table.subtotal->path,
            "the page subtotal adds up numbers; this row has none there");
    }
}

// Every item bound as it is drawn, without drawing (nothing here needs the PoDoFo lock), its
// text counted once per item: each text is drawn at least once. The page numbers bind as if
// each item were one page (the drawing binds them again with the real ones, a few bytes
// longer at most). For drawing, the table's rows are kept and images and barcodes are left to
// the drawing; for the check, everything is bound and nothing kept.
std::vector<DocumentPlan> bind_items(const PrintTemplate& layout,
                                     const std::vector<json::value>& items,
                                     bool for_drawing) {
    TextBudget budget;
    std::vector<DocumentPlan> plans;
    for (std::size_t i = 0; i < items.size(); ++i) {
        DocumentPlan plan;
        plan.data = items[i];
        if (plan.data.is_object()) {
            auto& object = plan.data.as_object();
            object["page"] = static_cast<std::int64_t>(i + 1);
            object["pages"] = static_cast<std::int64_t>(items.size());
            object["doc_page"] = 1;
            object["doc_pages"] = 1;
        }
        plan.text_bytes.resize(layout.elements.size());
        for (std::size_t e = 0; e < layout.elements.size(); ++e) {
            const auto& element = layout.elements[e];
            if (element.visible_if && !truthy(plan.data, *element.visible_if)) {
                continue;
            }
            switch (element.kind) {
                case ElementKind::kLine:
                case ElementKind::kBox:
                    break;
                case ElementKind::kText:
                    plan.text_bytes[e] = bind_in(element.text, plan.data, i, e).size();
                    budget.add(plan.text_bytes[e]);
                    break;
                case ElementKind::kImage:
                    if (!for_drawing) {
                        bind_in(element.src, plan.data, i, e, {}, kMaxImageSource);
                    }
                    break;
                case ElementKind::kBarcode:
                    if (!for_drawing) {
                        bind_in(element.data, plan.data, i, e);
                    }
                    break;
                case ElementKind::kTable: {
                    plan.table_shown = true;
                    for (const auto& column : element.columns) {
                        plan.header_bytes += column.header.size();
                    }
                    plan.header_bytes += element.subtotal ? element.subtotal->label.size() : 0;
                    budget.add(plan.header_bytes);
                    // Every row: its subtotal's number, then every cell.
                    const auto& rows = table_rows(element, plan.data, i, e);
                    for (std::size_t r = 0; r < rows.size(); ++r) {
                        json::value row = table_row(rows, r);
                        check_subtotal(element, row, r, i, e);
                        TableRow bound;
                        for (const auto& column : element.columns) {
                            auto cell = bind_in(column.text, row, i, e,
                                                element.rows + "[" + std::to_string(r) + "].");
                            budget.add(cell.size());
                            plan.cell_bytes += cell.size();
                            bound.cells.push_back(std::move(cell));
                        }
                        if (for_drawing) {
                            bound.source = std::move(row);
                            plan.rows.push_back(std::move(bound));
                        }
                    }
                    break;
                }
            }
        }
        if (for_drawing) {
            plans.push_back(std::move(plan));
        }
    }
    return plans;
}

}  // namespace

void check_binding(const PrintTemplate& layout, const std::vector<json::value>& items) {
    bind_items(layout, items, false);
}

void check_table_rows(const PrintTemplate& layout, const std::vector<json::value>& items) {
    std::size_t total = 0;
    for (std::size_t item = 0; item < items.size(); ++item) {
        for (const auto& element : layout.elements) {
            const auto* rows =
                element.kind == ElementKind::kTable ? value_at(items[item], element.rows) : nullptr;
            if (rows == nullptr || !rows->is_array()) {
                continue;  // the binding check names it
            }
            total += rows->get_array().size();
            if (total > kMaxTableRows) {
                throw RenderLimitError(
                    (items.size() > 1 ? "items[" + std::to_string(item) + "]." : "data.") +
                        element.rows,
                    "this table's " + counted(rows->get_array().size()) +
                        " rows bring the render to " + counted(total) +
                        "; a render takes at most " + counted(kMaxTableRows) +
                        " table rows, all tables together: split it into several renders");
            }
        }
    }
}

// PoDoFo's PdfError is no std::exception: it would be retried as if the process were in
// trouble, or pass every handler that catches std::exception. It leaves as a runtime_error.
RenderedPdf PdfRenderer::render(const PrintTemplate& layout,
                                const std::vector<json::value>& items) const try {
    // Refused before waiting for the lock: too many rows, or more items than pages (each item
    // is a page at least).
    check_table_rows(layout, items);
    const auto too_many_pages = [](std::size_t pages, const char* at_least) {
        return RenderLimitError("pages", "the PDF would have " + std::string(at_least) +
                                             counted(pages) + " pages; a render has at most " +
                                             counted(kMaxPages) +
                                             ": split it into several renders");
    };
    if (items.size() > kMaxPages) {
        throw too_many_pages(items.size(), "at least ");
    }
    // Bound, and its text counted once per item, before waiting for the lock.
    auto plans = bind_items(layout, items, true);
    // PoDoFo 0.9.8 keeps global font state (the FreeType library and font cache): one document
    // at a time.
    static std::mutex podofo;
    std::lock_guard lock(podofo);
    RenderedPdf out;
    Warnings warnings(out.warnings);
    Canvas canvas(*fonts_, warnings);
    const double page_w = pt(layout.page.width_mm);
    const double page_h = pt(layout.page.height_mm);
    const Element* table = nullptr;
    std::size_t table_index = 0;
    for (std::size_t e = 0; e < layout.elements.size(); ++e) {
        if (layout.elements[e].kind == ElementKind::kTable) {
            table = &layout.elements[e];
            table_index = e;
        }
    }

    // Pass 1: measure every table row, and cut the rows into pages, so that every page can say
    // how many pages there are.
    std::size_t total_pages = 0;
    for (auto& plan : plans) {
        if (table != nullptr && plan.table_shown) {
            const double size = table->font_size;
            const double padding = pt(kCellPaddingMm);
            const auto height_for = [&](const std::vector<std::string>& cells) {
                std::size_t lines = 1;
                for (std::size_t c = 0; c < cells.size(); ++c) {
                    const double width = pt(table->columns[c].width) - 2 * padding;
                    lines = std::max(
                        lines, canvas.lay_out(canvas.shape(cells[c]), width, size, true).size());
                }
                return static_cast<double>(lines) * size * table->line_height + 2 * padding;
            };
            std::vector<std::string> headers;
            for (const auto& column : table->columns) {
                headers.push_back(column.header);
            }
            plan.header_height = height_for(headers);
            plan.subtotal_height = table->subtotal ? size * table->line_height + 2 * padding : 0;
            for (auto& row : plan.rows) {
                row.height = height_for(row.cells);
            }
            const double room = pt(table->height) - plan.header_height - plan.subtotal_height;
            std::size_t first = 0;
            while (first < plan.rows.size() || plan.pages.empty()) {
                std::size_t last = first;
                double used = 0;
                while (last < plan.rows.size() &&
                       (last == first || used + plan.rows[last].height <= room)) {
                    if (plan.rows[last].height > room) {
                        warnings.add("elements[" + std::to_string(table_index) + "]: row " +
                                     std::to_string(last + 1) +
                                     " is taller than the table; it is cut");
                    }
                    used += plan.rows[last].height;
                    ++last;
                }
                plan.pages.emplace_back(first, last);
                first = last;
            }
        } else {
            plan.pages.emplace_back(0, 0);
        }
        total_pages += plan.pages.size();
    }

    if (total_pages > kMaxPages) {
        throw too_many_pages(total_pages, "");
    }
    // The text as it is drawn, before drawing: every text on every page it is on, the table's
    // header and subtotal label on every page, each cell once.
    TextBudget drawn;
    for (const auto& plan : plans) {
        drawn.add(plan.cell_bytes);
        drawn.add(plan.header_bytes, plan.pages.size());
        for (std::size_t e = 0; e < layout.elements.size(); ++e) {
            drawn.add(plan.text_bytes[e],
                      layout.elements[e].show_on == ShowOn::kAll ? plan.pages.size() : 1);
        }
    }

    // Pass 2: draw.
    std::size_t page_number = 0;
    for (std::size_t item = 0; item < plans.size(); ++item) {
        auto& plan = plans[item];
        for (std::size_t p = 0; p < plan.pages.size(); ++p) {
            ++page_number;
            json::value data = plan.data;
            if (data.is_object()) {
                auto& object = data.as_object();
                object["page"] = static_cast<std::int64_t>(page_number);
                object["pages"] = static_cast<std::int64_t>(total_pages);
                object["doc_page"] = static_cast<std::int64_t>(p + 1);
                object["doc_pages"] = static_cast<std::int64_t>(plan.pages.size());
            }
            PdfPage* page = canvas.doc().CreatePage(PdfRect(0, 0, page_w, page_h));
            PdfPainter painter;
            painter.SetPage(page);
            try {
                for (std::size_t e = 0; e < layout.elements.size(); ++e) {
                    const auto& element = layout.elements[e];
                    if ((element.visible_if && !truthy(data, *element.visible_if)) ||
                        (element.show_on == ShowOn::kFirst && p != 0) ||
                        (element.show_on == ShowOn::kLast && p + 1 != plan.pages.size())) {
                        continue;
                    }
                    double r = 0;
                    double g = 0;
                    double b = 0;
                    const Box box{pt(element.x), page_h - pt(element.y), pt(element.width),
                                  pt(element.height)};
                    switch (element.kind) {
                        case ElementKind::kLine:
                            painter.SetStrokeWidth(element.stroke_width);
                            parse_color(element.stroke_color.value_or("#000000"), r, g, b);
                            painter.SetStrokingColor(r, g, b);
                            painter.DrawLine(pt(element.x), page_h - pt(element.y), pt(element.x2),
                                             page_h - pt(element.y2));
                            break;
                        case ElementKind::kBox:
                            if (element.stroke_color) {
                                parse_color(*element.stroke_color, r, g, b);
                                painter.SetStrokingColor(r, g, b);
                            }
                            fill_rect(painter, box, element.fill_color, element.stroke_width);
                            break;
                        case ElementKind::kText:
                            draw_text(painter, canvas, bind_in(element.text, data, item, e), box,
                                      {element.font_size, element.line_height, element.align,
                                       element.overflow, element.fill_color.value_or("#000000")},
                                      warnings, "elements[" + std::to_string(e) + "]");
                            break;
                        case ElementKind::kImage: {
                            const std::string src =
                                bind_in(element.src, data, item, e, {}, kMaxImageSource);
                            auto bytes = data_uri_bytes(src);
                            const auto size = bytes ? declared_size(*bytes) : std::nullopt;
                            if (!size || size->first == 0 || size->second == 0 ||
                                std::uint64_t{size->first} * size->second > kMaxImagePixels) {
                                bytes.reset();  // not an image we can read, or too large to decode
                            }
                            PdfImage* image = bytes ? canvas.image(*bytes) : nullptr;
                            if (image == nullptr) {
                                throw ElementBindingError(
                                    item, e, "src", "not a PNG or JPEG data URI of at most 2 MiB");
                            }
                            const double scale = std::min(box.width / image->GetWidth(),
                                                          box.height / image->GetHeight());
                            const double w = image->GetWidth() * scale;
                            const double h = image->GetHeight() * scale;
                            painter.DrawImage(box.x + (box.width - w) / 2,
                                              box.top - box.height + (box.height - h) / 2, image,
                                              scale, scale);
                            break;
                        }
                        case ElementKind::kBarcode: {
                            const std::string value = bind_in(element.data, data, item, e);
                            if (const auto problem =
                                    draw_barcode(painter, element.symbology, value, box)) {
                                throw ElementBindingError(
                                    item, e, "data",
                                    "the barcode cannot encode '" + value + "': " + *problem);
                            }
                            break;
                        }
                        case ElementKind::kTable: {
                            const double padding = pt(kCellPaddingMm);
                            const TextStyle cell_style{element.font_size, element.line_height,
                                                       Align::kLeft, Overflow::kWrap, "#000000"};
                            // A row of cells; the first `span` columns share one cell (the
                            // subtotal's label).
                            const auto draw_row = [&](const std::vector<std::string>& cells,
                                                      double top, double height,
                                                      const std::optional<std::string>& fill,
                                                      std::size_t span = 1) {
                                double x = box.x;
                                for (std::size_t c = 0; c < element.columns.size();) {
                                    const std::size_t columns =
                                        c == 0 ? std::max<std::size_t>(span, 1) : 1;
                                    double width = 0;
                                    for (std::size_t k = c; k < c + columns; ++k) {
                                        width += pt(element.columns[k].width);
                                    }
                                    fill_rect(painter, Box{x, top, width, height}, fill,
                                              element.stroke_width);
                                    TextStyle style = cell_style;
                                    style.align = element.columns[c].align;
                                    draw_text(painter, canvas, cells[c],
                                              Box{x + padding, top - padding, width - 2 * padding,
                                                  height - 2 * padding},
                                              style, warnings,
                                              "elements[" + std::to_string(e) + "].columns[" +
                                                  std::to_string(c) + "]");
                                    x += width;
                                    c += columns;
                                }
                            };
                            std::vector<std::string> headers;
                            for (const auto& column : element.columns) {
                                headers.push_back(column.header);
                            }
                            double top = box.top;
                            draw_row(headers, top, plan.header_height, element.header_fill);
                            top -= plan.header_height;
                            double sum = 0;
                            for (std::size_t row = plan.pages[p].first; row < plan.pages[p].second;
                                 ++row) {
                                const double height =
                                    std::min(plan.rows[row].height, top - (box.top - box.height));
                                draw_row(plan.rows[row].cells, top, height, std::nullopt);
                                top -= height;
                                if (element.subtotal) {
                                    const auto* value =
                                        value_at(plan.rows[row].source, element.subtotal->path);
                                    // Checked to be a number when the rows were bound.
                                    sum += value != nullptr ? number_value(*value).value_or(0) : 0;
                                }
                            }
                            if (element.subtotal) {
                                std::vector<std::string> cells(element.columns.size());
                                cells[0] = element.subtotal->label;
                                cells[element.subtotal->column] = bind_in(
                                    "{{sum | " + element.subtotal->format + "}}",
                                    json::value(json::object{{"sum", sum}}), item, e, "subtotal.");
                                draw_row(cells, top, plan.subtotal_height, element.header_fill,
                                         element.subtotal->column);
                            }
                            break;
                        }
                    }
                }
            } catch (...) {
                painter.FinishPage();  // PoDoFo insists, even on the way out
                throw;
            }
            painter.FinishPage();
        }
    }
    PdfRefCountedBuffer buffer;
    PdfOutputDevice device(&buffer);
    canvas.doc().Write(&device);
    out.bytes.assign(buffer.GetBuffer(), device.GetLength());
    out.pages = static_cast<int>(total_pages);
    out.width_mm = layout.page.width_mm;
    out.height_mm = layout.page.height_mm;
    return out;
} catch (const PoDoFo::PdfError& error) {
    std::string details;
    for (const auto& info : error.GetCallstack()) {
        if (!info.GetInformation().empty()) {
            details += (details.empty() ? "" : "; ") + info.GetInformation();
        }
    }
    throw std::runtime_error(std::string("PoDoFo: ") +
                             PoDoFo::PdfError::ErrorMessage(error.GetError()) +
                             (details.empty() ? "" : " (" + details + ")"));
}

}  // namespace riveredge::print
