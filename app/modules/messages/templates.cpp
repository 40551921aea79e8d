#include "modules/messages/templates.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>

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
// so a short template and a long list could keep a thread busy for good, with or without output.
// Before rendering, (list items + 1) ^ (section depth) must stay within this; the text is capped
// as it grows.
constexpr double kMaxSectionWork = 1e6;
constexpr std::size_t kMaxRendered = 1024 * 1024;

// How deep sections nest (the {{ }} delimiters; templates may not change them).
int section_depth(const std::string& source) {
    int depth = 0;
    int deepest = 0;
    for (auto at = source.find("{{"); at != std::string::npos && at + 2 < source.size();
         at = source.find("{{", at + 2)) {
        const char kind = source[at + 2];
        if (kind == '#' || kind == '^') {
            deepest = std::max(deepest, ++depth);
        } else if (kind == '/') {
            depth = std::max(0, depth - 1);
        }
    }
    return deepest;
}

std::size_t list_items(const boost::json::value& value) {
    std::size_t count = 0;
    if (value.is_array()) {
        count += value.get_array().size();
        for (const auto& item : value.get_array()) {
            count += list_items(item);
        }
    } else if (value.is_object()) {
        for (const auto& entry : value.get_object()) {
            count += list_items(entry.value());
        }
    }
    return count;
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
    if (source.find("{{=") != std::string::npos) {
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
    if (source.find("{{=") != std::string::npos) {
        throw std::invalid_argument("templates keep the {{ }} delimiters");
    }
    mustache::mustache compiled(source);
    if (!compiled.is_valid()) {
        throw std::invalid_argument(compiled.error_message());
    }
    if (std::pow(static_cast<double>(list_items(variables) + 1), section_depth(source)) >
        kMaxSectionWork) {
        throw std::invalid_argument(
            "the template's nested sections over these lists would render too much");
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
