#pragma once

// The run dashboard at /_dashboard: static pages compiled into the library (sdk/src/local/
// dashboard/, embedded by sdk/CMakeLists.txt) and a JSON API under /_dashboard/api for them.
// It sees the executor only through DashboardHooks.

#include <inngest/errors.hpp>
#include <inngest/local/executor.hpp>
#include <inngest/serve.hpp>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inngest::local::internal {

/// One embedded file (generated dashboard_assets.cpp).
struct DashboardAsset {
    std::string_view name;
    std::string_view content_type;
    std::string_view body;
};
const std::vector<DashboardAsset>& dashboard_assets();

/// What the dashboard may ask of the executor.
struct DashboardHooks {
    /// False when the executor has no key (dev mode): the dashboard is open, like its API.
    bool key_required = false;
    /// Constant-time check of an API key (plain or hashed, as the API accepts it).
    std::function<bool(std::string_view key)> key_accepted;
    std::function<boost::json::array()> functions;
    std::function<std::vector<RunSnapshot>()> runs;
    std::function<std::optional<RunSnapshot>(const std::string& run_id)> run;
    std::function<std::vector<EventRecord>()> events;
    std::function<Result<std::vector<std::string>>(const boost::json::value& events)> send;
    std::function<Result<void>(const std::string& run_id)> cancel;
    std::function<Result<std::string>(const std::string& run_id)> rerun;
    /// The executor's clock, in ms since the epoch (what run times are measured in).
    std::function<std::int64_t()> now_ms;
};

/// Answers every request under /_dashboard.
///
/// Auth: with a key, the page shows a login form; POST /_dashboard/api/login with the key sets
/// an HttpOnly, SameSite=Strict session cookie (a random token; the server keeps its SHA-256
/// with an expiry, in memory). Every API call needs that cookie or `Authorization: Bearer KEY`;
/// every POST also needs `X-Dashboard: 1`, which a cross-site form cannot send.
///
/// @par Thread safety
/// `handle` may be called from several threads.
class Dashboard {
public:
    static constexpr std::chrono::hours kSessionLifetime{12};
    static constexpr std::size_t kMaxSessions = 1000;

    explicit Dashboard(DashboardHooks hooks);
    HttpResponse handle(const HttpRequest& request);

private:
    HttpResponse api(const HttpRequest& request, std::string_view route);
    HttpResponse login(const HttpRequest& request);
    HttpResponse logout(const HttpRequest& request);
    HttpResponse list_runs(const HttpRequest& request);
    HttpResponse list_events(const HttpRequest& request);
    HttpResponse list_functions();
    bool signed_in(const HttpRequest& request);

    DashboardHooks hooks_;
    std::mutex mutex_;
    /// SHA-256 of each session token -> when it expires.
    std::map<std::string, std::chrono::steady_clock::time_point> sessions_;
};

}  // namespace inngest::local::internal
