#pragma once

// Typed rows. A row type is a plain struct described with BOOST_DESCRIBE_STRUCT; `row_as<T>`
// fills each described member from the column of the same name, so a query's select list and
// its row type are the only places a field is named, and no module writes a reader by hand.
// The same description gives the row's JSON (`boost::json::value_from`), where the API shows the
// row as it is stored.
//
// Member types: std::string, std::int64_t, int, bool, double, boost::json::{value,object,array}
// and std::vector<std::string> (from a json/jsonb column, which the query casts to text), and
// std::optional of any of these for a nullable column. A described member with no column of its
// name is an error (DbError 42703), so a select list cannot silently drop a field.

#include "core/db/database.hpp"
#include "core/db/list.hpp"

#include <boost/describe/class.hpp>
#include <boost/describe/members.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/mp11/algorithm.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riveredge::core::db {

/// `SELECT <columns> <from>`.
inline std::string select_sql(std::string_view columns, std::string_view from) {
    std::string sql = "SELECT ";
    sql.append(columns).append(" ").append(from);
    return sql;
}

namespace column {
void read(const Rows& rows, int row, std::string_view name, std::string& out);
void read(const Rows& rows, int row, std::string_view name, std::int64_t& out);
void read(const Rows& rows, int row, std::string_view name, int& out);
void read(const Rows& rows, int row, std::string_view name, bool& out);
void read(const Rows& rows, int row, std::string_view name, double& out);
void read(const Rows& rows, int row, std::string_view name, boost::json::value& out);
void read(const Rows& rows, int row, std::string_view name, boost::json::object& out);
void read(const Rows& rows, int row, std::string_view name, boost::json::array& out);
void read(const Rows& rows, int row, std::string_view name, std::vector<std::string>& out);

template <class T>
void read(const Rows& rows, int row, std::string_view name, std::optional<T>& out) {
    if (rows.is_null(row, name)) {
        out.reset();
        return;
    }
    T value{};
    read(rows, row, name, value);
    out = std::move(value);
}
}  // namespace column

/// Row `row` of `rows` as a `T` (a described struct).
template <class T>
T row_as(const Rows& rows, int row = 0) {
    T out{};
    boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>(
        [&](auto member) { column::read(rows, row, member.name, out.*member.pointer); });
    return out;
}

/// Every row of `rows` as a `T`.
template <class T>
std::vector<T> rows_as(const Rows& rows) {
    std::vector<T> out;
    out.reserve(static_cast<std::size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
        out.push_back(row_as<T>(rows, i));
    }
    return out;
}

/// The first row as a `T`, or nothing when there is none (a lookup by key).
template <class T>
std::optional<T> first_as(const Rows& rows) {
    return rows.empty() ? std::nullopt : std::optional<T>(row_as<T>(rows, 0));
}

/// A described row as the API shows it: each member under its name, an empty optional as null.
template <class T>
boost::json::object row_json(const T& row) {
    return boost::json::value_from(row).as_object();
}

/// Every row of `rows` read as a `T` and shown as JSON: a display read, typed on its way.
template <class T>
boost::json::array rows_json(const Rows& rows) {
    boost::json::array out;
    out.reserve(static_cast<std::size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
        out.emplace_back(row_json(row_as<T>(rows, i)));
    }
    return out;
}

/// Column `column` of every row of `rows`, as text (a list of tenants, of hashes).
inline std::vector<std::string> texts(const Rows& rows, std::string_view column) {
    std::vector<std::string> out;
    out.reserve(static_cast<std::size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
        out.push_back(rows.text(i, column));
    }
    return out;
}

/// Where a typed read runs: in the caller's transaction, or in one of its own for the tenant
/// (`exec_once`). Built implicitly: `select_first<T>(tx, ...)`, `select_first<T>({pool, tenant},
/// ...)`.
class ReadIn {
public:
    ReadIn(Transaction& tx) : tx_(&tx) {}
    ReadIn(Pool& pool, const TenantId& tenant) : pool_(&pool), tenant_(&tenant) {}

    Rows exec(const std::string& sql, const std::vector<Param>& params) const {
        return tx_ != nullptr ? tx_->exec(sql, params) : exec_once(*pool_, *tenant_, sql, params);
    }

private:
    Transaction* tx_ = nullptr;
    Pool* pool_ = nullptr;
    const TenantId* tenant_ = nullptr;
};

/// A typed read: `SELECT <columns> <from>` (`from` starts with FROM), its rows as `T`.
template <class T>
std::vector<T> select_rows(const ReadIn& in,
                           std::string_view columns,
                           std::string_view from,
                           const std::vector<Param>& params) {
    return rows_as<T>(in.exec(select_sql(columns, from), params));
}

/// A typed lookup: the first row of `SELECT <columns> <from>` as a `T`, or nothing.
template <class T>
std::optional<T> select_first(const ReadIn& in,
                              std::string_view columns,
                              std::string_view from,
                              const std::vector<Param>& params) {
    return first_as<T>(in.exec(select_sql(columns, from), params));
}

/// A page found by `select_page`, its rows typed.
template <class T>
Page<T> page_as(const PageRows& found) {
    return {rows_as<T>(found.rows), found.total};
}

/// `select_page` with its rows typed: a list query in one call.
template <class T>
Page<T> page_of(Pool& pool,
                const std::optional<TenantId>& tenant,
                std::string_view columns,
                std::string_view from_where,
                std::vector<Param> params,
                const ListRequest& request) {
    return page_as<T>(select_page(pool, tenant, columns, from_where, std::move(params), request));
}

/// A page of typed rows as the route edge returns it, each row shown as JSON (`row_json`): a
/// display list whose row type stays in its repository (`json_page(page_of<T>(...))`).
template <class T>
JsonPage json_page(const Page<T>& page) {
    boost::json::array items;
    items.reserve(page.items.size());
    for (const auto& row : page.items) {
        items.emplace_back(row_json(row));
    }
    return {std::move(items), page.total};
}

}  // namespace riveredge::core::db
