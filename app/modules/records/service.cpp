#include "modules/records/service.hpp"

#include "core/errors.hpp"
#include "core/json/canonical.hpp"
#include "core/log/logger.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <set>

#include <date/date.h>

namespace riveredge::records {
namespace {

namespace json = boost::json;
using core::DomainError;
using core::db::Transaction;

constexpr std::array<const char*, 4> kMeanings{"authorship", "review", "approval",
                                               "responsibility"};

struct Move {
    std::set<std::string> from;
    std::string to;
    bool admin = false;
    bool reason_required = false;
};

// The lifecycle (Part 11.10(f)): every move not listed here is refused.
const std::map<std::string, Move>& moves() {
    static const std::map<std::string, Move> all{
        {"submit", {{"draft"}, "in_review", false, false}},
        {"return", {{"in_review"}, "draft", false, true}},
        {"make_effective", {{"in_review"}, "effective", true, false}},
        {"supersede", {{"effective"}, "superseded", true, true}},
        {"obsolete", {{"effective"}, "obsolete", true, true}},
        {"archive", {{"superseded", "obsolete"}, "archived", true, false}},
        {"delete",
         {{"draft", "in_review", "effective", "superseded", "obsolete", "archived"},
          "deleted",
          true,
          true}}};
    return all;
}

// A bounded, non-empty string field, or its problem in `problems`.
std::optional<std::string> text_field(const json::object& request,
                                      const char* name,
                                      std::size_t max,
                                      bool required,
                                      json::object& problems) {
    const auto* value = request.if_contains(name);
    if (value == nullptr || value->is_null()) {
        if (required) {
            problems[name] = "required";
        }
        return std::nullopt;
    }
    if (!value->is_string() || value->get_string().empty() || value->get_string().size() > max) {
        problems[name] = "a non-empty string of at most " + std::to_string(max) + " bytes";
        return std::nullopt;
    }
    return std::string(value->get_string());
}

std::string now_text() {
    return date::format("%FT%TZ",
                        date::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()));
}

// A record's content: a JSON object, or its problem in `problems`.
const json::value* content_field(const json::object& request, json::object& problems) {
    const auto* content = request.if_contains("content");
    if (content == nullptr || !content->is_object()) {
        problems["content"] = "a JSON object";
        return nullptr;
    }
    return content;
}

// The content's canonical hash, or a 422 naming `content` when JCS cannot represent it.
std::string content_hash(const json::value& content) {
    try {
        return core::sha256_hex(core::canonical_json(content));
    } catch (const core::CanonicalJsonError& error) {
        throw DomainError::validation(json::object{{"content", error.what()}});
    }
}

}  // namespace

Actor Service::actor(const core::Principal& who, std::string address, std::string user_agent) {
    Transaction tx(repository_.pool(), who.tenant);
    const auto credential = repository_.credential(tx, who.tenant, who.user_id);
    tx.commit();
    return Actor{who, credential ? credential->printed_name : who.user_id, std::move(address),
                 std::move(user_agent)};
}

Record Service::require(Transaction& tx,
                        const core::TenantId& tenant,
                        std::int64_t id,
                        bool for_update) {
    auto record = repository_.find(tx, tenant, id, for_update);
    if (!record) {
        throw DomainError::not_found("record " + std::to_string(id));
    }
    return std::move(*record);
}

json::object Service::create(const Actor& actor, const json::object& request) {
    json::object problems;
    const auto type = text_field(request, "type", 100, true, problems);
    const auto key = text_field(request, "business_key", 200, true, problems);
    const auto title = text_field(request, "title", 500, true, problems);
    const auto* content = content_field(request, problems);
    if (!problems.empty()) {
        throw DomainError::validation(std::move(problems));
    }
    const std::string hash = content_hash(*content);
    Transaction tx(repository_.pool(), actor.who.tenant);
    const auto id = repository_.create(tx, actor.who.tenant, {*type, *key, *title, *content}, hash,
                                       actor.who.user_id);
    if (!id) {
        throw DomainError::conflict("a record of type '" + *type + "' with business key '" + *key +
                                    "' exists already");
    }
    AuditTrail::append(tx, actor.who.tenant, actor,
                       {*id, "created", nullptr,
                        json::object{{"type", *type},
                                     {"business_key", *key},
                                     {"title", *title},
                                     {"version", 1},
                                     {"content_hash", hash}},
                        std::nullopt});
    tx.commit();
    return get(actor.who.tenant, *id);
}

json::object Service::get(const core::TenantId& tenant, std::int64_t id) {
    Transaction tx(repository_.pool(), tenant);
    const auto record = require(tx, tenant, id, false);
    const auto latest = repository_.version(tx, tenant, id, record.latest_version);
    bool all_valid = true;
    auto out = record.to_json();
    out["content"] = latest ? latest->content : json::value(nullptr);
    out["content_hash"] = latest ? json::value(latest->content_hash) : json::value(nullptr);
    out["signatures"] = checked_signatures(tx, tenant, id, all_valid);
    out["signatures_valid"] = all_valid;
    tx.commit();
    return out;
}

json::object Service::update(const Actor& actor, std::int64_t id, const json::object& request) {
    json::object problems;
    const auto reason = text_field(request, "reason", 1000, true, problems);
    const auto title = text_field(request, "title", 500, false, problems);
    const auto* content = content_field(request, problems);
    if (!problems.empty()) {
        throw DomainError::validation(std::move(problems));
    }
    const std::string hash = content_hash(*content);
    const auto& tenant = actor.who.tenant;
    Transaction tx(repository_.pool(), tenant);
    const auto record = require(tx, tenant, id, true);
    if (record.state != "draft") {
        throw DomainError::conflict("only a draft's content changes; this record is " +
                                    record.state);
    }
    const auto previous = repository_.version(tx, tenant, id, record.latest_version);
    const int number = record.latest_version + 1;
    const std::string new_title = title.value_or(record.title);
    repository_.add_version(tx, tenant, id, number, new_title, *content, hash, *reason,
                            actor.who.user_id);
    AuditTrail::append(
        tx, tenant, actor,
        {id, "content_changed",
         json::object{{"version", record.latest_version},
                      {"title", record.title},
                      {"content", previous ? previous->content : json::value(nullptr)}},
         json::object{{"version", number}, {"title", new_title}, {"content", *content}}, *reason});
    tx.commit();
    return get(tenant, id);
}

json::object Service::transition(const Actor& actor, std::int64_t id, const json::object& request) {
    json::object problems;
    const auto action = text_field(request, "action", 50, true, problems);
    const auto reason = text_field(request, "reason", 1000, false, problems);
    if (action && moves().count(*action) == 0) {
        problems["action"] =
            "one of submit, return, make_effective, supersede, obsolete, archive, delete";
    }
    if (!problems.empty()) {
        throw DomainError::validation(std::move(problems));
    }
    const Move& move = moves().at(*action);
    if (move.reason_required && !reason) {
        throw DomainError::validation(json::object{{"reason", "required for " + *action}});
    }
    if (move.admin && !actor.who.has_role("admin")) {
        throw DomainError::forbidden(*action + " is for tenant administrators");
    }
    const auto& tenant = actor.who.tenant;
    Transaction tx(repository_.pool(), tenant);
    const auto record = require(tx, tenant, id, true);
    if (move.from.count(record.state) == 0) {
        throw DomainError::conflict("a record that is " + record.state + " cannot " + *action);
    }
    if (*action == "make_effective") {
        // Effective only once approved: an approval signature on the version that takes effect.
        bool approved = false;
        for (const auto& s : repository_.signatures(tx, tenant, id)) {
            approved = approved || (s.version == record.latest_version && s.meaning == "approval");
        }
        if (!approved) {
            throw DomainError::conflict("version " + std::to_string(record.latest_version) +
                                        " has no approval signature yet");
        }
    }
    std::optional<int> retain_days;
    if (move.to == "deleted") {
        retain_days = repository_.settings(tx, tenant).retention_days;
    }
    repository_.set_state(tx, tenant, id, move.to, reason, retain_days);
    AuditTrail::append(tx, tenant, actor,
                       {id, "state_changed", json::object{{"state", record.state}},
                        json::object{{"state", move.to}, {"action", *action}}, reason});
    tx.commit();
    return get(tenant, id);
}

void Service::purge(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    Transaction tx(repository_.pool(), tenant);
    const auto record = require(tx, tenant, id, true);
    if (record.state != "deleted") {
        throw DomainError::conflict("only a deleted record is purged; this one is " + record.state);
    }
    auto summary = record.to_json();
    // The database refuses too (a trigger), whatever calls it.
    const auto due = tx.exec("SELECT retain_until < now() AS due FROM records WHERE id = $1",
                             {std::to_string(id)});
    if (!due.boolean(0, "due")) {
        throw DomainError::conflict("the record is kept until " +
                                    record.retain_until.value_or("its retention ends") +
                                    "; it cannot be purged before");
    }
    AuditTrail::append(tx, tenant, actor,
                       {id, "purged", std::move(summary), nullptr, std::nullopt});
    repository_.purge(tx, tenant, id);
    tx.commit();
}

json::object Service::set_signing_password(const Actor& actor, const json::object& request) {
    json::object problems;
    const auto password = text_field(request, "password", 200, true, problems);
    const auto printed_name = text_field(request, "printed_name", 200, true, problems);
    const auto current = text_field(request, "current_password", 200, false, problems);
    if (password && password->size() < 10) {
        problems["password"] = "at least 10 characters";
    }
    if (!problems.empty()) {
        throw DomainError::validation(std::move(problems));
    }
    const auto& tenant = actor.who.tenant;
    Transaction tx(repository_.pool(), tenant);
    const auto existing = repository_.credential(tx, tenant, actor.who.user_id);
    if (existing && existing->locked) {
        throw DomainError::forbidden("signing is locked after " +
                                     std::to_string(kLockAfterFailures) +
                                     " failed attempts; try again later");
    }
    if (existing && !current) {
        throw DomainError::validation(
            json::object{{"current_password", "required to change a signing password"}});
    }
    if (existing && !password_matches(*current, existing->password_hash)) {
        // A guess at the current password counts like a failed signing.
        refuse_wrong_password(tx, actor, std::nullopt);
    }
    repository_.save_credential(tx, tenant, actor.who.user_id, *printed_name,
                                hash_password(*password));
    AuditTrail::append(
        tx, tenant, actor,
        {std::nullopt, existing ? "signing_password_changed" : "signing_password_set",
         existing ? json::value(json::object{{"printed_name", existing->printed_name}})
                  : json::value(nullptr),
         json::object{{"printed_name", *printed_name}}, std::nullopt});
    tx.commit();
    return json::object{{"user_id", actor.who.user_id}, {"printed_name", *printed_name}};
}

json::object Service::sign(const Actor& actor, std::int64_t id, const json::object& request) {
    if (!seal_key_) {
        throw DomainError::unavailable(
            "signing is not configured on this server (RIVEREDGE_RECORDS_SEAL_KEY)");
    }
    json::object problems;
    const auto meaning = text_field(request, "meaning", 100, true, problems);
    const auto reason = text_field(request, "reason", 1000, true, problems);
    const auto password = text_field(request, "password", 200, true, problems);
    const auto user_id = text_field(request, "user_id", 200, false, problems);
    if (!problems.empty()) {
        throw DomainError::validation(std::move(problems));
    }
    const auto& tenant = actor.who.tenant;
    if (user_id && *user_id != actor.who.user_id) {
        throw DomainError::forbidden("a user signs only as themselves");
    }
    Transaction tx(repository_.pool(), tenant);
    const auto settings = repository_.settings(tx, tenant);
    if (std::find(kMeanings.begin(), kMeanings.end(), *meaning) == kMeanings.end() &&
        std::find(settings.custom_meanings.begin(), settings.custom_meanings.end(), *meaning) ==
            settings.custom_meanings.end()) {
        throw DomainError::validation(
            json::object{{"meaning",
                          "authorship, review, approval, responsibility or one of the tenant's "
                          "own meanings"}});
    }
    // The credential row is locked: one signer's attempts are counted one after the other.
    const auto credential = repository_.credential(tx, tenant, actor.who.user_id);
    if (!credential) {
        throw DomainError::conflict(
            "set a signing password first (PUT /api/v1/records/signing-password)");
    }
    if (credential->locked) {
        throw DomainError::forbidden("signing is locked after " +
                                     std::to_string(kLockAfterFailures) +
                                     " failed attempts; try again later");
    }
    if (!user_id && !credential->in_session) {
        throw DomainError::validation(
            json::object{{"user_id",
                          "required: outside a signing session a signature needs your user id and "
                          "signing password"}});
    }
    if (!password_matches(*password, credential->password_hash)) {
        refuse_wrong_password(tx, actor, id);
    }
    const auto record = require(tx, tenant, id, true);
    if (record.state != "draft" && record.state != "in_review" && record.state != "effective") {
        throw DomainError::conflict("a record that is " + record.state + " is not signed");
    }
    const auto version = repository_.version(tx, tenant, id, record.latest_version);
    if (!version || content_hash(version->content) != version->content_hash) {
        throw DomainError::conflict("the latest version's content does not match its hash");
    }
    Signature signature{
        0,        id,      version->version, actor.who.user_id,     credential->printed_name,
        *meaning, *reason, now_text(),       version->content_hash, seal_key_->id(),
        {},       ""};
    signature.seal = seal_key_->seal(signature.sealed_message(tenant));
    const auto signature_id = repository_.insert_signature(tx, tenant, signature);
    if (!signature_id) {
        throw DomainError::conflict(actor.who.user_id + " has signed version " +
                                    std::to_string(version->version) + " as " + *meaning +
                                    " already");
    }
    signature.id = *signature_id;
    repository_.signing_succeeded(tx, tenant, actor.who.user_id, kSigningSessionMinutes);
    AuditTrail::append(tx, tenant, actor,
                       {id, "signed", nullptr,
                        json::object{{"signature_id", *signature_id},
                                     {"version", version->version},
                                     {"meaning", *meaning},
                                     {"content_hash", version->content_hash}},
                        *reason});
    tx.commit();
    auto out = signature.to_json();
    out["valid"] = true;
    return out;
}

json::array Service::checked_signatures(Transaction& tx,
                                        const core::TenantId& tenant,
                                        std::int64_t id,
                                        bool& all_valid) {
    json::array out;
    std::map<int, std::optional<std::string>> hashes;  // version -> hash of its content now
    for (const auto& s : repository_.signatures(tx, tenant, id)) {
        if (hashes.count(s.version) == 0) {
            const auto version = repository_.version(tx, tenant, id, s.version);
            hashes[s.version] =
                version ? std::optional(core::sha256_hex(core::canonical_json(version->content)))
                        : std::nullopt;
        }
        std::string problem;
        if (hashes[s.version] != s.content_hash) {
            problem = "the version's content changed after it was signed";
        } else if (!seal_key_ || s.key_id != seal_key_->id()) {
            problem = "sealed with key " + s.key_id + ", which this server does not hold";
        } else if (!seal_key_->verify(s.sealed_message(tenant), s.seal)) {
            problem = "the seal does not match what was signed";
        }
        auto entry = s.to_json();
        entry["valid"] = problem.empty();
        entry["problem"] = problem.empty() ? json::value(nullptr) : json::value(problem);
        all_valid = all_valid && problem.empty();
        out.push_back(std::move(entry));
    }
    return out;
}

json::object Service::verify_signatures(const core::TenantId& tenant, std::int64_t id) {
    Transaction tx(repository_.pool(), tenant);
    require(tx, tenant, id, false);
    bool all_valid = true;
    auto signatures = checked_signatures(tx, tenant, id, all_valid);
    tx.commit();
    return json::object{
        {"record_id", id}, {"valid", all_valid}, {"signatures", std::move(signatures)}};
}

json::object Service::trail(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    Transaction tx(repository_.pool(), tenant);
    require(tx, tenant, id, false);
    AuditTrail::append(tx, tenant, actor, {id, "trail_viewed", nullptr, nullptr, std::nullopt});
    auto entries = AuditTrail::entries(tx, tenant, id);
    tx.commit();
    return json::object{{"record_id", id}, {"entries", std::move(entries)}};
}

json::object Service::export_record(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    Transaction tx(repository_.pool(), tenant);
    const auto record = require(tx, tenant, id, false);
    AuditTrail::append(tx, tenant, actor, {id, "exported", nullptr, nullptr, std::nullopt});
    json::array versions;
    for (int n = 1; n <= record.latest_version; ++n) {
        if (const auto version = repository_.version(tx, tenant, id, n)) {
            versions.push_back(version->to_json());
        }
    }
    bool all_valid = true;
    auto signatures = checked_signatures(tx, tenant, id, all_valid);
    auto trail = AuditTrail::entries(tx, tenant, id);
    tx.commit();
    return json::object{{"record", record.to_json()},          {"versions", std::move(versions)},
                        {"signatures", std::move(signatures)}, {"signatures_valid", all_valid},
                        {"audit_trail", std::move(trail)},     {"exported_at", now_text()},
                        {"exported_by", actor.who.user_id}};
}

json::object Service::verify_chain(const Actor& actor) {
    return AuditTrail::verify(repository_.pool(), actor.who.tenant).to_json();
}

std::vector<std::string> Service::tenants_with_trail() {
    Transaction tx(repository_.pool(), std::nullopt);
    tx.exec("SELECT set_config('app.scope', 'records_verifier', true)");
    const auto rows = tx.exec("SELECT DISTINCT tenant_id FROM record_audit ORDER BY tenant_id");
    tx.commit();
    std::vector<std::string> out;
    for (int i = 0; i < rows.size(); ++i) {
        out.push_back(rows.text(i, "tenant_id"));
    }
    return out;
}

json::object Service::check_integrity(const core::TenantId& tenant) {
    const auto chain = AuditTrail::verify(repository_.pool(), tenant);
    json::array broken_records;
    std::vector<std::string> contacts;
    {
        Transaction tx(repository_.pool(), tenant);
        const auto ids =
            tx.exec("SELECT id FROM records WHERE tenant_id = $1 ORDER BY id", {tenant.value()});
        for (int i = 0; i < ids.size(); ++i) {
            bool valid = true;
            checked_signatures(tx, tenant, ids.integer(i, "id"), valid);
            if (!valid) {
                broken_records.emplace_back(ids.integer(i, "id"));
            }
        }
        contacts = repository_.settings(tx, tenant).security_contacts;
        tx.commit();
    }
    const bool intact = chain.valid && broken_records.empty();
    if (!intact) {
        std::string body = "The periodic check of electronic records found: ";
        if (!chain.valid) {
            body += "the audit trail breaks at row " +
                    std::to_string(chain.broken_seq.value_or(0)) + " (" + chain.problem + "). ";
        }
        if (!broken_records.empty()) {
            body += std::to_string(broken_records.size()) +
                    " record(s) with a signature that no longer verifies: " +
                    json::serialize(broken_records) + ".";
        }
        core::log(core::LogLevel::kError, "records integrity check failed",
                  {{"tenant", tenant.value()}, {"detail", body}});
        if (!contacts.empty()) {
            const auto day = std::chrono::duration_cast<std::chrono::hours>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count() /
                             24;
            notifier_.notify(tenant, "records", contacts,
                             "Electronic records integrity check failed", body,
                             "records-integrity-" + std::to_string(day));
        }
    }
    return json::object{{"tenant_id", tenant.value()},
                        {"intact", intact},
                        {"audit_chain", chain.to_json()},
                        {"records_with_invalid_signatures", std::move(broken_records)}};
}

json::object Service::settings(const core::TenantId& tenant) {
    Transaction tx(repository_.pool(), tenant);
    auto out = repository_.settings(tx, tenant).to_json();
    tx.commit();
    return out;
}

json::object Service::save_settings(const Actor& actor, const json::object& request) {
    const auto& tenant = actor.who.tenant;
    Transaction tx(repository_.pool(), tenant);
    const Settings before = repository_.settings(tx, tenant);
    Settings after = before;
    json::object problems;
    const auto string_list = [&](const char* name, std::vector<std::string>& out) {
        const auto* value = request.if_contains(name);
        if (value == nullptr) {
            return;
        }
        if (!value->is_array() || value->get_array().size() > 50) {
            problems[name] = "an array of at most 50 strings";
            return;
        }
        out.clear();
        for (const auto& item : value->get_array()) {
            if (!item.is_string() || item.get_string().empty() || item.get_string().size() > 100) {
                problems[name] = "an array of non-empty strings of at most 100 bytes";
                return;
            }
            out.emplace_back(item.get_string());
        }
    };
    string_list("custom_meanings", after.custom_meanings);
    string_list("security_contacts", after.security_contacts);
    if (const auto* days = request.if_contains("retention_days"); days != nullptr) {
        if (!days->is_int64() || days->get_int64() < 0 || days->get_int64() > 36500) {
            problems["retention_days"] = "an integer from 0 to 36500";
        } else {
            after.retention_days = static_cast<int>(days->get_int64());
        }
    }
    if (!problems.empty()) {
        throw DomainError::validation(std::move(problems));
    }
    repository_.save_settings(tx, tenant, after);
    AuditTrail::append(
        tx, tenant, actor,
        {std::nullopt, "settings_changed", before.to_json(), after.to_json(), std::nullopt});
    tx.commit();
    return after.to_json();
}

void Service::refuse_wrong_password(Transaction& tx,
                                    const Actor& actor,
                                    std::optional<std::int64_t> record_id) {
    const auto& tenant = actor.who.tenant;
    const int failures =
        repository_.signing_failed(tx, tenant, actor.who.user_id, kLockAfterFailures, kLockMinutes);
    AuditTrail::append(tx, tenant, actor,
                       {record_id, "signing_failed", nullptr,
                        json::object{{"failed_attempts", failures}}, std::nullopt});
    tx.commit();
    core::log(
        core::LogLevel::kWarn, "signing refused: wrong signing password",
        {{"tenant", tenant.value()}, {"user", actor.who.user_id}, {"failed_attempts", failures}});
    if (failures == kLockAfterFailures) {
        notify_lockout(tenant, actor.who.user_id);
    }
    throw DomainError::forbidden("wrong signing password");
}

void Service::notify_lockout(const core::TenantId& tenant, const std::string& user_id) {
    std::vector<std::string> recipients{user_id};
    {
        Transaction tx(repository_.pool(), tenant);
        for (const auto& contact : repository_.settings(tx, tenant).security_contacts) {
            if (contact != user_id) {
                recipients.push_back(contact);
            }
        }
        tx.commit();
    }
    const auto minute = std::chrono::duration_cast<std::chrono::minutes>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    try {
        notifier_.notify(tenant, "records", recipients, "Electronic signing locked",
                         "Signing by " + user_id + " is locked for " +
                             std::to_string(kLockMinutes) + " minutes after " +
                             std::to_string(kLockAfterFailures) +
                             " wrong signing passwords in a row.",
                         "records-lockout-" + user_id + "-" + std::to_string(minute));
    } catch (const std::exception& error) {
        // The lockout itself holds; the notice is best effort (and logged).
        core::log(core::LogLevel::kError, "signing lockout notification failed",
                  {{"tenant", tenant.value()}, {"user", user_id}, {"error", error.what()}});
    }
}

}  // namespace riveredge::records
