#include "core/module.hpp"

#include "core/json/fields.hpp"

#include <boost/json/serialize.hpp>

namespace riveredge::core {
namespace {

std::string failure_text(const boost::json::object& run) {
    std::string text =
        "script run " + boost::json::serialize(run.at("id")) + " " + string_field(run, "status");
    if (const auto* error = run.if_contains("error"); error != nullptr && error->is_object()) {
        text += ": " + string_field(error->as_object(), "message");
    }
    return text;
}

}  // namespace

ScriptRunFailed::ScriptRunFailed(boost::json::object run)
    : std::runtime_error(failure_text(run)), run_(std::move(run)) {}

boost::json::object StoredScripts::run_to_success(const TenantId& tenant,
                                                  const std::string& runner,
                                                  std::int64_t script_id,
                                                  const boost::json::value& arguments,
                                                  const std::string& trigger,
                                                  const std::string& key) {
    boost::json::object request{{"mode", "sync"}};
    if (!arguments.is_null()) {
        request["arguments"] = arguments;
    }
    auto run = start_run(Principal{tenant, runner, {}}, script_id, request, trigger, key);
    if (string_field(run, "status") != "succeeded") {
        throw ScriptRunFailed(std::move(run));
    }
    return run;
}

}  // namespace riveredge::core
