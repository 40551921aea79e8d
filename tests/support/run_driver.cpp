#include "support/run_driver.hpp"

#include "support/call_builder.hpp"
#include "transport/http_client.hpp"

namespace inngest_test {
namespace {

struct CallResult {
    int status = 0;
    boost::json::value body;
};

CallResult post(const std::string& url, const CallBuilder& call) {
    inngest::detail::OutboundRequest request;
    request.method = "POST";
    request.url = url + "?fnId=" + call.fn_slug + "&stepId=" + call.step_id;
    request.headers = {{"Content-Type", "application/json"}, {"X-Run-ID", call.run_id}};
    request.body = call.body();
    auto response = inngest::detail::send_http(request);
    if (!response) {
        return {0, boost::json::value(response.error().message)};
    }
    // Read as deep as anything the SDK may send (its replies nest a step's value two levels).
    boost::json::parse_options options;
    options.max_depth = 1024;
    boost::system::error_code ec;
    auto body = boost::json::parse(response->body, ec, {}, options);
    return {response->status, ec ? boost::json::value(response->body) : body};
}

}  // namespace

DrivenRun drive_run(const std::string& serve_url,
                    const std::string& fn_slug,
                    const boost::json::object& event,
                    const boost::json::value& wait_result,
                    int max_calls) {
    DrivenRun run;
    CallBuilder call;
    call.fn_slug = fn_slug;
    call.event = event;
    call.max_attempts = 3;
    std::vector<std::string> pending;  // planned step hashes still to run
    while (run.calls < max_calls) {
        call.step_id = pending.empty() ? "step" : pending.back();
        const CallResult result = post(serve_url, call);
        ++run.calls;
        if (result.status == 206 && result.body.is_array()) {
            bool retry_same = false;
            if (!pending.empty()) {
                pending.pop_back();
            }
            for (const auto& op_value : result.body.as_array()) {
                const auto& op = op_value.as_object();
                const std::string name(op.at("op").as_string());
                const std::string id(op.at("id").as_string());
                run.ops.push_back(name);
                if (name == "StepRun") {
                    call.steps[id] = boost::json::object{{"data", op.at("data")}};
                    call.stack.push_back(id);
                } else if (name == "StepFailed") {
                    call.steps[id] = boost::json::object{{"error", op.at("error")}};
                    call.stack.push_back(id);
                } else if (name == "StepError") {
                    retry_same = true;
                    pending.push_back(id);
                } else if (name == "StepPlanned") {
                    pending.insert(pending.begin(), id);
                    call.disable_immediate_execution = true;
                } else if (name == "WaitForEvent") {
                    call.steps[id] = wait_result;
                    call.stack.push_back(id);
                } else {  // Sleep, InvokeFunction (resolved as null)
                    call.steps[id] = nullptr;
                    call.stack.push_back(id);
                }
            }
            if (retry_same) {
                ++call.attempt;
            } else {
                call.attempt = 0;
            }
            if (pending.empty() && !retry_same) {
                call.disable_immediate_execution = false;
            }
            continue;
        }
        if (result.status >= 500 && call.attempt + 1 < call.max_attempts) {
            ++call.attempt;
            continue;
        }
        run.final_status = result.status;
        run.output = result.body;
        return run;
    }
    return run;
}

}  // namespace inngest_test
