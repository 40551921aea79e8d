#include "core/db/listener.hpp"

#include "core/log/logger.hpp"

#include <libpq-fe.h>

#include <chrono>

#include <sys/select.h>

namespace riveredge::core::db {

Listener::Listener(std::string url,
                   std::string channel,
                   std::function<void(const std::string&)> on_notify)
    : url_(std::move(url)),
      channel_(std::move(channel)),
      on_notify_(std::move(on_notify)),
      thread_([this] { run(); }) {}

Listener::~Listener() {
    stopping_ = true;
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Listener::run() {
    while (!stopping_) {
        PGconn* conn = PQconnectdb(url_.c_str());
        if (PQstatus(conn) != CONNECTION_OK) {
            PQfinish(conn);
            std::this_thread::sleep_for(std::chrono::seconds(1));
            continue;
        }
        // The channel name is a constant of ours, never input; quote it as an identifier anyway.
        char* quoted = PQescapeIdentifier(conn, channel_.c_str(), channel_.size());
        PGresult* listen = PQexec(conn, ("LISTEN " + std::string(quoted)).c_str());
        PQfreemem(quoted);
        const bool listening = PQresultStatus(listen) == PGRES_COMMAND_OK;
        PQclear(listen);
        {
            const std::lock_guard lock(mutex_);
            listening_ = listening;
        }
        listening_changed_.notify_all();
        while (listening && !stopping_ && PQstatus(conn) == CONNECTION_OK) {
            const int fd = PQsocket(conn);
            fd_set read_set;
            FD_ZERO(&read_set);
            FD_SET(fd, &read_set);
            timeval timeout{0, 200000};
            if (select(fd + 1, &read_set, nullptr, nullptr, &timeout) < 0) {
                break;
            }
            if (PQconsumeInput(conn) == 0) {
                break;
            }
            while (PGnotify* notify = PQnotifies(conn)) {
                const std::string payload = notify->extra != nullptr ? notify->extra : "";
                PQfreemem(notify);
                try {
                    on_notify_(payload);
                } catch (const std::exception& error) {
                    log(LogLevel::kWarn, "notification handler failed", {{"error", error.what()}});
                }
            }
        }
        {
            const std::lock_guard lock(mutex_);
            listening_ = false;
        }
        PQfinish(conn);
    }
}

bool Listener::wait_listening(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return listening_changed_.wait_for(lock, timeout, [this] { return listening_; });
}

}  // namespace riveredge::core::db
