#include "core/outbox/outbox.hpp"

#include "core/db/database.hpp"
#include "core/db/listener.hpp"
#include "core/log/logger.hpp"
#include "core/text/hex.hpp"

#include <inngest/client.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace riveredge::core::outbox {
namespace {

constexpr const char* kChannel = "app_outbox";

// One statement: the row, and (only when it is new) the wake-up the relay listens for, which
// PostgreSQL delivers at commit and folds into one per transaction.
constexpr const char* kAdd =
    "WITH added AS (INSERT INTO app_outbox (tenant_id, event_id, name, data, ts, "
    "next_attempt_at) VALUES ($1, $2, $3, $4::jsonb, $5::bigint, now() + $6::bigint * "
    "interval '1 millisecond') ON CONFLICT (event_id) DO NOTHING RETURNING id) "
    "SELECT pg_notify('app_outbox', '') FROM added";
constexpr const char* kClaim =
    "SELECT id, event_id, name, data::text AS data, ts FROM app_outbox "
    "WHERE sent_at IS NULL AND next_attempt_at <= now() ORDER BY id LIMIT $1 "
    "FOR UPDATE SKIP LOCKED";
constexpr const char* kMarkSent =
    "UPDATE app_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL "
    "WHERE id = ANY($1::bigint[])";
constexpr const char* kMarkFailed =
    "UPDATE app_outbox SET attempts = attempts + 1, last_error = $2, "
    "next_attempt_at = now() + least(interval '1 second' * power(2, least(attempts, 6)), "
    "interval '60 seconds') WHERE id = ANY($1::bigint[])";
constexpr const char* kPrune =
    "DELETE FROM app_outbox WHERE id IN (SELECT id FROM app_outbox "
    "WHERE sent_at < now() - $1::bigint * interval '1 hour' LIMIT 5000)";
constexpr const char* kBacklog =
    "SELECT count(*) AS unsent, coalesce(extract(epoch FROM now() - min(created_at)), 0)::bigint "
    "AS oldest FROM app_outbox WHERE sent_at IS NULL AND (attempts > 0 OR next_attempt_at <= "
    "now())";

std::string random_event_id() {
    return "outbox-" + random_hex(16);
}

// The relay's transactions see every tenant's rows (the `relay` policy), nothing else.
db::Rows relay_exec(db::Transaction& tx, const char* sql, const std::vector<db::Param>& params) {
    tx.exec("SELECT set_config('app.scope', 'outbox', true)");
    return tx.exec(sql, params);
}

std::string id_array(const db::Rows& rows, int from, int to) {
    std::string out = "{";
    for (int i = from; i < to; ++i) {
        if (i > from) {
            out += ',';
        }
        out += rows.text(i, "id");
    }
    return out + "}";
}

}  // namespace

void add(db::Transaction& tx,
         const TenantId& tenant,
         const inngest::Event& event,
         std::chrono::milliseconds after) {
    tx.exec(kAdd, {tenant, event.id.value_or(random_event_id()), event.name, event.data, event.ts,
                   std::max<std::int64_t>(after.count(), 0)});
}

void add(db::Pool& pool, const TenantId& tenant, const inngest::Event& event) {
    db::transact(pool, tenant, [&](db::Transaction& tx) { add(tx, tenant, event); });
}

Backlog backlog(db::Pool& pool) {
    return db::transact(pool, std::nullopt, [](db::Transaction& tx) {
        const auto rows = relay_exec(tx, kBacklog, {});
        return Backlog{rows.integer(0, "unsent"), rows.integer(0, "oldest")};
    });
}

Relay::Relay(std::string database_url, const inngest::Client& client, RelayOptions options)
    : database_url_(std::move(database_url)), client_(client), options_(options) {}

Relay::~Relay() {
    stop();
}

void Relay::start() {
    // Under the lock throughout: a takeover may start the relay while the app stops it.
    const std::lock_guard lock(mutex_);
    if (stopping_ || thread_.joinable()) {
        return;  // stopped already, or started
    }
    // A connection of its own: a send holds its rows locked for as long as the call takes, and
    // must never wait for (or hold) one of the request handlers' connections.
    pool_ = std::make_unique<db::Pool>(database_url_, 1);
    listener_ = std::make_unique<db::Listener>(database_url_, kChannel, [this](const std::string&) {
        {
            const std::lock_guard wake_lock(mutex_);
            woken_ = true;
        }
        wake_.notify_one();
    });
    thread_ = std::thread([this] { run(); });
}

void Relay::stop() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
    listener_.reset();
}

void Relay::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        woken_ = false;
        lock.unlock();
        bool more = false;
        try {
            more = relay_batch();
            if (std::chrono::steady_clock::now() >= next_prune_) {
                next_prune_ = std::chrono::steady_clock::now() + std::chrono::minutes(10);
                prune_sent();
            }
        } catch (const std::exception& error) {
            // The database is down or restarting: the rows wait there, nothing is lost.
            log(LogLevel::kWarn, "outbox relay: database unavailable", {{"error", error.what()}});
        }
        lock.lock();
        if (!more) {
            wake_.wait_for(lock, options_.poll, [this] { return stopping_ || woken_; });
        }
    }
}

bool Relay::relay_batch() {
    int marked_sent = 0;
    const bool more = db::transact(*pool_, std::nullopt, [&](db::Transaction& tx) {
        const auto rows = relay_exec(tx, kClaim, {options_.batch});
        if (rows.empty()) {
            return false;
        }
        std::vector<inngest::Event> events;
        events.reserve(static_cast<std::size_t>(rows.size()));
        for (int i = 0; i < rows.size(); ++i) {
            inngest::Event event{.name = rows.text(i, "name"),
                                 .data = boost::json::parse(rows.text(i, "data")).as_object(),
                                 .id = rows.text(i, "event_id")};
            if (!rows.is_null(i, "ts")) {
                event.ts = rows.integer(i, "ts");
            }
            events.push_back(std::move(event));
        }
        const auto mark = [&](int from, int to,
                              const inngest::Result<inngest::SendEventResult>& sent) {
            if (sent) {
                relay_exec(tx, kMarkSent, {id_array(rows, from, to)});
                marked_sent += to - from;
                return;
            }
            relay_exec(tx, kMarkFailed, {id_array(rows, from, to), sent.error().message});
            log(LogLevel::kWarn, "outbox relay: send failed; retried with backoff",
                {{"events", to - from},
                 {"first_event", rows.text(from, "event_id")},
                 {"error", sent.error().message}});
        };
        const auto sent = client_.send(events);
        // Only a refusal of the request itself (4xx) is worth one event at a time; an unreachable
        // or failing server (5xx, network) fails the whole batch, retried with backoff.
        const bool refused = !sent && sent.error().code == inngest::ErrorCode::kRemoteRejected &&
                             sent.error().message.starts_with("event API answered 4");
        if (sent || !refused || events.size() == 1) {
            mark(0, rows.size(), sent);
        } else {
            // Refused as a batch: one at a time, so one bad event holds up only itself.
            for (int i = 0; i < rows.size(); ++i) {
                mark(i, i + 1, client_.send(events[static_cast<std::size_t>(i)]));
            }
        }
        return sent && rows.size() == static_cast<int>(options_.batch);
    });
    relayed_ += static_cast<std::uint64_t>(marked_sent);  // counted once committed
    return more;
}

void Relay::prune_sent() {
    db::transact(*pool_, std::nullopt, [this](db::Transaction& tx) {
        relay_exec(tx, kPrune, {options_.keep_sent.count()});
    });
}

}  // namespace riveredge::core::outbox
