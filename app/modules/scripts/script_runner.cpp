#include "modules/scripts/script_runner.hpp"

#include "core/json/depth.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace riveredge::scripts {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// Time for the worker process to start before the script's own clock matters.
constexpr std::chrono::milliseconds kStartupAllowance{300};
// The outcome's envelope around the result and console lines.
constexpr std::size_t kEnvelopeBytes = 64 * 1024;

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = -1;
    }

private:
    int fd_;
};

ScriptStatus status_from(const std::string& text) {
    if (text == "succeeded")
        return ScriptStatus::kSucceeded;
    if (text == "syntax_error")
        return ScriptStatus::kSyntaxError;
    if (text == "memory_exceeded")
        return ScriptStatus::kMemoryExceeded;
    if (text == "output_exceeded")
        return ScriptStatus::kOutputExceeded;
    if (text == "timed_out")
        return ScriptStatus::kTimedOut;
    return ScriptStatus::kFailed;
}

ScriptOutcome failure(ScriptStatus status, std::string message) {
    ScriptOutcome outcome;
    outcome.status = status;
    outcome.error = ScriptError{std::move(message), std::nullopt, std::nullopt};
    return outcome;
}

std::optional<ScriptError> error_from(const json::value* value) {
    if (value == nullptr || !value->is_object()) {
        return std::nullopt;
    }
    const auto& object = value->as_object();
    ScriptError error;
    if (const auto* message = object.if_contains("message"); message && message->is_string()) {
        error.message = message->as_string();
    }
    if (const auto* line = object.if_contains("line"); line && line->is_int64()) {
        error.line = static_cast<int>(line->as_int64());
    }
    if (const auto* stack = object.if_contains("stack"); stack && stack->is_string()) {
        error.stack = std::string(stack->as_string());
    }
    return error;
}

}  // namespace

const char* to_string(ScriptStatus status) {
    switch (status) {
        case ScriptStatus::kSucceeded:
            return "succeeded";
        case ScriptStatus::kFailed:
            return "failed";
        case ScriptStatus::kSyntaxError:
            return "syntax_error";
        case ScriptStatus::kTimedOut:
            return "timed_out";
        case ScriptStatus::kMemoryExceeded:
            return "memory_exceeded";
        case ScriptStatus::kOutputExceeded:
            return "output_exceeded";
    }
    return "failed";
}

boost::json::object ScriptOutcome::to_json() const {
    json::object out{{"status", to_string(status)},
                     {"result", result},
                     {"console", console},
                     {"console_truncated", console_truncated},
                     {"duration_ms", static_cast<std::int64_t>(duration.count())},
                     {"memory_bytes", memory_bytes}};
    if (error) {
        json::object e{{"message", error->message}};
        e["line"] = error->line ? json::value(*error->line) : json::value(nullptr);
        e["stack"] = error->stack ? json::value(*error->stack) : json::value(nullptr);
        out["error"] = std::move(e);
    } else {
        out["error"] = nullptr;
    }
    return out;
}

ScriptRunner::ScriptRunner(std::string worker_path) : worker_path_(std::move(worker_path)) {}

ScriptOutcome ScriptRunner::run(const ScriptRequest& request) const {
    json::array allow_list;
    for (const auto& host : request.http_allow_list) {
        allow_list.emplace_back(host);
    }
    const auto& limits = request.limits;
    const json::object worker_request{
        {"mode", "run"},
        {"code", request.code},
        {"arguments", request.arguments},
        {"context", request.context},
        {"http_allow_list", std::move(allow_list)},
        {"outbound_policy", request.outbound_policy},
        {"limits",
         {{"timeout_ms", static_cast<std::int64_t>(limits.timeout.count())},
          {"memory_bytes", limits.memory_bytes},
          {"output_bytes", limits.output_bytes},
          {"console_bytes", limits.console_bytes},
          {"http_calls", limits.http_calls}}}};
    return execute(worker_request, limits);
}

SyntaxCheck ScriptRunner::validate(const std::string& code) const {
    ScriptLimits limits;
    limits.timeout = std::chrono::milliseconds(2000);
    const auto outcome = execute(
        json::object{{"mode", "validate"},
                     {"code", code},
                     {"limits", {{"timeout_ms", 2000}, {"memory_bytes", limits.memory_bytes}}}},
        limits);
    if (outcome.status == ScriptStatus::kSyntaxError) {
        return SyntaxCheck{false, outcome.error};
    }
    if (outcome.status != ScriptStatus::kSucceeded) {
        // Compiling ran out of memory or time: not a valid script either.
        return SyntaxCheck{false, outcome.error};
    }
    return SyntaxCheck{true, std::nullopt};
}

ScriptOutcome ScriptRunner::execute(const boost::json::object& worker_request,
                                    const ScriptLimits& limits) const {
    int sockets[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
        throw std::runtime_error(std::string("script worker: socketpair: ") + std::strerror(errno));
    }
    Fd ours(sockets[0]);
    Fd theirs(sockets[1]);
    Fd null_device(::open("/dev/null", O_WRONLY | O_CLOEXEC));

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, theirs.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, theirs.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, null_device.get(), STDERR_FILENO);
    // Whatever else is open here (a listener or a client socket some library opened without
    // close-on-exec) stays out of the sandbox.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // A fresh process group, so the kill at the deadline reaches anything the worker started.
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    char* argv[] = {const_cast<char*>(worker_path_.c_str()), nullptr};
    char* envp[] = {nullptr};
    pid_t pid = 0;
    const int spawned =
        ::posix_spawn(&pid, worker_path_.c_str(), &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (spawned != 0) {
        throw std::runtime_error("script worker " + worker_path_ +
                                 " cannot start: " + std::strerror(spawned));
    }
    theirs.reset();
    null_device.reset();

    const auto started = Clock::now();
    const auto deadline = started + limits.timeout + kStartupAllowance;
    const std::size_t output_cap = limits.output_bytes + limits.console_bytes * 2 + kEnvelopeBytes;
    const std::string input = json::serialize(worker_request);
    std::size_t written = 0;
    std::string output;
    bool timed_out = false;
    bool too_much = false;
    bool input_open = true;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd watch{ours.get(), static_cast<short>(POLLIN | (input_open ? POLLOUT : 0)), 0};
        const int ready = ::poll(&watch, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            continue;  // the deadline check above ends the loop
        }
        if (input_open && (watch.revents & POLLOUT) != 0) {
            const ssize_t n = ::send(ours.get(), input.data() + written, input.size() - written,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                written += static_cast<std::size_t>(n);
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                input_open = false;
            }
            if (written == input.size()) {
                ::shutdown(ours.get(), SHUT_WR);  // the worker reads to end of input
                input_open = false;
            }
        }
        if ((watch.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            char buffer[65536];
            const ssize_t n = ::recv(ours.get(), buffer, sizeof buffer, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                break;
            }
            if (n > 0) {
                output.append(buffer, static_cast<std::size_t>(n));
                if (output.size() > output_cap) {
                    too_much = true;
                    break;
                }
            }
        }
    }
    if (timed_out || too_much) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const auto duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);

    ScriptOutcome outcome;
    if (timed_out) {
        outcome = failure(ScriptStatus::kTimedOut, "the script exceeded its time limit of " +
                                                       std::to_string(limits.timeout.count()) +
                                                       " ms and was stopped");
    } else if (too_much) {
        outcome = failure(ScriptStatus::kOutputExceeded,
                          "the script's output exceeded " + std::to_string(output_cap) + " bytes");
    } else {
        boost::system::error_code ec;
        // The outcome holds the result one level down, and the worker holds the result to the
        // depth of a request.
        json::parse_options options;
        options.max_depth = core::kRequestJsonDepth + 1;
        const json::value parsed = json::parse(output, ec, {}, options);
        if (ec || !parsed.is_object()) {
            std::string how = WIFSIGNALED(status)
                                  ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                  : "exited with status " + std::to_string(WEXITSTATUS(status));
            if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) {
                outcome = failure(ScriptStatus::kTimedOut, "the script used up its CPU time");
            } else {
                outcome = failure(ScriptStatus::kFailed, "the script worker " + how);
            }
        } else {
            const auto& object = parsed.as_object();
            const auto* status_text = object.if_contains("status");
            outcome.status = status_from(status_text && status_text->is_string()
                                             ? std::string(status_text->as_string())
                                             : std::string());
            if (status_text && *status_text == "valid") {
                outcome.status = ScriptStatus::kSucceeded;
            }
            if (const auto* result = object.if_contains("result")) {
                outcome.result = *result;
            }
            if (const auto* console = object.if_contains("console");
                console && console->is_array()) {
                outcome.console = console->as_array();
            }
            if (const auto* truncated = object.if_contains("console_truncated");
                truncated && truncated->is_bool()) {
                outcome.console_truncated = truncated->as_bool();
            }
            if (const auto* memory = object.if_contains("memory_bytes");
                memory && memory->is_number()) {
                outcome.memory_bytes = memory->to_number<std::size_t>();
            }
            outcome.error = error_from(object.if_contains("error"));
        }
    }
    outcome.duration = duration;
    return outcome;
}

std::string default_worker_path() {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return "riveredge-script-worker";
    }
    return (self.parent_path() / "riveredge-script-worker").string();
}

}  // namespace riveredge::scripts
