#pragma once

// A child process for tests: started with a chosen environment, its output sent to a log file,
// killed when the test (or the object) ends.

#include <chrono>
#include <string>
#include <vector>

#include <sys/types.h>

namespace inngest_test {

class ChildProcess {
public:
    /// Starts `argv` in `directory` with the test's environment minus INNGEST_*/PORT, plus `env`.
    ChildProcess(std::vector<std::string> argv,
                 std::vector<std::string> env,
                 std::string log_path,
                 std::string directory = {});
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    /// Polls `url` until it answers 200; false after `timeout`.
    bool wait_healthy(const std::string& url, std::chrono::milliseconds timeout) const;
    bool running() const;
    pid_t pid() const noexcept { return pid_; }
    /// `kill -9` and reap: the process gets no chance to clean up.
    void kill_now();
    /// Everything the process wrote so far.
    std::string log() const;

private:
    pid_t pid_ = 0;
    std::string log_path_;
};

/// A TCP port nothing listens on right now.
int free_port();

}  // namespace inngest_test
