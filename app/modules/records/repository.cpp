#include "modules/records/repository.hpp"

#include "core/db/sql_time.hpp"
#include "core/json/canonical.hpp"
#include "core/json/depth.hpp"
#include "core/text/hex.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::records {
namespace {

namespace json = boost::json;
using core::db::Param;
using core::db::Rows;
using core::db::Transaction;

// to_char of NULL is NULL: an unset time stays null.
constexpr const char* kRecordColumns =
    "r.id, r.type, r.business_key, r.title, r.state, r.latest_version, r.state_reason, "
    SQL_UTC_TIME("r.retain_until") " AS retain_until, r.created_by, "
    SQL_UTC_TIME("r.created_at") " AS created_at, "
    SQL_UTC_TIME("r.updated_at") " AS updated_at";

constexpr const char* kSignatureColumns =
    "s.id, s.record_id, s.version, s.signer_id, s.printed_name, s.meaning, s.reason, " SQL_UTC_TIME(
        "s.signed_at") " AS signed_at, s.content_hash, s.key_id, s.seal, s.step_key";

// A version as listed: what changed, by whom and when, without its content.
struct VersionSummary {
    int version = 0;
    std::string title;
    std::string content_hash;
    std::optional<std::string> change_reason;
    std::string created_by;
    std::string created_at;
};
BOOST_DESCRIBE_STRUCT(VersionSummary,
                      (),
                      (version, title, content_hash, change_reason, created_by, created_at))

}  // namespace

const core::db::ListSpec kRecordList{
    .sort_fields = core::db::sort_fields("r", {"id", "title", "type", "state", "updated_at"}),
    .default_sort = "-id",
    .tiebreak_sql = "r.id",
    .filters = {{"type", "the record type", "", "r.type = $?"},
                {"state", "the record's state",
                 R"({"enum":["draft","in_review","effective","superseded","obsolete","archived",)"
                 R"("deleted"]})",
                 "r.state = $?"},
                {"business_key", "the business key", "", "r.business_key = $?"}}};

json::object Record::to_json() const {
    return core::db::row_json(*this);
}

json::object RecordVersion::to_json() const {
    return core::db::row_json(*this);
}

json::object Signature::to_json() const {
    return json::object{
        {"id", id},
        {"record_id", record_id},
        {"version", version},
        {"signer_id", signer_id},
        {"printed_name", printed_name},
        {"meaning", meaning},
        {"reason", reason},
        {"signed_at", signed_at},
        {"content_hash", content_hash},
        {"key_id", key_id},
        {"step_key", step_key.empty() ? json::value(nullptr) : json::value(step_key)}};
}

std::string Signature::sealed_message(const core::TenantId& tenant) const {
    return core::canonical_json(json::object{{"tenant_id", tenant.value()},
                                             {"record_id", record_id},
                                             {"version", version},
                                             {"content_hash", content_hash},
                                             {"signer_id", signer_id},
                                             {"printed_name", printed_name},
                                             {"meaning", meaning},
                                             {"reason", reason},
                                             {"signed_at", signed_at},
                                             {"step_key", step_key}});
}

json::object Settings::to_json() const {
    return core::db::row_json(*this);
}

std::optional<std::int64_t> Repository::create(Transaction& tx,
                                               const core::TenantId& tenant,
                                               const NewRecord& record,
                                               const std::string& canonical_hash,
                                               const std::string& author) {
    const auto rows = tx.exec(
        "INSERT INTO records (tenant_id, type, business_key, title, created_by) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, type, business_key) DO NOTHING "
        "RETURNING id",
        {tenant, record.type, record.business_key, record.title, author});
    if (rows.empty()) {
        return std::nullopt;
    }
    const auto id = rows.integer(0, "id");
    tx.exec(
        "INSERT INTO record_versions (tenant_id, record_id, version, title, content, "
        "canonicalization, content_hash, created_by) VALUES ($1, $2, 1, $3, $4::jsonb, $5, $6, "
        "$7)",
        {tenant, id, record.title, record.content, core::kCanonicalization, canonical_hash,
         author});
    return id;
}

std::optional<Record> Repository::find(Transaction& tx,
                                       const core::TenantId& tenant,
                                       std::int64_t id,
                                       bool for_update) {
    return core::db::select_first<Record>(
        tx, kRecordColumns,
        std::string("FROM records r WHERE r.tenant_id = $1 AND r.id = $2") +
            (for_update ? " FOR UPDATE" : ""),
        {tenant, id});
}

std::optional<RecordVersion> Repository::version(Transaction& tx,
                                                 const core::TenantId& tenant,
                                                 std::int64_t id,
                                                 int number) {
    const auto rows = tx.exec(
        "SELECT v.record_id, v.version, v.title, v.content::text AS content, v.canonicalization, "
        "v.content_hash, v.change_reason, v.created_by, " SQL_UTC_TIME(
            "v.created_at") " AS created_at FROM record_versions v WHERE v.tenant_id = $1 AND "
                            "v.record_id = $2 AND v.version = $3::int",
        {tenant, id, number});
    return core::db::first_as<RecordVersion>(rows);
}

std::optional<RecordVersion> Repository::version(const core::TenantId& tenant,
                                                 std::int64_t id,
                                                 int number) {
    return core::db::transact(pool_, tenant,
                              [&](Transaction& tx) { return version(tx, tenant, id, number); });
}

json::array Repository::versions(const core::TenantId& tenant, std::int64_t id) {
    const auto rows = core::db::exec_once(
        pool_, tenant,
        "SELECT v.version, v.title, v.content_hash, v.change_reason, v.created_by, " SQL_UTC_TIME(
            "v.created_at") " AS created_at FROM record_versions v WHERE v.tenant_id = $1 AND "
                            "v.record_id = $2 ORDER BY v.version DESC",
        {tenant, id});
    return core::db::rows_json<VersionSummary>(rows);
}

void Repository::add_version(Transaction& tx,
                             const core::TenantId& tenant,
                             std::int64_t id,
                             int number,
                             const std::string& title,
                             const json::value& content,
                             const std::string& content_hash,
                             const std::string& reason,
                             const std::string& author) {
    tx.exec(
        "INSERT INTO record_versions (tenant_id, record_id, version, title, content, "
        "canonicalization, content_hash, change_reason, created_by) VALUES ($1, $2, $3::int, $4, "
        "$5::jsonb, $6, $7, $8, $9)",
        {tenant, id, number, title, content, core::kCanonicalization, content_hash, reason,
         author});
    tx.exec(
        "UPDATE records SET latest_version = $3::int, title = $4, updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2",
        {tenant, id, number, title});
}

void Repository::set_state(Transaction& tx,
                           const core::TenantId& tenant,
                           std::int64_t id,
                           const std::string& state,
                           const std::optional<std::string>& reason,
                           std::optional<int> retain_days) {
    tx.exec(
        "UPDATE records SET state = $3, state_reason = $4, updated_at = now(), retain_until = "
        "CASE WHEN $5::int IS NULL THEN retain_until ELSE now() + $5::int * interval '1 day' END "
        "WHERE tenant_id = $1 AND id = $2",
        {tenant, id, state, reason, retain_days});
}

void Repository::purge(Transaction& tx, const core::TenantId& tenant, std::int64_t id) {
    const std::vector<Param> params{tenant, id};
    // The attachments only this record used go with it.
    const auto hashes = tx.exec(
        "SELECT DISTINCT sha256 FROM record_version_attachments WHERE tenant_id = $1 AND "
        "record_id = $2",
        params);
    tx.exec("DELETE FROM record_version_attachments WHERE tenant_id = $1 AND record_id = $2",
            params);
    for (int i = 0; i < hashes.size(); ++i) {
        tx.exec(
            "DELETE FROM record_attachments a WHERE tenant_id = $1 AND sha256 = $2 AND NOT EXISTS "
            "(SELECT 1 FROM record_version_attachments l WHERE l.tenant_id = $1 AND l.sha256 = $2)",
            {tenant, hashes.text(i, "sha256")});
    }
    tx.exec("DELETE FROM record_archives WHERE tenant_id = $1 AND record_id = $2", params);
    tx.exec("DELETE FROM record_signatures WHERE tenant_id = $1 AND record_id = $2", params);
    tx.exec("DELETE FROM record_versions WHERE tenant_id = $1 AND record_id = $2", params);
    tx.exec("DELETE FROM records WHERE tenant_id = $1 AND id = $2", params);
}

core::db::Page<Record> Repository::list(const core::TenantId& tenant,
                                        const core::db::ListRequest& page) {
    return core::db::page_of<Record>(pool_, tenant, kRecordColumns,
                                     "FROM records r WHERE r.tenant_id = $1", {tenant}, page);
}

std::vector<Signature> Repository::signatures(Transaction& tx,
                                              const core::TenantId& tenant,
                                              std::int64_t record_id) {
    return core::db::select_rows<Signature>(tx, kSignatureColumns,
                                            "FROM record_signatures s WHERE s.tenant_id = $1 AND "
                                            "s.record_id = $2 ORDER BY s.id",
                                            {tenant, record_id});
}

std::optional<std::int64_t> Repository::insert_signature(Transaction& tx,
                                                         const core::TenantId& tenant,
                                                         const Signature& s) {
    const auto rows = tx.exec(
        "INSERT INTO record_signatures (tenant_id, record_id, version, signer_id, printed_name, "
        "meaning, reason, signed_at, content_hash, key_id, seal, step_key) VALUES ($1, $2, "
        "$3::int, $4, $5, $6, $7, $8::timestamptz, $9, $10, $11, $12) ON CONFLICT (tenant_id, "
        "record_id, version, signer_id, meaning, step_key) DO NOTHING RETURNING id",
        {tenant, s.record_id, s.version, s.signer_id, s.printed_name, s.meaning, s.reason,
         s.signed_at, s.content_hash, s.key_id, s.seal, s.step_key});
    return rows.empty() ? std::nullopt : std::optional(rows.integer(0, "id"));
}

std::optional<Credential> Repository::credential(Transaction& tx,
                                                 const core::TenantId& tenant,
                                                 const std::string& user_id) {
    const auto rows = tx.exec(
        "SELECT printed_name, password_hash, failed_attempts, "
        "coalesce(locked_until > now(), false) AS locked, "
        "coalesce(session_until > now(), false) AS in_session "
        "FROM record_signing_credentials WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
        {tenant, user_id});
    return core::db::first_as<Credential>(rows);
}

void Repository::save_credential(Transaction& tx,
                                 const core::TenantId& tenant,
                                 const std::string& user_id,
                                 const std::string& printed_name,
                                 const std::string& password_hash) {
    tx.exec(
        "INSERT INTO record_signing_credentials (tenant_id, user_id, printed_name, "
        "password_hash) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, user_id) DO UPDATE SET "
        "printed_name = excluded.printed_name, password_hash = excluded.password_hash, "
        "failed_attempts = 0, locked_until = NULL, session_until = NULL, updated_at = now()",
        {tenant, user_id, printed_name, password_hash});
}

int Repository::signing_failed(Transaction& tx,
                               const core::TenantId& tenant,
                               const std::string& user_id,
                               int lock_after,
                               int lock_minutes) {
    const auto rows = tx.exec(
        // After a lock has run out, counting starts again: every lockout takes the full count.
        "UPDATE record_signing_credentials SET failed_attempts = CASE WHEN locked_until <= now() "
        "THEN 1 ELSE failed_attempts + 1 END, session_until = NULL, locked_until = CASE WHEN "
        "(CASE WHEN locked_until <= now() THEN 1 ELSE failed_attempts + 1 END) >= $3::int THEN "
        "now() + $4::int * interval '1 minute' WHEN locked_until <= now() THEN NULL ELSE "
        "locked_until END, updated_at = now() WHERE tenant_id = $1 AND user_id = $2 "
        "RETURNING failed_attempts",
        {tenant, user_id, lock_after, lock_minutes});
    return rows.empty() ? 0 : static_cast<int>(rows.integer(0, "failed_attempts"));
}

void Repository::signing_succeeded(Transaction& tx,
                                   const core::TenantId& tenant,
                                   const std::string& user_id,
                                   int session_minutes) {
    tx.exec(
        "UPDATE record_signing_credentials SET failed_attempts = 0, locked_until = NULL, "
        "session_until = now() + $3::int * interval '1 minute', updated_at = now() "
        "WHERE tenant_id = $1 AND user_id = $2",
        {tenant, user_id, session_minutes});
}

bool Repository::register_seal_key(Transaction& tx,
                                   const core::TenantId& tenant,
                                   const std::string& key_id,
                                   const std::string& public_key) {
    return tx.exec(
                 "INSERT INTO record_seal_keys (tenant_id, key_id, public_key) VALUES ($1, $2, "
                 "$3) ON CONFLICT DO NOTHING",
                 {tenant, key_id, public_key})
               .affected() == 1;
}

std::map<std::string, std::string> Repository::seal_keys(Transaction& tx,
                                                         const core::TenantId& tenant) {
    const auto rows =
        tx.exec("SELECT key_id, public_key FROM record_seal_keys WHERE tenant_id = $1", {tenant});
    std::map<std::string, std::string> out;
    for (int i = 0; i < rows.size(); ++i) {
        out.emplace(rows.text(i, "key_id"), rows.text(i, "public_key"));
    }
    return out;
}

bool Repository::store_attachment(Transaction& tx,
                                  const core::TenantId& tenant,
                                  const Attachment& attachment,
                                  const std::string& uploaded_by) {
    const auto& bytes = attachment.bytes;
    return tx.exec(
                 "INSERT INTO record_attachments (tenant_id, sha256, media_type, size, content, "
                 "uploaded_by) VALUES ($1, $2, $3, $4::bigint, decode($5, 'hex'), $6) ON "
                 "CONFLICT DO NOTHING",
                 {tenant, attachment.sha256, attachment.media_type, bytes.size(),
                  core::to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()),
                  uploaded_by})
               .affected() == 1;
}

std::vector<std::string> Repository::missing_attachments(Transaction& tx,
                                                         const core::TenantId& tenant,
                                                         const std::vector<std::string>& hashes) {
    std::vector<std::string> missing;
    for (const auto& hash : hashes) {
        if (tx.exec("SELECT 1 FROM record_attachments WHERE tenant_id = $1 AND sha256 = $2",
                    {tenant, hash})
                .empty()) {
            missing.push_back(hash);
        }
    }
    return missing;
}

void Repository::link_attachments(Transaction& tx,
                                  const core::TenantId& tenant,
                                  std::int64_t id,
                                  int version,
                                  const std::vector<AttachmentRef>& refs) {
    for (const auto& ref : refs) {
        tx.exec(
            "INSERT INTO record_version_attachments (tenant_id, record_id, version, name, sha256) "
            "VALUES ($1, $2, $3::int, $4, $5)",
            {tenant, id, version, ref.name, ref.sha256});
    }
}

std::optional<Attachment> Repository::attachment_of(Transaction& tx,
                                                    const core::TenantId& tenant,
                                                    std::int64_t id,
                                                    const std::string& sha256) {
    const auto rows = tx.exec(
        "SELECT a.media_type, a.size, encode(a.content, 'hex') AS content FROM "
        "record_attachments a WHERE a.tenant_id = $1 AND a.sha256 = $3 AND EXISTS (SELECT 1 FROM "
        "record_version_attachments l WHERE l.tenant_id = $1 AND l.record_id = $2 AND l.sha256 = "
        "$3)",
        {tenant, id, sha256});
    if (rows.empty()) {
        return std::nullopt;
    }
    return Attachment{sha256, rows.text(0, "media_type"), rows.integer(0, "size"),
                      core::from_hex(rows.text(0, "content"))};
}

std::vector<std::pair<int, AttachmentRef>> Repository::attachment_refs(Transaction& tx,
                                                                       const core::TenantId& tenant,
                                                                       std::int64_t id) {
    const auto rows = tx.exec(
        "SELECT version, name, sha256 FROM record_version_attachments WHERE tenant_id = $1 AND "
        "record_id = $2 ORDER BY version, name",
        {tenant, id});
    std::vector<std::pair<int, AttachmentRef>> out;
    for (int i = 0; i < rows.size(); ++i) {
        out.emplace_back(static_cast<int>(rows.integer(i, "version")),
                         AttachmentRef{rows.text(i, "name"), rows.text(i, "sha256")});
    }
    return out;
}

std::vector<std::string> Repository::corrupt_attachments(Transaction& tx,
                                                         const core::TenantId& tenant) {
    return core::db::texts(tx.exec("SELECT sha256 FROM record_attachments WHERE tenant_id = $1 AND "
                                   "encode(sha256(content), 'hex') <> sha256 ORDER BY sha256",
                                   {tenant}),
                           "sha256");
}

void Repository::request_archive(Transaction& tx, const core::TenantId& tenant, std::int64_t id) {
    tx.exec(
        "UPDATE records SET archive_requested_at = coalesce(archive_requested_at, now()) WHERE "
        "tenant_id = $1 AND id = $2",
        {tenant, id});
}

bool Repository::store_archive(Transaction& tx,
                               const core::TenantId& tenant,
                               const Archive& archive) {
    return tx.exec(
                 "INSERT INTO record_archives (tenant_id, record_id, package, package_hash, "
                 "key_id, seal, archived_at) VALUES ($1, $2, $3::jsonb, $4, $5, $6, "
                 "$7::timestamptz) ON CONFLICT DO NOTHING",
                 {tenant, archive.record_id, archive.package, archive.package_hash, archive.key_id,
                  archive.seal, archive.archived_at})
               .affected() == 1;
}

std::optional<Archive> Repository::archive(Transaction& tx,
                                           const core::TenantId& tenant,
                                           std::int64_t id) {
    const auto rows = tx.exec(
        "SELECT package::text AS package, package_hash, key_id, seal, " SQL_UTC_TIME(
            "archived_at") " AS archived_at FROM record_archives WHERE tenant_id = $1 AND "
                           "record_id = $2",
        {tenant, id});
    if (rows.empty()) {
        return std::nullopt;
    }
    return Archive{id,
                   core::parse_stored_json(rows.text(0, "package")),
                   rows.text(0, "package_hash"),
                   rows.text(0, "key_id"),
                   rows.text(0, "seal"),
                   rows.text(0, "archived_at")};
}

std::vector<std::pair<std::string, std::int64_t>> Repository::due_archives(int limit) {
    const auto rows = core::db::exec_in_scope(
        pool_, "records_archiver",
        "SELECT r.tenant_id, r.id FROM records r LEFT JOIN record_settings s ON s.tenant_id = "
        "r.tenant_id WHERE r.state IN ('superseded', 'obsolete') AND (r.archive_requested_at IS "
        "NOT NULL OR (s.archive_after_days IS NOT NULL AND r.updated_at < now() - "
        "s.archive_after_days * interval '1 day')) ORDER BY r.archive_requested_at NULLS LAST, "
        "r.updated_at, r.id LIMIT $1::int",
        {limit});
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (int i = 0; i < rows.size(); ++i) {
        out.emplace_back(rows.text(i, "tenant_id"), rows.integer(i, "id"));
    }
    return out;
}

Settings Repository::settings(Transaction& tx, const core::TenantId& tenant) {
    const auto rows = tx.exec(
        "SELECT custom_meanings::text AS custom_meanings, security_contacts::text AS "
        "security_contacts, retention_days, archive_after_days FROM record_settings WHERE "
        "tenant_id = $1",
        {tenant});
    return core::db::first_as<Settings>(rows).value_or(Settings{});
}

void Repository::save_settings(Transaction& tx,
                               const core::TenantId& tenant,
                               const Settings& settings) {
    tx.exec(
        "INSERT INTO record_settings (tenant_id, custom_meanings, security_contacts, "
        "retention_days, archive_after_days) VALUES ($1, $2::jsonb, $3::jsonb, $4::int, $5::int) "
        "ON CONFLICT (tenant_id) DO UPDATE SET custom_meanings = excluded.custom_meanings, "
        "security_contacts = excluded.security_contacts, retention_days = "
        "excluded.retention_days, archive_after_days = excluded.archive_after_days",
        {tenant, json::value_from(settings.custom_meanings),
         json::value_from(settings.security_contacts), settings.retention_days,
         settings.archive_after_days});
}

}  // namespace riveredge::records
