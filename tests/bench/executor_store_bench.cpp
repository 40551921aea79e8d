// Runs per second of a three-step function through the local executor, with its state in
// memory and in PostgreSQL, side by side in one process (the SDK app on loopback HTTP).
//
//   inngest-bench-executor-store [--runs N] [--soak N] [--database-url URL]
//
// --soak N also runs N short runs through the PostgreSQL store in batches of 1,000 and reports
// the resident memory after the first tenth and at the end (memory must stay flat).
//
// Without --database-url it starts a private PostgreSQL (scripts/pg-cluster, fsync off as in the
// tests; see tests/bench/README.md for what that means for the figure).

#include "support/child_process.hpp"
#include "support/temp_postgres.hpp"

#include <inngest/inngest.hpp>
#include <inngest/local/executor.hpp>
#include <inngest/local/postgres_state_store.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

struct Figures {
    double runs_per_second = 0;
    double seconds = 0;
    bool all_completed = false;
};

long resident_kib() {
    std::FILE* status = std::fopen("/proc/self/status", "r");
    long kib = 0;
    char line[256];
    while (status != nullptr && std::fgets(line, sizeof line, status) != nullptr) {
        if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    if (status != nullptr) {
        std::fclose(status);
    }
    return kib;
}

Figures measure(const std::string& label,
                int runs,
                const std::shared_ptr<inngest::local::StateStore>& state,
                int soak = 0) {
    const auto port = static_cast<unsigned short>(inngest_test::free_port());
    inngest::local::ExecutorOptions options;
    options.port = port;
    options.state = state;
    if (soak > 0) {
        options.store = inngest::local::make_memory_run_store(1000);  // the inspection window
    }
    options.log_sink = [](auto, auto) {
    };
    inngest::local::Executor executor(options);
    executor.start();
    inngest::Client client({.app_id = "bench",
                            .dev = true,
                            .base_url = "http://127.0.0.1:" + std::to_string(port),
                            .log_sink =
                                [](auto, auto) {
                                }},
                           inngest::Environment::none());
    std::atomic<int> steps{0};
    client.create_function({.id = "three", .triggers = {inngest::EventTrigger{"bench/go"}}},
                           [&](inngest::Context& ctx) {
                               int total = 0;
                               for (const char* id : {"one", "two", "three"}) {
                                   total += ctx.step.run(id, [&] {
                                       ++steps;
                                       return 1;
                                   });
                               }
                               return total;
                           });
    inngest::ServeHandler handler(client);
    inngest::HttpServer server(handler, {.host = "127.0.0.1", .port = 0});
    server.start();
    if (!executor.sync_app("http://127.0.0.1:" + std::to_string(server.port()) + "/api/inngest")) {
        std::cerr << label << ": sync failed\n";
        return {};
    }
    json::array events;
    for (int i = 0; i < runs; ++i) {
        events.push_back(json::object{{"name", "bench/go"}, {"data", json::object{{"i", i}}}});
    }
    if (soak > 0) {
        long early = 0;
        for (int done = 0; done < soak; done += 1000) {
            json::array batch;
            for (int i = 0; i < 1000; ++i) {
                batch.push_back(json::object{{"name", "bench/go"}, {"data", json::object{}}});
            }
            if (!executor.send(batch) || !executor.wait_idle(600s)) {
                std::cerr << "soak: a batch did not finish\n";
                return {};
            }
            if (done + 1000 >= soak / 10 && early == 0) {
                early = resident_kib();
            }
        }
        const long late = resident_kib();
        std::printf(
            "soak: %d runs; resident memory %.1f MiB after the first tenth, %.1f MiB at "
            "the end (%+.1f MiB)\n",
            soak, early / 1024.0, late / 1024.0, (late - early) / 1024.0);
        return {0, 0, steps == 3 * soak};
    }
    const auto started = std::chrono::steady_clock::now();
    if (!executor.send(events)) {
        std::cerr << label << ": send failed\n";
        return {};
    }
    const bool idle = executor.wait_idle(600s);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    int completed = 0;
    for (const auto& run : executor.runs("bench-three")) {
        completed += run.status == inngest::local::RunStatus::kCompleted ? 1 : 0;
    }
    return {runs / seconds, seconds, idle && completed == runs && steps == 3 * runs};
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 2000;
    int soak = 0;
    std::string database_url;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--runs") {
            runs = std::stoi(argv[i + 1]);
        } else if (arg == "--soak") {
            soak = std::stoi(argv[i + 1]);
        } else if (arg == "--database-url") {
            database_url = argv[i + 1];
        }
    }
    std::unique_ptr<inngest_test::TempPostgres> postgres;
    if (database_url.empty()) {
        postgres = std::make_unique<inngest_test::TempPostgres>();
        database_url = postgres->fresh_database();
    }
    const auto memory = measure("memory", runs, nullptr);
    const auto stored =
        measure("postgres", runs, inngest::local::make_postgres_state_store({.url = database_url}));
    std::printf("| store | runs | seconds | runs/s | all completed, each step once |\n");
    std::printf("|---|---:|---:|---:|---|\n");
    std::printf("| memory | %d | %.2f | %.0f | %s |\n", runs, memory.seconds,
                memory.runs_per_second, memory.all_completed ? "yes" : "NO");
    std::printf("| postgres | %d | %.2f | %.0f | %s |\n", runs, stored.seconds,
                stored.runs_per_second, stored.all_completed ? "yes" : "NO");
    const double ratio = memory.runs_per_second / stored.runs_per_second;
    std::printf("\nmemory/postgres: %.2fx (target: within 3x)\n", ratio);
    bool soaked = true;
    if (soak > 0) {
        soaked = measure("soak", 0,
                         inngest::local::make_postgres_state_store(
                             {.url = database_url, .table_prefix = "soak"}),
                         soak)
                     .all_completed;
    }
    return memory.all_completed && stored.all_completed && soaked ? 0 : 1;
}
