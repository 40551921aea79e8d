#include "support/fake_inngest_api.hpp"

#include <inngest/inngest.hpp>

#include <boost/json.hpp>

namespace inngest_test {

struct FakeInngestApi::Server {
    explicit Server(FakeInngestApi& owner)
        : http({.host = "127.0.0.1",
                .port = 0,
                .routes = [&owner](const inngest::HttpRequest& request)
                    -> std::optional<inngest::HttpResponse> {
                    return owner.answer(request);
                }}) {}

    inngest::HttpServer http;
};

FakeInngestApi::FakeInngestApi() : server_(std::make_unique<Server>(*this)) {
    server_->http.start();
}

FakeInngestApi::~FakeInngestApi() {
    server_->http.stop(std::chrono::milliseconds(1000));
}

std::string FakeInngestApi::origin() const {
    return "http://127.0.0.1:" + std::to_string(server_->http.port());
}

std::vector<inngest::HttpRequest> FakeInngestApi::requests() const {
    const std::lock_guard lock(mutex_);
    return requests_;
}

void FakeInngestApi::set_register_status(int status) {
    const std::lock_guard lock(mutex_);
    register_status_ = status;
}

void FakeInngestApi::reset_event_ids() {
    const std::lock_guard lock(mutex_);
    next_event_id_ = 0;
}

void FakeInngestApi::fail_next_sends(int count, int status) {
    const std::lock_guard lock(mutex_);
    failing_sends_ = count;
    failing_status_ = status;
}

void FakeInngestApi::set_run_state(const std::string& run_id,
                                   std::string batch_json,
                                   std::string actions_json) {
    const std::lock_guard lock(mutex_);
    run_state_[run_id] = {std::move(batch_json), std::move(actions_json)};
}

inngest::HttpResponse FakeInngestApi::answer(const inngest::HttpRequest& request) {
    const std::lock_guard lock(mutex_);
    requests_.push_back(request);
    inngest::HttpResponse response;
    response.headers = {{"Content-Type", "application/json"}};
    if (request.method == "POST" && request.path.starts_with("/e/")) {
        if (failing_sends_ > 0) {
            --failing_sends_;
            response.status = failing_status_;
            response.body =
                R"({"error":"injected failure","status":)" + std::to_string(failing_status_) + "}";
            return response;
        }
        boost::system::error_code ec;
        const auto body = boost::json::parse(request.body, ec);
        if (ec) {
            response.status = 400;
            response.body = R"({"error":"invalid JSON","status":400})";
            return response;
        }
        const std::size_t count = body.is_array() ? body.get_array().size() : 1;
        boost::json::array ids;
        for (std::size_t i = 0; i < count; ++i) {
            ids.emplace_back("fixture-event-" + std::to_string(next_event_id_++));
        }
        response.body = boost::json::serialize(boost::json::object{{"ids", ids}, {"status", 200}});
        return response;
    }
    if (request.method == "POST" && request.path == "/fn/register") {
        response.status = register_status_;
        response.body = register_status_ == 200
                            ? R"({"ok":true,"modified":true,"app_id":"fake","sync_id":"fake"})"
                            : R"({"error":"registration rejected by the fake","status":400})";
        return response;
    }
    constexpr std::string_view kRuns = "/v0/runs/";
    if (request.method == "GET" && request.path.starts_with(kRuns)) {
        const std::string rest = request.path.substr(kRuns.size());
        const std::size_t slash = rest.find('/');
        const auto it = run_state_.find(rest.substr(0, slash));
        if (it != run_state_.end() && slash != std::string::npos) {
            const std::string what = rest.substr(slash + 1);
            if (what == "batch" || what == "actions") {
                response.body = what == "batch" ? it->second.first : it->second.second;
                return response;
            }
        }
        response.status = 410;
        response.body = R"({"error":"runtime state is no longer available","status":410})";
        return response;
    }
    response.status = 404;
    response.body = R"({"error":"not found"})";
    return response;
}

}  // namespace inngest_test
