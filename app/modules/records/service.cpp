#include "modules/records/service.hpp"

#include "core/errors.hpp"
#include "core/found.hpp"
#include "core/json/canonical.hpp"
#include "core/json/request_fields.hpp"
#include "core/json/text.hpp"
#include "core/log/logger.hpp"
#include "core/outbox/outbox.hpp"
#include "core/text/hex.hpp"
#include "core/time/rfc3339.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <set>

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

// A record's content: a JSON object, or its problem in `problems`.
const json::value* content_field(const json::object& request, json::object& problems) {
    const auto* content = request.if_contains("content");
    if (content == nullptr || !content->is_object()) {
        problems["content"] = "a JSON object";
        return nullptr;
    }
    return content;
}

// The content's canonical form, or a 422 naming `content` when JCS cannot represent it.
std::string canonical_content(const json::value& content) {
    try {
        return core::canonical_json(content);
    } catch (const core::CanonicalJsonError& error) {
        throw DomainError::validation(json::object{{"content", error.what()}});
    }
}

// The content's canonical hash, or a 422 naming `content` when JCS cannot represent it.
std::string content_hash(const json::value& content) {
    return core::sha256_hex(canonical_content(content));
}

// `value` as a jsonb column gives it back: PostgreSQL's numeric text, read again by Boost.JSON.
json::value read_back(Transaction& tx, const json::value& value) {
    return json::parse(tx.exec("SELECT $1::jsonb::text AS content", {value}).text(0, "content"));
}

// Where a stored content holds a whole number beyond 2^53 ("content.n"), which has no canonical
// form: jsonb keeps such numbers, and versions stored before they were refused hold them.
std::optional<std::string> number_beyond_exact(const json::value& content) {
    const auto at = core::integer_beyond_exact(content);
    if (!at) {
        return std::nullopt;
    }
    return "content" + (at->empty() ? std::string() : "." + *at);
}

// The content as its jsonb column gives it back, and the hash of its canonical form.
struct StoredContent {
    json::value content;
    std::string hash;
};

// The content as its jsonb column gives it back: it is what is hashed, stored and audited, so a
// later read verifies against the same numbers. A 422 names an integer beyond 2^53 in it (1e16
// comes back as one), which has no canonical form, and refuses a number that is not read back
// the same twice (Boost.JSON 1.81 does not round every decimal correctly): its hash would not
// verify after the next read. The canonical form compared is the one hashed.
StoredContent stored_form(Transaction& tx, const json::value& content) {
    auto stored = read_back(tx, content);
    if (const auto at = number_beyond_exact(stored)) {
        throw DomainError::validation(json::object{
            {*at,
             "a whole number beyond 2^53 (as 1e16 is stored), which cannot be hashed exactly: "
             "write it as a string"}});
    }
    const std::string canonical = canonical_content(stored);
    if (core::canonical_json(read_back(tx, stored)) != canonical) {
        throw DomainError::validation(
            json::object{{"content",
                          "a number that does not read back as the same double once stored: "
                          "write it with fewer digits, or as a string"}});
    }
    return {std::move(stored), core::sha256_hex(canonical)};
}

// The attachments a content names: an optional `attachments` array of objects with a `name`
// (unique) and the `sha256` of bytes uploaded before; problems name the member at fault.
std::vector<AttachmentRef> attachments_in(const json::value& content, json::object& problems) {
    std::vector<AttachmentRef> refs;
    const auto* list = content.as_object().if_contains("attachments");
    if (list == nullptr) {
        return refs;
    }
    if (!list->is_array() || list->get_array().size() > 100) {
        problems["content.attachments"] = "an array of at most 100 {name, sha256} objects";
        return refs;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < list->get_array().size(); ++i) {
        const std::string at = "content.attachments[" + std::to_string(i) + "]";
        const auto* item = list->get_array()[i].if_object();
        const auto* name = item != nullptr ? item->if_contains("name") : nullptr;
        const auto* hash = item != nullptr ? item->if_contains("sha256") : nullptr;
        if (name == nullptr || !name->is_string() || name->get_string().empty() ||
            name->get_string().size() > 255) {
            problems[at + ".name"] = "a file name of 1 to 255 bytes";
            continue;
        }
        if (hash == nullptr || !hash->is_string() || hash->get_string().size() != 64 ||
            hash->get_string().find_first_not_of("0123456789abcdef") != json::string::npos) {
            problems[at + ".sha256"] = "the lowercase hex SHA-256 of an uploaded attachment";
            continue;
        }
        if (!names.emplace(name->get_string()).second) {
            problems[at + ".name"] = "names are unique within a version";
            continue;
        }
        refs.push_back({std::string(name->get_string()), std::string(hash->get_string())});
    }
    return refs;
}

const core::Principal& archiver() {
    static const core::Principal system{core::TenantId::trusted(""), "system:records-archive", {}};
    return system;
}

}  // namespace

void Service::require_attachments(Transaction& tx,
                                  const core::TenantId& tenant,
                                  const std::vector<AttachmentRef>& refs) {
    std::vector<std::string> hashes;
    for (const auto& ref : refs) {
        hashes.push_back(ref.sha256);
    }
    const auto missing = repository_.missing_attachments(tx, tenant, hashes);
    if (missing.empty()) {
        return;
    }
    json::object problems;
    for (std::size_t i = 0; i < refs.size(); ++i) {
        if (std::find(missing.begin(), missing.end(), refs[i].sha256) != missing.end()) {
            problems["content.attachments[" + std::to_string(i) + "].sha256"] =
                "no attachment with this SHA-256 was uploaded (POST /api/v1/records/attachments)";
        }
    }
    throw DomainError::validation(std::move(problems));
}

Actor Service::actor(const core::Principal& who, std::string address, std::string user_agent) {
    auto credential = core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        return repository_.credential(tx, who.tenant, who.user_id);
    });
    return Actor{who, credential ? credential->printed_name : who.user_id, std::move(address),
                 std::move(user_agent)};
}

Record Service::require(Transaction& tx,
                        const core::TenantId& tenant,
                        std::int64_t id,
                        bool for_update) {
    return core::found(repository_.find(tx, tenant, id, for_update),
                       "record " + std::to_string(id));
}

json::object Service::create(const Actor& actor, const json::object& request) {
    json::object problems;
    const auto type =
        core::text_field(request, "type", {.max = 100, .min = 1, .required = true}, problems);
    const auto key = core::text_field(request, "business_key",
                                      {.max = 200, .min = 1, .required = true}, problems);
    const auto title =
        core::text_field(request, "title", {.max = 500, .min = 1, .required = true}, problems);
    const auto* content = content_field(request, problems);
    const auto attachments =
        content != nullptr ? attachments_in(*content, problems) : std::vector<AttachmentRef>{};
    core::refuse_if_any(problems);
    const auto id = core::db::transact(repository_.pool(), actor.who.tenant, [&](Transaction& tx) {
        const auto [stored, hash] = stored_form(tx, *content);
        require_attachments(tx, actor.who.tenant, attachments);
        const auto created = repository_.create(tx, actor.who.tenant, {*type, *key, *title, stored},
                                                hash, actor.who.user_id);
        if (!created) {
            throw DomainError::conflict("a record of type '" + *type + "' with business key '" +
                                        *key + "' exists already");
        }
        repository_.link_attachments(tx, actor.who.tenant, *created, 1, attachments);
        AuditTrail::append(tx, actor.who.tenant, actor,
                           {*created, "created", nullptr,
                            json::object{{"type", *type},
                                         {"business_key", *key},
                                         {"title", *title},
                                         {"version", 1},
                                         {"content_hash", hash}},
                            std::nullopt});
        return *created;
    });
    return get(actor.who.tenant, id);
}

json::object Service::get(const core::TenantId& tenant, std::int64_t id) {
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto record = require(tx, tenant, id, false);
        const auto latest = repository_.version(tx, tenant, id, record.latest_version);
        bool all_valid = true;
        auto out = record.to_json();
        out["content"] = latest ? latest->content : json::value(nullptr);
        out["content_hash"] = latest ? json::value(latest->content_hash) : json::value(nullptr);
        out["signatures"] =
            checked_signatures(tx, tenant, id, repository_.seal_keys(tx, tenant), all_valid);
        out["signatures_valid"] = all_valid;
        return out;
    });
}

json::object Service::update(const Actor& actor, std::int64_t id, const json::object& request) {
    json::object problems;
    const auto reason =
        core::text_field(request, "reason", {.max = 1000, .min = 1, .required = true}, problems);
    const auto title = core::text_field(request, "title", {.max = 500, .min = 1}, problems);
    const auto* content = content_field(request, problems);
    const auto attachments =
        content != nullptr ? attachments_in(*content, problems) : std::vector<AttachmentRef>{};
    core::refuse_if_any(problems);
    const auto& tenant = actor.who.tenant;
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto [stored, hash] = stored_form(tx, *content);
        require_attachments(tx, tenant, attachments);
        const auto record = require(tx, tenant, id, true);
        if (record.state != "draft") {
            throw DomainError::conflict("only a draft's content changes; this record is " +
                                        record.state);
        }
        const auto previous = repository_.version(tx, tenant, id, record.latest_version);
        const int number = record.latest_version + 1;
        const std::string new_title = title.value_or(record.title);
        repository_.add_version(tx, tenant, id, number, new_title, stored, hash, *reason,
                                actor.who.user_id);
        repository_.link_attachments(tx, tenant, id, number, attachments);
        json::object old_value{{"version", record.latest_version}, {"title", record.title}};
        if (previous && number_beyond_exact(previous->content)) {
            // Stored before such numbers were refused: it has no canonical form for the row's
            // hash, so the trail keeps its text, whole (the version itself is kept as it is).
            old_value["content_text"] = json::serialize(previous->content);
        } else {
            old_value["content"] = previous ? previous->content : json::value(nullptr);
        }
        AuditTrail::append(
            tx, tenant, actor,
            {id, "content_changed", std::move(old_value),
             json::object{{"version", number}, {"title", new_title}, {"content", stored}},
             *reason});
    });
    return get(tenant, id);
}

json::object Service::transition(const Actor& actor, std::int64_t id, const json::object& request) {
    json::object problems;
    const auto action =
        core::text_field(request, "action", {.max = 50, .min = 1, .required = true}, problems);
    const auto reason = core::text_field(request, "reason", {.max = 1000, .min = 1}, problems);
    if (action && moves().count(*action) == 0) {
        problems["action"] =
            "one of submit, return, make_effective, supersede, obsolete, archive, delete";
    }
    core::refuse_if_any(problems);
    const Move& move = moves().at(*action);
    if (move.reason_required && !reason) {
        throw DomainError::validation(json::object{{"reason", "required for " + *action}});
    }
    if (move.admin && !actor.who.has_role("admin")) {
        throw DomainError::forbidden(*action + " is for tenant administrators");
    }
    const auto& tenant = actor.who.tenant;
    // True when the move is an archive request (the archive is built later, durably).
    const bool archiving = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto record = require(tx, tenant, id, true);
        if (move.from.count(record.state) == 0) {
            throw DomainError::conflict("a record that is " + record.state + " cannot " + *action);
        }
        if (*action == "make_effective") {
            // Effective only once approved: an approval signature on the version that takes effect.
            bool approved = false;
            for (const auto& s : repository_.signatures(tx, tenant, id)) {
                approved =
                    approved || (s.version == record.latest_version && s.meaning == "approval");
            }
            if (!approved) {
                throw DomainError::conflict("version " + std::to_string(record.latest_version) +
                                            " has no approval signature yet");
            }
        }
        if (*action == "archive") {
            // Archiving builds and seals a package: the records-archive function does it, durably.
            repository_.request_archive(tx, tenant, id);
            const auto seq = AuditTrail::append(
                tx, tenant, actor,
                {id, "archive_requested", nullptr, json::object{{"state", record.state}}, reason});
            // One event id per request (its audit row): a request again after a run that failed
            // starts a run of its own, where the record's id alone would be dropped for 24 hours.
            core::outbox::add(tx, tenant,
                              inngest::Event{.name = kArchiveRequested,
                                             .data = json::object{{"tenant_id", tenant.value()},
                                                                  {"record_id", id}},
                                             .id = "records-archive-" + tenant.value() + "-" +
                                                   std::to_string(id) + "-" + std::to_string(seq)});
            return true;
        }
        std::optional<int> retain_days;
        if (move.to == "deleted") {
            retain_days = repository_.settings(tx, tenant).retention_days;
        }
        repository_.set_state(tx, tenant, id, move.to, reason, retain_days);
        AuditTrail::append(tx, tenant, actor,
                           {id, "state_changed", json::object{{"state", record.state}},
                            json::object{{"state", move.to}, {"action", *action}}, reason});
        return false;
    });
    auto out = get(tenant, id);
    if (archiving) {
        out["archive"] = "requested";
    }
    return out;
}

void Service::purge(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto record = require(tx, tenant, id, true);
        if (record.state != "deleted") {
            throw DomainError::conflict("only a deleted record is purged; this one is " +
                                        record.state);
        }
        auto summary = record.to_json();
        // The database refuses too (a trigger), whatever calls it.
        const auto due = tx.exec(
            "SELECT retain_until < now() AS due FROM records WHERE tenant_id = $1 AND id = $2",
            {tenant, id});
        if (!due.boolean(0, "due")) {
            throw DomainError::conflict("the record is kept until " +
                                        record.retain_until.value_or("its retention ends") +
                                        "; it cannot be purged before");
        }
        AuditTrail::append(tx, tenant, actor,
                           {id, "purged", std::move(summary), nullptr, std::nullopt});
        repository_.purge(tx, tenant, id);
    });
}

json::object Service::set_signing_password(const Actor& actor, const json::object& request) {
    json::object problems;
    const auto password =
        core::text_field(request, "password", {.max = 200, .min = 1, .required = true}, problems);
    const auto printed_name = core::text_field(request, "printed_name",
                                               {.max = 200, .min = 1, .required = true}, problems);
    const auto current =
        core::text_field(request, "current_password", {.max = 200, .min = 1}, problems);
    if (password && password->size() < 10) {
        problems["password"] = "at least 10 characters";
    }
    core::refuse_if_any(problems);
    const auto& tenant = actor.who.tenant;
    std::optional<int> refused;  // a wrong current password: counted, committed, then refused
    auto saved = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
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
            refused = count_wrong_password(tx, actor, std::nullopt);
            return json::object{};
        }
        repository_.save_credential(tx, tenant, actor.who.user_id, *printed_name,
                                    hash_password(*password));
        AuditTrail::append(
            tx, tenant, actor,
            {std::nullopt, existing ? "signing_password_changed" : "signing_password_set",
             existing ? json::value(json::object{{"printed_name", existing->printed_name}})
                      : json::value(nullptr),
             json::object{{"printed_name", *printed_name}}, std::nullopt});
        return json::object{{"user_id", actor.who.user_id}, {"printed_name", *printed_name}};
    });
    if (refused) {
        refuse_signing(actor, *refused);
    }
    return saved;
}

json::object Service::sign(const Actor& actor, std::int64_t id, const json::object& request) {
    json::object problems;
    const auto meaning =
        core::text_field(request, "meaning", {.max = 100, .min = 1, .required = true}, problems);
    const auto reason =
        core::text_field(request, "reason", {.max = 1000, .min = 1, .required = true}, problems);
    core::refuse_if_any(problems);
    const auto signer = authenticate(actor, request, id, *meaning);
    auto out = core::db::transact(repository_.pool(), actor.who.tenant, [&](Transaction& tx) {
        return seal(tx, signer, id, *meaning, *reason, "");
    });
    return out;
}

void Service::check_meaning(Transaction& tx,
                            const core::TenantId& tenant,
                            const std::string& meaning) {
    const auto settings = repository_.settings(tx, tenant);
    if (std::find(kMeanings.begin(), kMeanings.end(), meaning) == kMeanings.end() &&
        std::find(settings.custom_meanings.begin(), settings.custom_meanings.end(), meaning) ==
            settings.custom_meanings.end()) {
        throw DomainError::validation(
            json::object{{"meaning",
                          "authorship, review, approval, responsibility or one of the tenant's "
                          "own meanings"}});
    }
}

Actor Service::authenticate(const Actor& actor,
                            const json::object& credentials,
                            std::optional<std::int64_t> record_id,
                            const std::optional<std::string>& meaning) {
    if (!seal_key_) {
        throw DomainError::unavailable(
            "signing is not configured on this server (RIVEREDGE_RECORDS_SEAL_KEY)");
    }
    json::object problems;
    const auto password = core::text_field(credentials, "password",
                                           {.max = 200, .min = 1, .required = true}, problems);
    const auto user_id = core::text_field(credentials, "user_id", {.max = 200, .min = 1}, problems);
    core::refuse_if_any(problems);
    const auto& tenant = actor.who.tenant;
    if (user_id && *user_id != actor.who.user_id) {
        throw DomainError::forbidden("a user signs only as themselves");
    }
    Actor signer = actor;
    std::optional<int> refused;  // a wrong password: counted, committed, then refused
    signer.printed_name = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        if (meaning) {
            check_meaning(tx, tenant, *meaning);
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
            throw DomainError::validation(json::object{
                {"user_id",
                 "required: outside a signing session a signature needs your user id and "
                 "signing password"}});
        }
        if (!password_matches(*password, credential->password_hash)) {
            refused = count_wrong_password(tx, actor, record_id);
            return std::string();
        }
        return credential->printed_name;
    });
    if (refused) {
        refuse_signing(actor, *refused);
    }
    return signer;
}

json::object Service::seal(Transaction& tx,
                           const Actor& signer,
                           std::int64_t id,
                           const std::string& meaning,
                           const std::string& reason,
                           const std::string& step_key) {
    if (!seal_key_) {
        throw DomainError::unavailable(
            "signing is not configured on this server (RIVEREDGE_RECORDS_SEAL_KEY)");
    }
    const auto& tenant = signer.who.tenant;
    check_meaning(tx, tenant, meaning);
    const auto record = require(tx, tenant, id, true);
    if (record.state != "draft" && record.state != "in_review" && record.state != "effective") {
        throw DomainError::conflict("a record that is " + record.state + " is not signed");
    }
    const auto version = repository_.version(tx, tenant, id, record.latest_version);
    if (const auto at = version ? number_beyond_exact(version->content) : std::nullopt) {
        throw DomainError::conflict(
            "version " + std::to_string(version->version) + "'s " + *at +
            " is a whole number beyond 2^53 (stored before such numbers were refused), which has "
            "no canonical form: a signature of it could never be verified. Replace the content "
            "(PUT, while the record is a draft) and sign the new version");
    }
    if (!version || content_hash(version->content) != version->content_hash) {
        throw DomainError::conflict("the latest version's content does not match its hash");
    }
    register_seal_key(tx, signer);
    Signature signature{
        0,       id,      version->version, signer.who.user_id,    signer.printed_name,
        meaning, reason,  core::now_utc(),  version->content_hash, seal_key_->id(),
        {},      step_key};
    signature.seal = seal_key_->seal(signature.sealed_message(tenant));
    const auto signature_id = repository_.insert_signature(tx, tenant, signature);
    if (!signature_id) {
        throw DomainError::conflict(signer.who.user_id + " has signed version " +
                                    std::to_string(version->version) + " as " + meaning +
                                    (step_key.empty() ? "" : " at " + step_key) + " already");
    }
    signature.id = *signature_id;
    repository_.signing_succeeded(tx, tenant, signer.who.user_id, kSigningSessionMinutes);
    json::object audited{{"signature_id", *signature_id},
                         {"version", version->version},
                         {"meaning", meaning},
                         {"content_hash", version->content_hash}};
    if (!step_key.empty()) {
        audited["step"] = step_key;
    }
    AuditTrail::append(tx, tenant, signer, {id, "signed", nullptr, std::move(audited), reason});
    auto out = signature.to_json();
    out["valid"] = true;
    return out;
}

bool Service::seal_verifies(const std::map<std::string, std::string>& keys,
                            const core::TenantId& tenant,
                            const Signature& signature) const {
    const auto message = signature.sealed_message(tenant);
    if (const auto key = keys.find(signature.key_id); key != keys.end()) {
        return verify_seal(key->second, signature.key_id, message, signature.seal);
    }
    // Seals made before the tenant's key register existed: only this server's own key.
    return seal_key_ && signature.key_id == seal_key_->id() &&
           seal_key_->verify(message, signature.seal);
}

json::array Service::checked_signatures(Transaction& tx,
                                        const core::TenantId& tenant,
                                        std::int64_t id,
                                        const std::map<std::string, std::string>& keys,
                                        bool& all_valid) {
    json::array out;
    std::map<int, std::optional<std::string>> hashes;  // version -> hash of its content now
    std::set<int> unreadable;  // versions whose stored content has no canonical form
    for (const auto& s : repository_.signatures(tx, tenant, id)) {
        if (hashes.count(s.version) == 0) {
            const auto version = repository_.version(tx, tenant, id, s.version);
            std::optional<std::string> hash;
            if (version) {
                try {
                    hash = core::sha256_hex(core::canonical_json(version->content));
                } catch (const core::CanonicalJsonError&) {
                    unreadable.insert(s.version);
                }
            }
            hashes[s.version] = std::move(hash);
        }
        std::string problem;
        if (unreadable.count(s.version) > 0) {
            problem =
                "the version's content has no canonical form now: what was signed cannot "
                "be checked";
        } else if (hashes[s.version] != s.content_hash) {
            problem = "the version's content changed after it was signed";
        } else if (!seal_verifies(keys, tenant, s)) {
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
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        require(tx, tenant, id, false);
        bool all_valid = true;
        auto signatures =
            checked_signatures(tx, tenant, id, repository_.seal_keys(tx, tenant), all_valid);
        return json::object{
            {"record_id", id}, {"valid", all_valid}, {"signatures", std::move(signatures)}};
    });
}

json::object Service::trail(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        require(tx, tenant, id, false);
        AuditTrail::append(tx, tenant, actor, {id, "trail_viewed", nullptr, nullptr, std::nullopt});
        auto entries = AuditTrail::entries(tx, tenant, id);
        return json::object{{"record_id", id}, {"entries", std::move(entries)}};
    });
}

json::object Service::package(Transaction& tx, const core::TenantId& tenant, const Record& record) {
    const auto id = record.id;
    json::array versions;
    for (int n = 1; n <= record.latest_version; ++n) {
        if (const auto version = repository_.version(tx, tenant, id, n)) {
            versions.push_back(version->to_json());
        }
    }
    json::array attachments;
    for (const auto& [version, ref] : repository_.attachment_refs(tx, tenant, id)) {
        attachments.push_back(
            json::object{{"version", version}, {"name", ref.name}, {"sha256", ref.sha256}});
    }
    bool all_valid = true;
    auto signatures =
        checked_signatures(tx, tenant, id, repository_.seal_keys(tx, tenant), all_valid);
    return json::object{{"record", record.to_json()},
                        {"versions", std::move(versions)},
                        {"attachments", std::move(attachments)},
                        {"signatures", std::move(signatures)},
                        {"signatures_valid", all_valid},
                        {"audit_trail", AuditTrail::entries(tx, tenant, id)}};
}

json::object Service::export_record(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    auto out = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto record = require(tx, tenant, id, false);
        AuditTrail::append(tx, tenant, actor, {id, "exported", nullptr, nullptr, std::nullopt});
        return package(tx, tenant, record);
    });
    out["exported_at"] = core::now_utc();
    out["exported_by"] = actor.who.user_id;
    return out;
}

namespace {

// The printed form of a record: one table of sections (content, signatures, trail) that flows
// over as many pages as it needs, its header repeated, "page X of Y" at the foot.
const json::value& export_design() {
    static const json::value design = json::parse(R"design({"page":{"size":"A4"},"elements":[
      {"type":"text","x":15,"y":12,"width":180,"height":8,"font_size":14,"align":"center",
       "text":"电子记录 Electronic record {{type}} / {{business_key}}"},
      {"type":"text","x":15,"y":22,"width":180,"height":10,"font_size":9,
       "text":"{{title}} — state {{state}}, version {{version}}, content SHA-256 {{content_hash}}"},
      {"type":"line","x":15,"y":33,"x2":195,"y2":33,"stroke_width":0.5},
      {"type":"table","x":15,"y":36,"width":180,"height":240,"rows":"rows","font_size":8,
       "header_fill":"#e6e6e6",
       "columns":[{"header":"Section","text":"{{section}}","width":26},
                  {"header":"Item","text":"{{item}}","width":50},
                  {"header":"Detail","text":"{{detail}}","width":104}]},
      {"type":"text","x":15,"y":280,"width":180,"height":5,"font_size":7,
       "text":"Exported {{exported_at}} by {{exported_by}} — signatures verified {{signatures_valid}}"},
      {"type":"text","x":15,"y":285,"width":180,"height":5,"font_size":7,"align":"right",
       "text":"第 {{doc_page}} 页 / 共 {{doc_pages}} 页 (page {{doc_page}} of {{doc_pages}})"}]})design");
    return design;
}

std::string text_of(const json::value& value) {
    return value.is_string() ? std::string(value.get_string()) : core::to_json_text(value);
}

}  // namespace

core::PdfPrinter::Pdf Service::export_pdf(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    struct Read {
        Record record;
        std::optional<RecordVersion> latest;
        json::object exported;
    };
    const auto [record, latest, exported] =
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            auto found = require(tx, tenant, id, false);
            auto version = repository_.version(tx, tenant, id, found.latest_version);
            auto package_of = package(tx, tenant, found);
            return Read{std::move(found), std::move(version), std::move(package_of)};
        });
    json::array rows;
    // A long value continues over several rows (none may be taller than a page: a printed copy
    // must be complete), cut between characters.
    const auto add_row = [&rows](const std::string& section, const std::string& item,
                                 const std::string& detail) {
        constexpr std::size_t kPiece = 1200;
        std::size_t at = 0;
        do {
            std::size_t end = std::min(detail.size(), at + kPiece);
            while (end < detail.size() &&
                   (static_cast<unsigned char>(detail[end]) & 0xC0) == 0x80) {
                --end;  // not inside a UTF-8 character
            }
            rows.push_back(json::object{{"section", section},
                                        {"item", at == 0 ? item : item + " (continued)"},
                                        {"detail", detail.substr(at, end - at)}});
            at = end;
        } while (at < detail.size());
    };
    if (latest && latest->content.is_object()) {
        for (const auto& [key, value] : latest->content.get_object()) {
            add_row("内容 Content", std::string(key), text_of(value));
        }
    }
    for (const auto& attachment : exported.at("attachments").as_array()) {
        add_row("附件 Attachment", text_of(attachment.at("name")),
                "SHA-256 " + text_of(attachment.at("sha256")) + " (version " +
                    text_of(attachment.at("version")) + ")");
    }
    for (const auto& s : exported.at("signatures").as_array()) {
        // The manifestation (Part 11.50): printed name, UTC time, meaning, and our verification.
        add_row(
            "签名 Signature",
            text_of(s.at("printed_name")) + " (" + text_of(s.at("signer_id")) + ")",
            text_of(s.at("meaning")) + " — " + text_of(s.at("signed_at")) + " UTC — " +
                text_of(s.at("reason")) + " — version " + text_of(s.at("version")) +
                (s.at("valid").as_bool() ? " — valid" : " — INVALID: " + text_of(s.at("problem"))));
    }
    for (const auto& entry : exported.at("audit_trail").as_array()) {
        std::string detail = text_of(entry.at("at")) + " — " + text_of(entry.at("actor_id"));
        if (const auto* reason = entry.as_object().if_contains("reason");
            reason != nullptr && !reason->is_null()) {
            detail += " — " + text_of(*reason);
        }
        if (const auto* value = entry.as_object().if_contains("new_value");
            value != nullptr && !value->is_null()) {
            detail += " — " + core::to_json_text(*value);
        }
        add_row("审计 Audit", "#" + text_of(entry.at("seq")) + " " + text_of(entry.at("action")),
                detail);
    }
    json::object data{
        {"type", record.type},
        {"business_key", record.business_key},
        {"title", record.title},
        {"state", record.state},
        {"version", record.latest_version},
        {"content_hash", latest ? latest->content_hash : std::string()},
        {"signatures_valid", exported.at("signatures_valid").as_bool() ? "yes" : "NO"},
        {"exported_at", core::now_utc()},
        {"exported_by", actor.printed_name},
        {"rows", std::move(rows)}};
    core::PdfPrinter::Pdf pdf;
    try {
        pdf = printer_.print(export_design(), {json::value(std::move(data))});
    } catch (const DomainError& error) {
        if (error.kind() != DomainError::Kind::kInvalid) {
            throw;
        }
        // Past a render's limits (rows, pages): the record does not fit one printed copy, which
        // the client can do nothing about but export it as JSON.
        std::string what;
        if (const auto* fields = error.details().is_object()
                                     ? error.details().as_object().if_contains("fields")
                                     : nullptr;
            fields != nullptr && fields->is_object()) {
            for (const auto& [name, problem] : fields->as_object()) {
                what +=
                    (what.empty() ? "" : "; ") +
                    (problem.is_string() ? std::string(problem.as_string()) : std::string(name));
            }
        }
        throw DomainError(DomainError::Kind::kConflict, "export_incomplete",
                          "the record is too large for one printed copy: " + what);
    }
    if (!pdf.warnings.empty()) {
        // Every warning of the renderer is something not drawn as given: text cut to fit, or a
        // character shown as □ (outside the Basic Multilingual Plane, or in no font). A printed
        // copy that left out or replaced something is no copy: refuse rather than mislead.
        std::string what;
        for (const auto& warning : pdf.warnings) {
            what += (what.empty() ? "" : "; ") + warning;
        }
        throw DomainError(DomainError::Kind::kConflict, "export_incomplete",
                          "the record cannot be printed as it is: " + what);
    }
    // The export is audited once it exists.
    core::db::transact(repository_.pool(), tenant, [&](Transaction& audit) {
        AuditTrail::append(audit, tenant, actor,
                           {id, "exported", nullptr,
                            json::object{{"format", "pdf"}, {"pages", pdf.pages}}, std::nullopt});
    });
    return pdf;
}

json::object Service::archive(const core::TenantId& tenant, std::int64_t id) {
    if (!seal_key_) {
        throw DomainError::unavailable(
            "archives are sealed: this server has no seal key (RIVEREDGE_RECORDS_SEAL_KEY)");
    }
    bool archived_now = false;
    auto result =
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) -> json::object {
            const auto record = require(tx, tenant, id, true);
            if (record.state == "archived") {
                // A retried step: the package was stored with the state change.
                const auto stored = repository_.archive(tx, tenant, id);
                return json::object{{"record_id", id},
                                    {"archived", true},
                                    {"package_hash", stored ? json::value(stored->package_hash)
                                                            : json::value(nullptr)}};
            }
            if (record.state != "superseded" && record.state != "obsolete") {
                return json::object{{"record_id", id},
                                    {"archived", false},
                                    {"reason", "the record is " + record.state}};
            }
            const Actor system{archiver(), "records archive", "", ""};
            Archive archive{id, {}, "", seal_key_->id(), "", core::now_utc()};
            archive.package = package(tx, tenant, record);
            archive.package.as_object()["archived_at"] = archive.archived_at;
            if (const auto at = core::integer_beyond_exact(archive.package)) {
                // A version (or trail row) stored before such numbers were refused: nothing
                // the archive could hash and seal, and nothing a retry would change.
                throw DomainError::conflict(
                    "record " + std::to_string(id) + " cannot be archived: its package's " + *at +
                    " is a whole number beyond 2^53 (stored before such numbers were refused), "
                    "which has no canonical form to hash and seal");
            }
            const std::string canonical = core::canonical_json(archive.package);
            archive.package_hash = core::sha256_hex(canonical);
            archive.seal = seal_key_->seal(canonical);
            Actor acting = system;
            acting.who.tenant = tenant;
            register_seal_key(tx, acting);
            repository_.store_archive(tx, tenant, archive);
            repository_.set_state(tx, tenant, id, "archived", std::nullopt, std::nullopt);
            AuditTrail::append(tx, tenant, acting,
                               {id, "state_changed", json::object{{"state", record.state}},
                                json::object{{"state", "archived"},
                                             {"action", "archive"},
                                             {"package_hash", archive.package_hash},
                                             {"key_id", archive.key_id}},
                                std::nullopt});
            archived_now = true;
            return json::object{
                {"record_id", id}, {"archived", true}, {"package_hash", archive.package_hash}};
        });
    if (archived_now) {  // logged once committed
        core::log(core::LogLevel::kInfo, "record archived",
                  {{"tenant", tenant.value()},
                   {"record", id},
                   {"package_hash", result.at("package_hash")}});
    }
    return result;
}

std::vector<std::pair<std::string, std::int64_t>> Service::due_archives(int limit) {
    return repository_.due_archives(limit);
}

json::object Service::read_archive(const Actor& actor, std::int64_t id) {
    const auto& tenant = actor.who.tenant;
    const auto [stored,
                keys] = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        require(tx, tenant, id, false);
        auto archive = core::found(repository_.archive(tx, tenant, id),
                                   "an archive of record " + std::to_string(id));
        AuditTrail::append(tx, tenant, actor,
                           {id, "archive_read", nullptr,
                            json::object{{"package_hash", archive.package_hash}}, std::nullopt});
        return std::pair{std::move(archive), repository_.seal_keys(tx, tenant)};
    });
    const std::string canonical = core::canonical_json(stored.package);
    std::string problem;
    if (core::sha256_hex(canonical) != stored.package_hash) {
        problem = "the package changed after it was archived";
    } else if (const auto key = keys.find(stored.key_id);
               key == keys.end() ||
               !verify_seal(key->second, stored.key_id, canonical, stored.seal)) {
        problem = "the package's seal does not verify";
    }
    return json::object{{"record_id", id},
                        {"archived_at", stored.archived_at},
                        {"package_hash", stored.package_hash},
                        {"key_id", stored.key_id},
                        {"valid", problem.empty()},
                        {"problem", problem.empty() ? json::value(nullptr) : json::value(problem)},
                        {"package", stored.package}};
}

json::object Service::upload_attachment(const Actor& actor,
                                        const std::string& media_type,
                                        std::string bytes) {
    if (bytes.empty()) {
        throw DomainError::validation(json::object{{"body", "the attachment's bytes (not empty)"}});
    }
    if (media_type.empty() || media_type.size() > 200 ||
        media_type.find('/') == std::string::npos) {
        throw DomainError::validation(
            json::object{{"Content-Type", "the attachment's media type, such as application/pdf"}});
    }
    Attachment attachment{core::sha256_hex(bytes), media_type,
                          static_cast<std::int64_t>(bytes.size()), std::move(bytes)};
    return core::db::transact(repository_.pool(), actor.who.tenant, [&](Transaction& tx) {
        const bool stored =
            repository_.store_attachment(tx, actor.who.tenant, attachment, actor.who.user_id);
        return json::object{{"sha256", attachment.sha256},
                            {"size", attachment.size},
                            {"media_type", attachment.media_type},
                            {"stored", stored ? "new" : "already kept"}};
    });
}

Attachment Service::download_attachment(const core::TenantId& tenant,
                                        std::int64_t id,
                                        const std::string& sha256) {
    auto attachment = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        require(tx, tenant, id, false);
        return core::found(repository_.attachment_of(tx, tenant, id, sha256),
                           "attachment " + sha256 + " of record " + std::to_string(id));
    });
    if (core::sha256_hex(attachment.bytes) != sha256) {
        throw DomainError::conflict("the stored bytes of attachment " + sha256 +
                                    " no longer match their hash");
    }
    return attachment;
}

void Service::register_seal_key(Transaction& tx, const Actor& actor) {
    if (repository_.register_seal_key(tx, actor.who.tenant, seal_key_->id(),
                                      seal_key_->public_key())) {
        AuditTrail::append(
            tx, actor.who.tenant, actor,
            {std::nullopt, "seal_key_registered", nullptr,
             json::object{{"key_id", seal_key_->id()}, {"public_key", seal_key_->public_key()}},
             std::nullopt});
    }
}

json::object Service::verify_chain(const Actor& actor) {
    return AuditTrail::verify(repository_.pool(), actor.who.tenant).to_json();
}

std::vector<std::string> Service::tenants_with_trail() {
    return core::db::texts(
        core::db::exec_in_scope(repository_.pool(), "records_verifier",
                                "SELECT DISTINCT tenant_id FROM record_audit ORDER BY tenant_id"),
        "tenant_id");
}

json::object Service::check_integrity(const core::TenantId& tenant, std::int64_t day) {
    const auto chain = AuditTrail::verify(repository_.pool(), tenant);
    json::array broken_records;
    json::array corrupt_attachments;
    std::vector<std::string> contacts;
    // Signatures a page of records at a time, each page its own short transaction: a tenant with
    // many records holds no snapshot (and no pooled connection) for the whole check.
    constexpr int kRecordsPerPage = 200;
    std::int64_t after = 0;
    for (bool more = true; more;) {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            const auto ids = tx.exec(
                "SELECT id FROM records WHERE tenant_id = $1 AND id > $2::bigint ORDER BY id "
                "LIMIT $3::int",
                {tenant, after, kRecordsPerPage});
            // The key register once for the page: every record of it is checked against it.
            const auto keys = ids.size() > 0 ? repository_.seal_keys(tx, tenant)
                                             : std::map<std::string, std::string>{};
            for (int i = 0; i < ids.size(); ++i) {
                after = ids.integer(i, "id");
                bool valid = true;
                checked_signatures(tx, tenant, after, keys, valid);
                if (!valid) {
                    broken_records.emplace_back(after);
                }
            }
            more = ids.size() == kRecordsPerPage;
        });
    }
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto hashes = repository_.corrupt_attachments(tx, tenant);
        corrupt_attachments = json::array(hashes.begin(), hashes.end());
        contacts = repository_.settings(tx, tenant).security_contacts;
    });
    const bool intact = chain.valid && broken_records.empty() && corrupt_attachments.empty();
    if (!intact) {
        std::string body = "The periodic check of electronic records found: ";
        if (!chain.valid) {
            body += "the audit trail breaks at row " +
                    std::to_string(chain.broken_seq.value_or(0)) + " (" + chain.problem + "). ";
        }
        if (!broken_records.empty()) {
            body += std::to_string(broken_records.size()) +
                    " record(s) with a signature that no longer verifies: " +
                    json::serialize(broken_records) + ". ";
        }
        if (!corrupt_attachments.empty()) {
            body += std::to_string(corrupt_attachments.size()) +
                    " attachment(s) whose bytes no longer match their SHA-256: " +
                    json::serialize(corrupt_attachments) + ".";
        }
        core::log(core::LogLevel::kError, "records integrity check failed",
                  {{"tenant", tenant.value()}, {"detail", body}});
        if (!contacts.empty()) {
            notifier_.notify(tenant, "records", contacts,
                             "Electronic records integrity check failed", body,
                             "records-integrity-" + std::to_string(day));
        }
    }
    return json::object{{"tenant_id", tenant.value()},
                        {"intact", intact},
                        {"audit_chain", chain.to_json()},
                        {"records_with_invalid_signatures", std::move(broken_records)},
                        {"corrupt_attachments", std::move(corrupt_attachments)}};
}

json::object Service::settings(const core::TenantId& tenant) {
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        return repository_.settings(tx, tenant).to_json();
    });
}

json::object Service::save_settings(const Actor& actor, const json::object& request) {
    const auto& tenant = actor.who.tenant;
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) -> json::object {
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
                if (!item.is_string() || item.get_string().empty() ||
                    item.get_string().size() > 100) {
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
        if (const auto* days = request.if_contains("archive_after_days"); days != nullptr) {
            if (days->is_null()) {
                after.archive_after_days.reset();
            } else if (!days->is_int64() || days->get_int64() < 0 || days->get_int64() > 36500) {
                problems["archive_after_days"] = "null (never) or an integer from 0 to 36500";
            } else {
                after.archive_after_days = static_cast<int>(days->get_int64());
            }
        }
        core::refuse_if_any(problems);
        repository_.save_settings(tx, tenant, after);
        AuditTrail::append(
            tx, tenant, actor,
            {std::nullopt, "settings_changed", before.to_json(), after.to_json(), std::nullopt});
        return after.to_json();
    });
}

int Service::count_wrong_password(Transaction& tx,
                                  const Actor& actor,
                                  std::optional<std::int64_t> record_id) {
    const auto& tenant = actor.who.tenant;
    const int failures =
        repository_.signing_failed(tx, tenant, actor.who.user_id, kLockAfterFailures, kLockMinutes);
    AuditTrail::append(tx, tenant, actor,
                       {record_id, "signing_failed", nullptr,
                        json::object{{"failed_attempts", failures}}, std::nullopt});
    if (failures == kLockAfterFailures) {
        // The notice is written with the lockout (the outbox), so a crash cannot lose it; the
        // records-lockout-notice function delivers it once.
        const std::string notice = "records-lockout-" + core::random_hex(12);
        core::outbox::add(tx, tenant,
                          inngest::Event{.name = kSigningLocked,
                                         .data = json::object{{"tenant_id", tenant.value()},
                                                              {"user_id", actor.who.user_id},
                                                              {"notice_id", notice}},
                                         .id = notice});
    }
    return failures;
}

void Service::refuse_signing(const Actor& actor, int failures) {
    core::log(core::LogLevel::kWarn, "signing refused: wrong signing password",
              {{"tenant", actor.who.tenant.value()},
               {"user", actor.who.user_id},
               {"failed_attempts", failures}});
    throw DomainError::forbidden("wrong signing password");
}

json::object Service::notify_lockout(const core::TenantId& tenant,
                                     const std::string& user_id,
                                     const std::string& notice_id) {
    std::vector<std::string> recipients{user_id};
    {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            for (const auto& contact : repository_.settings(tx, tenant).security_contacts) {
                if (contact != user_id) {
                    recipients.push_back(contact);
                }
            }
        });
    }
    const auto message = notifier_.notify(
        tenant, "records", recipients, "Electronic signing locked",
        "Signing by " + user_id + " is locked for " + std::to_string(kLockMinutes) +
            " minutes after " + std::to_string(kLockAfterFailures) +
            " wrong signing passwords in a row.",
        notice_id);
    return json::object{{"message_id", message},
                        {"recipients", json::array(recipients.begin(), recipients.end())}};
}

}  // namespace riveredge::records
