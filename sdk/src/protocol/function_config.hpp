#pragma once

// Function options -> the sync JSON the server decodes (protocol §7.4), and their validation.

#include <inngest/function.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <memory>
#include <string_view>
#include <vector>

namespace inngest::detail {

/// Throws `ConfigError` naming the option when the server would reject the function.
void validate_function_options(const FunctionOptions& options);

/// `url` with `fnId` and `stepId=step` appended to its query.
std::string step_url(std::string_view serve_url, std::string_view slug);

/// One function's config as synced.
boost::json::object function_config(const Function& function, std::string_view serve_url);

/// Every function's config.
boost::json::array function_configs(const std::vector<std::unique_ptr<Function>>& functions,
                                    std::string_view serve_url);

/// Go duration syntax (h, m, s, ms only): for `batchEvents.timeout`.
std::string format_go_duration(Duration duration);

}  // namespace inngest::detail
