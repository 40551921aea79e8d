#include "core/json/text.hpp"

#include <boost/json/serialize.hpp>

#include <array>
#include <charconv>
#include <cmath>

namespace riveredge::core {
namespace {

void write(const boost::json::value& value, std::string& out) {
    switch (value.kind()) {
        case boost::json::kind::object: {
            out.push_back('{');
            bool first = true;
            for (const auto& member : value.get_object()) {
                if (!first) {
                    out.push_back(',');
                }
                first = false;
                out += boost::json::serialize(boost::json::string_view(member.key()));
                out.push_back(':');
                write(member.value(), out);
            }
            out.push_back('}');
            return;
        }
        case boost::json::kind::array: {
            out.push_back('[');
            bool first = true;
            for (const auto& item : value.get_array()) {
                if (!first) {
                    out.push_back(',');
                }
                first = false;
                write(item, out);
            }
            out.push_back(']');
            return;
        }
        case boost::json::kind::double_: {
            const double number = value.get_double();
            if (!std::isfinite(number)) {
                out += "null";  // JSON has no NaN or infinity
                return;
            }
            std::array<char, 32> buffer{};
            const auto [end, ec] =
                std::to_chars(buffer.data(), buffer.data() + buffer.size(), number);
            out.append(buffer.data(), ec == std::errc() ? end : buffer.data());
            return;
        }
        default:
            out += boost::json::serialize(value);
    }
}

}  // namespace

std::string to_json_text(const boost::json::value& value) {
    std::string out;
    write(value, out);
    return out;
}

}  // namespace riveredge::core
