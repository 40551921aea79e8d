#include "core/db/list.hpp"

#include "core/text/integers.hpp"

#include <algorithm>

namespace riveredge::core::db {
namespace {

std::optional<int> bounded(const std::optional<std::string>& text,
                           int fallback,
                           int low,
                           int high) {
    if (!text || text->empty()) {
        return fallback;
    }
    return parse_integer_in(*text, low, high);
}

std::string sort_names(const ListSpec& spec) {
    std::string names;
    for (const auto& field : spec.sort_fields) {
        names += (names.empty() ? "" : ", ") + field.name;
    }
    return names;
}

}  // namespace

std::optional<ListRequestError> parse_list_request(const ListSpec& spec,
                                                   const std::optional<std::string>& page,
                                                   const std::optional<std::string>& page_size,
                                                   const std::optional<std::string>& sort,
                                                   ListRequest& out) {
    const auto number = bounded(page, 1, 1, 100000);
    if (!number) {
        return ListRequestError{"page", "an integer from 1 to 100000"};
    }
    const auto size = bounded(page_size, spec.default_page_size, 1, spec.max_page_size);
    if (!size) {
        return ListRequestError{"page_size",
                                "an integer from 1 to " + std::to_string(spec.max_page_size)};
    }
    out.page = *number;
    out.page_size = *size;
    out.sort = sort && !sort->empty() ? *sort : spec.default_sort;
    out.order_by.clear();
    std::vector<std::string> seen;
    std::string_view rest = out.sort;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        std::string_view key = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        const bool descending = key.starts_with('-');
        if (descending || key.starts_with('+')) {
            key.remove_prefix(1);
        }
        const SortField* field = nullptr;
        for (const auto& candidate : spec.sort_fields) {
            if (candidate.name == key) {
                field = &candidate;
            }
        }
        if (field == nullptr || std::find(seen.begin(), seen.end(), key) != seen.end()) {
            return ListRequestError{
                "sort",
                "comma-separated fields, each once, '-' for descending, from: " + sort_names(spec)};
        }
        seen.emplace_back(key);
        out.order_by += (out.order_by.empty() ? "" : ", ") + field->sql +
                        (descending ? " DESC NULLS LAST" : " ASC NULLS LAST");
    }
    if (seen.size() > 4) {
        return ListRequestError{"sort", "at most 4 fields"};
    }
    out.order_by += (out.order_by.empty() ? "" : ", ") + spec.tiebreak_sql +
                    (out.sort.starts_with('-') ? " DESC" : " ASC");
    return std::nullopt;
}

PageRows select_page(Pool& pool,
                     const std::optional<TenantId>& tenant,
                     std::string_view columns,
                     std::string_view from_where,
                     std::vector<Param> params,
                     const ListRequest& request) {
    const auto limit_at = params.size() + 1;
    std::string sql = "SELECT ";
    sql.append(columns);
    // The window runs before LIMIT: every row of the page carries the count of all matches.
    sql += ", count(*) OVER () AS list_total ";
    sql.append(from_where);
    sql += " ORDER BY " + request.order_by + " LIMIT $" + std::to_string(limit_at) +
           "::int OFFSET $" + std::to_string(limit_at + 1) + "::bigint";
    auto counted = params;
    params.push_back(std::to_string(request.page_size));
    params.push_back(std::to_string(request.offset()));
    Transaction tx(pool, tenant);
    auto rows = tx.exec(sql, params);
    std::int64_t total = 0;
    if (!rows.empty()) {
        total = rows.integer(0, "list_total");
    } else if (request.offset() > 0) {
        // Past the last page: no row carries the count, so ask for it.
        total = tx.exec("SELECT count(*) AS n " + std::string(from_where), counted).integer(0, "n");
    }
    tx.commit();
    return PageRows{std::move(rows), total};
}

}  // namespace riveredge::core::db
