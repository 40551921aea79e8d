// Message templates (Mustache, app/modules/messages/templates.hpp): template_error, then
// render_template in HTML and in plain text.
//
// Input: the template, a newline, then JSON for the variables (an object; anything else means
// none). A template template_error accepts renders without throwing; one it refuses makes
// render_template throw std::invalid_argument, as documented.

#include "fuzz_target.hpp"
#include "modules/messages/templates.hpp"

#include <boost/json/parse.hpp>

#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view source_text;
    std::string_view variables_text;
    inngest::fuzz::split_once(inngest::fuzz::as_text(data, size), '\n', source_text,
                              variables_text);
    const std::string source(source_text);
    boost::system::error_code ec;
    const boost::json::value parsed = boost::json::parse(variables_text, ec);
    const boost::json::object none;
    const boost::json::object& variables = !ec && parsed.is_object() ? parsed.get_object() : none;

    const auto error = riveredge::messages::template_error(source);
    for (const bool html : {true, false}) {
        try {
            riveredge::messages::render_template(source, variables, html);
            FUZZ_CHECK(!error);
        } catch (const std::invalid_argument&) {
            FUZZ_CHECK(error.has_value());
        }
    }
    return 0;
}
