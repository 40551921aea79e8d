#pragma once

// A small router over inngest::HttpRequest/HttpResponse: method + path with `{params}`, bearer
// authentication, request ids, CORS, an access log, and one place where errors become JSON.

#include "core/auth/principal.hpp"
#include "core/db/list.hpp"
#include "core/errors.hpp"
#include "core/module.hpp"

#include <inngest/serve.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace inngest {
class Metrics;
}  // namespace inngest

namespace riveredge::core {

struct RequestContext {
    std::string request_id;
    /// Set for authenticated routes.
    std::optional<Principal> principal;
    std::map<std::string, std::string> params;
    std::map<std::string, std::string> query;
    /// For list routes: the page and sort asked for, validated against the route's ListSpec.
    db::ListRequest list;
    /// The pattern of the route that matched (metrics label; empty when none did).
    std::string route;

    const Principal& who() const;
    /// True when the caller holds the tenant administrator role.
    bool is_admin() const;
    /// 403 unless the caller is a tenant administrator (for checks inside a handler).
    void require_admin(const char* what) const;
    /// The JSON body as an object; `DomainError` 400 when it is not one.
    boost::json::object json_body(const inngest::HttpRequest& request) const;
};

using RouteHandler =
    std::function<inngest::HttpResponse(const inngest::HttpRequest&, RequestContext&)>;

/// A JSON response.
inngest::HttpResponse json_response(int status, const boost::json::value& body);
/// 200 with bytes of `content_type` (never sniffed as anything else) and `headers` besides.
inngest::HttpResponse bytes_response(const std::string& content_type,
                                     std::string body,
                                     std::vector<std::pair<std::string, std::string>> headers = {});

/// Who may call a route. Every route declares one; the router enforces it before the handler
/// runs, and the OpenAPI document states it (`x-permission`).
enum class Access {
    /// No token (health, the API document, the Inngest endpoint, which checks signatures).
    kPublic,
    /// Any user of the token's tenant; the handler narrows further where rows have owners.
    kUser,
    /// Tenant administrators (role `admin`): configuration and what runs with tenant authority.
    kAdmin,
};

/// `public`, `user` or `admin`.
const char* access_name(Access access) noexcept;

/// One route as declared: what the router dispatches on and enforces, and what the OpenAPI
/// document says of it, in one place so the two cannot drift.
struct RouteSpec {
    std::string method;
    /// `/api/v1/things/{id}`: `{name}` segments become path parameters.
    std::string pattern;
    Access access = Access::kUser;
    std::string summary;
    /// JSON Schema texts for the OpenAPI document (empty: a generic object).
    std::string request_schema{};
    /// For a list route, the schema of one item; the document wraps it in the list shape.
    std::string response_schema{};
    /// Set for a paged, sortable list: the router validates `page`, `page_size` and `sort`
    /// against it into `RequestContext::list`, and the document lists its sort fields and filters.
    const db::ListSpec* list = nullptr;
    /// The success status: what a JSON route (a `Call` handler) answers and what the document
    /// states. 201 where a call creates, 202 where it queues work.
    int status = 200;
    /// A second success status some calls of a JSON route answer (`Call::answer`), documented
    /// beside `status` with the same schema; 0 for none.
    int other_status = 0;
};
using RouteInfo = RouteSpec;

/// The rows of a page, each shown by its `to_json()`.
template <class T>
boost::json::array page_items(const db::Page<T>& page) {
    boost::json::array items;
    items.reserve(page.items.size());
    for (const auto& item : page.items) {
        items.emplace_back(item.to_json());
    }
    return items;
}

/// What a JSON route's handler gets: the request and its context, with the readers handlers
/// share. Each reader refuses as the router's free helpers below do (a `DomainError`).
struct Call {
    /// For the rare rest (a header, the raw body).
    const inngest::HttpRequest& request;
    RequestContext& context;

    const Principal& who() const { return context.who(); }
    const TenantId& tenant() const { return context.who().tenant; }
    bool is_admin() const { return context.is_admin(); }
    /// The path parameter `name` as a positive integer (`id_param`); 422 otherwise.
    std::int64_t id(const char* name = "id") const;
    /// The path parameter `name` as it came, percent-decoded.
    const std::string& param(const char* name) const;
    /// The body as a JSON object; 400 when it is not JSON or not an object.
    boost::json::object body() const;
    /// The same, but an empty body is an empty object (routes whose fields are all optional).
    boost::json::object body_or_empty() const;
    /// The query parameter `name` as sent (empty included), or nullopt when absent.
    std::optional<std::string> query(const char* name) const;
    /// The query parameter `name` when present and not empty (`query_filter`).
    std::optional<std::string> filter(const char* name) const;
    /// The query parameter `name` as an integer in [low, high], `fallback` when absent.
    int int_query(const char* name, int fallback, int low, int high) const;
    /// Where the request came from, for audit trails (the User-Agent cut to 300 bytes).
    RequestOrigin origin() const;
    /// The page and sort a list route was asked for, validated against its `ListSpec`.
    const db::ListRequest& paging() const noexcept { return context.list; }
    /// The one shape of every list: {items, total, page, page_size, sort}, for the page asked.
    boost::json::object list(boost::json::array items, std::int64_t total) const;
    boost::json::object list(db::JsonPage page) const {
        return list(std::move(page.items), page.total);
    }
    template <class T>
    boost::json::object list(const db::Page<T>& page) const {
        return list(page_items(page), page.total);
    }

    /// Answers `status` instead of the route's `status`: only its `other_status` may be given
    /// (`std::logic_error` otherwise, a 500), so the document cannot drift.
    void answer(int code);
    int status() const noexcept { return status_; }

    /// For the router: a call answering `success`, or `other` when the handler says so.
    Call(const inngest::HttpRequest& request_in, RequestContext& context_in, int success, int other)
        : request(request_in),
          context(context_in),
          status_(success),
          success_(success),
          other_(other) {}

private:
    int status_;
    int success_;
    int other_;
};

/// A JSON route's handler: the response body, answered with the route's status.
using JsonHandler = std::function<boost::json::value(Call&)>;
/// A handler that makes its own response (bytes, a PDF) from the same readers.
using ResponseHandler = std::function<inngest::HttpResponse(Call&)>;

class Router;

/// A route declared in one expression, read left to right as the OpenAPI document shows it:
/// `router.get(path, access, summary)`, then what applies (`accepts`, `returns`, `lists`,
/// `status`, `also`), then `.to(handler)`, which adds it. Each step returns a new builder that
/// must be used, so a declaration that never reaches `.to` does not compile.
class [[nodiscard]] RouteBuilder {
public:
    RouteBuilder(Router& router, RouteSpec spec) : router_(&router), spec_(std::move(spec)) {}

    /// The request body's JSON Schema.
    RouteBuilder accepts(std::string schema) &&;
    /// The response body's JSON Schema (for a list route, one item's).
    RouteBuilder returns(std::string schema) &&;
    /// A paged, sortable list over `spec` (which must outlive the router).
    RouteBuilder lists(const db::ListSpec& spec) &&;
    /// A temporary spec would be gone before the first request.
    RouteBuilder lists(const db::ListSpec&& spec) && = delete;
    /// The success status, when not 200.
    RouteBuilder status(int code) &&;
    /// A second success status some calls answer (`Call::answer`).
    RouteBuilder also(int code) &&;

    void to(JsonHandler handler) &&;
    void to(ResponseHandler handler) &&;

private:
    Router* router_;
    RouteSpec spec_;
};

class Router {
public:
    Router(std::string jwt_secret, std::vector<std::string> cors_origins);

    /// Declares a JSON route: dispatch, permission, documentation and its success status
    /// together. Throws `std::logic_error` for a method and pattern declared twice, schemas that
    /// are not JSON, or a status that is not 2xx.
    void add(RouteSpec spec, JsonHandler handler);
    /// The same for a route that makes its own response (bytes, a PDF): a success status it
    /// answers must be one it declares (a 500 otherwise); errors and redirects are its own.
    void add(RouteSpec spec, ResponseHandler handler);
    /// The older form, without `Call`: `spec.status` is then only what the document says.
    void add(RouteSpec spec, RouteHandler handler);
    /// The start of a one-expression declaration (`RouteBuilder`).
    RouteBuilder get(std::string pattern, Access access, std::string summary);
    RouteBuilder post(std::string pattern, Access access, std::string summary);
    RouteBuilder put(std::string pattern, Access access, std::string summary);
    RouteBuilder del(std::string pattern, Access access, std::string summary);
    /// Requests under `prefix` go to `handler` untouched (the Inngest serve endpoint).
    void mount(std::string prefix,
               std::function<inngest::HttpResponse(const inngest::HttpRequest&)> handler);

    inngest::HttpResponse dispatch(const inngest::HttpRequest& request) const;
    /// Counts every request in `metrics` (by route pattern, method and status, with its
    /// duration); none when null.
    void set_metrics(inngest::Metrics* metrics) noexcept { metrics_ = metrics; }
    const std::vector<RouteInfo>& routes() const noexcept { return infos_; }

private:
    inngest::Metrics* metrics_ = nullptr;
    struct Route {
        RouteInfo info;
        std::vector<std::string> segments;
        RouteHandler handler;
        /// For a list route: its filters' checks, worked out once here (`db::filter_check`).
        std::vector<db::FilterCheck> filter_checks{};
    };
    inngest::HttpResponse route(const inngest::HttpRequest& request, RequestContext& context) const;
    void add_cors(const inngest::HttpRequest& request, inngest::HttpResponse& response) const;

    std::string jwt_secret_;
    std::vector<std::string> cors_origins_;
    std::vector<Route> routes_;
    std::vector<RouteInfo> infos_;
    std::vector<
        std::pair<std::string, std::function<inngest::HttpResponse(const inngest::HttpRequest&)>>>
        mounts_;
};

/// The path parameter `name` as a positive integer; a validation DomainError otherwise.
std::int64_t id_param(const RequestContext& context, const char* name);

/// The query parameter `name` as an integer in [low, high], or `fallback` when absent.
int int_query(const RequestContext& context, const char* name, int fallback, int low, int high);

/// The query parameter `name` when present and not empty, else nullopt (a SQL NULL filter).
std::optional<std::string> query_filter(const RequestContext& context, const char* name);

/// Query parameters, percent-decoded.
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace riveredge::core
