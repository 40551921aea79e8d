#include "modules/messages/templates.hpp"

#include <array>
#include <charconv>
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

}  // namespace

std::optional<std::string> template_error(const std::string& source) {
    mustache::mustache compiled(source);
    if (!compiled.is_valid()) {
        return compiled.error_message();
    }
    return std::nullopt;
}

std::string render_template(const std::string& source,
                            const boost::json::object& variables,
                            bool html) {
    mustache::mustache compiled(source);
    if (!compiled.is_valid()) {
        throw std::invalid_argument(compiled.error_message());
    }
    if (!html) {
        compiled.set_custom_escape([](const std::string& text) { return text; });
    }
    const mustache::data data = to_data(variables);
    NoPartials context(&data);
    return compiled.render(context);
}

}  // namespace riveredge::messages
