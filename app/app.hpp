#pragma once

// The composition root as a class, so tests can start the whole app in process.

#include "core/config/settings.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace inngest::local {
class Clock;
class Executor;
}  // namespace inngest::local

namespace riveredge {

class App {
public:
    /// `clock`: where the embedded executor and the modules read time (tests fast-forward a
    /// `ManualClock`); the system clock when null.
    explicit App(core::Settings settings, std::shared_ptr<inngest::local::Clock> clock = nullptr);
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    /// Migrates, starts the HTTP server (and the embedded executor), syncs the functions.
    void start();
    void stop();
    unsigned short port() const;
    /// The embedded executor's URL, empty with an external Inngest.
    std::string executor_url() const;
    /// The embedded executor (null with an external Inngest).
    inngest::local::Executor* executor();
    /// Waits (real time) until the outbox is relayed and the embedded executor is idle, with
    /// nothing relayed meanwhile: what tests call after an action whose effects run in functions.
    bool wait_settled(std::chrono::milliseconds timeout);
    /// Every registered route as "METHOD /pattern".
    std::vector<std::string> routes() const;

    class Impl;

private:
    std::unique_ptr<Impl> impl_;
};

/// The SQL migrations compiled into the binary, in order.
const std::vector<std::pair<std::string, std::string>>& migrations();

}  // namespace riveredge
