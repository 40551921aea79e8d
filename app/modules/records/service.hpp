#pragma once

// Electronic records: the lifecycle, signing with re-authentication and a server seal, signature
// verification, and the audit trail every change writes in its own transaction.

#include "core/module.hpp"
#include "modules/records/audit_trail.hpp"
#include "modules/records/crypto.hpp"
#include "modules/records/repository.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace riveredge::records {

/// Failed signings before the signer is locked out, and for how long (Part 11.300(d)).
inline constexpr int kLockAfterFailures = 5;
inline constexpr int kLockMinutes = 30;
/// A signing session (Part 11.200(a)(1)(i)): within it, later signings need the password only.
inline constexpr int kSigningSessionMinutes = 15;

class Service {
public:
    Service(Repository& repository, core::Notifier& notifier, std::optional<SealKey> seal_key)
        : repository_(repository), notifier_(notifier), seal_key_(std::move(seal_key)) {}

    /// Who acts: the token's principal with the printed name of their signing credential.
    Actor actor(const core::Principal& who, std::string address, std::string user_agent);

    boost::json::object create(const Actor& actor, const boost::json::object& request);
    /// The record with its latest version's content and every signature's manifestation.
    boost::json::object get(const core::TenantId& tenant, std::int64_t id);
    /// A new version of a draft's content (and title); the reason is required.
    boost::json::object update(const Actor& actor,
                               std::int64_t id,
                               const boost::json::object& request);
    /// One lifecycle move: submit, return, make_effective, supersede, obsolete, archive, delete.
    boost::json::object transition(const Actor& actor,
                                   std::int64_t id,
                                   const boost::json::object& request);
    /// Removes a deleted record once its retention has passed; 409 before.
    void purge(const Actor& actor, std::int64_t id);

    /// Sets the caller's signing password and printed name (the current password to change it).
    boost::json::object set_signing_password(const Actor& actor,
                                             const boost::json::object& request);
    /// Signs the latest version: user id and signing password, or the password alone within
    /// a signing session; never the bearer token alone.
    boost::json::object sign(const Actor& actor,
                             std::int64_t id,
                             const boost::json::object& request);
    boost::json::object verify_signatures(const core::TenantId& tenant, std::int64_t id);
    /// The record's audit trail; reading it is audited too.
    boost::json::object trail(const Actor& actor, std::int64_t id);
    /// Record, versions, signatures (verified) and trail as one JSON document; audited.
    boost::json::object export_record(const Actor& actor, std::int64_t id);
    boost::json::object verify_chain(const Actor& actor);
    /// The tenants that have an audit trail (the periodic check's list).
    std::vector<std::string> tenants_with_trail();
    /// The periodic integrity check of one tenant: its audit chain and every signature. Tells
    /// the tenant's security contacts (once a day) when anything is broken.
    boost::json::object check_integrity(const core::TenantId& tenant);

    boost::json::object settings(const core::TenantId& tenant);
    boost::json::object save_settings(const Actor& actor, const boost::json::object& request);

    Repository& repository() noexcept { return repository_; }

private:
    Record require(core::db::Transaction& tx,
                   const core::TenantId& tenant,
                   std::int64_t id,
                   bool for_update);
    boost::json::array checked_signatures(core::db::Transaction& tx,
                                          const core::TenantId& tenant,
                                          std::int64_t id,
                                          bool& all_valid);
    /// Counts a wrong signing password (committing `tx`), locks and notifies at the limit, and
    /// throws 403.
    [[noreturn]] void refuse_wrong_password(core::db::Transaction& tx,
                                            const Actor& actor,
                                            std::optional<std::int64_t> record_id);
    void notify_lockout(const core::TenantId& tenant, const std::string& user_id);

    Repository& repository_;
    core::Notifier& notifier_;
    std::optional<SealKey> seal_key_;
};

}  // namespace riveredge::records
