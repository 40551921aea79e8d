#pragma once

/// @file
/// @brief Where the local executor keeps what it needs to resume after a crash.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace inngest::local {

/// One atomic batch of changes to the executor's durable state. Documents are the executor's
/// own JSON texts, stored and returned byte for byte.
struct StateChanges {
    struct Function {
        std::string slug;
        std::string document;
    };
    struct Run {
        std::string run_id;
        std::string function_id;
        /// `Running`, `Completed`, `Failed` or `Cancelled`.
        std::string status;
        /// Start order, for listing runs oldest first.
        std::int64_t sequence = 0;
        std::string document;
    };
    struct Job {
        /// Deterministic: the same job written twice is one row.
        std::string key;
        std::int64_t due_ms = 0;
        std::string document;
    };
    struct SeenKey {
        std::string key;
        std::int64_t seen_ms = 0;
    };

    /// The full set of functions when it changed (a sync); empty otherwise.
    bool replace_functions = false;
    std::vector<Function> functions;
    std::vector<Run> runs;
    std::vector<Job> jobs;
    std::vector<std::string> removed_jobs;
    std::vector<SeenKey> seen;
    std::vector<std::string> forgotten;

    bool empty() const noexcept {
        return !replace_functions && runs.empty() && jobs.empty() && removed_jobs.empty() &&
               seen.empty() && forgotten.empty();
    }
};

/// Everything stored, as loaded at start.
struct StoredState {
    std::vector<StateChanges::Function> functions;
    /// Runs still running, oldest first (finished ones are kept for inspection, not loaded).
    std::vector<StateChanges::Run> runs;
    std::vector<StateChanges::Job> jobs;
    std::vector<StateChanges::SeenKey> seen;
};

/// Thrown by a store that another executor holds. When opening it (`ExecutorOptions::open_state`)
/// this executor stands by; later (a reconnect found the lock taken) it has been replaced.
class StateStoreBusy : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Durable executor state. The executor writes a batch before it acts on it (answers an event,
/// calls an SDK, fires a timer), so a crash loses only work nobody was told about.
///
/// @par Thread safety
/// The executor calls it from one thread at a time (under its own lock).
class StateStore {
public:
    virtual ~StateStore() = default;
    /// Reads the stored state; called once, before the executor starts working.
    virtual StoredState load() = 0;
    /// Applies `changes` atomically; throws on failure (nothing of the batch is applied then).
    virtual void apply(const StateChanges& changes) = 0;
    /// Deletes finished runs that ended before `before_ms`; returns how many.
    virtual std::size_t prune_finished(std::int64_t before_ms) = 0;
    /// Confirms the store is still this executor's (reconnecting when needed); called when the
    /// executor is idle, about once a second. Throws `StateStoreBusy` once another executor took
    /// over, any other exception while the store cannot be reached.
    virtual void check() {}
    /// True when the store has dedupe key `key` seen at or after `since_ms`. The executor keeps
    /// only recent keys in memory and asks here for older ones (a store that keeps `seen` keys
    /// must answer).
    virtual bool seen_since(const std::string& key, std::int64_t since_ms) {
        (void)key;
        (void)since_ms;
        return false;
    }
    /// Deletes dedupe keys seen before `before_ms`; returns how many.
    virtual std::size_t prune_seen(std::int64_t before_ms) {
        (void)before_ms;
        return 0;
    }
};

}  // namespace inngest::local
