#include "core/db/list.hpp"

#include "core/text/integers.hpp"
#include "core/time/rfc3339.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>

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

/// Why `value` does not pass `check`, or nothing when it does.
std::optional<std::string> check_problem(const FilterCheck& check, const std::string& value) {
    using Kind = FilterCheck::Kind;
    switch (check.kind) {
        case Kind::kAny:
            return std::nullopt;
        case Kind::kChoice: {
            if (std::find(check.choices.begin(), check.choices.end(), value) !=
                check.choices.end()) {
                return std::nullopt;
            }
            std::string names;
            for (const auto& choice : check.choices) {
                names += (names.empty() ? "" : ", ") + choice;
            }
            return "one of: " + names;
        }
        case Kind::kBoolean:
            if (value == "true" || value == "false") {
                return std::nullopt;
            }
            return std::string("true or false");
        case Kind::kInteger:
            if (parse_integer_in<std::int64_t>(value, 0,
                                               std::numeric_limits<std::int64_t>::max())) {
                return std::nullopt;
            }
            return std::string("a whole number");
        case Kind::kTime:
            if (parse_time(value)) {
                return std::nullopt;
            }
            return std::string("an RFC 3339 time, such as 2026-01-31T08:00:00Z");
    }
    return std::nullopt;
}

/// `sql` with each `$?` made `$<number>`.
std::string numbered(const std::string& sql, std::size_t number) {
    std::string out;
    std::size_t from = 0;
    for (auto at = sql.find("$?"); at != std::string::npos; at = sql.find("$?", from)) {
        out.append(sql, from, at - from);
        out += "$" + std::to_string(number);
        from = at + 2;
    }
    out.append(sql, from);
    return out;
}

}  // namespace

std::vector<SortField> sort_fields(std::string_view alias,
                                   std::initializer_list<std::string_view> names) {
    std::vector<SortField> fields;
    fields.reserve(names.size());
    for (const auto name : names) {
        fields.push_back({std::string(name), std::string(alias) + "." + std::string(name)});
    }
    return fields;
}

FilterCheck filter_check(const std::string& schema) {
    FilterCheck check;
    if (schema.empty()) {
        return check;
    }
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(schema, ec);
    if (ec || !parsed.is_object()) {
        throw std::invalid_argument("a filter schema is not a JSON object: " + schema);
    }
    const auto& object = parsed.get_object();
    if (const auto* choices = object.if_contains("enum")) {
        if (!choices->is_array()) {
            throw std::invalid_argument("a filter's enum is not an array: " + schema);
        }
        check.kind = FilterCheck::Kind::kChoice;
        for (const auto& choice : choices->get_array()) {
            if (!choice.is_string()) {
                throw std::invalid_argument("a filter's enum holds more than text: " + schema);
            }
            check.choices.emplace_back(choice.get_string());
        }
    } else if (const auto* format = object.if_contains("format");
               format && *format == "date-time") {
        check.kind = FilterCheck::Kind::kTime;
    } else if (const auto* type = object.if_contains("type"); type && *type == "boolean") {
        check.kind = FilterCheck::Kind::kBoolean;
    } else if (type && *type == "integer") {
        check.kind = FilterCheck::Kind::kInteger;
    }
    return check;
}

std::optional<ListRequestError> parse_list_filters(
    const ListSpec& spec,
    const std::vector<FilterCheck>& checks,
    const std::function<std::optional<std::string>(const std::string&)>& query,
    ListRequest& out) {
    out.conditions.clear();
    for (std::size_t i = 0; i < spec.filters.size(); ++i) {
        const auto& filter = spec.filters[i];
        auto value = query(filter.name);
        if (!value || value->empty()) {
            continue;
        }
        if (auto problem = check_problem(checks.at(i), *value)) {
            return ListRequestError{filter.name, std::move(*problem)};
        }
        if (checks[i].kind == FilterCheck::Kind::kTime) {
            // To the query in our own format, whatever RFC 3339 form it came in.
            *value = format_utc(*parse_time(*value));
        }
        if (!filter.sql.empty()) {
            out.conditions.emplace_back(filter.sql, std::move(*value));
        }
    }
    return std::nullopt;
}

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
    std::string where(from_where);
    for (const auto& [condition, value] : request.conditions) {
        params.emplace_back(value);
        where += " AND (" + numbered(condition, params.size()) + ")";
    }
    const auto limit_at = params.size() + 1;
    std::string sql = "SELECT ";
    sql.append(columns);
    // The window runs before LIMIT: every row of the page carries the count of all matches.
    sql += ", count(*) OVER () AS list_total ";
    sql += where;
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
        total = tx.exec("SELECT count(*) AS n " + where, counted).integer(0, "n");
    }
    tx.commit();
    return PageRows{std::move(rows), total};
}

}  // namespace riveredge::core::db
