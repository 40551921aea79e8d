#pragma once

// PostgreSQL LISTEN on one channel in a background thread: every app process sees every
// notification, so pushes reach sockets connected to any process.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace riveredge::core::db {

class Listener {
public:
    Listener(std::string url,
             std::string channel,
             std::function<void(const std::string& payload)> on_notify);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    /// Waits until the LISTEN is in place (notifications sent before it are never heard);
    /// false after `timeout`.
    bool wait_listening(std::chrono::milliseconds timeout);

private:
    void run();

    std::string url_;
    std::string channel_;
    std::function<void(const std::string&)> on_notify_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::condition_variable listening_changed_;
    bool listening_ = false;
    std::thread thread_;
};

}  // namespace riveredge::core::db
