#pragma once

// The transactional outbox. An event the app announces is written in the same transaction as
// the rows it announces, and a relay sends it until Inngest (or the embedded executor) accepts
// it: a rolled-back transaction announces nothing, a committed one is never forgotten.

#include "core/auth/principal.hpp"

#include <inngest/event.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace inngest {
class Client;
}  // namespace inngest

namespace riveredge::core::db {
class Listener;
class Pool;
class Transaction;
}  // namespace riveredge::core::db

namespace riveredge::core::outbox {

/// The event that announces a row, built once the row's id is known.
using Announcement = std::function<inngest::Event(std::int64_t id)>;

/// Adds `event` to the outbox inside `tx`, a transaction in `tenant`. The event id is its
/// identity: the same id added twice is one row, and Inngest drops a re-send after a crash (it
/// dedupes ids for 24 hours). An event without an id gets a random one. With `after`, the relay
/// sends it no sooner than that long after the commit.
void add(db::Transaction& tx,
         const TenantId& tenant,
         const inngest::Event& event,
         std::chrono::milliseconds after = {});
/// `add` in a transaction of its own: for announcements that accompany no row.
void add(db::Pool& pool, const TenantId& tenant, const inngest::Event& event);

/// What is due and not yet accepted (an event added with `after` counts once it is due).
struct Backlog {
    std::int64_t unsent = 0;
    /// Age of the oldest unsent event; 0 when none.
    std::int64_t oldest_seconds = 0;
};
/// What waits to be relayed (for readiness and alerts).
Backlog backlog(db::Pool& pool);

struct RelayOptions {
    std::size_t batch = 100;
    /// Rows are also looked for at this interval, besides the notification each commit sends.
    std::chrono::milliseconds poll{1000};
    /// Sent rows are deleted after this long (Inngest's dedupe window).
    std::chrono::hours keep_sent{24};
};

/// Sends unsent outbox rows, oldest first, in batches, and marks them sent once accepted; a
/// failed batch is retried with backoff (1 s doubling, at most a minute). One relay per process;
/// several processes skip each other's rows (`FOR UPDATE SKIP LOCKED`), so order across them is
/// not kept.
class Relay {
public:
    Relay(std::string database_url, const inngest::Client& client, RelayOptions options = {});
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    void start();
    void stop();
    /// Rows marked sent by this relay so far.
    std::uint64_t relayed() const noexcept { return relayed_; }

private:
    void run();
    // Relays one batch; true when a full batch went out (more may be waiting).
    bool relay_batch();
    void prune_sent();

    std::string database_url_;
    const inngest::Client& client_;
    RelayOptions options_;
    std::unique_ptr<db::Pool> pool_;
    std::unique_ptr<db::Listener> listener_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool woken_ = false;
    std::chrono::steady_clock::time_point next_prune_{};
    std::atomic<std::uint64_t> relayed_{0};
    std::thread thread_;
};

}  // namespace riveredge::core::outbox
