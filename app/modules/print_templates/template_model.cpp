#include "modules/print_templates/template_model.hpp"

#include "core/errors.hpp"
#include "core/json/request_fields.hpp"
#include "modules/print_templates/text_binding.hpp"

#include <map>

namespace riveredge::print {
namespace {

namespace json = boost::json;

// Named page sizes in mm (portrait); labels give their own width and height.
const std::map<std::string, Page>& page_sizes() {
    static const std::map<std::string, Page> sizes{{"A3", {297, 420}}, {"A4", {210, 297}},
                                                   {"A5", {148, 210}}, {"A6", {105, 148}},
                                                   {"B5", {176, 250}}, {"Letter", {215.9, 279.4}}};
    return sizes;
}

class Reader {
public:
    Reader(const json::object& object, std::string at, json::object& problems)
        : object_(object), at_(std::move(at)), problems_(problems) {}

    double number(const char* key, double fallback, double low, double high, bool required) {
        const auto* value = object_.if_contains(key);
        if (value == nullptr || value->is_null()) {
            if (required) {
                problem(key, "required");
            }
            return fallback;
        }
        if (!value->is_number() || value->to_number<double>() < low ||
            value->to_number<double>() > high) {
            problem(key, "a number from " + trim(low) + " to " + trim(high));
            return fallback;
        }
        return value->to_number<double>();
    }

    std::optional<std::string> text(const char* key, std::size_t max) {
        const auto* value = object_.if_contains(key);
        if (value == nullptr || value->is_null()) {
            return std::nullopt;
        }
        if (!value->is_string() || value->get_string().size() > max) {
            problem(key, "a string of at most " + std::to_string(max) + " bytes");
            return std::nullopt;
        }
        return std::string(value->get_string());
    }

    std::optional<std::string> color(const char* key) {
        auto value = text(key, 7);
        if (value && (value->size() != 7 || (*value)[0] != '#' ||
                      value->find_first_not_of("0123456789abcdefABCDEF", 1) != std::string::npos)) {
            problem(key, "a colour #rrggbb");
            return std::nullopt;
        }
        return value;
    }

    template <class Enum>
    Enum choice(const char* key, const std::map<std::string, Enum>& options, Enum fallback) {
        const auto value = text(key, 20);
        if (!value) {
            return fallback;
        }
        const auto found = options.find(*value);
        if (found == options.end()) {
            std::string names;
            for (const auto& [name, unused] : options) {
                names += (names.empty() ? "" : ", ") + name;
            }
            problem(key, "one of " + names);
            return fallback;
        }
        return found->second;
    }

    void problem(const std::string& key, const std::string& message) {
        problems_[at_ + key] = message;
    }

private:
    static std::string trim(double value) {
        auto text = std::to_string(value);
        text.erase(text.find_last_not_of('0') + 1);
        if (!text.empty() && text.back() == '.') {
            text.pop_back();
        }
        return text;
    }

    const json::object& object_;
    std::string at_;
    json::object& problems_;
};

void parse_table(const json::object& object,
                 const std::string& at,
                 Element& element,
                 json::object& problems) {
    Reader reader(object, at, problems);
    const auto rows = reader.text("rows", 200);
    if (!rows || rows->empty()) {
        reader.problem("rows", "required: the data path of the rows' array");
    } else {
        element.rows = *rows;
    }
    element.header_fill = reader.color("header_fill");
    const auto* columns = object.if_contains("columns");
    if (columns == nullptr || !columns->is_array() || columns->get_array().empty() ||
        columns->get_array().size() > 30) {
        reader.problem("columns", "required: 1 to 30 columns {header, text, width, align}");
        return;
    }
    double total = 0;
    for (std::size_t c = 0; c < columns->get_array().size(); ++c) {
        const std::string column_at = at + "columns[" + std::to_string(c) + "].";
        const auto* column = columns->get_array()[c].if_object();
        if (column == nullptr) {
            problems[column_at.substr(0, column_at.size() - 1)] =
                "an object {header, text, width, align}";
            continue;
        }
        Reader cell(*column, column_at, problems);
        Column out;
        out.header = cell.text("header", 200).value_or("");
        const auto text = cell.text("text", 2000);
        if (!text) {
            cell.problem("text", "required: the cell's text, such as {{name}}");
        } else {
            out.text = *text;
        }
        out.width = cell.number("width", 20, 1, 2000, true);
        out.align = cell.choice<Align>(
            "align", {{"left", Align::kLeft}, {"center", Align::kCenter}, {"right", Align::kRight}},
            Align::kLeft);
        total += out.width;
        element.columns.push_back(std::move(out));
    }
    if (total > element.width + 0.001 && element.width > 0) {
        reader.problem("columns", "the columns are wider than the table");
    }
    if (const auto* subtotal = object.if_contains("subtotal");
        subtotal != nullptr && !subtotal->is_null()) {
        const auto* spec = subtotal->if_object();
        if (spec == nullptr) {
            reader.problem("subtotal", "an object {label, column, path, format}");
            return;
        }
        Reader sub(*spec, at + "subtotal.", problems);
        Subtotal out;
        out.label = sub.text("label", 100).value_or("");
        out.column = static_cast<std::size_t>(sub.number("column", 0, 0, 29, true));
        out.path = sub.text("path", 200).value_or("");
        out.format = sub.text("format", 50).value_or("number:2");
        if (out.path.empty()) {
            sub.problem("path", "required: the row field to add up");
        }
        if (out.column >= element.columns.size()) {
            sub.problem("column", "the index of a column");
        }
        try {
            bind_text("{{sum | " + out.format + "}}", json::value(json::object{{"sum", 1}}));
        } catch (const BindingError& error) {
            sub.problem("format", error.what());
        }
        element.subtotal = std::move(out);
    }
}

}  // namespace

PrintTemplate parse_template(const json::value& source) {
    json::object problems;
    PrintTemplate out;
    const auto* root = source.if_object();
    if (root == nullptr) {
        throw core::DomainError::validation(json::object{{"template", "a JSON object"}});
    }
    if (const auto* page = root->if_contains("page"); page == nullptr || !page->is_object()) {
        problems["page"] = "required: {size} (A4, A5, …) or {width, height} in mm";
    } else {
        Reader reader(page->get_object(), "page.", problems);
        if (const auto size = reader.text("size", 20)) {
            const auto found = page_sizes().find(*size);
            if (found == page_sizes().end()) {
                reader.problem("size", "A3, A4, A5, A6, B5 or Letter (or give width and height)");
            } else {
                out.page = found->second;
            }
            if (reader.text("orientation", 20) == std::optional<std::string>("landscape")) {
                std::swap(out.page.width_mm, out.page.height_mm);
            }
        } else {
            out.page.width_mm = reader.number("width", 210, 10, 2000, true);
            out.page.height_mm = reader.number("height", 297, 10, 2000, true);
        }
        // Margins: the printable area; element positions are measured from its top-left.
        if (const auto* margins = page->get_object().if_contains("margins");
            margins != nullptr && !margins->is_null()) {
            if (margins->is_number()) {
                const double all = margins->to_number<double>();
                out.page.margins = {all, all, all, all};
            } else if (margins->is_object()) {
                Reader margin(margins->get_object(), "page.margins.", problems);
                out.page.margins = {margin.number("top", 0, 0, 500, false),
                                    margin.number("right", 0, 0, 500, false),
                                    margin.number("bottom", 0, 0, 500, false),
                                    margin.number("left", 0, 0, 500, false)};
            } else {
                reader.problem("margins", "mm for all four sides, or {top, right, bottom, left}");
            }
            const auto& m = out.page.margins;
            if (m[0] < 0 || m[1] < 0 || m[2] < 0 || m[3] < 0 || m[1] + m[3] >= out.page.width_mm ||
                m[0] + m[2] >= out.page.height_mm) {
                reader.problem("margins", "non-negative, and leaving room on the page");
                out.page.margins = {0, 0, 0, 0};
            }
        }
    }
    int tables = 0;
    const auto* elements = root->if_contains("elements");
    if (elements == nullptr || !elements->is_array() || elements->get_array().size() > 2000) {
        problems["elements"] = "required: an array of at most 2000 elements";
    } else {
        const auto& list = elements->get_array();
        for (std::size_t i = 0; i < list.size(); ++i) {
            const std::string at = "elements[" + std::to_string(i) + "].";
            const auto* object = list[i].if_object();
            if (object == nullptr) {
                problems["elements[" + std::to_string(i) + "]"] = "an object";
                continue;
            }
            Reader reader(*object, at, problems);
            Element element;
            element.kind = reader.choice<ElementKind>("type",
                                                      {{"text", ElementKind::kText},
                                                       {"line", ElementKind::kLine},
                                                       {"box", ElementKind::kBox},
                                                       {"table", ElementKind::kTable},
                                                       {"image", ElementKind::kImage},
                                                       {"barcode", ElementKind::kBarcode}},
                                                      ElementKind::kText);
            if (!object->contains("type")) {
                reader.problem("type", "required: text, line, box, table, image or barcode");
            }
            // The printable area inside the margins; positions are checked against it, then
            // moved onto the page.
            const double w = out.page.width_mm - out.page.margins[1] - out.page.margins[3];
            const double h = out.page.height_mm - out.page.margins[0] - out.page.margins[2];
            element.x = reader.number("x", 0, 0, w, true);
            element.y = reader.number("y", 0, 0, h, true);
            if (element.kind == ElementKind::kLine) {
                element.x2 = reader.number("x2", 0, 0, w, true);
                element.y2 = reader.number("y2", 0, 0, h, true);
            } else {
                element.width = reader.number("width", 0, 0.1, w, true);
                element.height = reader.number("height", 0, 0.1, h, true);
                if (element.x + element.width > w + 0.001 ||
                    element.y + element.height > h + 0.001) {
                    reader.problem("width", "the element reaches beyond the printable area");
                }
            }
            if (element.kind == ElementKind::kTable) {
                if (++tables > 1) {
                    reader.problem("type", "one table per template (it flows over the pages)");
                }
                parse_table(*object, at, element, problems);
            }
            if (element.kind == ElementKind::kImage) {
                const auto src = reader.text("src", std::size_t{3} * 1024 * 1024);
                if (!src || (src->rfind("data:image/", 0) != 0 && src->rfind("{{", 0) != 0)) {
                    reader.problem("src",
                                   "required: a PNG or JPEG as data:image/png;base64,… or a "
                                   "{{path}} to one in the data");
                } else {
                    element.src = *src;
                }
            }
            if (element.kind == ElementKind::kBarcode) {
                element.symbology =
                    reader.choice<Symbology>("symbology",
                                             {{"qr", Symbology::kQr},
                                              {"code128", Symbology::kCode128},
                                              {"datamatrix", Symbology::kDataMatrix}},
                                             Symbology::kQr);
                const auto data = reader.text("data", 4000);
                if (!data || data->empty()) {
                    reader.problem("data",
                                   "required: what the barcode encodes, such as {{serial}}");
                } else {
                    element.data = *data;
                }
            }
            if (element.kind == ElementKind::kText || element.kind == ElementKind::kTable) {
                element.font_size = reader.number(
                    "font_size", element.kind == ElementKind::kTable ? 9 : 10, 4, 200, false);
                element.line_height = reader.number("line_height", 1.2, 0.8, 4, false);
            }
            if (element.kind == ElementKind::kText) {
                const auto text = reader.text("text", 20000);
                if (!text) {
                    reader.problem("text", "required: the text, with {{path}} placeholders");
                } else {
                    element.text = *text;
                }
                element.align = reader.choice<Align>(
                    "align",
                    {{"left", Align::kLeft}, {"center", Align::kCenter}, {"right", Align::kRight}},
                    Align::kLeft);
                element.overflow = reader.choice<Overflow>("overflow",
                                                           {{"wrap", Overflow::kWrap},
                                                            {"shrink", Overflow::kShrink},
                                                            {"clip", Overflow::kClip}},
                                                           Overflow::kWrap);
            }
            element.stroke_width = reader.number("stroke_width", 0.5, 0, 20, false);
            element.stroke_color = reader.color("stroke_color");
            element.fill_color = reader.color("fill_color");
            element.visible_if = reader.text("visible_if", 200);
            element.show_on = reader.choice<ShowOn>(
                "show_on",
                {{"all", ShowOn::kAll}, {"first", ShowOn::kFirst}, {"last", ShowOn::kLast}},
                ShowOn::kAll);
            if (element.kind == ElementKind::kTable && element.show_on != ShowOn::kAll) {
                reader.problem("show_on", "a table flows over every page of its document");
            }
            element.x += out.page.margins[3];
            element.x2 += out.page.margins[3];
            element.y += out.page.margins[0];
            element.y2 += out.page.margins[0];
            out.elements.push_back(std::move(element));
        }
    }
    core::refuse_if_any(problems);
    return out;
}

}  // namespace riveredge::print
