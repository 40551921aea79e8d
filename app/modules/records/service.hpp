#pragma once

// Electronic records: the lifecycle, signing with re-authentication and a server seal, signature
// verification, and the audit trail every change writes in its own transaction.

#include "core/module.hpp"
#include "modules/records/audit_trail.hpp"
#include "modules/records/crypto.hpp"
#include "modules/records/repository.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::records {

/// Failed signings before the signer is locked out, and for how long (Part 11.300(d)).
inline constexpr int kLockAfterFailures = 5;
inline constexpr int kLockMinutes = 30;
/// A signing session (Part 11.200(a)(1)(i)): within it, later signings need the password only.
inline constexpr int kSigningSessionMinutes = 15;
/// Asks the records-archive function to archive one record (data: tenant_id, record_id).
inline constexpr const char* kArchiveRequested = "records/archive.requested";
/// A signer was locked out (data: tenant_id, user_id); the notice goes out from a function.
inline constexpr const char* kSigningLocked = "records/signing.locked";

class Service {
public:
    Service(Repository& repository,
            core::Notifier& notifier,
            core::PdfPrinter& printer,
            std::optional<SealKey> seal_key)
        : repository_(repository),
          notifier_(notifier),
          printer_(printer),
          seal_key_(std::move(seal_key)) {}

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
    /// Re-authenticates a signer (Part 11.200) from {password, user_id} in a transaction of its
    /// own, counting a wrong password; `meaning`, when given, is checked first.
    Actor authenticate(const Actor& actor,
                       const boost::json::object& credentials,
                       std::optional<std::int64_t> record_id,
                       const std::optional<std::string>& meaning);
    /// Seals a signature of record `id`'s latest version by an authenticated `signer` inside
    /// `tx`, once per version, signer, meaning and `step_key`.
    boost::json::object seal(core::db::Transaction& tx,
                             const Actor& signer,
                             std::int64_t id,
                             const std::string& meaning,
                             const std::string& reason,
                             const std::string& step_key);
    boost::json::object verify_signatures(const core::TenantId& tenant, std::int64_t id);

    /// Keeps attachment bytes under their SHA-256 for later versions to name.
    boost::json::object upload_attachment(const Actor& actor,
                                          const std::string& media_type,
                                          std::string bytes);
    /// The bytes of an attachment a version of record `id` names; 409 when they changed.
    Attachment download_attachment(const core::TenantId& tenant,
                                   std::int64_t id,
                                   const std::string& sha256);

    /// Archives a superseded or obsolete record: its package sealed and stored, the state
    /// archived, in one transaction (a repeat answers what was stored).
    boost::json::object archive(const core::TenantId& tenant, std::int64_t id);
    /// Records due for archiving across tenants (the nightly function).
    std::vector<std::pair<std::string, std::int64_t>> due_archives(int limit);
    /// The stored archive package, its hash and seal re-verified; audited.
    boost::json::object read_archive(const Actor& actor, std::int64_t id);
    /// The record's audit trail; reading it is audited too.
    boost::json::object trail(const Actor& actor, std::int64_t id);
    /// Record, versions, signatures (verified) and trail as one JSON document; audited.
    boost::json::object export_record(const Actor& actor, std::int64_t id);
    /// The same as a printable PDF: the content, each signature's manifestation (printed name,
    /// meaning, UTC time, reason, verified) and the trail, page X of Y; audited.
    core::PdfPrinter::Pdf export_pdf(const Actor& actor, std::int64_t id);
    boost::json::object verify_chain(const Actor& actor);
    /// Tells the signer and the tenant's security contacts that signing is locked, once per
    /// `notice_id` (the records-lockout-notice function).
    boost::json::object notify_lockout(const core::TenantId& tenant,
                                       const std::string& user_id,
                                       const std::string& notice_id);
    /// The tenants that have an audit trail (the periodic check's list).
    std::vector<std::string> tenants_with_trail();
    /// The periodic integrity check of one tenant: its audit chain and every signature. Tells
    /// the tenant's security contacts (once for `day`, the check's day since the epoch) when
    /// anything is broken.
    boost::json::object check_integrity(const core::TenantId& tenant, std::int64_t day);

    boost::json::object settings(const core::TenantId& tenant);
    boost::json::object save_settings(const Actor& actor, const boost::json::object& request);

    Repository& repository() noexcept { return repository_; }

private:
    Record require(core::db::Transaction& tx,
                   const core::TenantId& tenant,
                   std::int64_t id,
                   bool for_update);
    void check_meaning(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       const std::string& meaning);
    void require_attachments(core::db::Transaction& tx,
                             const core::TenantId& tenant,
                             const std::vector<AttachmentRef>& refs);
    /// Record, versions, attachments, verified signatures and trail as one document.
    boost::json::object package(core::db::Transaction& tx,
                                const core::TenantId& tenant,
                                const Record& record);
    /// The seal verifies with the key the tenant's register holds for its key id.
    bool seal_verifies(const std::map<std::string, std::string>& keys,
                       const core::TenantId& tenant,
                       const Signature& signature) const;
    /// Adds the server key to the tenant's key register (audited) the first time it seals.
    void register_seal_key(core::db::Transaction& tx, const Actor& actor);
    /// Record `id`'s signatures, each verified against `keys`, the tenant's key register as
    /// `Repository::seal_keys` reads it in `tx`: the caller reads it once for all the records it
    /// checks (the integrity check once per page), not once per record.
    boost::json::array checked_signatures(core::db::Transaction& tx,
                                          const core::TenantId& tenant,
                                          std::int64_t id,
                                          const std::map<std::string, std::string>& keys,
                                          bool& all_valid);
    /// Counts a wrong signing password in `tx`, locking and notifying at the limit; the count.
    /// The caller commits `tx` (the count must stay) and then calls `refuse_signing`.
    int count_wrong_password(core::db::Transaction& tx,
                             const Actor& actor,
                             std::optional<std::int64_t> record_id);
    /// Logs the refusal counted by `count_wrong_password` and throws 403.
    [[noreturn]] static void refuse_signing(const Actor& actor, int failures);

    Repository& repository_;
    core::Notifier& notifier_;
    core::PdfPrinter& printer_;
    std::optional<SealKey> seal_key_;
};

}  // namespace riveredge::records
