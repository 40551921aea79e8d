#include "core/http/router.hpp"

#include "core/auth/jwt.hpp"
#include "core/db/database.hpp"
#include "core/json/depth.hpp"
#include "core/json/text.hpp"
#include "core/log/logger.hpp"
#include "core/text/integers.hpp"
#include "core/text/storable.hpp"
#include "core/text/utf8.hpp"

#include <inngest/metrics.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>

namespace riveredge::core {
namespace {

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> segments;
    std::size_t start = 0;
    while (start < path.size()) {
        if (path[start] == '/') {
            ++start;
            continue;
        }
        const std::size_t end = path.find('/', start);
        segments.emplace_back(
            path.substr(start, end == std::string_view::npos ? end : end - start));
        start = end == std::string_view::npos ? path.size() : end;
    }
    return segments;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// `text` of a URL with '+' as a space and each %XX as its byte; nullopt when a '%' is not
// followed by two hex digits, with `malformed` set to that escape (the '%' and at most two
// characters after it).
std::optional<std::string> decode(std::string_view text, std::string_view& malformed) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out.push_back(' ');
        } else if (text[i] == '%') {
            const int high = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
            const int low = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
            if (high < 0 || low < 0) {
                malformed = text.substr(i, 3);
                return std::nullopt;
            }
            out.push_back(static_cast<char>(high * 16 + low));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

// The 400 for a malformed escape in `where` (the path, or a query parameter named).
DomainError malformed_escape(const std::string& where, std::string_view escape) {
    return DomainError(DomainError::Kind::kBadRequest, "bad_request",
                       storable_text(std::string(utf8_prefix(where, 200)) +
                                     " holds a malformed percent-escape '" + std::string(escape) +
                                     "': a '%' must be followed by two hex digits (%25 for '%' "
                                     "itself)"));
}

std::string new_request_id() {
    static std::atomic<std::uint64_t> counter{0};
    static const std::uint64_t base = std::random_device{}();
    return "req-" + std::to_string(base % 1000000) + "-" + std::to_string(++counter);
}

// The one place a domain error becomes an HTTP status.
int http_status(const DomainError& error) noexcept {
    switch (error.kind()) {
        case DomainError::Kind::kBadRequest:
            return 400;
        case DomainError::Kind::kUnauthorized:
            return 401;
        case DomainError::Kind::kForbidden:
            return 403;
        case DomainError::Kind::kNotFound:
            return 404;
        case DomainError::Kind::kConflict:
            return 409;
        case DomainError::Kind::kInvalid:
            return 422;
        case DomainError::Kind::kTooMany:
            return 429;
        case DomainError::Kind::kUnavailable:
            return 503;
        case DomainError::Kind::kMethodNotAllowed:
            return 405;
        case DomainError::Kind::kUpgradeRequired:
            return 426;
        case DomainError::Kind::kInternal:
            return 500;
    }
    return 500;
}

// PostgreSQL errors mapped once: unique/foreign-key violations are conflicts, bad input
// (including a text PostgreSQL cannot store) is 400.
DomainError from_db_error(const db::DbError& error) {
    const std::string& state = error.sqlstate();
    if (state == "23505") {
        return DomainError(DomainError::Kind::kConflict, "conflict", "the resource already exists",
                           nullptr, error.what());
    }
    if (state == "23503") {
        return DomainError(DomainError::Kind::kConflict, "conflict",
                           "the resource is still referenced or refers to a missing one", nullptr,
                           error.what());
    }
    if (state == "22021" || state == "22P05") {
        // A NUL in a text parameter (core::db refuses it unsent), \u0000 in jsonb, or bytes
        // that are not UTF-8.
        return DomainError(DomainError::Kind::kBadRequest, "bad_request",
                           "a text holds a character that cannot be stored (a NUL, \\u0000, or "
                           "bytes that are not UTF-8)",
                           nullptr, error.what());
    }
    if (state == "22P02" || state == "22007" || state == "22008" || state == "22001" ||
        state == "22003" || state == "23514" || state == "23502") {
        return DomainError(DomainError::Kind::kBadRequest, "bad_request",
                           "a value is malformed or out of range", nullptr, error.what());
    }
    return DomainError(DomainError::Kind::kInternal, "internal", "internal error", nullptr,
                       error.what());
}

// The one shape of every list.
boost::json::object list_body(const RequestContext& context,
                              boost::json::array items,
                              std::int64_t total) {
    return boost::json::object{{"items", std::move(items)},
                               {"total", total},
                               {"page", context.list.page},
                               {"page_size", context.list.page_size},
                               {"sort", context.list.sort}};
}

}  // namespace

const char* access_name(Access access) noexcept {
    switch (access) {
        case Access::kPublic:
            return "public";
        case Access::kUser:
            return "user";
        case Access::kAdmin:
            return "admin";
    }
    return "user";
}

bool RequestContext::is_admin() const {
    return principal && principal->has_role(kAdminRole);
}

void RequestContext::require_admin(const char* what) const {
    if (!is_admin()) {
        throw DomainError::forbidden(std::string(what) + " needs the tenant administrator role (" +
                                     kAdminRole + ")");
    }
}

const Principal& RequestContext::who() const {
    if (!principal) {
        throw DomainError::unauthorized();
    }
    return *principal;
}

boost::json::object RequestContext::json_body(const inngest::HttpRequest& request) const {
    boost::system::error_code ec;
    boost::json::parse_options options;
    options.max_depth = kRequestJsonDepth;
    auto value = boost::json::parse(request.body, ec, {}, options);
    if (ec) {
        throw DomainError::bad_request("the request body is not valid JSON: " + ec.message());
    }
    if (!value.is_object()) {
        throw DomainError::bad_request("the request body must be a JSON object");
    }
    return std::move(value.as_object());
}

inngest::HttpResponse json_response(int status, const boost::json::value& body) {
    return inngest::HttpResponse{
        status, {{"Content-Type", "application/json"}}, to_json_text(body)};
}

inngest::HttpResponse bytes_response(const std::string& content_type,
                                     std::string body,
                                     std::vector<std::pair<std::string, std::string>> headers) {
    headers.insert(headers.begin(),
                   {{"Content-Type", content_type}, {"X-Content-Type-Options", "nosniff"}});
    return inngest::HttpResponse{200, std::move(headers), std::move(body)};
}

std::map<std::string, std::string> parse_query(std::string_view query) {
    std::map<std::string, std::string> out;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const std::string_view raw_name = pair.substr(0, eq);
        std::string_view malformed;
        auto name = decode(raw_name, malformed);
        if (!name) {
            throw malformed_escape("the query parameter '" + std::string(raw_name) + "'",
                                   malformed);
        }
        auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                                  : decode(pair.substr(eq + 1), malformed);
        if (!value) {
            throw malformed_escape("the query parameter '" + *name + "'", malformed);
        }
        out[std::move(*name)] = std::move(*value);
    }
    return out;
}

Router::Router(std::string jwt_secret, std::vector<std::string> cors_origins)
    : jwt_secret_(std::move(jwt_secret)), cors_origins_(std::move(cors_origins)) {}

namespace {
RouteSpec declared(const char* method, std::string pattern, Access access, std::string summary) {
    return RouteSpec{.method = method,
                     .pattern = std::move(pattern),
                     .access = access,
                     .summary = std::move(summary)};
}
}  // namespace

RouteBuilder Router::get(std::string pattern, Access access, std::string summary) {
    return {*this, declared("GET", std::move(pattern), access, std::move(summary))};
}
RouteBuilder Router::post(std::string pattern, Access access, std::string summary) {
    return {*this, declared("POST", std::move(pattern), access, std::move(summary))};
}
RouteBuilder Router::put(std::string pattern, Access access, std::string summary) {
    return {*this, declared("PUT", std::move(pattern), access, std::move(summary))};
}
RouteBuilder Router::del(std::string pattern, Access access, std::string summary) {
    return {*this, declared("DELETE", std::move(pattern), access, std::move(summary))};
}

RouteBuilder RouteBuilder::accepts(std::string schema) && {
    spec_.request_schema = std::move(schema);
    return std::move(*this);
}
RouteBuilder RouteBuilder::returns(std::string schema) && {
    spec_.response_schema = std::move(schema);
    return std::move(*this);
}
RouteBuilder RouteBuilder::lists(const db::ListSpec& spec) && {
    spec_.list = &spec;
    return std::move(*this);
}
RouteBuilder RouteBuilder::status(int code) && {
    spec_.status = code;
    return std::move(*this);
}
RouteBuilder RouteBuilder::also(int code) && {
    spec_.other_status = code;
    return std::move(*this);
}
void RouteBuilder::to(JsonHandler handler) && {
    router_->add(std::move(spec_), std::move(handler));
}
void RouteBuilder::to(ResponseHandler handler) && {
    router_->add(std::move(spec_), std::move(handler));
}

void Router::add(RouteSpec spec, JsonHandler handler) {
    add(std::move(spec), ResponseHandler([handler = std::move(handler)](Call& call) {
            const auto body = handler(call);
            return json_response(call.status(), body);
        }));
}

void Router::add(RouteSpec spec, ResponseHandler handler) {
    const int success = spec.status;
    const int other = spec.other_status;
    add(std::move(spec), [success, other, handler = std::move(handler)](
                             const inngest::HttpRequest& request, RequestContext& context) {
        Call call(request, context, success, other);
        auto response = handler(call);
        // A success it answers is one it declares, as for JSON routes.
        if (response.status >= 200 && response.status <= 299 && response.status != success &&
            response.status != other) {
            throw std::logic_error("route " + context.route + " answers " +
                                   std::to_string(response.status) + ", which it does not declare");
        }
        return response;
    });
}

void Router::add(RouteSpec spec, RouteHandler handler) {
    const auto success = [](int status) {
        return status >= 200 && status <= 299;
    };
    if (!success(spec.status) || (spec.other_status != 0 && !success(spec.other_status)) ||
        spec.other_status == spec.status) {
        throw std::logic_error("route " + spec.method + " " + spec.pattern +
                               ": success statuses are 2xx and distinct");
    }
    for (const auto& existing : infos_) {
        if (existing.method == spec.method && existing.pattern == spec.pattern) {
            throw std::logic_error("route declared twice: " + spec.method + " " + spec.pattern);
        }
    }
    for (const auto* schema : {&spec.request_schema, &spec.response_schema}) {
        boost::system::error_code ec;
        if (!schema->empty() && (boost::json::parse(*schema, ec), ec)) {
            throw std::logic_error("route " + spec.method + " " + spec.pattern +
                                   ": a schema is not JSON");
        }
    }
    Route route{spec, split_path(spec.pattern), std::move(handler)};
    if (spec.list != nullptr) {
        for (const auto& filter : spec.list->filters) {
            try {
                route.filter_checks.push_back(db::filter_check(filter.schema));
            } catch (const std::invalid_argument& bad) {
                throw std::logic_error("route " + spec.method + " " + spec.pattern + ": " +
                                       bad.what());
            }
        }
    }
    infos_.push_back(std::move(spec));
    routes_.push_back(std::move(route));
}

void Router::mount(std::string prefix,
                   std::function<inngest::HttpResponse(const inngest::HttpRequest&)> handler) {
    mounts_.emplace_back(std::move(prefix), std::move(handler));
}

void Router::add_cors(const inngest::HttpRequest& request, inngest::HttpResponse& response) const {
    const std::string origin(request.header("Origin"));
    if (!origin.empty() &&
        std::find(cors_origins_.begin(), cors_origins_.end(), origin) != cors_origins_.end()) {
        response.headers.emplace_back("Access-Control-Allow-Origin", origin);
        response.headers.emplace_back("Vary", "Origin");
        response.headers.emplace_back("Access-Control-Allow-Headers",
                                      "Authorization, Content-Type, X-Request-Id");
        response.headers.emplace_back("Access-Control-Allow-Methods",
                                      "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    }
}

inngest::HttpResponse Router::route(const inngest::HttpRequest& request,
                                    RequestContext& context) const {
    for (const auto& [prefix, handler] : mounts_) {
        if (request.path == prefix || request.path.starts_with(prefix + "/")) {
            context.route = prefix;
            return handler(request);
        }
    }
    const auto segments = split_path(request.path);
    bool path_matched = false;
    for (const auto& route : routes_) {
        if (route.segments.size() != segments.size()) {
            continue;
        }
        std::map<std::string, std::string> params;
        std::optional<std::string> malformed;  // the first malformed escape of a parameter
        bool match = true;
        for (std::size_t i = 0; i < segments.size() && match; ++i) {
            const auto& pattern = route.segments[i];
            if (pattern.size() > 2 && pattern.front() == '{' && pattern.back() == '}') {
                std::string_view escape;
                if (auto value = decode(segments[i], escape)) {
                    params[pattern.substr(1, pattern.size() - 2)] = std::move(*value);
                } else if (!malformed) {
                    malformed = std::string(escape);
                }
            } else {
                match = pattern == segments[i];
            }
        }
        if (!match) {
            continue;
        }
        path_matched = true;
        if (route.info.method != request.method) {
            continue;
        }
        context.route = route.info.pattern;
        if (route.info.access != Access::kPublic) {
            const std::string_view header = request.header("Authorization");
            if (!header.starts_with("Bearer ")) {
                throw DomainError::unauthorized();
            }
            context.principal = verify_token(header.substr(7), jwt_secret_);
            if (!context.principal) {
                throw DomainError::unauthorized();
            }
        }
        if (route.info.access == Access::kAdmin) {
            context.require_admin("this route");
        }
        // Who may call comes first: a caller without a token is told that, whatever it sent.
        if (malformed) {
            throw malformed_escape("the path", *malformed);
        }
        context.params = std::move(params);
        context.query = parse_query(request.query);
        if (route.info.list != nullptr) {
            const auto value = [&context](const char* name) -> std::optional<std::string> {
                const auto it = context.query.find(name);
                return it == context.query.end() ? std::nullopt : std::optional(it->second);
            };
            auto problem = db::parse_list_request(*route.info.list, value("page"),
                                                  value("page_size"), value("sort"), context.list);
            if (!problem) {
                problem = db::parse_list_filters(
                    *route.info.list, route.filter_checks,
                    [&value](const std::string& name) { return value(name.c_str()); },
                    context.list);
            }
            if (problem) {
                throw DomainError::validation(
                    boost::json::object{{problem->field, problem->reason}});
            }
        }
        return route.handler(request, context);
    }
    if (path_matched) {
        throw DomainError(DomainError::Kind::kMethodNotAllowed, "method_not_allowed",
                          "method " + request.method + " is not allowed here");
    }
    throw DomainError(DomainError::Kind::kNotFound, "not_found", "no route for " + request.path);
}

inngest::HttpResponse Router::dispatch(const inngest::HttpRequest& request) const {
    const auto started = std::chrono::steady_clock::now();
    RequestContext context;
    context.request_id = std::string(request.header("X-Request-Id"));
    if (context.request_id.empty() || context.request_id.size() > 128) {
        context.request_id = new_request_id();
    }
    inngest::HttpResponse response;
    boost::json::object log_fields{
        {"request_id", context.request_id}, {"method", request.method}, {"path", request.path}};
    if (request.method == "OPTIONS") {
        response = inngest::HttpResponse{204, {}, ""};
    } else {
        try {
            response = route(request, context);
        } catch (const DomainError& error) {
            response = json_response(http_status(error),
                                     boost::json::object{{"error",
                                                          {{"code", error.code()},
                                                           {"message", error.what()},
                                                           {"details", error.details()}}}});
            if (!error.internal().empty() || http_status(error) >= 500) {
                log_fields["internal"] = error.internal();
            }
            log_fields["error"] = error.code();
        } catch (const db::DbError& error) {
            const DomainError mapped = from_db_error(error);
            response = json_response(
                http_status(mapped),
                boost::json::object{
                    {"error",
                     {{"code", mapped.code()}, {"message", mapped.what()}, {"details", nullptr}}}});
            log_fields["error"] = mapped.code();
            log_fields["sqlstate"] = error.sqlstate();
            log_fields["internal"] = error.what();
        } catch (const std::exception& error) {
            response = json_response(
                500,
                boost::json::object{
                    {"error",
                     {{"code", "internal"}, {"message", "internal error"}, {"details", nullptr}}}});
            log_fields["error"] = "internal";
            log_fields["internal"] = error.what();
        }
    }
    if (context.principal) {
        log_fields["tenant_id"] = context.principal->tenant.value();
        log_fields["user_id"] = context.principal->user_id;
    }
    response.headers.emplace_back("X-Request-Id", context.request_id);
    add_cors(request, response);
    log_fields["status"] = response.status;
    const auto elapsed = std::chrono::steady_clock::now() - started;
    log_fields["ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    if (metrics_ != nullptr) {
        // The pattern, never the raw path: one series per route, whatever ids are asked for.
        // Nor a method a client made up: labels must not grow with what callers send.
        const std::string label = context.route.empty() ? "unmatched" : context.route;
        static const std::set<std::string, std::less<>> kMethods{"GET",   "HEAD",   "POST",   "PUT",
                                                                 "PATCH", "DELETE", "OPTIONS"};
        const std::string method = kMethods.contains(request.method) ? request.method : "other";
        metrics_->add(
            "riveredge_http_requests_total",
            {{"route", label}, {"method", method}, {"status", std::to_string(response.status)}});
        metrics_->observe("riveredge_http_request_duration_seconds",
                          {{"route", label}, {"method", method}},
                          std::chrono::duration<double>(elapsed).count());
    }
    log(response.status >= 500 ? LogLevel::kError : LogLevel::kInfo, "http", log_fields);
    return response;
}

std::int64_t id_param(const RequestContext& context, const char* name) {
    const auto value = parse_integer_in<std::int64_t>(context.params.at(name), 1,
                                                      std::numeric_limits<std::int64_t>::max());
    if (!value) {
        throw DomainError::validation(boost::json::object{{name, "a positive integer"}});
    }
    return *value;
}

std::int64_t Call::id(const char* name) const {
    return id_param(context, name);
}

const std::string& Call::param(const char* name) const {
    return context.params.at(name);
}

boost::json::object Call::body() const {
    return context.json_body(request);
}

boost::json::object Call::body_or_empty() const {
    return request.body.empty() ? boost::json::object{} : body();
}

std::optional<std::string> Call::query(const char* name) const {
    const auto it = context.query.find(name);
    return it == context.query.end() ? std::nullopt : std::optional(it->second);
}

std::optional<std::string> Call::filter(const char* name) const {
    return query_filter(context, name);
}

int Call::int_query(const char* name, int fallback, int low, int high) const {
    return core::int_query(context, name, fallback, low, high);
}

RequestOrigin Call::origin() const {
    // Kept in audit trails, which hash what they store: 300 bytes at most, cut between two
    // characters, with a NUL or bytes that are not UTF-8 (a Latin-1 header) as U+FFFD.
    return RequestOrigin{
        request.remote_address,
        std::string(utf8_prefix(storable_text(request.header("User-Agent")), 300))};
}

boost::json::object Call::list(boost::json::array items, std::int64_t total) const {
    return list_body(context, std::move(items), total);
}

void Call::answer(int code) {
    if (code != success_ && (other_ == 0 || code != other_)) {
        throw std::logic_error("route " + context.route + " answers " + std::to_string(code) +
                               ", which it does not declare");
    }
    status_ = code;
}

std::optional<std::string> query_filter(const RequestContext& context, const char* name) {
    const auto it = context.query.find(name);
    if (it == context.query.end() || it->second.empty()) {
        return std::nullopt;
    }
    return it->second;
}

int int_query(const RequestContext& context, const char* name, int fallback, int low, int high) {
    const auto it = context.query.find(name);
    if (it == context.query.end()) {
        return fallback;
    }
    const auto value = parse_integer_in(it->second, low, high);
    if (!value) {
        throw DomainError::validation(boost::json::object{
            {name, "an integer between " + std::to_string(low) + " and " + std::to_string(high)}});
    }
    return *value;
}

}  // namespace riveredge::core
