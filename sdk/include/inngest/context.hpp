#pragma once

/// @file
/// @brief `Context`: what a function body receives.

#include <inngest/event.hpp>
#include <inngest/logger.hpp>
#include <inngest/step.hpp>

#include <string>
#include <vector>

namespace inngest {

/// Facts about the current run and attempt.
struct RunInfo {
    /// The run's ULID.
    std::string run_id{};
    /// The function's synced id (`<app_id>-<id>`).
    std::string function_id{};
    /// Zero-based attempt of the current step or discovery call.
    int attempt = 0;
    /// Retries + 1.
    int max_attempts = 1;
};

/// What a function body receives: the triggering event(s), run facts, steps and a logger.
///
/// @par Thread safety
/// Valid only during the call, on the thread that runs the function.
class Context {
public:
    Context(const Event& event_ref,
            const std::vector<Event>& events_ref,
            const RunInfo& run_ref,
            Step& step_ref,
            const StepLogger& log_ref) noexcept
        : event(event_ref), events(events_ref), run(run_ref), step(step_ref), log(log_ref) {}

    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    /// The first (or only) triggering event.
    const Event& event;
    /// All triggering events (more than one for batched functions).
    const std::vector<Event>& events;
    const RunInfo& run;
    Step& step;
    const StepLogger& log;
};

}  // namespace inngest
