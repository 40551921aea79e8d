#include "modules/print_devices/service.hpp"

#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/found.hpp"
#include "core/json/request_fields.hpp"
#include "core/log/logger.hpp"
#include "core/module.hpp"
#include "core/outbox/outbox.hpp"
#include "core/text/base64.hpp"
#include "core/text/hex.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>

namespace riveredge::devices {
namespace {

namespace json = boost::json;
using core::DomainError;
using core::db::Transaction;

constexpr const char* kRawFormat = "application/vnd.cups-raw";
constexpr const char* kPdfFormat = "application/pdf";
constexpr int kMinDeadlineSeconds = 5;
constexpr int kMaxDeadlineSeconds = 2 * 60 * 60;

bool is_problem(const std::string& health) {
    return health != "ready" && health != "unknown";
}

bool has_reason(const std::vector<std::string>& reasons, std::string_view prefix) {
    return std::any_of(reasons.begin(), reasons.end(),
                       [&](const std::string& reason) { return reason.rfind(prefix, 0) == 0; });
}

const std::regex kMediaName("^[A-Za-z0-9_.-]{1,64}$");
const std::set<std::string> kDuplex{"one-sided", "two-sided-long-edge", "two-sided-short-edge"};

// {media, duplex, copies}: the printer's defaults, or a job's options over them.
json::object print_options(const json::value* given,
                           const char* field,
                           const json::object& capabilities,
                           json::object& problems) {
    json::object out;
    if (given == nullptr || given->is_null()) {
        return out;
    }
    if (!given->is_object()) {
        problems[field] = "an object with media, duplex and copies";
        return out;
    }
    for (const auto& [key, value] : given->get_object()) {
        const std::string at = std::string(field) + "." + std::string(key);
        if (key == "copies") {
            if (!value.is_int64() || value.get_int64() < 1 || value.get_int64() > 100) {
                problems[at] = "an integer from 1 to 100";
                continue;
            }
        } else if (key == "duplex") {
            if (!value.is_string() || kDuplex.count(std::string(value.get_string())) == 0) {
                problems[at] = "one-sided, two-sided-long-edge or two-sided-short-edge";
                continue;
            }
        } else if (key == "media") {
            if (!value.is_string() ||
                !std::regex_match(std::string(value.get_string()), kMediaName)) {
                problems[at] = "a media name such as iso_a4_210x297mm";
                continue;
            }
            const auto* supported = capabilities.if_contains("media_supported");
            if (supported != nullptr && supported->is_array() && !supported->get_array().empty() &&
                std::find(supported->get_array().begin(), supported->get_array().end(), value) ==
                    supported->get_array().end()) {
                problems[at] = "not a media this printer supports (see its capabilities)";
                continue;
            }
        } else {
            problems[at] = "unknown option (media, duplex, copies)";
            continue;
        }
        out[key] = value;
    }
    return out;
}

JobOptions cups_options(const json::object& options) {
    JobOptions out;
    if (const auto* copies = options.if_contains("copies")) {
        out.copies = static_cast<int>(copies->as_int64());
    }
    if (const auto* media = options.if_contains("media")) {
        out.media = std::string(media->as_string());
    }
    if (const auto* duplex = options.if_contains("duplex")) {
        out.sides = std::string(duplex->as_string());
    }
    return out;
}

std::int64_t id_member(const json::object& body, const char* name, json::object& problems) {
    const auto* value = body.if_contains(name);
    if (value == nullptr || !value->is_int64() || value->get_int64() < 1) {
        problems[name] = "required: a positive integer id";
        return 0;
    }
    return value->get_int64();
}

// CUPS' network backends (socket, ipp, lpd) retry a printer they cannot reach with no state
// reason, only one of these messages.
bool unreachable_message(const std::string& message) {
    static constexpr std::string_view kMessages[] = {
        "The printer may not exist or is unavailable", "The printer is unreachable",
        "The printer is not responding", "Unable to connect to printer",
        "Unable to locate printer"};
    return std::any_of(std::begin(kMessages), std::end(kMessages), [&](std::string_view text) {
        return message.find(text) != std::string::npos;
    });
}

// The 409 for an idempotency key that names another print job (request or reprint): `id`.
DomainError key_used_elsewhere(const std::optional<std::string>& key, std::int64_t id) {
    return DomainError::conflict("idempotency key '" + key.value_or("") +
                                 "' was used for a different print job (" + std::to_string(id) +
                                 ")");
}

// The CUPS queue of a job's printer ("" when it has none).
std::string queue_of(Repository& repository,
                     Transaction& tx,
                     const core::TenantId& tenant,
                     std::int64_t printer_id) {
    return repository.printer(tx, tenant, printer_id, false)->cups_queue.value_or("");
}

}  // namespace

Health health_of(const std::optional<CupsPrinter>& printer) {
    Health health;
    if (!printer) {
        health.state = "missing";
        health.message = "CUPS has no such queue";
        return health;
    }
    for (const auto& reason : printer->reasons) {
        if (reason != "none") {
            health.reasons.emplace_back(reason);
        }
    }
    health.message = printer->message;
    const auto& reasons = printer->reasons;
    if (has_reason(reasons, "media-empty") || has_reason(reasons, "media-needed")) {
        health.state = "media_empty";
    } else if (has_reason(reasons, "offline") || has_reason(reasons, "connecting-to-device") ||
               has_reason(reasons, "timed-out") || has_reason(reasons, "shutdown") ||
               unreachable_message(printer->message)) {
        health.state = "offline";
    } else if (printer->state == PrinterState::kStopped || has_reason(reasons, "paused") ||
               !printer->accepting_jobs) {
        health.state = "paused";
    } else if (std::any_of(reasons.begin(), reasons.end(), [](const std::string& reason) {
                   return reason.size() > 6 && reason.compare(reason.size() - 6, 6, "-error") == 0;
               })) {
        health.state = "error";
    } else {
        health.state = "ready";
    }
    health.capabilities = json::object{
        {"make_and_model", printer->make_and_model},
        {"media_supported",
         json::array(printer->media_supported.begin(), printer->media_supported.end())},
        {"media_default", printer->media_default},
        {"sides_supported",
         json::array(printer->sides_supported.begin(), printer->sides_supported.end())},
        {"document_formats",
         json::array(printer->document_formats.begin(), printer->document_formats.end())}};
    return health;
}

Service::Service(Repository& repository,
                 CupsClient& cups,
                 core::Capabilities& capabilities,
                 std::vector<std::string> failpoints)
    : repository_(repository),
      cups_(cups),
      capabilities_(capabilities),
      failpoints_(std::move(failpoints)) {}

void Service::failpoint(const char* name) const {
    if (std::find(failpoints_.begin(), failpoints_.end(), name) != failpoints_.end()) {
        core::log(core::LogLevel::kError, "failpoint reached: stopping as if killed",
                  {{"failpoint", name}});
        std::_Exit(137);
    }
}

// --- The registry -------------------------------------------------------------------------------

PrinterFields Service::printer_fields(const core::Principal& who,
                                      const json::object& body,
                                      const std::optional<PrinterRow>& existing) {
    json::object problems;
    PrinterFields fields;
    fields.name =
        core::text_field(body, "name", {.max = 100, .min = 1, .single_line = true}, problems)
            .value_or(existing ? existing->name : std::string());
    if (fields.name.empty() && !problems.contains("name")) {
        problems["name"] = "required: 1 to 100 bytes";
    }
    fields.site = core::text_field(body, "site", {.max = 100, .single_line = true}, problems)
                      .value_or(existing ? existing->site : "");
    fields.kind =
        core::text_field(body, "kind", {.max = 20, .min = 1, .single_line = true}, problems)
            .value_or(existing ? existing->kind : "office");
    if (fields.kind != "office" && fields.kind != "label") {
        problems["kind"] = "office or label";
    }
    fields.transport =
        core::text_field(body, "transport", {.max = 20, .min = 1, .single_line = true}, problems)
            .value_or(existing ? existing->transport : "cups");
    const auto keep = [&](const char* name, const std::optional<std::string>& old) {
        return body.contains(name)
                   ? core::text_field(body, name, {.max = 300, .min = 1, .single_line = true},
                                      problems)
                   : old;
    };
    fields.cups_queue = keep("cups_queue", existing ? existing->cups_queue : std::nullopt);
    fields.ipp_uri = keep("ipp_uri", existing ? existing->ipp_uri : std::nullopt);
    fields.agent_id = keep("agent_id", existing ? existing->agent_id : std::nullopt);
    if (fields.transport == "cups") {
        // Queues are the tenant's own by name: "<tenant>-<name>", the name without '-', so a
        // queue name reads as exactly one tenant's and no tenant can claim another's.
        const std::string prefix = who.tenant.value() + "-";
        static const std::regex kTenantChars("^[A-Za-z0-9_.]{1,60}$");
        static const std::regex kQueueName("^[A-Za-z0-9_]{1,60}$");
        if (!std::regex_match(who.tenant.value(), kTenantChars)) {
            problems["cups_queue"] =
                "this tenant's id cannot prefix a CUPS queue name (letters, digits, _ and . only)";
        } else if (!fields.cups_queue ||
                   !boost::algorithm::istarts_with(*fields.cups_queue, prefix) ||
                   !std::regex_match(fields.cups_queue->substr(prefix.size()), kQueueName)) {
            problems["cups_queue"] = "required: the CUPS queue, named " + prefix +
                                     "<name> with letters, digits and _ in <name>";
        }
        fields.ipp_uri.reset();
        fields.agent_id.reset();
    } else if (fields.transport == "ipp") {
        static const std::regex kIppUri("^ipps?://[A-Za-z0-9.:\\[\\]-]+(:[0-9]{1,5})?(/[^\\s]*)?$");
        if (!fields.ipp_uri || !std::regex_match(*fields.ipp_uri, kIppUri)) {
            problems["ipp_uri"] = "required: an ipp:// or ipps:// URI";
        }
        fields.cups_queue.reset();
        fields.agent_id.reset();
    } else if (fields.transport == "agent") {
        if (!fields.agent_id) {
            problems["agent_id"] = "required: the site agent's id";
        }
        fields.cups_queue.reset();
        fields.ipp_uri.reset();
    } else {
        problems["transport"] = "cups, ipp or agent";
    }
    const json::object capabilities = existing ? existing->capabilities : json::object{};
    if (body.contains("defaults")) {
        fields.defaults =
            print_options(body.if_contains("defaults"), "defaults", capabilities, problems);
    } else if (existing) {
        fields.defaults = existing->defaults;
    }
    if (const auto* owners = body.if_contains("owners"); owners != nullptr && !owners->is_null()) {
        if (!owners->is_array() || owners->get_array().empty() || owners->get_array().size() > 20 ||
            !std::all_of(
                owners->get_array().begin(), owners->get_array().end(), [](const json::value& v) {
                    return v.is_string() && !v.get_string().empty() && v.get_string().size() <= 200;
                })) {
            problems["owners"] = "1 to 20 user ids";
        } else {
            for (const auto& owner : owners->get_array()) {
                fields.owners.emplace_back(owner.get_string());
            }
        }
    } else {
        fields.owners = existing ? existing->owners : std::vector<std::string>{who.user_id};
    }
    core::refuse_if_any(problems);
    return fields;
}

Health Service::queue_health(const std::string& queue) {
    // A queue must exist in CUPS to be registered; its capabilities come with it.
    std::optional<CupsPrinter> found;
    try {
        found = cups_.printer(queue);
    } catch (const CupsError& error) {
        core::log(core::LogLevel::kWarn, "printer registry: CUPS did not answer",
                  {{"error", error.what()}});
        throw DomainError::unavailable("CUPS cannot be reached now; try again later");
    }
    if (!found) {
        throw DomainError::validation(
            json::object{{"cups_queue", "CUPS has no queue named '" + queue + "'"}});
    }
    return health_of(found);
}

PrinterRow Service::add_printer(const core::Principal& who, const json::object& body) {
    auto fields = printer_fields(who, body, std::nullopt);
    std::optional<Health> health;
    if (fields.transport == "cups") {
        health = queue_health(*fields.cups_queue);
        if (!fields.defaults.empty()) {
            json::object problems;
            fields.defaults = print_options(body.if_contains("defaults"), "defaults",
                                            health->capabilities, problems);
            core::refuse_if_any(problems);
        }
    }
    // The printer and the health CUPS reported for it are one transaction: a failure between
    // two would leave a printer registered with health "unknown" and no capabilities, which
    // the registering client, answered with an error, would not know to retry or remove.
    const auto id = core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto added = repository_.add_printer(tx, who.tenant, fields, who.user_id);
        if (health) {
            repository_.record_health(tx, who.tenant, added, *health, true);
        }
        return added;
    });
    core::log(core::LogLevel::kInfo, "printer registered",
              {{"tenant", who.tenant.value()}, {"printer_id", id}, {"by", who.user_id}});
    return printer(who.tenant, id);
}

PrinterRow Service::update_printer(const core::Principal& who,
                                   std::int64_t id,
                                   const json::object& body) {
    const auto existing =
        core::found(repository_.printer({repository_.pool(), who.tenant}, who.tenant, id),
                    "printer " + std::to_string(id));
    auto fields = printer_fields(who, body, existing);
    const bool moved =
        fields.cups_queue != existing.cups_queue || fields.transport != existing.transport;
    if (fields.cups_queue && moved) {
        queue_health(*fields.cups_queue);  // CUPS is asked before any row is locked
    }
    core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        core::found(repository_.printer(tx, who.tenant, id, true), "printer " + std::to_string(id));
        // Unfinished jobs are followed (and, after a crash, searched for) on the printer's queue:
        // moving it under them could send a job twice.
        if (moved && repository_.has_unfinished_jobs(tx, who.tenant, id)) {
            throw DomainError::conflict(
                "printer " + std::to_string(id) +
                " has unfinished print jobs; change its queue once they end");
        }
        repository_.update_printer(tx, who.tenant, id, fields);
    });
    return printer(who.tenant, id);
}

PrinterRow Service::printer(const core::TenantId& tenant, std::int64_t id) {
    return core::found(repository_.printer({repository_.pool(), tenant}, tenant, id),
                       "printer " + std::to_string(id));
}

void Service::delete_printer(const core::Principal& who, std::int64_t id) {
    printer(who.tenant, id);
    if (!repository_.delete_printer(who.tenant, id)) {
        throw DomainError::conflict("printer " + std::to_string(id) +
                                    " has print jobs in its history; it cannot be deleted");
    }
}

PrinterRow Service::check_printer(const core::TenantId& tenant, std::int64_t id) {
    bool cups_unreachable = false;
    refresh_health(tenant, printer(tenant, id), cups_unreachable);
    return printer(tenant, id);
}

int Service::check_tenant(const core::TenantId& tenant) {
    int changed = 0;
    // Once the CUPS server itself has not answered (each attempt waits for its timeouts), the
    // tenant's other printers are offline without asking it again.
    bool cups_unreachable = false;
    for (const auto& row : repository_.printers(tenant)) {
        changed += refresh_health(tenant, row, cups_unreachable) ? 1 : 0;
    }
    return changed;
}

bool Service::refresh_health(const core::TenantId& tenant,
                             const PrinterRow& row,
                             bool& cups_unreachable) {
    if (row.transport != "cups") {
        return false;
    }
    Health health;
    if (cups_unreachable) {
        health.state = "offline";
        health.message = "the print server cannot be reached";
    } else {
        try {
            health = health_of(cups_.printer(*row.cups_queue));
        } catch (const CupsError& error) {
            // The error names the CUPS server (its address, its socket): the deployment's, not
            // the tenant's. Tenants see the health message and the owners' notice; the log has
            // the rest.
            core::log(
                core::LogLevel::kWarn, "printer health: CUPS did not answer",
                {{"tenant", tenant.value()}, {"printer_id", row.id}, {"error", error.what()}});
            health.state = "offline";
            health.message = "the print server cannot be reached";
            cups_unreachable = error.unreachable();
        }
    }
    const bool changed = health.state != row.health;
    if (changed && (is_problem(health.state) || is_problem(row.health)) &&
        row.health != "unknown") {
        // Notified before the change is recorded, under a key naming the change: from the
        // recorded check it follows (version and time) to the new state. A retry after a crash
        // in between reads the same row and sends the same notice, which the notifier keeps
        // once; a change found after a later recorded check has a key of its own, so one whose
        // save failed cannot swallow it.
        const std::string subject = is_problem(health.state)
                                        ? "Printer " + row.name + " is " + health.state +
                                              (health.message.empty() ? "" : ": " + health.message)
                                        : "Printer " + row.name + " is ready again";
        capabilities_.notifier().notify(
            tenant, "print-devices", row.owners, subject,
            "Printer " + row.name + " (" + row.site + ", queue " + row.cups_queue.value_or("") +
                ") went from " + row.health + " to " + health.state + ".",
            "print-health:" + std::to_string(row.id) + ":" +
                std::to_string(row.health_version + 1) + ":" + row.health_checked_at.value_or("") +
                ":" + row.health + ":" + health.state);
    }
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        repository_.record_health(tx, tenant, row.id, health, changed);
    });
    if (changed) {
        core::log(core::LogLevel::kInfo, "printer health changed",
                  {{"tenant", tenant.value()},
                   {"printer_id", row.id},
                   {"from", row.health},
                   {"to", health.state}});
    }
    return changed;
}

// --- Jobs ---------------------------------------------------------------------------------------

JobRow Service::require_job(Transaction& tx,
                            const core::TenantId& tenant,
                            std::int64_t id,
                            bool for_update) {
    return core::found(repository_.job(tx, tenant, id, for_update),
                       "print job " + std::to_string(id));
}

JobRow Service::request_job(const core::Principal& who, const json::object& body) {
    json::object problems;
    NewJob job;
    job.printer_id = id_member(body, "printer_id", problems);
    job.requested_by = who.user_id;
    job.title =
        core::text_field(body, "title", {.max = 200, .min = 1, .single_line = true}, problems)
            .value_or("print job");
    job.idempotency_key = core::text_field(body, "idempotency_key",
                                           {.max = 200, .min = 1, .single_line = true}, problems);
    const bool has_render = body.contains("render_id");
    const bool has_raw = body.contains("raw_base64");
    if (has_render == has_raw) {
        problems["render_id"] = "exactly one of render_id (a done render) and raw_base64";
    } else if (has_render) {
        job.source = "render";
        job.render_id = id_member(body, "render_id", problems);
        job.format = kPdfFormat;
    } else {
        job.source = "raw";
        job.format = kRawFormat;
        const auto* raw = body.if_contains("raw_base64");
        std::optional<std::string> bytes;
        if (raw->is_string()) {
            bytes = core::from_base64(std::string(raw->get_string()));
        }
        if (!bytes || bytes->empty() || bytes->size() > kMaxRawBytes) {
            problems["raw_base64"] = "base64 of 1 byte to 1 MiB";
        } else {
            job.payload = std::move(bytes);
        }
    }
    if (const auto* document = body.if_contains("document");
        document != nullptr && !document->is_null()) {
        if (!document->is_object()) {
            problems["document"] = "{type, id} of the business document printed";
        } else {
            job.document_type =
                core::text_field(document->get_object(), "type",
                                 {.max = 100, .min = 1, .single_line = true}, problems);
            job.document_id =
                core::text_field(document->get_object(), "id",
                                 {.max = 200, .min = 1, .single_line = true}, problems);
            if (!job.document_type || !job.document_id) {
                problems["document"] = "{type, id}: both strings";
            }
        }
    }
    if (const auto deadline = core::int_field(body, "deadline_seconds", kMinDeadlineSeconds,
                                              kMaxDeadlineSeconds, problems)) {
        job.deadline_seconds = static_cast<int>(*deadline);
    }
    // The options are checked against the printer's capabilities, so the printer is read
    // before all the problems are answered together.
    const auto printer = job.printer_id > 0 ? repository_.printer({repository_.pool(), who.tenant},
                                                                  who.tenant, job.printer_id)
                                            : std::optional<PrinterRow>();
    if (!printer && !problems.contains("printer_id")) {
        throw DomainError::not_found("printer " + std::to_string(job.printer_id));
    }
    if (!printer) {
        throw DomainError::validation(std::move(problems));
    }
    if (printer->transport != "cups") {
        throw DomainError::validation(json::object{
            {"printer_id", "printer " + std::to_string(printer->id) + " is reached through " +
                               printer->transport +
                               ", which is registered for later but cannot print yet"}});
    }
    json::object options = printer->defaults;
    for (auto& [key, value] :
         print_options(body.if_contains("options"), "options", printer->capabilities, problems)) {
        options[key] = value;
    }
    core::refuse_if_any(problems);
    job.options = std::move(options);
    if (job.render_id) {
        // Checked now so that a render not done is a 409 here, not a failed job later (and
        // before a transaction is open: the check takes connections of its own).
        capabilities_.pdf_printer().rendered(who.tenant, *job.render_id);
    }
    return core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto [id, fresh] =
            repository_.add_job(tx, who.tenant, job, "rv-" + core::random_hex(12));
        auto row = require_job(tx, who.tenant, id, false);
        if (!fresh &&
            (row.printer_id != job.printer_id || row.render_id != job.render_id ||
             row.title != job.title || row.options != job.options ||
             row.document_type != job.document_type || row.document_id != job.document_id ||
             (job.payload && repository_.payload(tx, who.tenant, id) != job.payload))) {
            throw key_used_elsewhere(job.idempotency_key, id);
        }
        if (fresh) {
            core::outbox::add(
                tx, who.tenant,
                core::row_event(kJobRequested, who.tenant, "job_id", id, "print-job"));
        }
        return row;
    });
}

JobRow Service::cancel_job(const core::Principal& who, std::int64_t id) {
    JobRow row;
    std::string queue;
    {
        core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
            row = require_job(tx, who.tenant, id, true);
            if (row.requested_by != who.user_id && !who.has_role(core::kAdminRole)) {
                throw DomainError::forbidden(
                    "only the job's requester or an administrator may cancel print job " +
                    std::to_string(id));
            }
            if (row.finished()) {
                throw DomainError::conflict("print job " + std::to_string(id) + " is " +
                                            row.status + " already");
            }
            repository_.request_cancel(tx, who.tenant, id);
            queue = queue_of(repository_, tx, who.tenant, row.printer_id);
        });
    }
    core::log(core::LogLevel::kInfo, "print job cancel requested",
              {{"tenant", who.tenant.value()}, {"job_id", id}, {"by", who.user_id}});
    // A sent job is cancelled in CUPS at once, and its end recorded if CUPS has it cancelled
    // already (a final state; anything earlier is left to the function, whose polls follow it).
    // An unsent one is never sent: the submit step sees the request. CUPS out of reach: the
    // function's next poll cancels.
    if (row.cups_job_id) {
        try {
            cups_.cancel(queue, *row.cups_job_id);
            if (const auto seen = cups_.job(*row.cups_job_id);
                seen && seen->name.rfind(row.token + " ", 0) == 0 && is_final(seen->state)) {
                record_cups_state(who.tenant, row, *seen);
            }
        } catch (const CupsError& error) {
            core::log(core::LogLevel::kWarn, "print job cancel: CUPS did not answer",
                      {{"job_id", id}, {"error", error.what()}});
        }
    }
    return current(who.tenant, id);
}

JobRow Service::reprint(const core::Principal& who, std::int64_t id, const json::object& body) {
    json::object problems;
    // As for a new job: a client retrying a reprint whose answer it never got gets the same job.
    auto idempotency_key = core::text_field(body, "idempotency_key",
                                            {.max = 200, .min = 1, .single_line = true}, problems);
    core::refuse_if_any(problems);
    bool fresh = false;
    const auto row = core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto original = require_job(tx, who.tenant, id, false);
        if (!original.finished()) {
            throw DomainError::conflict("print job " + std::to_string(id) + " is " +
                                        original.status +
                                        "; reprint it once it has finished (or cancel it)");
        }
        NewJob job;
        job.printer_id = original.printer_id;
        job.source = original.source;
        job.render_id = original.render_id;
        if (original.source == "raw") {
            job.payload = repository_.payload(tx, who.tenant, id);
        }
        job.format = original.format;
        job.title = original.title;
        job.document_type = original.document_type;
        job.document_id = original.document_id;
        job.options = original.options;
        job.reprint_of = original.id;
        job.requested_by = who.user_id;
        job.idempotency_key = idempotency_key;
        const auto added = repository_.add_job(tx, who.tenant, job, "rv-" + core::random_hex(12));
        const auto new_id = added.first;
        fresh = added.second;
        auto reprinted = require_job(tx, who.tenant, new_id, false);
        if (!fresh) {
            // The key is taken: this reprint's retry answers the job it made; a key of another
            // job (a request, another job's reprint) is a conflict.
            if (reprinted.reprint_of != id) {
                throw key_used_elsewhere(idempotency_key, new_id);
            }
            return reprinted;
        }
        core::outbox::add(
            tx, who.tenant,
            core::row_event(kJobRequested, who.tenant, "job_id", new_id, "print-job"));
        return reprinted;
    });
    if (fresh) {
        core::log(core::LogLevel::kInfo, "print job reprinted",
                  {{"tenant", who.tenant.value()}, {"job_id", row.id}, {"reprint_of", id}});
    }
    return row;
}

// --- The print-job function's steps -------------------------------------------------------------

std::string Service::load_document(const core::TenantId& tenant, const JobRow& job) {
    if (job.source == "render") {
        return capabilities_.pdf_printer().rendered(tenant, *job.render_id).bytes;
    }
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        return core::found(repository_.payload(tx, tenant, job.id),
                           "the bytes of print job " + std::to_string(job.id));
    });
}

json::object Service::progress(const JobRow& row) {
    // A job CUPS has no id for is over: it was never sent (cancelled, failed) or is done.
    const bool finished = row.finished() || !row.cups_job_id;
    return json::object{
        {"status", row.status}, {"finished", finished}, {"seconds_left", row.seconds_left}};
}

JobRow Service::current(const core::TenantId& tenant, std::int64_t id) {
    auto row = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        return require_job(tx, tenant, id, false);
    });
    return row;
}

namespace {

// `SELECT <lock>(...)` of the lock that a job is sent under, from the last look at it until its
// CUPS id is recorded, and that its failure is saved under (fail_step); $1 is the job's id.
std::string send_lock(const char* lock) {
    return std::string("SELECT ") + lock +
           "(hashtextextended('riveredge.print_job.sending.' || $1, 0))";
}

}  // namespace

json::object Service::submit_step(const core::TenantId& tenant, std::int64_t id) {
    // One attempt at a time talks to CUPS for a job: an attempt the executor gave up on may
    // still be running, and two would both send. The fence is a session lock on a connection
    // of its own, so a process that dies lets go of it at once.
    const auto fence = repository_.pool().connect();
    if (!fence
             ->exec("SELECT pg_try_advisory_lock(hashtextextended('riveredge.print_job.' || $1, "
                    "0)) AS locked",
                    {id})
             .boolean(0, "locked")) {
        throw DomainError::unavailable("another attempt is sending print job " +
                                       std::to_string(id));
    }
    JobRow job;
    std::string queue;
    enum class Then { kReturn, kCancelled, kTooLate, kSend };
    Then then = Then::kSend;
    bool earlier_attempt = false;
    {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            job = require_job(tx, tenant, id, true);
            queue = queue_of(repository_, tx, tenant, job.printer_id);
            earlier_attempt = job.status == "submitting";
            if (job.finished() || job.cups_job_id) {
                then = Then::kReturn;
            } else if (!earlier_attempt && job.cancel_requested) {
                then = Then::kCancelled;
            } else if (!earlier_attempt && job.deadline_passed) {
                then = Then::kTooLate;
            } else {
                // Written before CUPS is called: whoever comes next knows CUPS may have the job.
                repository_.mark_submitting(tx, tenant, id);
            }
        });
    }
    if (then == Then::kSend && earlier_attempt) {
        if (const auto found = cups_.find_job(queue, job.token + " ")) {
            core::log(core::LogLevel::kInfo,
                      "print job found in CUPS from an earlier attempt; not sent again",
                      {{"tenant", tenant.value()}, {"job_id", id}, {"cups_job_id", found->id}});
            {
                core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
                    repository_.record_submitted(tx, tenant, id, found->id,
                                                 to_string(found->state));
                });
            }
            job.cups_job_id = found->id;
            record_cups_state(tenant, job, *found);
            return progress(current(tenant, id));
        }
        // Not in CUPS: sending now is the first time. Unless it is no longer wanted.
        then = job.cancel_requested  ? Then::kCancelled
               : job.deadline_passed ? Then::kTooLate
                                     : Then::kSend;
    }
    if (then == Then::kCancelled) {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            repository_.record_state(tx, tenant, id, "canceled", {}, "", std::nullopt,
                                     "cancelled before it was sent to the printer");
        });
    } else if (then == Then::kTooLate) {
        finish_failed(tenant, job, "its deadline passed before it could be sent");
    }
    if (then != Then::kSend) {
        return progress(current(tenant, id));
    }
    const std::string document = load_document(tenant, job);
    // The last look, and the send, under the send lock on the fence's connection (it lets go
    // when this returns, its connection closed): this attempt may be one the executor gave up
    // on, slow since it marked the job submitting, and the job failed meanwhile; then it is not
    // sent. A failure saved after it finds the job's CUPS id, and cancels the job in CUPS.
    fence->exec(send_lock("pg_advisory_lock"), {id});
    if (const auto now = current(tenant, id); now.finished() || now.cups_job_id) {
        core::log(core::LogLevel::kInfo, "print job ended before it was sent; not sent",
                  {{"tenant", tenant.value()}, {"job_id", id}, {"status", now.status}});
        return progress(now);
    }
    int cups_job_id = 0;
    try {
        cups_job_id = cups_.submit(queue, job.token + " " + job.title, document, job.format,
                                   cups_options(job.options));
    } catch (const CupsError& error) {
        if (!error.permanent()) {
            throw;  // the step is retried, and the retry searches CUPS first
        }
        finish_failed(tenant, job, error.what());
        return progress(current(tenant, id));
    }
    failpoint("print.after_submit");
    {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            repository_.record_submitted(tx, tenant, id, cups_job_id, "pending");
        });
    }
    core::log(core::LogLevel::kInfo, "print job sent to CUPS",
              {{"tenant", tenant.value()},
               {"job_id", id},
               {"queue", queue},
               {"cups_job_id", cups_job_id}});
    return progress(current(tenant, id));
}

JobRow Service::record_cups_state(const core::TenantId& tenant,
                                  const JobRow& job,
                                  const CupsJob& seen) {
    json::array reasons;
    for (const auto& reason : seen.reasons) {
        if (reason != "none") {
            reasons.emplace_back(reason);
        }
    }
    // What a final state CUPS reports means: an error when CUPS aborted the job, or when it was
    // cancelled there though nobody asked this API to.
    const auto error_of = [&](const JobRow& row) -> std::optional<std::string> {
        if (seen.state == JobState::kAborted) {
            return "CUPS aborted the job" + (seen.message.empty() ? "" : ": " + seen.message);
        }
        if (seen.state == JobState::kCanceled && !row.cancel_requested) {
            return std::string("cancelled in CUPS, not through this API");
        }
        return std::nullopt;
    };
    // The owners are told before the state is saved, under the key of the job's end
    // (notify_job's): saved first, a crash or a failed notice in between would lose the notice
    // for good, since the retried step finds the job finished. Told first, a retry tells again
    // under the same key, which the notifier keeps once.
    if (seen.state == JobState::kAborted || seen.state == JobState::kCanceled) {
        const auto before = current(tenant, job.id);
        if (const auto error = error_of(before); error && !before.finished()) {
            notify_job(tenant, job, to_string(seen.state), *error);
        }
    }
    JobRow row;
    {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            // Read under the row's lock: whether a cancel was asked for decides what a cancelled
            // job means, and a cancel may have come since the caller read the job.
            const auto locked = require_job(tx, tenant, job.id, true);
            repository_.record_state(tx, tenant, job.id, to_string(seen.state), reasons,
                                     seen.message, seen.impressions_completed, error_of(locked));
            row = require_job(tx, tenant, job.id, false);
        });
    }
    return row;
}

json::object Service::poll_step(const core::TenantId& tenant, std::int64_t id) {
    JobRow job;
    std::string queue;
    {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            job = require_job(tx, tenant, id, false);
            queue = queue_of(repository_, tx, tenant, job.printer_id);
        });
    }
    const auto state = [](const JobRow& row) {
        return progress(row);
    };
    if (job.finished() || !job.cups_job_id) {
        return state(job);
    }
    // Job ids are the CUPS server's; the token in the name makes sure it is still our job.
    const auto ours = [&](const std::optional<CupsJob>& seen) {
        return seen && seen->name.rfind(job.token + " ", 0) == 0 ? seen : std::nullopt;
    };
    try {
        auto seen = ours(cups_.job(*job.cups_job_id));
        if (!seen) {
            finish_failed(tenant, job,
                          "CUPS no longer knows job " + std::to_string(*job.cups_job_id));
            return state(current(tenant, id));
        }
        // What the printer said before the cancel: now, or what the last poll saved when an
        // earlier attempt cancelled.
        std::string said = job.printer_message;
        bool cancelled_here = false;
        if (!is_final(seen->state) && (job.cancel_requested || job.deadline_passed)) {
            said = seen->message;
            cups_.cancel(queue, *job.cups_job_id);
            cancelled_here = true;
            failpoint("print.job_cancelled_in_cups");
            // It may have ended meanwhile: what CUPS says after the cancel is what happened.
            seen = ours(cups_.job(*job.cups_job_id));
            if (!seen) {
                finish_failed(tenant, job, "CUPS lost the job while cancelling it");
                return state(current(tenant, id));
            }
        }
        // Past its deadline, a job not printed failed by it. Found cancelled already, it is one an
        // attempt cancelled here and died before saving that: read as "canceled", it would end
        // so and its owners would be told a second time, under that end's key. (So does one
        // cancelled in CUPS by hand that no poll saw so before its deadline: it was due to be.)
        if (job.deadline_passed && !job.cancel_requested &&
            (cancelled_here ? seen->state != JobState::kCompleted
                            : seen->state == JobState::kCanceled)) {
            finish_failed(tenant, job,
                          "not printed by its deadline (" + job.deadline_at + "); the printer " +
                              (said.empty() ? "said nothing" : "said: " + said) +
                              "; cancelled in CUPS");
            return state(current(tenant, id));
        }
        return state(record_cups_state(tenant, job, *seen));
    } catch (const CupsError& error) {
        if (error.permanent()) {
            throw;
        }
        // CUPS out of reach for a while must not fail a job it may still print: polling goes
        // on until the deadline, and only then is the job given up, saying so.
        core::log(core::LogLevel::kWarn, "print job poll: CUPS did not answer",
                  {{"tenant", tenant.value()}, {"job_id", id}, {"error", error.what()}});
        if (!job.deadline_passed) {
            return state(job);
        }
        finish_failed(tenant, job,
                      "not confirmed by its deadline (" + job.deadline_at +
                          "): CUPS could not be reached to follow or cancel it, so it may still "
                          "print when CUPS is back");
        return state(current(tenant, id));
    }
}

void Service::finish_failed(const core::TenantId& tenant,
                            const JobRow& job,
                            const std::string& why) {
    if (current(tenant, job.id).finished()) {
        return;  // it had ended meanwhile (completed, cancelled): that stands
    }
    // Told before the failure is saved, under the key of the job's end (notify_job's):
    // saved first, a crash or a failed notice in between would lose the notice for good, since
    // the retried step finds the job finished. Told first, a retry tells again under the same
    // key, which the notifier keeps once. (A job that ends otherwise between the look above and
    // the save keeps that end: a notice of a failure that did not stand, rarer than a lost one.)
    core::log(core::LogLevel::kWarn, "print job failed",
              {{"tenant", tenant.value()}, {"job_id", job.id}, {"reason", why}});
    notify_job(tenant, job, "failed", why);
    failpoint("print.job_failing");
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        repository_.record_state(tx, tenant, job.id, "failed", job.state_reasons,
                                 job.printer_message, std::nullopt, why);
    });
}

void Service::fail_step(const core::TenantId& tenant, std::int64_t id, const std::string& why) {
    // The job if it is still open, or if its saved failure still wants a job cancelled in CUPS
    // (this step retried after a crash or CUPS out of reach between the save and the cancel),
    // with its printer's queue.
    struct Open {
        JobRow job;
        std::string queue;
        std::optional<int> wanted;
    };
    auto open =
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) -> std::optional<Open> {
            auto job = repository_.job(tx, tenant, id, false);
            if (!job) {
                return std::nullopt;
            }
            std::optional<int> wanted;
            if (job->finished()) {
                wanted = repository_.cups_cancel_wanted(tx, tenant, id);
                if (!wanted) {
                    return std::nullopt;
                }
            }
            auto queue = queue_of(repository_, tx, tenant, job->printer_id);
            return Open{std::move(*job), std::move(queue), wanted};
        });
    if (!open) {
        return;
    }
    auto& [job, queue, wanted] = *open;
    if (wanted) {
        cancel_wanted(tenant, id, queue, *wanted);
        return;
    }
    // Reported failed, it must not print later: find it in CUPS (it may have got there) and
    // cancel it. CUPS out of reach: this step fails and is retried, rather than report a job
    // failed that may still print.
    if (!job.cups_job_id) {
        if (const auto found = cups_.find_job(queue, job.token + " ")) {
            job.cups_job_id = found->id;
        }
    }
    if (job.cups_job_id) {
        cups_.cancel(queue, *job.cups_job_id);
    }
    if (current(tenant, id).finished()) {
        return;  // it had ended meanwhile: that stands
    }
    // Told before the failure is saved, as in finish_failed.
    core::log(core::LogLevel::kWarn, "print job failed",
              {{"tenant", tenant.value()}, {"job_id", id}, {"reason", why}});
    notify_job(tenant, job, "failed", why);
    failpoint("print.job_failing");
    // Saved under the send lock: an attempt the executor gave up on may still be sending the
    // job. Either it looks after this and does not send the job, or it has recorded the job's
    // CUPS id, and the job is cancelled in CUPS right after its failure is saved (with the
    // cancel as wanted: write before act). The lock is waited for on a connection of its own,
    // held until this returns (the connection closes then): its holder needs pooled
    // connections to finish, and failures waiting on it inside the pool could take them all.
    const auto sending = repository_.pool().connect();
    sending->exec(send_lock("pg_advisory_lock"), {id});
    std::optional<int> cancel;
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto locked = require_job(tx, tenant, id, true);
        if (locked.finished()) {
            return;
        }
        if (locked.cups_job_id && locked.cups_job_id != job.cups_job_id) {
            // Sent meanwhile: cancelled in CUPS once the failure has committed, not in this
            // transaction (its pooled connection and the job's row would wait on CUPS). The
            // cancel is saved as wanted with the failure: a crash before it is done leaves it
            // to this step's retry.
            repository_.want_cups_cancel(tx, tenant, id, *locked.cups_job_id);
            cancel = locked.cups_job_id;
        }
        repository_.record_state(tx, tenant, id, "failed", locked.state_reasons,
                                 locked.printer_message, std::nullopt, why);
    });
    if (cancel) {
        cancel_wanted(tenant, id, queue, *cancel);
    }
}

void Service::cancel_wanted(const core::TenantId& tenant,
                            std::int64_t id,
                            const std::string& queue,
                            int cups_job_id) {
    cups_.cancel(queue, cups_job_id);
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        repository_.cups_cancel_done(tx, tenant, id, cups_job_id);
    });
}

void Service::notify_job(const core::TenantId& tenant,
                         const JobRow& job,
                         const std::string& what,
                         const std::string& body) {
    std::vector<std::string> to{job.requested_by};
    {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            if (const auto printer = repository_.printer(tx, tenant, job.printer_id, false)) {
                for (const auto& owner : printer->owners) {
                    if (std::find(to.begin(), to.end(), owner) == to.end()) {
                        to.push_back(owner);
                    }
                }
            }
        });
    }
    capabilities_.notifier().notify(
        tenant, "print-devices", to, "Print job " + std::to_string(job.id) + " " + what,
        "Print job " + std::to_string(job.id) + " (" + job.title + ") " + what + ": " + body,
        // One key for the job's end, whatever it turns out to be: a notice told before a save
        // that failed, and a retry that ends the job otherwise (a cancel seen in CUPS by hand,
        // then its deadline passed), must not tell its owners of two ends.
        "print-job:" + std::to_string(job.id) + ":ended");
}

}  // namespace riveredge::devices
