// inngest-local: the local executor as a program, a stand-in for `inngest dev -u URL` on
// machines without the Inngest dev server.
//
//   inngest-local -u http://127.0.0.1:3000/api/inngest [-u URL ...] [--port 8288]
//                 [--signing-key KEY] [--event-key KEY] [--database-url URL]
//
// With --database-url (or INNGEST_LOCAL_DATABASE_URL) runs, queued work and dedupe keys live in
// PostgreSQL: a restarted executor resumes them. A second inngest-local on the same database
// stands by (its API answers 503) and takes over when the active one dies; an executor that
// finds itself replaced exits with status 75, to be restarted as a standby.
//
// Apps are synced at start (retried until they answer) and again on `POST /v1/apps
// {"url": ...}`. Events go to `POST /e/{key}`; runs are listed at `GET /v1/runs` and shown at
// /_dashboard/ (with --signing-key, the page asks for that key).

#include <inngest/local/executor.hpp>
#include <inngest/local/postgres_state_store.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    inngest::local::ExecutorOptions options;
    std::string database_url;
    if (const char* env = std::getenv("INNGEST_LOCAL_DATABASE_URL"); env != nullptr) {
        database_url = env;
    }
    std::vector<std::string> apps;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "inngest-local: " << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "-u" || arg == "--url") {
            apps.push_back(value());
        } else if (arg == "--port") {
            options.port = static_cast<unsigned short>(std::stoi(value()));
        } else if (arg == "--host") {
            options.host = value();
        } else if (arg == "--signing-key") {
            options.signing_key = value();
        } else if (arg == "--event-key") {
            options.event_keys.push_back(value());
        } else if (arg == "--database-url") {
            database_url = value();
        } else {
            std::cerr << "usage: inngest-local -u SERVE_URL [-u ...] [--port 8288] [--host H] "
                         "[--signing-key KEY] [--event-key KEY] [--database-url URL]\n";
            return 2;
        }
    }
    options.log_sink = [](inngest::LogLevel level, std::string_view line) {
        if (level >= inngest::LogLevel::kInfo) {
            std::cerr << "inngest-local: " << line << "\n";
        }
    };
    inngest::local::Executor* running = nullptr;
    boost::asio::io_context io;
    // Apps are synced on the main thread once the executor is active: at start, or when a
    // standby takes over.
    options.on_active = [&io, &apps, &running] {
        boost::asio::post(io, [&apps, &running] {
            for (const auto& app : apps) {
                for (int attempt = 0;; ++attempt) {
                    auto synced = running->sync_app(app);
                    if (synced) {
                        std::cout << "inngest-local: synced " << *synced << " functions from "
                                  << app << std::endl;
                        break;
                    }
                    if (attempt == 0 || attempt % 10 == 0) {
                        std::cerr << "inngest-local: waiting for " << app << ": "
                                  << synced.error().message << "\n";
                    }
                    std::this_thread::sleep_for(std::chrono::seconds(1));
                }
            }
        });
    };
    options.on_replaced = [](const std::string& why) {
        std::cerr << "inngest-local: " << why << "; exiting\n";
        std::_Exit(75);
    };
    try {
        if (!database_url.empty()) {
            options.open_state = [database_url] {
                return inngest::local::make_postgres_state_store({.url = database_url});
            };
        }
        inngest::local::Executor executor(options);
        running = &executor;
        executor.start();
        std::cout << "inngest-local: executor at " << executor.url()
                  << (executor.active() ? "" : ", standing by")
                  << " (point SDKs at it with INNGEST_BASE_URL=" << executor.url() << ")"
                  << std::endl;
        std::cout << "inngest-local: dashboard at " << executor.url() << "/_dashboard/"
                  << (options.signing_key ? " (sign in with the signing key)" : "") << std::endl;
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([](const boost::system::error_code&, int) {});
        io.run();
        executor.stop();
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "inngest-local: " << error.what() << "\n";
        return 1;
    }
}
