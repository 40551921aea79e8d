#pragma once

// PostgreSQL through libpq: a connection pool, parameterised queries only, transactions that
// roll back unless committed, and the per-transaction tenant setting row-level security reads.

#include "core/auth/principal.hpp"

#include <boost/json/fwd.hpp>

#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

struct pg_conn;
struct pg_result;

namespace riveredge::core::db {

/// A failed statement; `sqlstate` is PostgreSQL's five-character code ("23505" ...).
class DbError : public std::runtime_error {
public:
    DbError(std::string sqlstate, const std::string& message)
        : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const noexcept { return sqlstate_; }

private:
    std::string sqlstate_;
};

/// A parameter: its text, or SQL NULL. Built from what repositories hold (text, integers, flags,
/// the tenant, JSON, optionals of these) so a parameter list names values, not conversions;
/// PostgreSQL parses the text by the type the statement gives it (`$3::int`, `$4::jsonb`).
class Param : public std::optional<std::string> {
public:
    Param() = default;
    Param(std::nullopt_t) {}
    Param(std::string text) : optional(std::move(text)) {}
    Param(std::string_view text) : optional(std::string(text)) {}
    Param(const char* text) : optional(std::string(text)) {}
    Param(std::optional<std::string> text) : optional(std::move(text)) {}
    Param(const TenantId& tenant) : optional(tenant.value()) {}
    /// Exactly a bool: nothing converts to a flag on its way in.
    template <std::same_as<bool> Flag>
    Param(Flag flag) : optional(flag ? "true" : "false") {}
    /// The shortest plain decimal that reads back as the same double (never an exponent form).
    Param(double number);
    template <class Integer>
    requires(std::is_integral_v<Integer> && !std::is_same_v<Integer, bool> &&
             !std::is_same_v<Integer, char>) Param(Integer number)
        : optional(std::to_string(number)) {}
    /// JSON, serialized (for `json`/`jsonb` parameters).
    Param(const boost::json::value& json);
    Param(const boost::json::object& json);
    Param(const boost::json::array& json);
    template <class T>
    requires(!std::is_same_v<T, std::string>) Param(const std::optional<T>& value) {
        if (value) {
            *this = Param(*value);
        }
    }
};

/// The rows of a result, read as text or typed.
class Rows {
public:
    explicit Rows(pg_result* result);
    ~Rows();
    Rows(Rows&& other) noexcept;
    Rows& operator=(Rows&&) = delete;
    Rows(const Rows&) = delete;

    int size() const noexcept;
    bool empty() const noexcept { return size() == 0; }
    bool is_null(int row, std::string_view column) const;
    std::string text(int row, std::string_view column) const;
    std::int64_t integer(int row, std::string_view column) const;
    bool boolean(int row, std::string_view column) const;
    /// Rows affected by an UPDATE/DELETE/INSERT.
    std::int64_t affected() const;

private:
    int column(std::string_view name) const;
    /// The column's index, once `row` is known to be in the result (DbError P0002 if not).
    int cell(int row, std::string_view name) const;
    pg_result* result_;
};

class Connection {
public:
    explicit Connection(const std::string& url);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Runs one parameterised statement ($1, $2, ...). Throws `DbError`; 22021, unsent, for a
    /// parameter holding a NUL (libpq would send it cut short at the NUL).
    Rows exec(std::string_view sql, const std::vector<Param>& params = {});
    /// Runs a script of several statements with no parameters: for migrations (our own files)
    /// only, never for anything built from input.
    void exec_script(const std::string& sql);
    bool healthy() const;

private:
    pg_conn* conn_;
};

class Pool;

/// A connection borrowed from the pool; returned on destruction.
class PooledConnection {
public:
    PooledConnection(Pool& pool, std::unique_ptr<Connection> connection);
    ~PooledConnection();
    PooledConnection(PooledConnection&&) noexcept = default;
    PooledConnection& operator=(PooledConnection&&) = delete;
    Connection& operator*() { return *connection_; }
    /// Swaps in a new connection for one that broke (the pool's URL).
    void reconnect();
    Connection* operator->() { return connection_.get(); }

private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
};

class Pool {
public:
    Pool(std::string url, int size);
    /// Waits for a free connection (reconnecting a broken one).
    PooledConnection acquire();
    /// A new connection to the pool's database (not counted: it replaces a broken one).
    std::unique_ptr<Connection> connect() const;
    void release(std::unique_ptr<Connection> connection);

    struct Usage {
        int size = 0;
        int open = 0;
        int in_use = 0;
        int waiting = 0;
    };
    /// For metrics: connections open and lent out, and callers waiting for one.
    Usage usage();

private:
    std::string url_;
    int size_;
    int created_ = 0;
    int waiting_ = 0;
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<Connection>> idle_;
};

/// BEGIN ... COMMIT on one pooled connection; rolls back in its destructor unless committed.
/// With a tenant, sets `app.tenant_id` for this transaction only, which the row-level security
/// policies read.
class Transaction {
public:
    Transaction(Pool& pool, const std::optional<TenantId>& tenant);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    Rows exec(std::string_view sql, const std::vector<Param>& params = {});
    void commit();

private:
    PooledConnection connection_;
    bool done_ = false;
};

/// The one way a unit of work owns a transaction: runs `work(tx)` in a transaction in `tenant`,
/// commits when it returns and rolls back when it throws; returns what `work` returns.
template <class Work>
auto transact(Pool& pool, const std::optional<TenantId>& tenant, Work&& work) {
    Transaction tx(pool, tenant);
    if constexpr (std::is_void_v<std::invoke_result_t<Work&, Transaction&>>) {
        work(tx);
        tx.commit();
    } else {
        auto result = work(tx);
        tx.commit();
        return result;
    }
}

/// One statement in a transaction of its own in `tenant` (null: no tenant scope), committed:
/// the shape of most reads and single-row writes.
Rows exec_once(Pool& pool,
               const std::optional<TenantId>& tenant,
               std::string_view sql,
               const std::vector<Param>& params = {});

/// One statement outside any tenant, committed, in a named scope (`app.scope`) whose row-level
/// security policies let background work read across tenants (the scheduler, the records
/// verifier, the printer reconciler). Request handlers never set a scope.
Rows exec_in_scope(Pool& pool,
                   std::string_view scope,
                   std::string_view sql,
                   const std::vector<Param>& params = {});

/// Applies `migrations` (name, SQL) in order under an advisory lock, each once, recording them
/// in `schema_migrations`. Returns the names applied now.
std::vector<std::string> migrate(
    Pool& pool, const std::vector<std::pair<std::string, std::string>>& migrations);

/// What the runtime role may do once the owner role has migrated: read and write rows of every
/// table and sequence in the schema, nothing else (no DDL; `schema_migrations` read-only).
struct RuntimeAccess {
    std::string runtime_role;
    std::string owner_role;
    /// The runtime role bypasses row-level security (a superuser or BYPASSRLS): tenant isolation
    /// then rests on the queries alone.
    bool bypasses_row_security = false;
};

/// Grants the runtime pool's role that access, as the owner pool's role; nothing is granted
/// when both are the same role.
RuntimeAccess grant_runtime_access(Pool& owner, Pool& runtime);

}  // namespace riveredge::core::db
