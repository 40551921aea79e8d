#pragma once

// A real PostgreSQL for tests: a private cluster (scripts/pg-cluster) in a temporary folder on
// a free loopback port, with a fresh database per test.

#include <string>

namespace inngest_test {

class TempPostgres {
public:
    TempPostgres();
    ~TempPostgres();
    TempPostgres(const TempPostgres&) = delete;
    TempPostgres& operator=(const TempPostgres&) = delete;

    /// A new empty database owned by `riveredge_owner` (the role that runs migrations); the
    /// owner's libpq URL. `as_role` turns it into another role's URL for the same database.
    std::string fresh_database();
    int port() const noexcept { return port_; }
    /// The server's log (its standard error): what `log_statement` and the like write.
    std::string log_file() const { return dir_ + "/server.log"; }
    /// Stops the server and starts it again on the same data and port (every connection drops).
    void restart();

private:
    std::string url(const std::string& database) const;

    std::string dir_;
    int port_ = 0;
    int databases_ = 0;
};

/// The same connection string as another of the cluster's roles (`riveredge`, the app's
/// runtime role; `riveredge_owner`; `postgres`, the superuser).
std::string as_role(const std::string& url, const std::string& role);

/// One cluster per test process, started on first use.
TempPostgres& shared_postgres();

}  // namespace inngest_test
