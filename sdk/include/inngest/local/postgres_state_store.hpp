#pragma once

/// @file
/// @brief A `StateStore` in PostgreSQL (target `inngest::local_postgres`, which links libpq; the
/// SDK and `inngest::local` never do).

#include <inngest/local/state_store.hpp>

#include <memory>
#include <string>

namespace inngest::local {

struct PostgresStateStoreOptions {
    /// A libpq connection string (`postgresql://user@host:5432/db` or `host=... dbname=...`).
    std::string url;
    /// Tables are `<prefix>_functions`, `_runs`, `_jobs` and `_seen`, created when missing.
    std::string table_prefix = "inngest_executor";
    /// Create the tables when missing. Turn off when a role that owns them created them
    /// beforehand (`create_postgres_state_tables`), so the store's own role needs only
    /// SELECT, INSERT, UPDATE and DELETE on them.
    bool create_tables = true;
};

/// Connects, creates the tables when missing and takes the database's executor lock (a session
/// advisory lock): one active executor per database. Throws `StateStoreBusy` when another
/// executor holds the lock, `std::runtime_error` when the database cannot be reached. A store
/// whose lock was lost (its session ended and another executor took the lock) throws
/// `StateStoreBusy` from then on and never writes again.
std::shared_ptr<StateStore> make_postgres_state_store(const PostgresStateStoreOptions& options);

/// Creates the store's tables when missing and disconnects, taking no executor lock: for a
/// deployment whose schema is created by an owner role (migrations) and used by a runtime role
/// that cannot create tables. Throws `std::runtime_error` when that fails.
void create_postgres_state_tables(const PostgresStateStoreOptions& options);

}  // namespace inngest::local
