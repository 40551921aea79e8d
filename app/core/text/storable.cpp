#include "core/text/storable.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace riveredge::core {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the whole UTF-8 character at `at`, or 0 where none begins.
std::size_t character_at(std::string_view text, std::size_t at) {
    const auto lead = static_cast<unsigned char>(text[at]);
    std::size_t length = 0;
    unsigned min = 0;
    unsigned point = 0;
    if (lead > 0 && lead < 0x80) {
        return 1;
    }
    if ((lead & 0xE0) == 0xC0) {
        length = 2, min = 0x80, point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, min = 0x800, point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, min = 0x10000, point = lead & 0x07;
    } else {
        return 0;  // NUL, a continuation byte, or no lead byte at all
    }
    if (at + length > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        const auto next = static_cast<unsigned char>(text[at + k]);
        if ((next & 0xC0) != 0x80) {
            return 0;
        }
        point = (point << 6) | (next & 0x3F);
    }
    // Overlong forms, surrogates and points past U+10FFFF are not UTF-8 either.
    if (point < min || (point >= 0xD800 && point <= 0xDFFF) || point > 0x10FFFF) {
        return 0;
    }
    return length;
}

}  // namespace

std::string storable_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t at = 0; at < text.size();) {
        if (const auto length = character_at(text, at); length > 0) {
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
