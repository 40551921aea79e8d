#include <inngest/local/postgres_state_store.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <libpq-fe.h>

#include <cctype>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace inngest::local {
namespace {

namespace json = boost::json;

class Result {
public:
    explicit Result(PGresult* result) : result_(result) {}
    ~Result() { PQclear(result_); }
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;
    int rows() const { return PQntuples(result_); }
    ExecStatusType status() const { return PQresultStatus(result_); }
    std::string text(int row, int column) const {
        return std::string(PQgetvalue(result_, row, column),
                           static_cast<std::size_t>(PQgetlength(result_, row, column)));
    }
    std::int64_t integer(int row, int column) const { return std::stoll(text(row, column)); }
    std::size_t affected() const {
        const char* count = PQcmdTuples(result_);
        return *count == '\0' ? 0 : static_cast<std::size_t>(std::stoull(count));
    }

private:
    PGresult* result_;
};

// The prefix is written into SQL: letters, digits and underscores only.
void check_table_prefix(const std::string& prefix) {
    for (const char c : prefix) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
            throw std::invalid_argument("table prefix must be letters, digits or '_'");
        }
    }
}

std::vector<std::string> table_definitions(const std::string& prefix) {
    const auto table = [&](const char* name) {
        return prefix + "_" + name;
    };
    return {
        "CREATE TABLE IF NOT EXISTS " + table("functions") +
            " (slug text PRIMARY KEY, document text NOT NULL)",
        "CREATE TABLE IF NOT EXISTS " + table("runs") +
            " (run_id text PRIMARY KEY, function_id text NOT NULL, status text NOT NULL, "
            "sequence bigint NOT NULL, document text NOT NULL, finished_at timestamptz)",
        "CREATE INDEX IF NOT EXISTS " + table("runs_running") + " ON " + table("runs") +
            " (sequence) WHERE status = 'Running'",
        "CREATE INDEX IF NOT EXISTS " + table("runs_finished") + " ON " + table("runs") +
            " (finished_at) WHERE finished_at IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS " + table("jobs") +
            " (job_key text PRIMARY KEY, due_ms bigint NOT NULL, document text NOT NULL)",
        "CREATE TABLE IF NOT EXISTS " + table("seen") +
            " (key text PRIMARY KEY, seen_ms bigint NOT NULL)",
    };
}

class PostgresStateStore final : public StateStore {
public:
    explicit PostgresStateStore(PostgresStateStoreOptions options) : options_(std::move(options)) {
        check_table_prefix(options_.table_prefix);
        connect();
    }

    ~PostgresStateStore() override {
        if (conn_ != nullptr) {
            // Closing the connection frees the executor lock only once the server's backend
            // has noticed and exited, which a successor started at once can beat. Freed here,
            // the lock is free when the destructor returns.
            if (!replaced_) {
                const std::string key = "inngest-executor:" + options_.table_prefix;
                const char* values[] = {key.c_str()};
                PQclear(PQexecParams(conn_, "SELECT pg_advisory_unlock(hashtext($1))", 1, nullptr,
                                     values, nullptr, nullptr, 0));
            }
            PQfinish(conn_);
        }
    }

    StoredState load() override {
        const std::lock_guard lock(mutex_);
        ensure_ours();
        StoredState state;
        {
            const Result rows = exec("SELECT slug, document FROM " + table("functions"), {});
            for (int i = 0; i < rows.rows(); ++i) {
                state.functions.push_back({rows.text(i, 0), rows.text(i, 1)});
            }
        }
        {
            const Result rows =
                exec("SELECT run_id, function_id, status, sequence, document FROM " +
                         table("runs") + " WHERE status = 'Running' ORDER BY sequence",
                     {});
            for (int i = 0; i < rows.rows(); ++i) {
                state.runs.push_back({rows.text(i, 0), rows.text(i, 1), rows.text(i, 2),
                                      rows.integer(i, 3), rows.text(i, 4)});
            }
        }
        {
            const Result rows = exec("SELECT job_key, due_ms, document FROM " + table("jobs"), {});
            for (int i = 0; i < rows.rows(); ++i) {
                state.jobs.push_back({rows.text(i, 0), rows.integer(i, 1), rows.text(i, 2)});
            }
        }
        {
            const Result rows = exec("SELECT key, seen_ms FROM " + table("seen"), {});
            for (int i = 0; i < rows.rows(); ++i) {
                state.seen.push_back({rows.text(i, 0), rows.integer(i, 1)});
            }
        }
        return state;
    }

    void apply(const StateChanges& changes) override {
        const std::lock_guard lock(mutex_);
        ensure_ours();
        if (PQstatus(conn_) != CONNECTION_OK) {
            reconnect();
        }
        try {
            write(changes);
        } catch (const std::exception&) {
            if (PQstatus(conn_) == CONNECTION_OK) {
                throw;
            }
            // The connection died (PostgreSQL restarted); a batch is all or nothing, so once
            // more on a new connection.
            reconnect();
            write(changes);
        }
    }

    void check() override {
        const std::lock_guard lock(mutex_);
        ensure_ours();
        if (PQstatus(conn_) == CONNECTION_OK) {
            try {
                exec("SELECT 1", {});
                return;
            } catch (const std::exception&) {
                if (PQstatus(conn_) == CONNECTION_OK) {
                    throw;
                }
            }
        }
        // The session, and with it the lock, is gone: take both again or learn who has them.
        reconnect();
    }

    bool seen_since(const std::string& key, std::int64_t since_ms) override {
        const std::lock_guard lock(mutex_);
        ensure_ours();
        if (PQstatus(conn_) != CONNECTION_OK) {
            reconnect();
        }
        const Result found =
            exec("SELECT 1 FROM " + table("seen") + " WHERE key = $1 AND seen_ms >= $2::bigint",
                 {key, std::to_string(since_ms)});
        return found.rows() > 0;
    }

    std::size_t prune_seen(std::int64_t before_ms) override {
        const std::lock_guard lock(mutex_);
        ensure_ours();
        const Result deleted =
            exec("DELETE FROM " + table("seen") + " WHERE ctid IN (SELECT ctid FROM " +
                     table("seen") + " WHERE seen_ms < $1::bigint LIMIT 5000)",
                 {std::to_string(before_ms)});
        return deleted.affected();
    }

    std::size_t prune_finished(std::int64_t before_ms) override {
        const std::lock_guard lock(mutex_);
        ensure_ours();
        const Result deleted = exec("DELETE FROM " + table("runs") +
                                        " WHERE ctid IN (SELECT ctid FROM " + table("runs") +
                                        " WHERE finished_at < to_timestamp($1::bigint / 1000.0) "
                                        "LIMIT 5000)",
                                    {std::to_string(before_ms)});
        return deleted.affected();
    }

private:
    void write(const StateChanges& changes) {
        if (changes.replace_functions) {
            json::array rows;
            for (const auto& fn : changes.functions) {
                rows.push_back(json::object{{"slug", fn.slug}, {"document", fn.document}});
            }
            exec("BEGIN", {});
            try {
                exec("DELETE FROM " + table("functions"), {});
                exec("INSERT INTO " + table("functions") +
                         " (slug, document) SELECT slug, document FROM "
                         "jsonb_to_recordset($1::jsonb) AS r(slug text, document text)",
                     {json::serialize(rows)});
                write_rows(changes);
                exec("COMMIT", {});
            } catch (...) {
                if (PQstatus(conn_) == CONNECTION_OK) {
                    PQclear(PQexec(conn_, "ROLLBACK"));
                }
                throw;
            }
            return;
        }
        // The common batch (a run's step, its jobs) is one statement: one round trip, atomic.
        write_rows(changes);
    }

    // Runs, jobs and dedupe keys in one statement of data-modifying CTEs over JSON arrays. The
    // executor never deletes and writes the same job key in one batch.
    void write_rows(const StateChanges& changes) {
        json::array runs;
        for (const auto& run : changes.runs) {
            runs.push_back(json::object{{"run_id", run.run_id},
                                        {"function_id", run.function_id},
                                        {"status", run.status},
                                        {"sequence", run.sequence},
                                        {"document", run.document}});
        }
        json::array jobs;
        for (const auto& job : changes.jobs) {
            jobs.push_back(json::object{
                {"job_key", job.key}, {"due_ms", job.due_ms}, {"document", job.document}});
        }
        json::array seen;
        for (const auto& key : changes.seen) {
            seen.push_back(json::object{{"key", key.key}, {"seen_ms", key.seen_ms}});
        }
        const std::string runs_table = table("runs");
        exec("WITH written_runs AS (INSERT INTO " + runs_table +
                 " (run_id, function_id, status, sequence, document, finished_at) SELECT run_id, "
                 "function_id, status, sequence, document, CASE WHEN status <> 'Running' THEN "
                 "now() END FROM jsonb_to_recordset($1::jsonb) AS r(run_id text, function_id "
                 "text, status text, sequence bigint, document text) ON CONFLICT (run_id) DO "
                 "UPDATE SET status = excluded.status, document = excluded.document, finished_at "
                 "= CASE WHEN excluded.status <> 'Running' THEN coalesce(" +
                 runs_table +
                 ".finished_at, now()) END RETURNING 1), "
                 "removed_jobs AS (DELETE FROM " +
                 table("jobs") +
                 " WHERE job_key IN (SELECT jsonb_array_elements_text($2::jsonb)) RETURNING 1), "
                 "written_jobs AS (INSERT INTO " +
                 table("jobs") +
                 " (job_key, due_ms, document) SELECT job_key, due_ms, document FROM "
                 "jsonb_to_recordset($3::jsonb) AS r(job_key text, due_ms bigint, document text) "
                 "ON CONFLICT (job_key) DO UPDATE SET due_ms = excluded.due_ms, document = "
                 "excluded.document RETURNING 1), "
                 "forgotten AS (DELETE FROM " +
                 table("seen") +
                 " WHERE key IN (SELECT jsonb_array_elements_text($4::jsonb)) RETURNING 1), "
                 "written_seen AS (INSERT INTO " +
                 table("seen") +
                 " (key, seen_ms) SELECT key, seen_ms FROM jsonb_to_recordset($5::jsonb) AS "
                 "r(key text, seen_ms bigint) ON CONFLICT (key) DO UPDATE SET seen_ms = "
                 "excluded.seen_ms RETURNING 1) "
                 "SELECT (SELECT count(*) FROM written_runs) + (SELECT count(*) FROM "
                 "removed_jobs) + (SELECT count(*) FROM written_jobs) + (SELECT count(*) FROM "
                 "forgotten) + (SELECT count(*) FROM written_seen)",
             {json::serialize(runs), json::serialize(strings(changes.removed_jobs)),
              json::serialize(jobs), json::serialize(strings(changes.forgotten)),
              json::serialize(seen)});
    }

    static json::array strings(const std::vector<std::string>& values) {
        json::array out;
        for (const auto& value : values) {
            out.emplace_back(value);
        }
        return out;
    }

    std::string table(const char* name) const { return options_.table_prefix + "_" + name; }

    void connect() {
        conn_ = PQconnectdb(options_.url.c_str());
        if (PQstatus(conn_) != CONNECTION_OK) {
            const std::string message = PQerrorMessage(conn_);
            PQfinish(conn_);
            conn_ = nullptr;
            throw std::runtime_error("state store: cannot connect: " + message);
        }
        try {
            prepare();
        } catch (...) {
            PQfinish(conn_);  // a constructor that throws runs no destructor
            conn_ = nullptr;
            throw;
        }
    }

    // The executor lock first (a standby that is refused takes no table lock with DDL), then
    // the tables when missing.
    void prepare() {
        exec("SET client_min_messages = warning", {});
        lock_executor();
        if (options_.create_tables) {
            for (const auto& statement : table_definitions(options_.table_prefix)) {
                exec(statement, {});
            }
        }
    }

    // One active executor per database and table prefix: a second one would run everything
    // twice. The session lock goes with the connection, so a killed process frees it at once.
    void lock_executor() {
        const Result locked = exec("SELECT pg_try_advisory_lock(hashtext($1))",
                                   {"inngest-executor:" + options_.table_prefix});
        if (locked.text(0, 0) != "t") {
            replaced_ = true;  // for good: this connection must never write without the lock
            throw StateStoreBusy("state store: another executor is active on this database (" +
                                 options_.table_prefix + ")");
        }
    }

    // The connection dropped (a PostgreSQL restart): reconnect and take the lock again.
    void reconnect() {
        PQreset(conn_);
        if (PQstatus(conn_) != CONNECTION_OK) {
            throw std::runtime_error(std::string("state store: reconnect failed: ") +
                                     PQerrorMessage(conn_));
        }
        lock_executor();
    }

    Result exec(const std::string& sql, const std::vector<std::string>& params) {
        std::vector<const char*> values;
        for (const auto& param : params) {
            values.push_back(param.c_str());
        }
        PGresult* result = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()),
                                        nullptr, values.data(), nullptr, nullptr, 0);
        const auto status = PQresultStatus(result);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            const std::string message = PQresultErrorMessage(result);
            PQclear(result);
            throw std::runtime_error("state store: " + message);
        }
        return Result(result);
    }

    void ensure_ours() const {
        if (replaced_) {
            throw StateStoreBusy("state store: another executor took over this database (" +
                                 options_.table_prefix + ")");
        }
    }

    PostgresStateStoreOptions options_;
    std::mutex mutex_;
    bool replaced_ = false;
    PGconn* conn_ = nullptr;
};

}  // namespace

std::shared_ptr<StateStore> make_postgres_state_store(const PostgresStateStoreOptions& options) {
    return std::make_shared<PostgresStateStore>(options);
}

void create_postgres_state_tables(const PostgresStateStoreOptions& options) {
    check_table_prefix(options.table_prefix);
    PGconn* conn = PQconnectdb(options.url.c_str());
    const auto fail = [&](const std::string& what) {
        const std::string message = what + PQerrorMessage(conn);
        PQfinish(conn);
        throw std::runtime_error(message);
    };
    if (PQstatus(conn) != CONNECTION_OK) {
        fail("state store: cannot connect: ");
    }
    // One implicit transaction, under a lock: two processes creating the same tables at once
    // would collide in the catalogue.
    std::string script =
        "SET LOCAL client_min_messages = warning; "
        "SELECT pg_advisory_xact_lock(hashtext('inngest-executor-ddl:" +
        options.table_prefix + "'))";
    for (const auto& statement : table_definitions(options.table_prefix)) {
        script += "; " + statement;
    }
    const Result result(PQexec(conn, script.c_str()));
    if (result.status() != PGRES_COMMAND_OK) {
        fail("state store: cannot create its tables: ");
    }
    PQfinish(conn);
}

}  // namespace inngest::local
