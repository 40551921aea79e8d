#include "local/dashboard.hpp"

#include "crypto/crypto.hpp"
#include "protocol/json_writer.hpp"
#include "transport/url.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>

namespace inngest::local::internal {

namespace {

namespace json = boost::json;

constexpr std::string_view kCookie = "inngest_dashboard";
constexpr std::int64_t kNoLimit = std::numeric_limits<std::int64_t>::max();

void secure_headers(HttpResponse& response) {
    response.headers.emplace_back("Content-Security-Policy",
                                  "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                  "form-action 'self'; frame-ancestors 'none'");
    response.headers.emplace_back("X-Content-Type-Options", "nosniff");
    response.headers.emplace_back("X-Frame-Options", "DENY");
    response.headers.emplace_back("Referrer-Policy", "no-referrer");
    response.headers.emplace_back("Cache-Control", "no-store");
}

HttpResponse reply(int status, const json::value& body) {
    HttpResponse response{status, {{"Content-Type", "application/json"}}, detail::to_json(body)};
    secure_headers(response);
    return response;
}

HttpResponse refuse(int status, std::string_view message) {
    return reply(status, json::object{{"error", message}, {"status", status}});
}

// The decoded value of `name` in a query string, or empty.
std::string param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (detail::percent_decode(pair.substr(0, eq)) == name) {
            return eq == std::string_view::npos ? std::string()
                                                : detail::percent_decode(pair.substr(eq + 1));
        }
        if (amp == std::string_view::npos) {
            break;
        }
        query.remove_prefix(amp + 1);
    }
    return {};
}

// A non-negative integer parameter, `fallback` when absent or not a number, at most `high`.
std::int64_t number(std::string_view query,
                    std::string_view name,
                    std::int64_t fallback,
                    std::int64_t high) {
    const std::string text = param(query, name);
    if (text.empty()) {
        return fallback;
    }
    char* end = nullptr;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (end == nullptr || *end != '\0' || value < 0) {
        return fallback;
    }
    return std::min<std::int64_t>(value, high);
}

std::string cookie(const HttpRequest& request, std::string_view name) {
    std::string_view header = request.header("Cookie");
    while (!header.empty()) {
        const auto semi = header.find(';');
        std::string_view pair = header.substr(0, semi);
        while (!pair.empty() && pair.front() == ' ') {
            pair.remove_prefix(1);
        }
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
            return std::string(pair.substr(eq + 1));
        }
        if (semi == std::string_view::npos) {
            break;
        }
        header.remove_prefix(semi + 1);
    }
    return {};
}

bool contains_folded(std::string_view text, std::string_view part) {
    return std::search(text.begin(), text.end(), part.begin(), part.end(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           }) != text.end();
}

std::string string_at(const json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->get_string())
                                                  : std::string();
}

// `Waiting` is a running run that sleeps, waits for an event or waits for an invoked run.
std::string display_status(const RunSnapshot& run) {
    if (run.status == RunStatus::kRunning && !run.pending.empty()) {
        return "Waiting";
    }
    return run_status_name(run.status);
}

std::string error_message(const json::value& error) {
    if (const auto* object = error.if_object()) {
        const std::string message = string_at(*object, "message");
        const std::string name = string_at(*object, "name");
        return name.empty() || message.empty() ? name + message : name + ": " + message;
    }
    return error.is_string() ? std::string(error.get_string()) : std::string();
}

json::object summary(const RunSnapshot& run) {
    int steps = 0;
    int retries = static_cast<int>(run.retried_calls.size());
    std::string last_error = error_message(run.error);
    for (const auto& step : run.history) {
        if (step.op == "StepError") {
            ++retries;
        } else {
            ++steps;
        }
        if (last_error.empty() && !step.error.is_null() && step.op != "StepError") {
            last_error = error_message(step.error);
        }
    }
    return json::object{{"run_id", run.run_id},
                        {"function_id", run.function_id},
                        {"status", display_status(run)},
                        {"event_name", string_at(run.event, "name")},
                        {"event_id", string_at(run.event, "id")},
                        {"started_at", run.started_ms},
                        {"ended_at", run.ended_ms},
                        {"steps", steps},
                        {"retries", retries},
                        {"pending", run.pending.size()},
                        {"error", last_error}};
}

json::object pending_json(const PendingStep& step) {
    return json::object{{"id", step.hashed_id},   {"name", step.name},
                        {"op", step.op},          {"started_at", step.started_ms},
                        {"until", step.until_ms}, {"event", step.event},
                        {"if", step.condition}};
}

json::object detail_json(const RunSnapshot& run) {
    json::object out = summary(run);
    json::array history;
    for (const auto& step : run.history) {
        history.push_back(json::object{{"id", step.hashed_id},
                                       {"name", step.name},
                                       {"op", step.op},
                                       {"attempt", step.attempt},
                                       {"started_at", step.started_ms},
                                       {"ended_at", step.ended_ms},
                                       {"data", step.data},
                                       {"error", step.error}});
    }
    // Retried calls go in among the steps, by time (their attempt follows the steps before).
    for (const auto& call : run.retried_calls) {
        json::object entry{{"id", call.hashed_id},
                           {"name", "call to the function"},
                           {"op", call.op},
                           {"attempt", call.attempt},
                           {"started_at", call.started_ms},
                           {"ended_at", call.ended_ms},
                           {"data", nullptr},
                           {"error", call.error}};
        auto at = std::find_if(history.begin(), history.end(), [&call](const json::value& step) {
            return step.at("ended_at").to_number<std::int64_t>() > call.ended_ms;
        });
        history.insert(at, std::move(entry));
    }
    json::array pending;
    for (const auto& step : run.pending) {
        pending.push_back(pending_json(step));
    }
    out["event"] = run.event;
    out["batch_size"] = run.events.size();
    out["output"] = run.output;
    out["run_error"] = run.error;
    out["calls"] = run.calls;
    out["history"] = std::move(history);
    out["waits"] = std::move(pending);
    return out;
}

}  // namespace

Dashboard::Dashboard(DashboardHooks hooks) : hooks_(std::move(hooks)) {}

HttpResponse Dashboard::handle(const HttpRequest& request) {
    // Without a key the dashboard trusts whoever reaches it, so only a loopback name may: a page
    // on another site that rebinds its own name to 127.0.0.1 still sends that name as Host.
    if (!hooks_.key_required && !detail::loopback_host_header(request.header("Host"))) {
        return refuse(403, "an executor without a key serves its dashboard on loopback names only");
    }
    std::string_view path = request.path;
    if (path == "/_dashboard") {
        HttpResponse response{302, {{"Location", "/_dashboard/"}}, ""};
        secure_headers(response);
        return response;
    }
    path.remove_prefix(std::string_view("/_dashboard/").size());
    if (path.starts_with("api/")) {
        return api(request, path.substr(4));
    }
    if (request.method != "GET" && request.method != "HEAD") {
        return refuse(405, "method not allowed");
    }
    const std::string_view name = path.empty() ? std::string_view("index.html") : path;
    for (const auto& asset : dashboard_assets()) {
        if (asset.name == name) {
            HttpResponse response{
                200, {{"Content-Type", std::string(asset.content_type)}}, std::string(asset.body)};
            secure_headers(response);
            return response;
        }
    }
    return refuse(404, "not found");
}

bool Dashboard::signed_in(const HttpRequest& request) {
    if (!hooks_.key_required) {
        return true;
    }
    if (const std::string_view bearer = request.header("Authorization");
        bearer.starts_with("Bearer ") && hooks_.key_accepted(bearer.substr(7))) {
        return true;
    }
    const std::string token = cookie(request, kCookie);
    if (token.empty()) {
        return false;
    }
    const std::string digest = detail::crypto::sha256_hex(token);
    const std::lock_guard lock(mutex_);
    const auto it = sessions_.find(digest);
    if (it == sessions_.end()) {
        return false;
    }
    if (it->second < std::chrono::steady_clock::now()) {
        sessions_.erase(it);
        return false;
    }
    return true;
}

HttpResponse Dashboard::login(const HttpRequest& request) {
    if (!hooks_.key_required) {
        return reply(200, json::object{{"ok", true}});
    }
    boost::system::error_code ec;
    const json::value body = json::parse(request.body, ec);
    const json::value* key =
        !ec && body.is_object() ? body.as_object().if_contains("key") : nullptr;
    if (key == nullptr || !key->is_string() || key->get_string().empty() ||
        !hooks_.key_accepted(key->get_string())) {
        return refuse(401, "wrong key");
    }
    const std::string token = detail::crypto::sha256_hex(detail::crypto::random_bytes(32));
    {
        const std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        std::erase_if(sessions_, [now](const auto& entry) { return entry.second < now; });
        while (sessions_.size() >= kMaxSessions) {
            // The one closest to expiry goes first.
            sessions_.erase(
                std::min_element(sessions_.begin(), sessions_.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; }));
        }
        sessions_[detail::crypto::sha256_hex(token)] = now + kSessionLifetime;
    }
    auto response = reply(200, json::object{{"ok", true}});
    response.headers.emplace_back(
        "Set-Cookie",
        std::string(kCookie) + "=" + token +
            "; Path=/_dashboard; HttpOnly; SameSite=Strict; Max-Age=" +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(kSessionLifetime).count()));
    return response;
}

HttpResponse Dashboard::logout(const HttpRequest& request) {
    if (const std::string token = cookie(request, kCookie); !token.empty()) {
        const std::lock_guard lock(mutex_);
        sessions_.erase(detail::crypto::sha256_hex(token));
    }
    auto response = reply(200, json::object{{"ok", true}});
    response.headers.emplace_back("Set-Cookie", std::string(kCookie) +
                                                    "=; Path=/_dashboard; HttpOnly; "
                                                    "SameSite=Strict; Max-Age=0");
    return response;
}

HttpResponse Dashboard::api(const HttpRequest& request, std::string_view route) {
    const bool post = request.method == "POST";
    if (!post && request.method != "GET") {
        return refuse(405, "method not allowed");
    }
    // A page of another site can make a browser POST here with our cookie, but it cannot add a
    // custom header without a CORS preflight, which we never grant.
    if (post && request.header("X-Dashboard") != "1") {
        return refuse(403, "POST needs the X-Dashboard: 1 header");
    }
    if (route == "session" && !post) {
        return reply(200, json::object{{"login_required", hooks_.key_required},
                                       {"signed_in", signed_in(request)}});
    }
    if (route == "login" && post) {
        return login(request);
    }
    if (route == "logout" && post) {
        return logout(request);
    }
    if (!signed_in(request)) {
        return refuse(401, "sign in first");
    }
    if (route == "functions" && !post) {
        return list_functions();
    }
    if (route == "runs" && !post) {
        return list_runs(request);
    }
    if (route == "events" && !post) {
        return list_events(request);
    }
    if (route == "events" && post) {
        boost::system::error_code ec;
        const json::value body = json::parse(request.body, ec);
        if (ec) {
            return refuse(400, "the body is not JSON");
        }
        auto ids = hooks_.send(body);
        if (!ids) {
            return refuse(400, ids.error().message);
        }
        json::array out;
        for (const auto& id : *ids) {
            out.emplace_back(id);
        }
        return reply(200, json::object{{"ids", std::move(out)}});
    }
    if (route.starts_with("runs/")) {
        std::string_view rest = route.substr(5);
        const auto slash = rest.find('/');
        const std::string run_id(rest.substr(0, slash));
        const std::string_view action =
            slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        if (!post && action.empty()) {
            const auto run = hooks_.run(run_id);
            if (!run) {
                return refuse(404, "run not found");
            }
            return reply(200, json::object{{"run", detail_json(*run)}, {"now", hooks_.now_ms()}});
        }
        if (post && action == "cancel") {
            if (auto done = hooks_.cancel(run_id); !done) {
                return refuse(409, done.error().message);
            }
            return reply(200, json::object{{"ok", true}});
        }
        if (post && action == "rerun") {
            auto id = hooks_.rerun(run_id);
            if (!id) {
                return refuse(409, id.error().message);
            }
            return reply(200, json::object{{"run_id", *id}});
        }
    }
    return refuse(404, "not found");
}

HttpResponse Dashboard::list_functions() {
    std::map<std::string, json::object> counts;
    for (const auto& run : hooks_.runs()) {
        auto& count = counts[run.function_id];
        const std::string status = display_status(run);
        count[status] =
            (count.contains(status) ? count.at(status).to_number<std::int64_t>() : 0) + 1;
    }
    json::array out;
    for (const auto& value : hooks_.functions()) {
        const auto& config = value.as_object();
        const std::string id = string_at(config, "id");
        json::object entry{{"id", id},
                           {"name", string_at(config, "name")},
                           {"config", config},
                           {"runs", counts[id]}};
        out.push_back(std::move(entry));
    }
    return reply(200, json::object{{"functions", std::move(out)}});
}

HttpResponse Dashboard::list_runs(const HttpRequest& request) {
    const std::string function = param(request.query, "function");
    const std::string status = param(request.query, "status");
    const std::string event = param(request.query, "event");
    const std::string search = param(request.query, "q");
    const std::int64_t from = number(request.query, "from", 0, kNoLimit);
    const std::int64_t to = number(request.query, "to", 0, kNoLimit);
    const std::int64_t offset = number(request.query, "offset", 0, kNoLimit);
    const std::int64_t limit = std::max<std::int64_t>(1, number(request.query, "limit", 25, 200));

    auto runs = hooks_.runs();
    std::reverse(runs.begin(), runs.end());  // newest first
    json::object counts{
        {"Running", 0}, {"Waiting", 0}, {"Completed", 0}, {"Failed", 0}, {"Cancelled", 0}};
    json::array page;
    std::int64_t total = 0;
    for (const auto& run : runs) {
        if ((!function.empty() && run.function_id != function) ||
            (!event.empty() && !contains_folded(string_at(run.event, "name"), event)) ||
            (from > 0 && run.started_ms < from) || (to > 0 && run.started_ms > to) ||
            (!search.empty() && !contains_folded(run.run_id, search) &&
             string_at(run.event, "id") != search)) {
            continue;
        }
        const std::string shown = display_status(run);
        counts[shown] = counts[shown].to_number<std::int64_t>() + 1;
        // `Running` includes the waiting ones, as in the executor's own status.
        const bool matches = status.empty() || status == shown ||
                             (status == "Running" && run.status == RunStatus::kRunning);
        if (!matches) {
            continue;
        }
        if (total >= offset && total - offset < limit) {
            page.push_back(summary(run));
        }
        ++total;
    }
    counts["Running"] =
        counts["Running"].to_number<std::int64_t>() + counts["Waiting"].to_number<std::int64_t>();
    return reply(200, json::object{{"runs", std::move(page)},
                                   {"total", total},
                                   {"offset", offset},
                                   {"limit", limit},
                                   {"counts", std::move(counts)},
                                   {"now", hooks_.now_ms()}});
}

HttpResponse Dashboard::list_events(const HttpRequest& request) {
    const std::string name = param(request.query, "name");
    const std::int64_t offset = number(request.query, "offset", 0, kNoLimit);
    const std::int64_t limit = std::max<std::int64_t>(1, number(request.query, "limit", 25, 200));
    auto events = hooks_.events();
    std::reverse(events.begin(), events.end());
    json::array page;
    std::int64_t total = 0;
    for (const auto& record : events) {
        if (!name.empty() && !contains_folded(string_at(record.event, "name"), name)) {
            continue;
        }
        if (total >= offset && total - offset < limit) {
            json::array runs;
            for (const auto& id : record.run_ids) {
                runs.emplace_back(id);
            }
            page.push_back(json::object{{"id", string_at(record.event, "id")},
                                        {"name", string_at(record.event, "name")},
                                        {"received_at", record.received_ms},
                                        {"event", record.event},
                                        {"run_ids", std::move(runs)}});
        }
        ++total;
    }
    return reply(200, json::object{{"events", std::move(page)},
                                   {"total", total},
                                   {"offset", offset},
                                   {"limit", limit},
                                   {"now", hooks_.now_ms()}});
}

}  // namespace inngest::local::internal
