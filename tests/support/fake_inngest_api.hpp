#pragma once

// FakeInngestApi: the Inngest server itself cannot run on these machines, so tests that need
// its APIs (event ingest, function registration) talk to this named fake over real loopback
// HTTP. It records every request and answers the way the protocol digest (§7.2, §12) says.

#include <inngest/serve.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace inngest_test {

class FakeInngestApi {
public:
    FakeInngestApi();
    ~FakeInngestApi();

    /// `http://127.0.0.1:<port>`.
    std::string origin() const;
    /// Requests received so far (copies).
    std::vector<inngest::HttpRequest> requests() const;
    /// The status the next `/fn/register` calls answer with (default 200).
    void set_register_status(int status);
    /// Restart event ids at `fixture-event-0`.
    void reset_event_ids();
    /// The next `count` event sends answer `status` (with an error body) before succeeding.
    void fail_next_sends(int count, int status);
    /// What `GET /v0/runs/{run_id}/batch` and `/actions` answer (protocol §11).
    void set_run_state(const std::string& run_id, std::string batch_json, std::string actions_json);

private:
    inngest::HttpResponse answer(const inngest::HttpRequest& request);

    struct Server;
    std::unique_ptr<Server> server_;
    mutable std::mutex mutex_;
    std::vector<inngest::HttpRequest> requests_;
    int register_status_ = 200;
    int next_event_id_ = 0;
    int failing_sends_ = 0;
    int failing_status_ = 500;
    std::map<std::string, std::pair<std::string, std::string>> run_state_;
};

}  // namespace inngest_test
