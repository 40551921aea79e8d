#include "modules/messages/repository.hpp"

#include "core/db/row.hpp"
#include "core/db/sql_time.hpp"

#include <inngest/event.hpp>

namespace riveredge::messages {
namespace {

using core::db::Param;
using core::db::Transaction;

constexpr const char* kFindByKey =
    "SELECT id FROM messages WHERE tenant_id = $1 AND sender_id = $2 AND idempotency_key = $3";
constexpr const char* kInsertMessage =
    "INSERT INTO messages (tenant_id, sender_id, subject, body, html_body, idempotency_key) "
    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
// A recipient named twice on a channel is one delivery (the unique key would refuse the second).
constexpr const char* kInsertDelivery =
    "INSERT INTO message_deliveries (tenant_id, message_id, channel, recipient) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, channel, recipient) DO NOTHING";
constexpr const char* kDeliveries =
    "SELECT id, channel, recipient, status, attempts FROM message_deliveries "
    "WHERE tenant_id = $1 AND message_id = $2 ORDER BY id";
constexpr const char* kInsertInboxItem =
    "INSERT INTO inbox_items (tenant_id, user_id, message_id, delivery_id, subject, body) "
    "SELECT d.tenant_id, d.recipient, d.message_id, d.id, m.subject, m.body "
    "FROM message_deliveries d JOIN messages m ON m.id = d.message_id "
    "WHERE d.tenant_id = $1 AND d.id = $2 AND d.channel = 'in_app' "
    "ON CONFLICT (delivery_id) DO NOTHING "
    "RETURNING json_build_object('tenant_id', tenant_id, 'item_id', id)::text AS note";
constexpr const char* kInboxNote =
    "SELECT user_id, json_build_object('type', 'inbox.item', 'tenant_id', tenant_id, 'user_id', "
    "user_id, 'item', json_build_object('id', id, 'message_id', message_id, 'subject', subject, "
    "'body', body))::text AS note FROM inbox_items WHERE tenant_id = $1 AND id = $2";
constexpr const char* kMarkSent =
    "UPDATE message_deliveries SET status = 'sent', attempts = attempts + 1, updated_at = now() "
    "WHERE tenant_id = $1 AND id = $2 AND status <> 'sent'";
constexpr const char* kInboxColumns =
    "i.id, i.message_id, i.subject, i.body, i.read_at IS NOT NULL AS read, "
    "i.archived_at IS NOT NULL AS archived, " SQL_UTC_TIME("i.created_at") " AS created_at";
constexpr const char* kInboxFrom =
    "FROM inbox_items i WHERE i.tenant_id = $1 AND i.user_id = $2 AND ("
    " ($3 = 'all' AND i.archived_at IS NULL) OR ($3 = 'unread' AND i.read_at IS NULL AND "
    "i.archived_at IS NULL) OR ($3 = 'read' AND i.read_at IS NOT NULL AND i.archived_at IS NULL) "
    "OR ($3 = 'archived' AND i.archived_at IS NOT NULL))";
constexpr const char* kUnread =
    "SELECT count(*) AS n FROM inbox_items WHERE tenant_id = $1 AND user_id = $2 "
    "AND read_at IS NULL AND archived_at IS NULL";
constexpr const char* kMarkRead =
    "UPDATE inbox_items SET read_at = coalesce(read_at, now()) "
    "WHERE tenant_id = $1 AND user_id = $2 AND id = $3";
constexpr const char* kMarkAllRead =
    "UPDATE inbox_items SET read_at = now() WHERE tenant_id = $1 AND user_id = $2 AND read_at IS "
    "NULL";
constexpr const char* kArchive =
    "UPDATE inbox_items SET archived_at = coalesce(archived_at, now()) "
    "WHERE tenant_id = $1 AND user_id = $2 AND id = $3";

constexpr const char* kDelivery =
    "SELECT d.channel, d.recipient, d.status, d.attempts, m.subject, m.body, m.html_body "
    "FROM message_deliveries d JOIN messages m ON m.id = d.message_id "
    "WHERE d.tenant_id = $1 AND d.id = $2";
constexpr const char* kUpdateDelivery =
    "UPDATE message_deliveries SET status = $3, provider_reply = $4, "
    "attempts = attempts + $5::int, updated_at = now() WHERE tenant_id = $1 AND id = $2";
constexpr const char* kFailUnfinished =
    "UPDATE message_deliveries SET status = 'failed', provider_reply = $3, updated_at = now() "
    "WHERE tenant_id = $1 AND message_id = $2 AND status IN ('queued', 'sending') RETURNING id";
constexpr const char* kSaveSmtp =
    "INSERT INTO messages_smtp_settings (tenant_id, host, port, tls_mode, username, password, "
    "from_address, from_name) VALUES ($1, $2, $3::int, $4, $5, $6, $7, $8) "
    "ON CONFLICT (tenant_id) DO UPDATE SET host = $2, port = $3::int, tls_mode = $4, username = "
    "$5, "
    // A stored password follows only the exact server it was given for: a new host, port, TLS
    // mode or user without the password again drops it (or the next mail would carry it there).
    "password = CASE WHEN $6 IS NOT NULL THEN $6 WHEN messages_smtp_settings.host = $2 AND "
    "messages_smtp_settings.port = $3::int AND messages_smtp_settings.tls_mode = $4 AND "
    "messages_smtp_settings.username IS NOT DISTINCT FROM $5 THEN messages_smtp_settings.password "
    "END, from_address = $7, from_name = $8, "
    "updated_at = now()";
constexpr const char* kSmtp =
    "SELECT host, port, tls_mode, username, password, from_address, from_name "
    "FROM messages_smtp_settings WHERE tenant_id = $1";

constexpr const char* kAddTemplate =
    "INSERT INTO message_templates (tenant_id, key, channel, locale, version, subject, body, "
    "html_body, created_by) "
    "SELECT $1, $2, $3, $4, coalesce(max(version), 0) + 1, $5, $6, $8, $7 FROM message_templates "
    "WHERE tenant_id = $1 AND key = $2 AND channel = $3 AND locale = $4 RETURNING id, version";
constexpr const char* kLatestTemplate =
    "SELECT id, key, channel, locale, version, subject, body, html_body FROM message_templates "
    "WHERE tenant_id = $1 AND key = $2 AND channel = $3 AND locale = $4 ORDER BY version DESC "
    "LIMIT 1";
constexpr const char* kTemplates =
    "SELECT DISTINCT ON (key, channel, locale) id, key, channel, locale, version, subject, body, "
    "html_body FROM message_templates WHERE tenant_id = $1 ORDER BY key, channel, locale, version "
    "DESC";

constexpr const char* kDeliveryLogColumns =
    "d.id, d.message_id, d.channel, d.recipient, d.status, d.attempts, d.provider_reply, "
    "m.subject, " SQL_UTC_TIME("d.updated_at") " AS updated_at";
constexpr const char* kDeliveryLogFrom =
    "FROM message_deliveries d JOIN messages m ON m.id = d.message_id WHERE d.tenant_id = $1";

}  // namespace

const core::db::ListSpec kDeliveryLogList{
    .sort_fields = core::db::sort_fields("d", {"updated_at", "status", "channel", "recipient"}),
    .default_sort = "-updated_at",
    .tiebreak_sql = "d.id",
    .filters = {
        {"status", "the delivery's status", R"({"enum":["queued","sending","sent","failed"]})",
         "d.status = $?"},
        {"channel", "the channel", R"({"enum":["in_app","email","sms","push"]})", "d.channel = $?"},
        {"recipient", "this recipient exactly", "", "d.recipient = $?"},
        {"since", "updated at or after this RFC 3339 time",
         R"({"type":"string","format":"date-time"})", "d.updated_at >= $?::timestamptz"},
        {"until", "updated before this RFC 3339 time", R"({"type":"string","format":"date-time"})",
         "d.updated_at < $?::timestamptz"}}};

const core::db::ListSpec kInboxList{
    .sort_fields = core::db::sort_fields("i", {"created_at"}),
    .default_sort = "-created_at",
    .tiebreak_sql = "i.id",
    .filters = {{"status", "all (not archived, the default), unread, read or archived",
                 R"({"enum":["all","unread","read","archived"]})"}},
    .default_page_size = 20,
    .max_page_size = 200};

namespace {

constexpr const char* kSaveSms =
    "INSERT INTO messages_sms_settings (tenant_id, endpoint, api_key, sign_name, template_id) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET endpoint = $2, "
    // Likewise the API key follows only the endpoint it was given for.
    "api_key = CASE WHEN $3 IS NOT NULL THEN $3 WHEN messages_sms_settings.endpoint = $2 THEN "
    "messages_sms_settings.api_key END, sign_name = $4, template_id = $5, "
    "updated_at = now()";
constexpr const char* kSms =
    "SELECT endpoint, api_key, sign_name, template_id FROM messages_sms_settings WHERE tenant_id = "
    "$1";

// A delivery as the log shows it.
struct DeliveryLogEntry {
    std::int64_t id = 0;
    std::int64_t message_id = 0;
    std::string channel;
    std::string recipient;
    std::string status;
    int attempts = 0;
    std::optional<std::string> provider_reply;
    std::string subject;
    std::string updated_at;
};
BOOST_DESCRIBE_STRUCT(
    DeliveryLogEntry,
    (),
    (id, message_id, channel, recipient, status, attempts, provider_reply, subject, updated_at))

struct InboxEntry {
    std::int64_t id = 0;
    std::int64_t message_id = 0;
    std::string subject;
    std::string body;
    bool read = false;
    bool archived = false;
    std::string created_at;
};
BOOST_DESCRIBE_STRUCT(InboxEntry, (), (id, message_id, subject, body, read, archived, created_at))

struct TemplateEntry {
    std::int64_t id = 0;
    std::string key;
    std::string channel;
    std::string locale;
    int version = 0;
    std::string subject;
    std::string body;
    std::optional<std::string> html_body;
};
BOOST_DESCRIBE_STRUCT(TemplateEntry,
                      (),
                      (id, key, channel, locale, version, subject, body, html_body))

}  // namespace

// What the channels need, read from their rows (the channels themselves know no database; the
// CA file is a process setting, never stored).
BOOST_DESCRIBE_STRUCT(DeliveryDetail,
                      (),
                      (channel, recipient, status, subject, body, attempts, html_body))
BOOST_DESCRIBE_STRUCT(Delivery, (), (id, channel, recipient, status, attempts))
BOOST_DESCRIBE_STRUCT(SmtpSettings,
                      (),
                      (host, port, tls_mode, username, password, from_address, from_name))
BOOST_DESCRIBE_STRUCT(SmsSettings, (), (endpoint, api_key, sign_name, template_id))

std::optional<DeliveryDetail> Repository::delivery(const core::TenantId& tenant,
                                                   std::int64_t delivery_id) {
    const auto rows = core::db::exec_once(pool_, tenant, kDelivery, {tenant, delivery_id});
    return core::db::first_as<DeliveryDetail>(rows);
}

void Repository::update_delivery(const core::TenantId& tenant,
                                 std::int64_t delivery_id,
                                 const std::string& status,
                                 const std::string& reply,
                                 bool attempted) {
    core::db::exec_once(pool_, tenant, kUpdateDelivery,
                        {tenant, delivery_id, status, reply, attempted ? "1" : "0"});
}

std::int64_t Repository::fail_unfinished(const core::TenantId& tenant,
                                         std::int64_t message_id,
                                         const std::string& reason) {
    return core::db::exec_once(pool_, tenant, kFailUnfinished, {tenant, message_id, reason}).size();
}

void Repository::save_smtp_settings(const core::TenantId& tenant, const SmtpSettings& settings) {
    core::db::exec_once(pool_, tenant, kSaveSmtp,
                        {tenant, settings.host, settings.port, settings.tls_mode, settings.username,
                         settings.password, settings.from_address, settings.from_name});
}

std::optional<SmtpSettings> Repository::smtp_settings(const core::TenantId& tenant) {
    const auto rows = core::db::exec_once(pool_, tenant, kSmtp, {tenant});
    return core::db::first_as<SmtpSettings>(rows);
}

void Repository::save_sms_settings(const core::TenantId& tenant, const SmsSettings& settings) {
    core::db::exec_once(
        pool_, tenant, kSaveSms,
        {tenant, settings.endpoint, settings.api_key, settings.sign_name, settings.template_id});
}

std::optional<SmsSettings> Repository::sms_settings(const core::TenantId& tenant) {
    const auto rows = core::db::exec_once(pool_, tenant, kSms, {tenant});
    return core::db::first_as<SmsSettings>(rows);
}

std::optional<std::int64_t> Repository::find_by_idempotency_key(const core::TenantId& tenant,
                                                                const std::string& sender,
                                                                const std::string& key) {
    const auto rows = core::db::exec_once(pool_, tenant, kFindByKey, {tenant, sender, key});
    if (rows.empty()) {
        return std::nullopt;
    }
    return rows.integer(0, "id");
}

std::int64_t Repository::create_message(const core::TenantId& tenant,
                                        const std::string& sender,
                                        const MessageContent& content,
                                        const std::optional<std::string>& idempotency_key,
                                        const std::vector<NewDelivery>& deliveries,
                                        const core::outbox::Announcement& announce) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        const auto rows = tx.exec(kInsertMessage, {tenant, sender, content.subject, content.body,
                                                   content.html_body, idempotency_key});
        const std::int64_t id = rows.integer(0, "id");
        for (const auto& delivery : deliveries) {
            tx.exec(kInsertDelivery, {tenant, id, delivery.channel, delivery.recipient});
        }
        core::outbox::add(tx, tenant, announce(id));
        return id;
    });
}

std::vector<Delivery> Repository::deliveries(const core::TenantId& tenant,
                                             std::int64_t message_id) {
    const auto rows = core::db::exec_once(pool_, tenant, kDeliveries, {tenant, message_id});
    return core::db::rows_as<Delivery>(rows);
}

bool Repository::deliver_in_app(const core::TenantId& tenant, std::int64_t delivery_id) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        const auto inserted = tx.exec(kInsertInboxItem, {tenant, delivery_id});
        if (!inserted.empty()) {
            // Delivered with the commit: sockets hear of the item only once it is really there.
            // The notification names the item only (NOTIFY payloads are capped at 8000 bytes and
            // every process hears every tenant's); listeners read the item in its tenant.
            tx.exec("SELECT pg_notify($1, $2)",
                    {std::string(kInboxChannel), inserted.text(0, "note")});
        }
        const bool changed = tx.exec(kMarkSent, {tenant, delivery_id}).affected() == 1;
        return changed;
    });
}

std::optional<std::string> Repository::sender_of(const core::TenantId& tenant,
                                                 std::int64_t message_id) {
    const auto rows = core::db::exec_once(
        pool_, tenant, "SELECT sender_id FROM messages WHERE tenant_id = $1 AND id = $2",
        {tenant, message_id});
    return rows.empty() ? std::nullopt : std::optional(rows.text(0, "sender_id"));
}

std::optional<InboxNote> Repository::inbox_note(const core::TenantId& tenant,
                                                std::int64_t item_id) {
    const auto rows = core::db::exec_once(pool_, tenant, kInboxNote, {tenant, item_id});
    if (rows.empty()) {
        return std::nullopt;
    }
    return InboxNote{rows.text(0, "user_id"), rows.text(0, "note")};
}

std::pair<std::int64_t, int> Repository::add_template(const core::TenantId& tenant,
                                                      const std::string& key,
                                                      const std::string& channel,
                                                      const std::string& locale,
                                                      const MessageContent& content,
                                                      const std::string& author) {
    return core::db::transact(pool_, tenant, [&](Transaction& tx) {
        // Serialise versioning of one template key within the tenant.
        tx.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {tenant.value() + "/" + key});
        const auto rows = tx.exec(kAddTemplate, {tenant, key, channel, locale, content.subject,
                                                 content.body, author, content.html_body});
        return std::pair{rows.integer(0, "id"), static_cast<int>(rows.integer(0, "version"))};
    });
}

std::optional<boost::json::object> Repository::latest_template(const core::TenantId& tenant,
                                                               const std::string& key,
                                                               const std::string& channel,
                                                               const std::string& locale) {
    const auto rows =
        core::db::exec_once(pool_, tenant, kLatestTemplate, {tenant, key, channel, locale});
    if (rows.empty()) {
        return std::nullopt;
    }
    return core::db::row_json(core::db::row_as<TemplateEntry>(rows, 0));
}

boost::json::array Repository::templates(const core::TenantId& tenant) {
    const auto rows = core::db::exec_once(pool_, tenant, kTemplates, {tenant});
    return core::db::rows_json<TemplateEntry>(rows);
}

core::db::JsonPage Repository::delivery_log(const core::TenantId& tenant,
                                            const core::db::ListRequest& page) {
    return core::db::json_page(core::db::page_of<DeliveryLogEntry>(
        pool_, tenant, kDeliveryLogColumns, kDeliveryLogFrom, {tenant}, page));
}

core::db::JsonPage Repository::inbox(const core::TenantId& tenant,
                                     const std::string& user,
                                     const std::string& filter,
                                     const core::db::ListRequest& page) {
    return core::db::json_page(core::db::page_of<InboxEntry>(
        pool_, tenant, kInboxColumns, kInboxFrom, {tenant, user, filter}, page));
}

std::int64_t Repository::unread_count(const core::TenantId& tenant, const std::string& user) {
    const auto rows = core::db::exec_once(pool_, tenant, kUnread, {tenant, user});
    return rows.integer(0, "n");
}

bool Repository::mark_read(const core::TenantId& tenant,
                           const std::string& user,
                           std::int64_t item) {
    return core::db::exec_once(pool_, tenant, kMarkRead, {tenant, user, item}).affected() == 1;
}

std::int64_t Repository::mark_all_read(const core::TenantId& tenant, const std::string& user) {
    return core::db::exec_once(pool_, tenant, kMarkAllRead, {tenant, user}).affected();
}

bool Repository::archive(const core::TenantId& tenant, const std::string& user, std::int64_t item) {
    return core::db::exec_once(pool_, tenant, kArchive, {tenant, user, item}).affected() == 1;
}

}  // namespace riveredge::messages
