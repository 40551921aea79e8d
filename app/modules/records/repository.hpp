#pragma once

// Electronic records in PostgreSQL: records, their immutable versions, sealed signatures, the
// signers' credentials and the tenant's settings, as typed rows. JSON is made at the route edge.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::records {

struct Record {
    std::int64_t id = 0;
    std::string type;
    std::string business_key;
    std::string title;
    std::string state;
    int latest_version = 1;
    std::optional<std::string> state_reason;
    std::optional<std::string> retain_until;
    std::string created_by;
    std::string created_at;
    std::string updated_at;

    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(Record,
                      (),
                      (id,
                       type,
                       business_key,
                       title,
                       state,
                       latest_version,
                       state_reason,
                       retain_until,
                       created_by,
                       created_at,
                       updated_at))

struct RecordVersion {
    std::int64_t record_id = 0;
    int version = 0;
    std::string title;
    boost::json::value content;
    std::string canonicalization;
    std::string content_hash;
    std::optional<std::string> change_reason;
    std::string created_by;
    std::string created_at;

    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(RecordVersion,
                      (),
                      (record_id,
                       version,
                       title,
                       content,
                       canonicalization,
                       content_hash,
                       change_reason,
                       created_by,
                       created_at))

struct Signature {
    std::int64_t id = 0;
    std::int64_t record_id = 0;
    int version = 0;
    std::string signer_id;
    std::string printed_name;
    std::string meaning;
    std::string reason;
    std::string signed_at;
    std::string content_hash;
    std::string key_id;
    std::string seal;
    std::string step_key;

    /// The manifestation (Part 11.50): printed name, UTC time, meaning, reason.
    boost::json::object to_json() const;
    /// What the seal covers, canonical: tenant, record, version, content hash, signer, printed
    /// name, meaning, reason, time and step.
    std::string sealed_message(const core::TenantId& tenant) const;
};
BOOST_DESCRIBE_STRUCT(Signature,
                      (),
                      (id,
                       record_id,
                       version,
                       signer_id,
                       printed_name,
                       meaning,
                       reason,
                       signed_at,
                       content_hash,
                       key_id,
                       seal,
                       step_key))

/// A version's reference to attachment bytes, by name (unique in the version) and SHA-256.
struct AttachmentRef {
    std::string name;
    std::string sha256;
};

struct Attachment {
    std::string sha256;
    std::string media_type;
    std::int64_t size = 0;
    std::string bytes;
};

/// A sealed archive package.
struct Archive {
    std::int64_t record_id = 0;
    boost::json::value package;
    std::string package_hash;
    std::string key_id;
    std::string seal;
    std::string archived_at;
};

struct Credential {
    std::string printed_name;
    std::string password_hash;
    int failed_attempts = 0;
    bool locked = false;
    bool in_session = false;
};
BOOST_DESCRIBE_STRUCT(Credential,
                      (),
                      (printed_name, password_hash, failed_attempts, locked, in_session))

struct Settings {
    std::vector<std::string> custom_meanings;
    std::vector<std::string> security_contacts;
    int retention_days = 3650;
    /// Superseded and obsolete records are archived this many days after their last change.
    std::optional<int> archive_after_days;

    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(Settings,
                      (),
                      (custom_meanings, security_contacts, retention_days, archive_after_days))

/// A record's first version as created.
struct NewRecord {
    std::string type;
    std::string business_key;
    std::string title;
    boost::json::value content;
};

extern const core::db::ListSpec kRecordList;

class Repository {
public:
    explicit Repository(core::db::Pool& pool) : pool_(pool) {}
    core::db::Pool& pool() noexcept { return pool_; }

    /// Inserts the record and version 1; nullopt when (type, business key) exists already.
    std::optional<std::int64_t> create(core::db::Transaction& tx,
                                       const core::TenantId& tenant,
                                       const NewRecord& record,
                                       const std::string& canonical_hash,
                                       const std::string& author);
    std::optional<Record> find(core::db::Transaction& tx,
                               const core::TenantId& tenant,
                               std::int64_t id,
                               bool for_update);
    std::optional<RecordVersion> version(core::db::Transaction& tx,
                                         const core::TenantId& tenant,
                                         std::int64_t id,
                                         int number);
    /// Every version's summary, newest first (the version routes).
    boost::json::array versions(const core::TenantId& tenant, std::int64_t id);
    /// A version in a transaction of its own.
    std::optional<RecordVersion> version(const core::TenantId& tenant, std::int64_t id, int number);
    void add_version(core::db::Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t id,
                     int number,
                     const std::string& title,
                     const boost::json::value& content,
                     const std::string& content_hash,
                     const std::string& reason,
                     const std::string& author);
    void set_state(core::db::Transaction& tx,
                   const core::TenantId& tenant,
                   std::int64_t id,
                   const std::string& state,
                   const std::optional<std::string>& reason,
                   std::optional<int> retain_days);
    /// Deletes the record with its versions and signatures; the database refuses unless it is
    /// deleted and its retention has passed.
    void purge(core::db::Transaction& tx, const core::TenantId& tenant, std::int64_t id);

    /// The page asked for, its filters applied (`kRecordList`).
    core::db::Page<Record> list(const core::TenantId& tenant, const core::db::ListRequest& page);

    std::vector<Signature> signatures(core::db::Transaction& tx,
                                      const core::TenantId& tenant,
                                      std::int64_t record_id);
    /// Inserts a signature; nullopt when this signer already signed this version with this
    /// meaning in this step.
    std::optional<std::int64_t> insert_signature(core::db::Transaction& tx,
                                                 const core::TenantId& tenant,
                                                 const Signature& signature);

    std::optional<Credential> credential(core::db::Transaction& tx,
                                         const core::TenantId& tenant,
                                         const std::string& user_id);
    void save_credential(core::db::Transaction& tx,
                         const core::TenantId& tenant,
                         const std::string& user_id,
                         const std::string& printed_name,
                         const std::string& password_hash);
    /// Counts a failed signing; returns the count, locking the credential at `lock_after`.
    int signing_failed(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       const std::string& user_id,
                       int lock_after,
                       int lock_minutes);
    /// A successful signing: failures reset, the signing session (re)starts.
    void signing_succeeded(core::db::Transaction& tx,
                           const core::TenantId& tenant,
                           const std::string& user_id,
                           int session_minutes);

    /// Adds a public key to the tenant's key register; false when it is there already.
    bool register_seal_key(core::db::Transaction& tx,
                           const core::TenantId& tenant,
                           const std::string& key_id,
                           const std::string& public_key);
    /// key id -> public key (raw Ed25519, base64).
    std::map<std::string, std::string> seal_keys(core::db::Transaction& tx,
                                                 const core::TenantId& tenant);

    /// Stores attachment bytes under their SHA-256 (once per tenant); false when present.
    bool store_attachment(core::db::Transaction& tx,
                          const core::TenantId& tenant,
                          const Attachment& attachment,
                          const std::string& uploaded_by);
    /// Which of `hashes` the tenant has no bytes for.
    std::vector<std::string> missing_attachments(core::db::Transaction& tx,
                                                 const core::TenantId& tenant,
                                                 const std::vector<std::string>& hashes);
    void link_attachments(core::db::Transaction& tx,
                          const core::TenantId& tenant,
                          std::int64_t id,
                          int version,
                          const std::vector<AttachmentRef>& refs);
    /// The bytes of `sha256` when a version of record `id` uses them.
    std::optional<Attachment> attachment_of(core::db::Transaction& tx,
                                            const core::TenantId& tenant,
                                            std::int64_t id,
                                            const std::string& sha256);
    /// Every version's attachments of record `id`, oldest version first.
    std::vector<std::pair<int, AttachmentRef>> attachment_refs(core::db::Transaction& tx,
                                                               const core::TenantId& tenant,
                                                               std::int64_t id);
    /// Stored attachments whose bytes no longer hash to their name.
    std::vector<std::string> corrupt_attachments(core::db::Transaction& tx,
                                                 const core::TenantId& tenant);

    /// Marks an archive as asked for; false when the record is not superseded or obsolete.
    void request_archive(core::db::Transaction& tx, const core::TenantId& tenant, std::int64_t id);
    bool store_archive(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       const Archive& archive);
    std::optional<Archive> archive(core::db::Transaction& tx,
                                   const core::TenantId& tenant,
                                   std::int64_t id);
    /// Records due for archiving, across tenants: asked for, or superseded or obsolete longer
    /// than their tenant's `archive_after_days`. (tenant, record id) pairs, at most `limit`.
    std::vector<std::pair<std::string, std::int64_t>> due_archives(int limit);

    Settings settings(core::db::Transaction& tx, const core::TenantId& tenant);
    void save_settings(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       const Settings& settings);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::records
