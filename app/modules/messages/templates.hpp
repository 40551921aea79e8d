#pragma once

// Logic-less templates (Mustache) for message subjects and bodies.

#include <boost/json/object.hpp>

#include <optional>
#include <string>

namespace riveredge::messages {

/// The error of a template that does not compile, or nullopt.
std::optional<std::string> template_error(const std::string& source);

/// Renders `source` with `variables`. `html` escapes values for HTML; plain text does not.
/// Throws `std::invalid_argument` for a template that does not compile, or whose sections over
/// the variables' lists would render too much (more than 1 MiB, or too many rounds).
std::string render_template(const std::string& source,
                            const boost::json::object& variables,
                            bool html);

}  // namespace riveredge::messages
