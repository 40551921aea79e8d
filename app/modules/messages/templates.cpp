#include "modules/messages/templates.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string_view>

#include <kainjow/mustache.hpp>

namespace riveredge::messages {
namespace {

namespace mustache = kainjow::mustache;

mustache::data to_data(const boost::json::value& value) {
    switch (value.kind()) {
        case boost::json::kind::object: {
            mustache::data object{mustache::data::type::object};
            for (const auto& entry : value.get_object()) {
                object.set(std::string(entry.key()), to_data(entry.value()));
            }
            return object;
        }
        case boost::json::kind::array: {
            mustache::data list{mustache::data::type::list};
            for (const auto& item : value.get_array()) {
                list.push_back(to_data(item));
            }
            return list;
        }
        case boost::json::kind::string:
            return mustache::data(std::string(value.get_string()));
        case boost::json::kind::bool_:
            return value.get_bool() ? mustache::data(mustache::data::type::bool_true)
                                    : mustache::data(mustache::data::type::bool_false);
        case boost::json::kind::null:
            return mustache::data(std::string());
        case boost::json::kind::int64:
            return mustache::data(std::to_string(value.get_int64()));
        case boost::json::kind::uint64:
            return mustache::data(std::to_string(value.get_uint64()));
        default: {
            // Shortest round-trip form, as people write numbers (1234.5, not 1.2345E3).
            std::array<char, 32> text{};
            const auto result =
                std::to_chars(text.data(), text.data() + text.size(), value.get_double());
            return mustache::data(std::string(text.data(), result.ptr));
        }
    }
}

// kainjow looks a partial ({{>name}}) up among the variables and renders a string variable as a
// template: a value could expand other variables, or itself without end (a stack overflow,
// found by fuzzing). Messages have no partials, so `{{>name}}` renders nothing.
class NoPartials : public mustache::context<std::string> {
public:
    using mustache::context<std::string>::context;
    const mustache::data* get_partial(const std::string&) const override { return nullptr; }
};

// Sections over lists multiply: {{#a}}{{#a}}...{{/a}}{{/a}} walks the list once per item of it,
// so a short template and a long list could keep a thread busy for good, or build a huge line
// (kainjow holds a line until its newline). Before rendering, each piece of the template runs at
// most (list items + 1) ^ (section depth) times and writes at most its text and its longest
// value per variable tag; that product must stay within kMaxEstimate. The text is also capped
// as it grows.
constexpr double kMaxEstimate = 4.0 * 1024 * 1024;
constexpr std::size_t kMaxRendered = 1024 * 1024;

struct TemplateShape {
    int depth = 0;
    int variable_tags = 0;
    bool sets_delimiters = false;
};

// The tags of `source` as kainjow reads them (a tag's text is trimmed: {{ #a }} is a section).
TemplateShape shape_of(const std::string& source) {
    TemplateShape shape;
    int depth = 0;
    for (auto at = source.find("{{"); at != std::string::npos;) {
        const auto end = source.find("}}", at + 2);
        if (end == std::string::npos) {
            break;
        }
        const auto tag = std::string_view(source).substr(at + 2, end - at - 2);
        const auto first = tag.find_first_not_of(" \t\r\n");
        const char kind = first == std::string_view::npos ? '\0' : tag[first];
        if (kind == '#' || kind == '^') {
            shape.depth = std::max(shape.depth, ++depth);
        } else if (kind == '/') {
            depth = std::max(0, depth - 1);
        } else if (kind == '=') {
            shape.sets_delimiters = true;
        } else if (kind != '!' && kind != '>') {
            ++shape.variable_tags;
        }
        at = source.find("{{", end + 2);
    }
    return shape;
}

struct DataShape {
    std::size_t list_items = 0;
    std::size_t longest_value = 32;  // a number's text
};

void measure(const boost::json::value& value, DataShape& shape) {
    if (value.is_array()) {
        shape.list_items += value.get_array().size();
        for (const auto& item : value.get_array()) {
            measure(item, shape);
        }
    } else if (value.is_object()) {
        for (const auto& entry : value.get_object()) {
            measure(entry.value(), shape);
        }
    } else if (value.is_string()) {
        shape.longest_value = std::max(shape.longest_value, value.get_string().size());
    }
}

// Where kainjow writes the text: refuses to grow past kMaxRendered.
struct BoundedText {
    std::string text;
    BoundedText& operator<<(const std::string& piece) {
        if (text.size() + piece.size() > kMaxRendered) {
            throw std::invalid_argument("the rendered text would be longer than " +
                                        std::to_string(kMaxRendered) + " bytes");
        }
        text += piece;
        return *this;
    }
};

}  // namespace

std::optional<std::string> template_error(const std::string& source) {
    if (shape_of(source).sets_delimiters) {
        return "templates keep the {{ }} delimiters";
    }
    mustache::mustache compiled(source);
    if (!compiled.is_valid()) {
        return compiled.error_message();
    }
    return std::nullopt;
}

std::string render_template(const std::string& source,
                            const boost::json::object& variables,
                            bool html) {
    const auto shape = shape_of(source);
    if (shape.sets_delimiters) {
        throw std::invalid_argument("templates keep the {{ }} delimiters");
    }
    mustache::mustache compiled(source);
    if (!compiled.is_valid()) {
        throw std::invalid_argument(compiled.error_message());
    }
    DataShape data_shape;
    measure(variables, data_shape);
    const double rounds = std::pow(static_cast<double>(data_shape.list_items + 1), shape.depth);
    const double per_round =
        static_cast<double>(source.size()) +
        static_cast<double>(shape.variable_tags) * static_cast<double>(data_shape.longest_value);
    if (rounds * per_round > kMaxEstimate) {
        throw std::invalid_argument(
            "the template's sections over these lists would render too much");
    }
    if (!html) {
        compiled.set_custom_escape([](const std::string& text) { return text; });
    }
    const mustache::data data = to_data(variables);
    NoPartials context(&data);
    BoundedText out;
    compiled.render(context, out);
    return std::move(out.text);
}

}  // namespace riveredge::messages
