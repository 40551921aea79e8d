#include "modules/print_templates/pdf_renderer.hpp"

#include "modules/print_templates/text_binding.hpp"

#include <podofo/podofo.h>

#include <cmath>
#include <cstdio>
#include <mutex>
#include <optional>
#include <set>

namespace riveredge::print {
namespace {

namespace json = boost::json;
using namespace PoDoFo;

constexpr double kPointsPerMm = 72.0 / 25.4;

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

// A run of characters drawn with one face.
struct Run {
    std::size_t face = 0;
    std::u32string text;
    double width = 0;  // pt
};

using Line = std::vector<Run>;

class Document {
public:
    explicit Document(const FontChain& chain) : chain_(chain) {}

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

    double width_of(std::size_t face, const std::u32string& text, double size) {
        PdfFont* f = font(face);
        f->SetFontSize(static_cast<float>(size));
        const std::string utf8 = encode_utf8(text);
        return f->GetFontMetrics()->StringWidth(
            PdfString(reinterpret_cast<const pdf_utf8*>(utf8.c_str())));
    }

    PdfMemDocument& doc() { return doc_; }

private:
    const FontChain& chain_;
    PdfMemDocument doc_;
    std::vector<PdfFont*> fonts_;
};

}  // namespace

RenderedPdf PdfRenderer::render(const PrintTemplate& layout,
                                const std::vector<json::value>& items) const {
    // PoDoFo 0.9.8 keeps global font state (the FreeType library and font cache): one document
    // at a time.
    static std::mutex podofo;
    std::lock_guard lock(podofo);
    RenderedPdf out;
    Document document(*fonts_);
    const double page_w = pt(layout.page.width_mm);
    const double page_h = pt(layout.page.height_mm);
    std::set<std::string> warned;
    const auto warn = [&](const std::string& message) {
        if (warned.insert(message).second) {
            out.warnings.push_back(message);
        }
    };
    for (std::size_t item = 0; item < items.size(); ++item) {
        json::value data = items[item];
        if (data.is_object()) {
            data.as_object()["page"] = static_cast<std::int64_t>(item + 1);
            data.as_object()["pages"] = static_cast<std::int64_t>(items.size());
        }
        PdfPage* page = document.doc().CreatePage(PdfRect(0, 0, page_w, page_h));
        PdfPainter painter;
        painter.SetPage(page);
        try {
            for (std::size_t e = 0; e < layout.elements.size(); ++e) {
                const auto& element = layout.elements[e];
                if (element.visible_if && !truthy(data, *element.visible_if)) {
                    continue;
                }
                double r = 0;
                double g = 0;
                double b = 0;
                if (element.kind == ElementKind::kLine) {
                    painter.SetStrokeWidth(element.stroke_width);
                    parse_color(element.stroke_color.value_or("#000000"), r, g, b);
                    painter.SetStrokingColor(r, g, b);
                    painter.DrawLine(pt(element.x), page_h - pt(element.y), pt(element.x2),
                                     page_h - pt(element.y2));
                    continue;
                }
                if (element.kind == ElementKind::kBox) {
                    painter.Rectangle(pt(element.x), page_h - pt(element.y + element.height),
                                      pt(element.width), pt(element.height));
                    if (element.fill_color) {
                        parse_color(*element.fill_color, r, g, b);
                        painter.SetColor(r, g, b);
                    }
                    if (element.stroke_width > 0) {
                        parse_color(element.stroke_color.value_or("#000000"), r, g, b);
                        painter.SetStrokingColor(r, g, b);
                        painter.SetStrokeWidth(element.stroke_width);
                    }
                    if (element.fill_color && element.stroke_width > 0) {
                        painter.FillAndStroke();
                    } else if (element.fill_color) {
                        painter.Fill();
                    } else {
                        painter.Stroke();
                    }
                    continue;
                }
                std::string text;
                try {
                    text = bind_text(element.text, data);
                } catch (const BindingError& error) {
                    throw ElementBindingError(item, e, error.placeholder(), error.what());
                }
                // Each character in the first face that has it; the rest are named in a warning.
                std::u32string chars;
                std::vector<std::size_t> faces;
                for (char32_t c : decode_utf8(text)) {
                    if (c == U'\r' || c == U'\t') {
                        c = U' ';
                    }
                    if (c > 0xFFFF) {
                        warn("U+" +
                             [&] {
                                 char hex[16];
                                 std::snprintf(hex, sizeof hex, "%X", static_cast<unsigned>(c));
                                 return std::string(hex);
                             }() +
                             " (" + encode_utf8(std::u32string(1, c)) +
                             ") is outside the Basic Multilingual Plane, which PoDoFo 0.9.8 cannot "
                             "draw; it is shown as □");
                        c = U'□';
                    }
                    std::optional<std::size_t> face =
                        c == U'\n' ? std::optional<std::size_t>(0) : fonts_->face_for(c);
                    if (!face) {
                        warn(encode_utf8(std::u32string(1, c)) +
                             " has no glyph in any font; it is shown as □");
                        c = U'□';
                        face = fonts_->face_for(c).value_or(0);
                    }
                    chars.push_back(c);
                    faces.push_back(*face);
                }
                const double box_w = pt(element.width);
                const double box_h = pt(element.height);
                double size = element.font_size;
                std::vector<Line> lines;
                // Lays the text out at `size`: breaks at newlines, at a space before an overflowing
                // Latin word, or between any two CJK characters.
                const auto lay_out = [&](double font_size) {
                    lines.assign(1, Line{});
                    double line_width = 0;
                    std::vector<std::pair<char32_t, std::size_t>> current;
                    std::vector<double> widths;
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
                    for (std::size_t i = 0; i < chars.size(); ++i) {
                        if (chars[i] == U'\n') {
                            flush(current.size());
                            lines.emplace_back();
                            current.clear();
                            widths.clear();
                            line_width = 0;
                            continue;
                        }
                        const double w =
                            document.width_of(faces[i], std::u32string(1, chars[i]), font_size);
                        if (element.overflow != Overflow::kClip && line_width + w > box_w &&
                            !current.empty()) {
                            // A Latin word (a run without spaces or CJK) moves to the next line
                            // whole, unless it fills the line alone; CJK breaks anywhere.
                            std::size_t cut = current.size();
                            if (chars[i] != U' ' && chars[i] < 0x2E80) {
                                std::size_t start = current.size();
                                while (start > 0 && current[start - 1].first != U' ' &&
                                       current[start - 1].first < 0x2E80) {
                                    --start;
                                }
                                if (start > 0) {
                                    cut = start;
                                }
                            }
                            std::vector<std::pair<char32_t, std::size_t>> rest(
                                current.begin() + static_cast<std::ptrdiff_t>(cut), current.end());
                            std::vector<double> rest_widths(
                                widths.begin() + static_cast<std::ptrdiff_t>(cut), widths.end());
                            flush(cut);
                            lines.emplace_back();
                            current = std::move(rest);
                            widths = std::move(rest_widths);
                            line_width = 0;
                            for (const double x : widths) {
                                line_width += x;
                            }
                            if (chars[i] == U' ' && current.empty()) {
                                continue;  // no leading space on a wrapped line
                            }
                        }
                        current.emplace_back(chars[i], faces[i]);
                        widths.push_back(w);
                        line_width += w;
                    }
                    flush(current.size());
                };
                lay_out(size);
                const auto height_of = [&](double font_size) {
                    return static_cast<double>(lines.size()) * font_size * element.line_height;
                };
                if (element.overflow == Overflow::kShrink) {
                    while (height_of(size) > box_h + 0.01 && size > 4) {
                        size = std::max(4.0, size * 0.9);
                        lay_out(size);
                    }
                }
                const std::size_t fit = static_cast<std::size_t>(
                    std::floor((box_h + 0.01) / (size * element.line_height)));
                if (lines.size() > std::max<std::size_t>(fit, 1)) {
                    warn("elements[" + std::to_string(e) + "]: the text does not fit its box; " +
                         std::to_string(lines.size() - std::max<std::size_t>(fit, 1)) +
                         " line(s) are cut");
                    lines.resize(std::max<std::size_t>(fit, 1));
                }
                parse_color(element.fill_color.value_or("#000000"), r, g, b);
                painter.SetColor(r, g, b);
                const double top = page_h - pt(element.y);
                for (std::size_t l = 0; l < lines.size(); ++l) {
                    double width = 0;
                    for (const auto& run : lines[l]) {
                        width += run.width;
                    }
                    double x = pt(element.x);
                    if (element.align == Align::kCenter) {
                        x += (box_w - width) / 2;
                    } else if (element.align == Align::kRight) {
                        x += box_w - width;
                    }
                    // Baseline: the line's box top minus the ascent (about 0.8 of the size).
                    const double baseline =
                        top - static_cast<double>(l) * size * element.line_height - size * 0.85;
                    if (element.overflow == Overflow::kClip) {
                        painter.Save();
                        painter.SetClipRect(pt(element.x), page_h - pt(element.y + element.height),
                                            box_w, box_h);
                    }
                    for (const auto& run : lines[l]) {
                        PdfFont* f = document.font(run.face);
                        f->SetFontSize(static_cast<float>(size));
                        painter.SetFont(f);
                        const std::string utf8 = encode_utf8(run.text);
                        painter.DrawText(
                            x, baseline,
                            PdfString(reinterpret_cast<const pdf_utf8*>(utf8.c_str())));
                        x += run.width;
                    }
                    if (element.overflow == Overflow::kClip) {
                        painter.Restore();
                    }
                }
            }
        } catch (...) {
            painter.FinishPage();  // PoDoFo insists, even on the way out
            throw;
        }
        painter.FinishPage();
    }
    PdfRefCountedBuffer buffer;
    PdfOutputDevice device(&buffer);
    document.doc().Write(&device);
    out.bytes.assign(buffer.GetBuffer(), device.GetLength());
    out.pages = static_cast<int>(items.size());
    return out;
}

}  // namespace riveredge::print
