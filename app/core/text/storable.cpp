#include "core/text/storable.hpp"

#include "core/text/utf8.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace riveredge::core {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

std::string storable_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t at = 0; at < text.size();) {
        // A NUL is a character, but not one PostgreSQL stores.
        if (const auto length = text[at] == '\0' ? 0 : utf8_at(text, at).length; length > 0) {
            out.append(text.substr(at, length));
            at += length;
        } else {
            out.append(kReplacement);
            ++at;
        }
    }
    return out;
}

boost::json::value storable_json(const boost::json::value& value) {
    switch (value.kind()) {
        case boost::json::kind::string:
            return boost::json::value(storable_text(value.get_string()));
        case boost::json::kind::array: {
            boost::json::array out;
            out.reserve(value.get_array().size());
            for (const auto& item : value.get_array()) {
                out.push_back(storable_json(item));
            }
            return out;
        }
        case boost::json::kind::object: {
            boost::json::object out;
            for (const auto& [key, member] : value.get_object()) {
                out[storable_text(key)] = storable_json(member);
            }
            return out;
        }
        default:
            return value;
    }
}

}  // namespace riveredge::core
