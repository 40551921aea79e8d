#include "core/json/text.hpp"

#include "core/json/separated.hpp"

#include <boost/json/serialize.hpp>

#include <array>
#include <charconv>
#include <cmath>

namespace riveredge::core {
namespace {

void write(const boost::json::value& value, std::string& out) {
    switch (value.kind()) {
        case boost::json::kind::object:
            json_detail::write_separated(
                value.get_object(), '{', '}', out,
                [](const boost::json::key_value_pair& member, std::string& text) {
                    text += boost::json::serialize(boost::json::string_view(member.key()));
                    text.push_back(':');
                    write(member.value(), text);
                });
            return;
        case boost::json::kind::array:
            json_detail::write_separated(value.get_array(), '[', ']', out, write);
            return;
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
