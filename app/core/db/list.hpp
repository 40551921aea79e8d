#pragma once

// Paged, sortable lists in one shape. A repository declares a `ListSpec` next to its query (the
// public sort names and the SQL each stands for, written by us); the router parses `page`,
// `page_size` and `sort` against it into a `ListRequest`; `select_page` runs the query with a
// whitelisted ORDER BY and returns one page of rows with the total count.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"

#include <boost/json/array.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riveredge::core::db {

/// A field a client may sort by: its public name and our SQL expression for it.
struct SortField {
    std::string name;
    std::string sql;
};

/// A filter the list understands: documented, checked and applied from this one declaration.
struct ListFilter {
    std::string name;
    std::string description;
    /// JSON Schema of the value ({"type":"string"} when empty). The router refuses (422) a value
    /// outside an `enum`, a `boolean` other than true or false, an `integer` that is not one, and
    /// a `date-time` that is not RFC 3339.
    std::string schema{};
    /// The condition a sent value adds to the query, `$?` standing for the value (text; cast it
    /// where the column is not): `s.status = $?`, `s.enabled = $?::boolean`. Empty: the route
    /// reads this filter itself. An empty value counts as not sent.
    std::string sql{};
};

/// Sort fields named as the columns of `alias` they sort by: `sort_fields("s", {"name"})` sorts
/// `name` by `s.name`.
std::vector<SortField> sort_fields(std::string_view alias,
                                   std::initializer_list<std::string_view> names);

struct ListSpec {
    std::vector<SortField> sort_fields;
    /// `name` or `-name` (descending), comma-separated; used when the client sends none.
    std::string default_sort;
    /// A unique column appended to every ORDER BY so pages never overlap (`s.id`).
    std::string tiebreak_sql;
    std::vector<ListFilter> filters{};
    int default_page_size = 50;
    int max_page_size = 500;
};

/// One validated page request.
struct ListRequest {
    int page = 1;
    int page_size = 50;
    /// The sort as the client may send it back (`-created_at,name`).
    std::string sort;
    /// The ORDER BY expression list built from whitelisted SQL only.
    std::string order_by;
    /// The conditions of the filters sent (`ListFilter::sql`), each with its value, which
    /// `select_page` adds to its query.
    std::vector<std::pair<std::string, std::string>> conditions{};
    std::int64_t offset() const noexcept { return static_cast<std::int64_t>(page - 1) * page_size; }
};

/// Field problems found while reading a page request: {"sort": "...", ...}.
struct ListRequestError {
    std::string field;
    std::string reason;
};

/// Parses `page`, `page_size` and `sort` (absent: the spec's defaults). Returns the problem
/// instead when one is invalid.
std::optional<ListRequestError> parse_list_request(const ListSpec& spec,
                                                   const std::optional<std::string>& page,
                                                   const std::optional<std::string>& page_size,
                                                   const std::optional<std::string>& sort,
                                                   ListRequest& out);

/// What a filter's schema asks of a sent value, worked out once when its route is added.
struct FilterCheck {
    enum class Kind { kAny, kChoice, kBoolean, kInteger, kTime };
    Kind kind = Kind::kAny;
    /// The `enum` members, for kChoice.
    std::vector<std::string> choices{};
};

/// The check of a `ListFilter::schema` (empty: any text). Throws std::invalid_argument for a
/// schema that is not a JSON object or whose `enum` is not an array of strings.
FilterCheck filter_check(const std::string& schema);

/// Checks every filter sent in `query` (a parameter's value, or nullopt when it was not sent)
/// against its schema and puts the conditions of those that carry SQL into `out.conditions`.
/// Returns the first invalid one instead.
/// `checks` holds `filter_check` of each of the spec's filters, in order.
std::optional<ListRequestError> parse_list_filters(
    const ListSpec& spec,
    const std::vector<FilterCheck>& checks,
    const std::function<std::optional<std::string>(const std::string&)>& query,
    ListRequest& out);

/// One page of rows and how many rows match in all.
struct PageRows {
    Rows rows;
    std::int64_t total = 0;
};

/// A page as the route edge returns it.
struct JsonPage {
    boost::json::array items;
    std::int64_t total = 0;
};

/// A page of typed rows (`row_as`) and how many rows match in all.
template <class T>
struct Page {
    std::vector<T> items;
    std::int64_t total = 0;
};

/// Runs `SELECT <columns> <from_where> ORDER BY <request> LIMIT/OFFSET` in the tenant's
/// transaction, counting every match in the same statement. `from_where` starts with FROM, uses
/// `params` as $1..$n and ends in its WHERE clause: the request's filter conditions are added to
/// it with AND, their values numbered after `params`.
PageRows select_page(Pool& pool,
                     const std::optional<TenantId>& tenant,
                     std::string_view columns,
                     std::string_view from_where,
                     std::vector<Param> params,
                     const ListRequest& request);

}  // namespace riveredge::core::db
