#pragma once

// ScriptRunner: runs untrusted JavaScript (Duktape) under enforced limits. Used by the scripts
// module's routes and functions, and by other modules (schedules, approval script tasks).
//
// Each run is a separate `riveredge-script-worker` process: the Debian build of Duktape has no
// execution-timeout hook, so only a process can be stopped reliably at a deadline. The worker
// caps the engine heap exactly; the runner enforces the wall clock and the output size.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::scripts {

struct ScriptLimits {
    std::chrono::milliseconds timeout{2000};
    std::size_t memory_bytes = std::size_t{32} * 1024 * 1024;
    /// The JSON result.
    std::size_t output_bytes = std::size_t{256} * 1024;
    /// All console lines together; later lines are dropped and `console_truncated` set.
    std::size_t console_bytes = std::size_t{32} * 1024;
    int http_calls = 20;
};

struct ScriptRequest {
    std::string code;
    boost::json::value arguments = boost::json::object{};
    /// What the script sees as `ctx` (tenant_id, run_id ...), JSON only.
    boost::json::object context;
    /// Hosts `ctx.http` may reach ("api.example.com", "*.example.com"); empty: ctx.http is off.
    std::vector<std::string> http_allow_list;
    /// The deployment's outbound policy (`core::OutboundPolicy::to_text`), which ctx.http calls
    /// also pass; empty: public addresses on the default ports only.
    std::string outbound_policy;
    ScriptLimits limits;
};

enum class ScriptStatus {
    kSucceeded,
    kFailed,          // the script threw, or did not define main
    kSyntaxError,     // did not compile
    kTimedOut,        // stopped at the wall-clock limit
    kMemoryExceeded,  // the heap budget refused an allocation
    kOutputExceeded,  // the result or the worker's output was over its cap
};

const char* to_string(ScriptStatus status);

struct ScriptError {
    std::string message;
    std::optional<int> line;
    std::optional<std::string> stack;
};

struct ScriptOutcome {
    ScriptStatus status = ScriptStatus::kFailed;
    boost::json::value result;
    /// [{level, message}] in order.
    boost::json::array console;
    bool console_truncated = false;
    std::optional<ScriptError> error;
    std::chrono::milliseconds duration{0};
    /// Peak engine heap.
    std::size_t memory_bytes = 0;

    /// {status, result, console, console_truncated, error, duration_ms, memory_bytes}.
    boost::json::object to_json() const;
};

struct SyntaxCheck {
    bool valid = false;
    /// Duktape reports the line of a syntax error, not the column.
    std::optional<ScriptError> error;
};

class ScriptRunner {
public:
    /// `worker_path`: the riveredge-script-worker executable.
    explicit ScriptRunner(std::string worker_path);

    /// Runs `main(args, ctx)`. Never throws for anything the script does; throws
    /// `std::runtime_error` only when the worker cannot be started.
    ScriptOutcome run(const ScriptRequest& request) const;

    /// Compiles without running.
    SyntaxCheck validate(const std::string& code) const;

private:
    ScriptOutcome execute(const boost::json::object& worker_request,
                          const ScriptLimits& limits) const;

    std::string worker_path_;
};

/// Where the worker is by default: next to the running executable.
std::string default_worker_path();

}  // namespace riveredge::scripts
