#include "modules/records/audit_trail.hpp"

#include "core/db/sql_time.hpp"
#include "core/json/canonical.hpp"
#include "core/json/depth.hpp"
#include "core/time/rfc3339.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>

namespace riveredge::records {
namespace {

namespace json = boost::json;
using core::db::Param;
using core::db::Rows;

const std::string kGenesis(64, '0');

constexpr const char* kEntryColumns =
    "a.id, a.seq, a.record_id, a.actor_id, a.printed_name, a.action, a.old_value::text AS "
    "old_value, a.new_value::text AS new_value, a.reason, " SQL_UTC_TIME(
        "a.at") " AS at, a.address, a.user_agent, a.prev_hash, a.row_hash";

json::value json_or_null(const Rows& rows, int i, const char* column) {
    return rows.is_null(i, column) ? json::value(nullptr)
                                   : core::parse_stored_json(rows.text(i, column));
}

json::value text_or_null(const Rows& rows, int i, const char* column) {
    return rows.is_null(i, column) ? json::value(nullptr) : json::value(rows.text(i, column));
}

// The fields a row's hash covers, as stored; the same function writes and verifies.
json::object hashed_fields(const core::TenantId& tenant, const Rows& rows, int i) {
    return json::object{
        {"tenant_id", tenant.value()},
        {"seq", rows.integer(i, "seq")},
        {"record_id", rows.is_null(i, "record_id") ? json::value(nullptr)
                                                   : json::value(rows.integer(i, "record_id"))},
        {"actor_id", rows.text(i, "actor_id")},
        {"printed_name", rows.text(i, "printed_name")},
        {"action", rows.text(i, "action")},
        {"old_value", json_or_null(rows, i, "old_value")},
        {"new_value", json_or_null(rows, i, "new_value")},
        {"reason", text_or_null(rows, i, "reason")},
        {"at", rows.text(i, "at")},
        {"address", text_or_null(rows, i, "address")},
        {"user_agent", text_or_null(rows, i, "user_agent")}};
}

std::string row_hash(const std::string& prev_hash, const json::object& fields) {
    return core::sha256_hex(prev_hash + "\n" + core::canonical_json(fields));
}

Param optional_param(const std::string& text) {
    return text.empty() ? std::nullopt : Param(text);
}

}  // namespace

json::object ChainCheck::to_json() const {
    json::object out{{"valid", valid}, {"rows", rows}};
    if (!valid) {
        out["first_broken"] =
            json::object{{"seq", broken_seq ? json::value(*broken_seq) : json::value(nullptr)},
                         {"id", broken_id ? json::value(*broken_id) : json::value(nullptr)},
                         {"problem", problem}};
    }
    return out;
}

std::int64_t AuditTrail::append(core::db::Transaction& tx,
                                const core::TenantId& tenant,
                                const Actor& actor,
                                const AuditEntry& entry) {
    tx.exec("SELECT pg_advisory_xact_lock(hashtext('record_audit:' || $1))", {tenant});
    const auto last = tx.exec(
        "SELECT seq, row_hash FROM record_audit WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
        {tenant});
    const std::int64_t seq = last.empty() ? 1 : last.integer(0, "seq") + 1;
    const std::string prev_hash = last.empty() ? kGenesis : last.text(0, "row_hash");
    // Server time, at the millisecond the API shows, so the hash reads back the same.
    const std::string at = core::now_utc();
    const json::object fields{
        {"tenant_id", tenant.value()},
        {"seq", seq},
        {"record_id", entry.record_id ? json::value(*entry.record_id) : json::value(nullptr)},
        {"actor_id", actor.who.user_id},
        {"printed_name", actor.printed_name},
        {"action", entry.action},
        {"old_value", entry.old_value},
        {"new_value", entry.new_value},
        {"reason", entry.reason ? json::value(*entry.reason) : json::value(nullptr)},
        {"at", at},
        {"address", actor.address.empty() ? json::value(nullptr) : json::value(actor.address)},
        {"user_agent",
         actor.user_agent.empty() ? json::value(nullptr) : json::value(actor.user_agent)}};
    tx.exec(
        "INSERT INTO record_audit (tenant_id, seq, record_id, actor_id, printed_name, action, "
        "old_value, new_value, reason, at, address, user_agent, prev_hash, row_hash) VALUES ($1, "
        "$2::bigint, $3::bigint, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10::timestamptz, $11, "
        "$12, $13, $14)",
        {tenant, seq, entry.record_id, actor.who.user_id, actor.printed_name, entry.action,
         entry.old_value.is_null() ? Param() : Param(entry.old_value),
         entry.new_value.is_null() ? Param() : Param(entry.new_value), entry.reason, at,
         optional_param(actor.address), optional_param(actor.user_agent), prev_hash,
         row_hash(prev_hash, fields)});
    return seq;
}

json::array AuditTrail::entries(core::db::Transaction& tx,
                                const core::TenantId& tenant,
                                std::int64_t record_id) {
    const auto rows = tx.exec(std::string("SELECT ") + kEntryColumns +
                                  " FROM record_audit a WHERE a.tenant_id = $1 AND "
                                  "a.record_id = $2 ORDER BY a.seq",
                              {tenant, record_id});
    json::array out;
    for (int i = 0; i < rows.size(); ++i) {
        auto entry = hashed_fields(tenant, rows, i);
        entry.erase("tenant_id");
        entry["id"] = rows.integer(i, "id");
        entry["row_hash"] = rows.text(i, "row_hash");
        out.push_back(std::move(entry));
    }
    return out;
}

ChainCheck AuditTrail::verify(core::db::Pool& pool, const core::TenantId& tenant) {
    ChainCheck check;
    std::string expected_prev = kGenesis;
    std::int64_t expected_seq = 1;
    std::int64_t after = 0;
    const auto broken = [&check](const Rows& rows, int i, std::string problem) {
        check.valid = false;
        check.broken_seq = rows.integer(i, "seq");
        check.broken_id = rows.integer(i, "id");
        check.problem = std::move(problem);
    };
    // In pages, in seq order, each page its own short read.
    while (true) {
        const auto rows = core::db::exec_once(
            pool, tenant,
            std::string("SELECT ") + kEntryColumns +
                " FROM record_audit a WHERE a.tenant_id = $1 AND a.seq > $2::bigint "
                "ORDER BY a.seq LIMIT 1000",
            {tenant, after});
        for (int i = 0; i < rows.size(); ++i) {
            const auto seq = rows.integer(i, "seq");
            if (seq != expected_seq) {
                broken(rows, i,
                       "sequence gap: row " + std::to_string(expected_seq) + " is missing");
                return check;
            }
            if (rows.text(i, "prev_hash") != expected_prev) {
                broken(rows, i, "it does not follow the row before it (prev_hash differs)");
                return check;
            }
            std::string hash;
            try {
                hash = row_hash(expected_prev, hashed_fields(tenant, rows, i));
            } catch (const core::CanonicalJsonError& error) {
                // Its hash cannot be recomputed, so it cannot be shown unchanged: broken, not
                // a failed verification.
                broken(rows, i,
                       std::string("its stored content has no canonical form, so its hash "
                                   "cannot be checked (") +
                           error.what() + ")");
                return check;
            }
            if (hash != rows.text(i, "row_hash")) {
                broken(rows, i, "its content does not match its hash (the row was changed)");
                return check;
            }
            expected_prev = hash;
            ++expected_seq;
            ++check.rows;
            after = seq;
        }
        if (rows.size() < 1000) {
            return check;
        }
    }
}

}  // namespace riveredge::records
