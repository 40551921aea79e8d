// inngest-bench-load: a small closed-loop load generator. C keep-alive connections, each sending
// the same request back to back for a fixed time; prints one JSON line with requests per
// second, latency percentiles and status counts.
//
// usage: inngest-bench-load --url http://127.0.0.1:PORT/path?query [--method POST]
//                           [--body FILE] [--connections 4] [--duration 5] [--warmup 1]
//                           [--min-requests 3] [--max-duration 120]
// A slow endpoint is measured past --duration until --min-requests have completed (at most
// --max-duration seconds), so very slow workloads still get a figure.

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string host = "127.0.0.1";
    std::string port = "80";
    std::string target = "/";
    std::string method = "GET";
    std::string body;
    int connections = 4;
    double duration = 5;
    double warmup = 1;
    std::int64_t min_requests = 3;
    double max_duration = 120;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const std::string value = argv[i + 1];
        if (flag == "--url") {
            const auto rest = value.substr(value.find("://") + 3);
            const auto slash = rest.find('/');
            const auto authority = rest.substr(0, slash);
            o.target = slash == std::string::npos ? "/" : rest.substr(slash);
            const auto colon = authority.find(':');
            o.host = authority.substr(0, colon);
            o.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
        } else if (flag == "--method") {
            o.method = value;
        } else if (flag == "--body") {
            std::ifstream in(value, std::ios::binary);
            std::stringstream text;
            text << in.rdbuf();
            o.body = text.str();
        } else if (flag == "--connections") {
            o.connections = std::stoi(value);
        } else if (flag == "--duration") {
            o.duration = std::stod(value);
        } else if (flag == "--warmup") {
            o.warmup = std::stod(value);
        } else if (flag == "--min-requests") {
            o.min_requests = std::stoll(value);
        } else if (flag == "--max-duration") {
            o.max_duration = std::stod(value);
        }
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    std::atomic<bool> measuring{false};
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::vector<double> latencies_us;
    std::map<int, std::int64_t> statuses;
    std::int64_t errors = 0;
    std::atomic<std::int64_t> completed{0};

    std::vector<std::thread> workers;
    for (int c = 0; c < o.connections; ++c) {
        workers.emplace_back([&] {
            std::vector<double> mine;
            std::map<int, std::int64_t> my_statuses;
            std::int64_t my_errors = 0;
            asio::io_context io;
            tcp::resolver resolver(io);
            beast::tcp_stream stream(io);
            beast::flat_buffer buffer;
            http::request<http::string_body> request{http::string_to_verb(o.method), o.target, 11};
            request.set(http::field::host, o.host);
            request.set(http::field::content_type, "application/json");
            request.keep_alive(true);
            request.body() = o.body;
            request.prepare_payload();
            bool connected = false;
            while (!stop) {
                try {
                    if (!connected) {
                        stream.connect(resolver.resolve(o.host, o.port));
                        stream.socket().set_option(tcp::no_delay(true));
                        connected = true;
                    }
                    const auto started = Clock::now();
                    http::write(stream, request);
                    http::response_parser<http::string_body> parser;
                    parser.body_limit(std::uint64_t{512} * 1024 * 1024);
                    http::read(stream, buffer, parser);
                    const auto took = Clock::now() - started;
                    if (measuring) {
                        ++completed;
                        mine.push_back(std::chrono::duration<double, std::micro>(took).count());
                        ++my_statuses[parser.get().result_int()];
                    }
                    if (!parser.get().keep_alive()) {
                        stream.close();
                        connected = false;
                    }
                } catch (const std::exception&) {
                    if (measuring) {
                        ++my_errors;
                    }
                    stream.close();
                    connected = false;
                }
            }
            const std::lock_guard lock(mutex);
            latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
            for (const auto& [status, n] : my_statuses) {
                statuses[status] += n;
            }
            errors += my_errors;
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup));
    measuring = true;
    const auto started = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.duration));
    while (completed < o.min_requests &&
           std::chrono::duration<double>(Clock::now() - started).count() < o.max_duration) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    measuring = false;
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    stop = true;
    for (auto& w : workers) {
        w.join();
    }
    std::sort(latencies_us.begin(), latencies_us.end());
    const auto percentile = [&](double p) {
        if (latencies_us.empty()) {
            return 0.0;
        }
        const auto i = static_cast<std::size_t>(p * static_cast<double>(latencies_us.size() - 1));
        return latencies_us[i];
    };
    boost::json::object status_counts;
    for (const auto& [status, n] : statuses) {
        status_counts[std::to_string(status)] = n;
    }
    const boost::json::object out{{"requests", static_cast<std::int64_t>(latencies_us.size())},
                                  {"rps", static_cast<double>(latencies_us.size()) / seconds},
                                  {"p50_us", percentile(0.50)},
                                  {"p99_us", percentile(0.99)},
                                  {"errors", errors},
                                  {"statuses", status_counts}};
    std::cout << boost::json::serialize(out) << std::endl;
    return 0;
}
