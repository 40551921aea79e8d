#include "support/temp_postgres.hpp"

#include "support/child_process.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <unistd.h>

namespace inngest_test {

TempPostgres::TempPostgres() {
    dir_ = (std::filesystem::temp_directory_path() / ("riveredge-pg-" + std::to_string(getpid())))
               .string();
    std::filesystem::remove_all(dir_);
    port_ = free_port();
    // A throwaway cluster: fsync off (PG_CLUSTER_FSYNC=on in the environment keeps it on).
    const std::string command = std::string("PG_CLUSTER_FSYNC=${PG_CLUSTER_FSYNC:-off} ") +
                                PROJECT_SOURCE_DIR + "/scripts/pg-cluster start '" + dir_ + "' " +
                                std::to_string(port_) + " >/dev/null";
    if (std::system(command.c_str()) != 0) {
        throw std::runtime_error("could not start PostgreSQL for the tests");
    }
}

TempPostgres::~TempPostgres() {
    const std::string command =
        std::string(PROJECT_SOURCE_DIR) + "/scripts/pg-cluster stop '" + dir_ + "'";
    (void)std::system(command.c_str());
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

void TempPostgres::restart() {
    const std::string script = std::string(PROJECT_SOURCE_DIR) + "/scripts/pg-cluster";
    const std::string stop = script + " stop '" + dir_ + "' >/dev/null";
    const std::string start = "PG_CLUSTER_FSYNC=${PG_CLUSTER_FSYNC:-off} " + script + " start '" +
                              dir_ + "' " + std::to_string(port_) + " >/dev/null";
    if (std::system(stop.c_str()) != 0 || std::system(start.c_str()) != 0) {
        throw std::runtime_error("could not restart the test PostgreSQL");
    }
}

std::string TempPostgres::fresh_database() {
    const std::string name = "test_" + std::to_string(++databases_);
    const std::string admin = as_role(url("postgres"), "postgres");
    PGconn* conn = PQconnectdb(admin.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        throw std::runtime_error("cannot connect to the test PostgreSQL");
    }
    // The name is ours (test_<n>), never input: safe to format.
    PGresult* result = PQexec(conn, ("CREATE DATABASE " + name + " OWNER riveredge_owner").c_str());
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    PQfinish(conn);
    if (!ok) {
        throw std::runtime_error("cannot create a test database");
    }
    return as_role(url(name), "riveredge_owner");
}

// The user comes last, so that as_role can swap it.
std::string TempPostgres::url(const std::string& database) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + database + " passfile='" +
           dir_ + "/pgpass' user=";
}

std::string as_role(const std::string& url, const std::string& role) {
    const auto user = url.rfind(" user=");
    if (user == std::string::npos) {
        throw std::invalid_argument("not a TempPostgres URL: " + url);
    }
    return url.substr(0, user) + " user=" + role;
}

TempPostgres& shared_postgres() {
    static TempPostgres instance;
    return instance;
}

}  // namespace inngest_test
