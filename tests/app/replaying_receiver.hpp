#pragma once

// An HTTP receiver that keeps its answer per Idempotency-Key, as payment APIs do: a key it has
// answered gets that answer again. The first call it gets fails with a 500, every later new key
// succeeds, so a retry only gets through under a key of its own. It records each key it is sent.

#include <inngest/http_server.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace riveredge_test {

class ReplayingReceiver {
public:
    explicit ReplayingReceiver(std::string body = "{}") : body_(std::move(body)) {
        inngest::HttpServerOptions options;
        options.port = 0;
        options.routes =
            [this](const inngest::HttpRequest& request) -> std::optional<inngest::HttpResponse> {
            std::lock_guard lock(mutex_);
            const std::string key(request.header("Idempotency-Key"));
            keys_.push_back(key);
            const int status =
                answers_.try_emplace(key, answers_.empty() ? 500 : 200).first->second;
            return inngest::HttpResponse{status, {}, body_};
        };
        server_ = std::make_unique<inngest::HttpServer>(options);
        server_->start();
    }
    ReplayingReceiver(const ReplayingReceiver&) = delete;
    ReplayingReceiver& operator=(const ReplayingReceiver&) = delete;

    int port() const { return server_->port(); }
    /// Every key sent, in order of arrival.
    std::vector<std::string> keys() const {
        std::lock_guard lock(mutex_);
        return keys_;
    }
    /// How many different keys it has answered.
    std::size_t answered() const {
        std::lock_guard lock(mutex_);
        return answers_.size();
    }

private:
    std::string body_;
    mutable std::mutex mutex_;
    std::vector<std::string> keys_;
    std::map<std::string, int> answers_;
    std::unique_ptr<inngest::HttpServer> server_;  // last: it stops before what it calls goes
};

}  // namespace riveredge_test
