#pragma once

// The audit trail of electronic records: append-only rows (who, with the printed name at the
// time; what, old and new values; when, server UTC; why; from where), each carrying the hash of
// the tenant's previous row, so that a changed, removed or inserted row breaks the chain at a
// place the verification names.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace riveredge::records {

/// Who acts, and from where (Annex 11 §12.4, Part 11.10(e)).
struct Actor {
    core::Principal who;
    std::string printed_name;
    std::string address;
    std::string user_agent;
};

struct AuditEntry {
    std::optional<std::int64_t> record_id;
    std::string action;
    boost::json::value old_value;
    boost::json::value new_value;
    std::optional<std::string> reason;
};

struct ChainCheck {
    bool valid = true;
    std::int64_t rows = 0;
    /// The first row that does not verify, and why.
    std::optional<std::int64_t> broken_seq;
    std::optional<std::int64_t> broken_id;
    std::string problem;

    boost::json::object to_json() const;
};

class AuditTrail {
public:
    /// Appends one entry inside `tx`, after the tenant's last row (taken under a per-tenant
    /// transaction lock, so the chain has one order). Returns the entry's sequence number.
    static std::int64_t append(core::db::Transaction& tx,
                               const core::TenantId& tenant,
                               const Actor& actor,
                               const AuditEntry& entry);
    /// A record's entries, oldest first.
    static boost::json::array entries(core::db::Transaction& tx,
                                      const core::TenantId& tenant,
                                      std::int64_t record_id);
    /// Walks the tenant's whole chain.
    static ChainCheck verify(core::db::Pool& pool, const core::TenantId& tenant);
};

}  // namespace riveredge::records
