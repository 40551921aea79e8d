#include "core/db/database.hpp"

#include "core/db/row.hpp"
#include "core/json/depth.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <libpq-fe.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <limits>

namespace riveredge::core::db {
namespace {

[[noreturn]] void throw_result_error(PGresult* result, PGconn* conn) {
    // Copy what the result holds before PQclear frees it.
    const char* state_field =
        result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string state = state_field != nullptr ? state_field : "08000";
    std::string message = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
    if (result != nullptr) {
        PQclear(result);
    }
    throw DbError(std::move(state), message);
}

}  // namespace

Param::Param(double number) {
    char text[400];
    const auto written = std::to_chars(text, text + sizeof text, number, std::chars_format::fixed);
    emplace(text, written.ptr);
}
Param::Param(const boost::json::value& json) : optional(boost::json::serialize(json)) {}
Param::Param(const boost::json::object& json) : optional(boost::json::serialize(json)) {}
Param::Param(const boost::json::array& json) : optional(boost::json::serialize(json)) {}

Rows::Rows(PGresult* result) : result_(result) {}
Rows::~Rows() {
    if (result_ != nullptr) {
        PQclear(result_);
    }
}
Rows::Rows(Rows&& other) noexcept : result_(other.result_) {
    other.result_ = nullptr;
}

int Rows::size() const noexcept {
    return PQntuples(result_);
}

int Rows::column(std::string_view name) const {
    const int index = PQfnumber(result_, std::string(name).c_str());
    if (index < 0) {
        throw DbError("42703", "no column " + std::string(name) + " in result");
    }
    return index;
}

int Rows::cell(int row, std::string_view name) const {
    // libpq reads past the result for a row it does not have: a caller's mistake would end the
    // process instead of the request.
    if (row < 0 || row >= size()) {
        throw DbError("P0002", "no row " + std::to_string(row) + " in a result of " +
                                   std::to_string(size()) + " (column " + std::string(name) + ")");
    }
    return column(name);
}

bool Rows::is_null(int row, std::string_view name) const {
    return PQgetisnull(result_, row, cell(row, name)) == 1;
}

std::string Rows::text(int row, std::string_view name) const {
    const int col = cell(row, name);
    return std::string(PQgetvalue(result_, row, col),
                       static_cast<std::size_t>(PQgetlength(result_, row, col)));
}

std::int64_t Rows::integer(int row, std::string_view name) const {
    return std::strtoll(PQgetvalue(result_, row, cell(row, name)), nullptr, 10);
}

bool Rows::boolean(int row, std::string_view name) const {
    return PQgetvalue(result_, row, cell(row, name))[0] == 't';
}

std::int64_t Rows::affected() const {
    return std::strtoll(PQcmdTuples(result_), nullptr, 10);
}

namespace {

// TCP keepalives, so a quiet connection whose peer is gone is found broken within about a minute
// instead of the system's two hours, and one held quiet (a session lock while a script runs)
// keeps its path through NATs and proxies; a statement sent that the peer never acknowledges
// fails after a minute too, instead of TCP's retries of a quarter of an hour. Given before the
// URL, which may set its own.
pg_conn* connect_to(const std::string& url) {
    const std::array<const char*, 6> keywords{"keepalives_idle",  "keepalives_interval",
                                              "keepalives_count", "tcp_user_timeout",
                                              "dbname",           nullptr};
    const std::array<const char*, 6> values{"30", "10", "3", "60000", url.c_str(), nullptr};
    return PQconnectdbParams(keywords.data(), values.data(), 1);
}

}  // namespace

Connection::Connection(const std::string& url) : conn_(connect_to(url)) {
    if (PQstatus(conn_) != CONNECTION_OK) {
        const std::string message = PQerrorMessage(conn_);
        PQfinish(conn_);
        throw DbError("08001", "cannot connect to the database: " + message);
    }
}

Connection::~Connection() {
    PQfinish(conn_);
}

bool Connection::healthy() const {
    return PQstatus(conn_) == CONNECTION_OK;
}

Rows Connection::exec(std::string_view sql, const std::vector<Param>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto& param = params[i];
        // libpq reads a parameter as a C string: a NUL would end it there, and PostgreSQL store
        // the text cut short. Refused as PostgreSQL refuses a NUL in text (22021), unsent.
        if (param && param->find('\0') != std::string::npos) {
            throw DbError("22021", "parameter $" + std::to_string(i + 1) +
                                       " holds a NUL character, which a text cannot store");
        }
        values.push_back(param ? param->c_str() : nullptr);
    }
    PGresult* result =
        PQexecParams(conn_, std::string(sql).c_str(), static_cast<int>(params.size()), nullptr,
                     values.data(), nullptr, nullptr, 0);
    const auto status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw_result_error(result, conn_);
    }
    return Rows(result);
}

void Connection::exec_script(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    const auto status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw_result_error(result, conn_);
    }
    PQclear(result);
}

PooledConnection::PooledConnection(Pool& pool, std::unique_ptr<Connection> connection)
    : pool_(&pool), connection_(std::move(connection)) {}

void PooledConnection::reconnect() {
    connection_ = pool_->connect();
}

PooledConnection::~PooledConnection() {
    if (connection_) {
        pool_->release(std::move(connection_));
    }
}

Pool::Pool(std::string url, int size) : url_(std::move(url)), size_(size) {}

PooledConnection Pool::acquire() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    available_.wait(lock, [&] { return !idle_.empty() || created_ < size_; });
    --waiting_;
    if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        if (connection->healthy()) {
            return PooledConnection(*this, std::move(connection));
        }
        --created_;  // broken: replace it below
    }
    ++created_;
    lock.unlock();
    try {
        return PooledConnection(*this, std::make_unique<Connection>(url_));
    } catch (...) {
        const std::lock_guard relock(mutex_);
        --created_;
        available_.notify_one();
        throw;
    }
}

std::unique_ptr<Connection> Pool::connect() const {
    return std::make_unique<Connection>(url_);
}

Pool::Usage Pool::usage() {
    const std::lock_guard lock(mutex_);
    const int idle = static_cast<int>(idle_.size());
    return {size_, created_, created_ - idle, waiting_};
}

void Pool::release(std::unique_ptr<Connection> connection) {
    const std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
    available_.notify_one();
}

Transaction::Transaction(Pool& pool, const std::optional<TenantId>& tenant)
    : connection_(pool.acquire()) {
    try {
        connection_->exec("BEGIN");
    } catch (const DbError&) {
        if (connection_->healthy()) {
            throw;
        }
        // The connection died while idle (PostgreSQL restarted): nothing was done on it, so a
        // new one is safe and the request does not fail.
        connection_.reconnect();
        connection_->exec("BEGIN");
    }
    try {
        connection_->exec("SELECT set_config('app.tenant_id', $1, true)",
                          {tenant ? Param(tenant->value()) : Param("")});
    } catch (...) {
        connection_->exec("ROLLBACK");
        throw;
    }
}

Transaction::~Transaction() {
    if (!done_) {
        try {
            connection_->exec("ROLLBACK");
        } catch (...) {
            // The connection is broken; the pool replaces it on next use.
        }
    }
}

Rows Transaction::exec(std::string_view sql, const std::vector<Param>& params) {
    return connection_->exec(sql, params);
}

void Transaction::commit() {
    connection_->exec("COMMIT");
    done_ = true;
}

std::vector<std::string> migrate(
    Pool& pool, const std::vector<std::pair<std::string, std::string>>& migrations) {
    auto connection = pool.acquire();
    // One process at a time, across every app instance sharing the database.
    connection->exec("SELECT pg_advisory_lock(727274)");
    std::vector<std::string> applied;
    try {
        connection->exec("SET client_min_messages = warning");  // "already exists" is expected
        connection->exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())");
        for (const auto& [name, sql] : migrations) {
            if (!connection->exec("SELECT 1 FROM schema_migrations WHERE name = $1", {name})
                     .empty()) {
                continue;
            }
            connection->exec("BEGIN");
            try {
                connection->exec_script(sql);
                connection->exec("INSERT INTO schema_migrations (name) VALUES ($1)", {name});
                connection->exec("COMMIT");
            } catch (...) {
                connection->exec("ROLLBACK");
                throw;
            }
            applied.push_back(name);
        }
    } catch (...) {
        connection->exec("SELECT pg_advisory_unlock(727274)");
        throw;
    }
    connection->exec("SELECT pg_advisory_unlock(727274)");
    return applied;
}

RuntimeAccess grant_runtime_access(Pool& owner, Pool& runtime) {
    RuntimeAccess access;
    {
        auto connection = runtime.acquire();
        const Rows role = connection->exec(
            "SELECT current_user AS name, rolsuper OR rolbypassrls AS bypasses FROM pg_roles "
            "WHERE rolname = current_user");
        access.runtime_role = role.text(0, "name");
        access.bypasses_row_security = role.boolean(0, "bypasses");
    }
    auto connection = owner.acquire();
    access.owner_role = connection->exec("SELECT current_user AS name").text(0, "name");
    if (access.owner_role == access.runtime_role) {
        return access;
    }
    // A role name cannot be a parameter: the server quotes it.
    const std::string grantee =
        connection->exec("SELECT quote_ident($1) AS name", {access.runtime_role}).text(0, "name");
    connection->exec("BEGIN");
    try {
        // Serialised with migrations and other instances granting at start-up (concurrent
        // changes to one table's privileges fail).
        connection->exec("SELECT pg_advisory_xact_lock(727274)");
        // Per table, the row privileges the owner itself keeps: a migration that revokes UPDATE
        // and DELETE from its own role (an append-only trail) withholds them from the runtime too.
        const Rows grants = connection->exec(
            "SELECT format('GRANT %s ON TABLE public.%I TO %I', string_agg(privilege, ', '), "
            "tablename, $1::text) AS statement "
            "FROM pg_tables, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS privilege "
            "WHERE schemaname = 'public' "
            "AND has_table_privilege(format('%I.%I', schemaname, tablename), privilege) "
            "AND (tablename <> 'schema_migrations' OR privilege = 'SELECT') "
            "GROUP BY tablename",
            {access.runtime_role});
        connection->exec("GRANT USAGE ON SCHEMA public TO " + grantee);
        connection->exec("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM " + grantee);
        for (int row = 0; row < grants.size(); ++row) {
            connection->exec(grants.text(row, "statement"));
        }
        connection->exec("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO " +
                         grantee);
        connection->exec("COMMIT");
    } catch (...) {
        connection->exec("ROLLBACK");
        throw;
    }
    return access;
}

namespace column {

void read(const Rows& rows, int row, std::string_view name, std::string& out) {
    out = rows.text(row, name);
}

void read(const Rows& rows, int row, std::string_view name, std::int64_t& out) {
    out = rows.integer(row, name);
}

void read(const Rows& rows, int row, std::string_view name, int& out) {
    const auto value = rows.integer(row, name);
    if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
        throw DbError("22003", "column " + std::string(name) + " does not fit an int");
    }
    out = static_cast<int>(value);
}

void read(const Rows& rows, int row, std::string_view name, bool& out) {
    out = rows.boolean(row, name);
}

void read(const Rows& rows, int row, std::string_view name, double& out) {
    out = std::strtod(rows.text(row, name).c_str(), nullptr);
}

void read(const Rows& rows, int row, std::string_view name, boost::json::value& out) {
    out = parse_stored_json(rows.text(row, name));
}

void read(const Rows& rows, int row, std::string_view name, boost::json::object& out) {
    out = parse_stored_json(rows.text(row, name)).as_object();
}

void read(const Rows& rows, int row, std::string_view name, boost::json::array& out) {
    out = parse_stored_json(rows.text(row, name)).as_array();
}

void read(const Rows& rows, int row, std::string_view name, std::vector<std::string>& out) {
    const auto parsed = parse_stored_json(rows.text(row, name));
    out.clear();
    for (const auto& item : parsed.as_array()) {
        out.emplace_back(item.as_string());
    }
}

}  // namespace column

Rows exec_once(Pool& pool,
               const std::optional<TenantId>& tenant,
               std::string_view sql,
               const std::vector<Param>& params) {
    Transaction tx(pool, tenant);
    auto rows = tx.exec(sql, params);
    tx.commit();
    return rows;
}

Rows exec_in_scope(Pool& pool,
                   std::string_view scope,
                   std::string_view sql,
                   const std::vector<Param>& params) {
    Transaction tx(pool, std::nullopt);
    tx.exec("SELECT set_config('app.scope', $1, true)", {std::string(scope)});
    auto rows = tx.exec(sql, params);
    tx.commit();
    return rows;
}

}  // namespace riveredge::core::db
