#include "support/call_builder.hpp"

#include "crypto/crypto.hpp"

#include <algorithm>

namespace inngest_test {
namespace {

boost::json::value sorted(const boost::json::value& value) {
    if (const auto* object = value.if_object()) {
        std::vector<std::string_view> keys;
        for (const auto& entry : *object) {
            keys.push_back(entry.key());
        }
        std::sort(keys.begin(), keys.end());
        boost::json::object out;
        for (const auto key : keys) {
            out[key] = sorted(object->at(key));
        }
        return out;
    }
    if (const auto* array = value.if_array()) {
        boost::json::array out;
        for (const auto& item : *array) {
            out.push_back(sorted(item));
        }
        return out;
    }
    return value;
}

}  // namespace

std::string step_hash(std::string_view id) {
    return inngest::detail::crypto::sha1_hex(id);
}

std::string canonical_json(const boost::json::value& value) {
    return boost::json::serialize(sorted(value));
}

CallBuilder& CallBuilder::memo(std::string_view user_id, boost::json::value value) {
    const std::string hash = step_hash(user_id);
    steps[hash] = std::move(value);
    stack.push_back(hash);
    return *this;
}

CallBuilder& CallBuilder::data(std::string_view user_id, boost::json::value result) {
    return memo(user_id, boost::json::object{{"data", std::move(result)}});
}

std::string CallBuilder::body() const {
    boost::json::array stack_json;
    for (const auto& id : stack) {
        stack_json.emplace_back(id);
    }
    boost::json::value root{
        {"ctx",
         {{"attempt", attempt},
          {"disable_immediate_execution", disable_immediate_execution},
          {"env", ""},
          {"fn_id", "00000000-0000-4000-8000-000000000000"},
          {"max_attempts", max_attempts},
          {"run_id", run_id},
          {"stack", {{"current", stack.size()}, {"stack", stack_json}}},
          {"step_id", "step"},
          {"use_api", false}}},
        {"event", event},
        {"events", events.empty() ? boost::json::array{event} : events},
        {"steps", steps},
        {"use_api", false},
        {"version", 2},
    };
    return canonical_json(root);
}

inngest::HttpRequest CallBuilder::request() const {
    inngest::HttpRequest request;
    request.method = "POST";
    request.path = "/api/inngest";
    request.query = "fnId=" + fn_slug + "&stepId=" + step_id;
    request.headers = {
        {"Content-Type", "application/json"}, {"X-Run-ID", run_id}, {"X-Inngest-Step-ID", step_id}};
    request.body = body();
    return request;
}

}  // namespace inngest_test
