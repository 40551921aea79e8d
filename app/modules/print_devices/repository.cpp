#include "modules/print_devices/repository.hpp"

#include "core/db/row.hpp"
#include "core/db/sql_time.hpp"
#include "core/db/unique.hpp"
#include "core/errors.hpp"
#include "core/text/hex.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace riveredge::devices {
namespace {

namespace json = boost::json;
using core::DomainError;
using core::db::Param;
using core::db::Rows;
using core::db::Transaction;

constexpr const char* kPrinterColumns =
    "p.id, p.name, p.site, p.kind, p.transport, p.cups_queue, p.ipp_uri, p.agent_id, "
    "p.defaults::text AS defaults, p.capabilities::text AS capabilities, p.owners::text AS "
    "owners, p.health, p.health_reasons::text AS health_reasons, p.health_message, "
    "p.health_version, " SQL_UTC_TIME("p.health_checked_at") " AS health_checked_at, " SQL_UTC_TIME(
        "p.health_changed_at") " AS health_changed_at, p.created_by, " SQL_UTC_TIME("p.created_at") " AS "
                               "created_at, " SQL_UTC_TIME("p.updated_at") " AS updated_at";

constexpr const char* kJobColumns =
    "j.id, j.printer_id, j.source, j.render_id, j.format, j.title, j.document_type, "
    "j.document_id, j.options::text AS options, j.token, j.status, j.cups_job_id, "
    "j.state_reasons::text AS state_reasons, j.printer_message, j.impressions, j.error, "
    "j.cancel_requested, " SQL_UTC_TIME("j.deadline_at") " AS deadline_at, j.deadline_at <= now() "
                                                         "AS deadline_passed, greatest(0, ceil(extract(epoch FROM j.deadline_at - now())))::int AS seconds_left, j.submit_attempts, "
                                                         "j.reprint_of, j.requested_by, " SQL_UTC_TIME(
                                                             "j.created_at") " AS created_at, " SQL_UTC_TIME("j.submitted_at") " AS "
                                                                                                                               "submitted_at, " SQL_UTC_TIME(
                                                                                                                                   "j.finished_at") " AS finished_at";

std::string owners_json(const std::vector<std::string>& owners) {
    return json::serialize(json::array(owners.begin(), owners.end()));
}

}  // namespace

const core::db::ListSpec kPrinterList{
    .sort_fields = core::db::sort_fields("p", {"id", "name", "site", "health"}),
    .default_sort = "name",
    .tiebreak_sql = "p.id",
    .filters = {
        {"site", "the site", "", "p.site = $?"},
        {"kind", "the printer's kind", R"({"enum":["office","label"]})", "p.kind = $?"},
        {"health", "the printer's health",
         R"({"enum":["unknown","ready","paused","offline","media_empty","error","missing"]})",
         "p.health = $?"}}};

const core::db::ListSpec kJobList{
    .sort_fields = core::db::sort_fields("j", {"id", "status", "created_at"}),
    .default_sort = "-id",
    .tiebreak_sql = "j.id",
    .filters = {
        {"printer_id", "the printer's id", R"({"type":"integer"})", "j.printer_id = $?::bigint"},
        {"document_type", "the business document's type (with document_id)", "",
         "j.document_type = $?"},
        {"document_id", "the business document's id", "", "j.document_id = $?"},
        {"status", "the job's status",
         R"({"enum":["queued","submitting","pending","held","processing","stopped",)"
         R"("completed","canceled","aborted","failed"]})",
         "j.status = $?"}}};

json::object PrinterRow::to_json() const {
    auto out = core::db::row_json(*this);
    // The API shows the health columns as one object; health_version is the checks' own counter.
    out["health"] = json::object{{"state", health},
                                 {"reasons", health_reasons},
                                 {"message", health_message},
                                 {"checked_at", json::value_from(health_checked_at)},
                                 {"changed_at", json::value_from(health_changed_at)}};
    for (const auto* column : {"health_reasons", "health_message", "health_version",
                               "health_checked_at", "health_changed_at"}) {
        out.erase(column);
    }
    return out;
}

bool JobRow::finished() const {
    return status == "completed" || status == "canceled" || status == "aborted" ||
           status == "failed";
}

json::object JobRow::to_json() const {
    auto out = core::db::row_json(*this);
    // The business document as one object (or null); the token, the deadline arithmetic and the
    // attempt count are the worker's, not the API's.
    out["document"] =
        document_type
            ? json::value(json::object{{"type", *document_type}, {"id", document_id.value_or("")}})
            : json::value(nullptr);
    for (const auto* column : {"document_type", "document_id", "token", "deadline_passed",
                               "seconds_left", "submit_attempts"}) {
        out.erase(column);
    }
    return out;
}

std::int64_t Repository::add_printer(Transaction& tx,
                                     const core::TenantId& tenant,
                                     const PrinterFields& fields,
                                     const std::string& author) {
    try {
        const auto rows = tx.exec(
            "INSERT INTO print_printers (tenant_id, name, site, kind, transport, cups_queue, "
            "ipp_uri, agent_id, defaults, owners, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9::jsonb, $10::jsonb, $11) RETURNING id",
            {tenant, fields.name, fields.site, fields.kind, fields.transport, fields.cups_queue,
             fields.ipp_uri, fields.agent_id, fields.defaults, owners_json(fields.owners), author});
        return rows.integer(0, "id");
    } catch (const core::db::DbError& error) {
        if (error.sqlstate() != "23505") {
            throw;
        }
        if (std::string_view(error.what()).find("cups_queue") != std::string_view::npos) {
            throw DomainError::conflict("CUPS queue '" + fields.cups_queue.value_or("") +
                                        "' is registered already");
        }
        throw DomainError::conflict("a printer named '" + fields.name + "' exists already");
    }
}

void Repository::update_printer(Transaction& tx,
                                const core::TenantId& tenant,
                                std::int64_t id,
                                const PrinterFields& fields) {
    core::db::unique_or_conflict("the name or the CUPS queue is another printer's", [&] {
        tx.exec(
            "UPDATE print_printers SET name = $3, site = $4, kind = $5, transport = $6, "
            "cups_queue = $7, ipp_uri = $8, agent_id = $9, defaults = $10::jsonb, owners = "
            "$11::jsonb, updated_at = now() WHERE tenant_id = $1 AND id = $2",
            {tenant, id, fields.name, fields.site, fields.kind, fields.transport, fields.cups_queue,
             fields.ipp_uri, fields.agent_id, fields.defaults, owners_json(fields.owners)});
    });
}

std::optional<PrinterRow> Repository::printer(const core::db::ReadIn& in,
                                              const core::TenantId& tenant,
                                              std::int64_t id,
                                              bool for_update) {
    return core::db::select_first<PrinterRow>(
        in, kPrinterColumns,
        std::string("FROM print_printers p WHERE p.tenant_id = $1 AND p.id = $2") +
            (for_update ? " FOR UPDATE" : ""),
        {tenant, id});
}

std::vector<PrinterRow> Repository::printers(const core::TenantId& tenant) {
    return core::db::select_rows<PrinterRow>(
        {pool_, tenant}, kPrinterColumns,
        "FROM print_printers p WHERE p.tenant_id = $1 ORDER BY p.id", {tenant});
}

core::db::Page<PrinterRow> Repository::list_printers(const core::TenantId& tenant,
                                                     const core::db::ListRequest& page) {
    return core::db::page_of<PrinterRow>(pool_, tenant, kPrinterColumns,
                                         "FROM print_printers p WHERE p.tenant_id = $1", {tenant},
                                         page);
}

bool Repository::delete_printer(const core::TenantId& tenant, std::int64_t id) {
    try {
        core::db::exec_once(pool_, tenant,
                            "DELETE FROM print_printers WHERE tenant_id = $1 AND id = $2",
                            {tenant, id});
        return true;
    } catch (const core::db::DbError& error) {
        if (error.sqlstate() == "23503") {
            return false;
        }
        throw;
    }
}

void Repository::record_health(Transaction& tx,
                               const core::TenantId& tenant,
                               std::int64_t id,
                               const Health& health,
                               bool changed) {
    tx.exec(
        "UPDATE print_printers SET health = $3, health_reasons = $4::jsonb, health_message = $5, "
        "capabilities = CASE WHEN $6::jsonb = '{}'::jsonb THEN capabilities ELSE $6::jsonb END, "
        "health_checked_at = now(), health_version = health_version + CASE WHEN $7::bool THEN 1 "
        "ELSE 0 END, health_changed_at = CASE WHEN $7::bool THEN now() ELSE health_changed_at END "
        "WHERE tenant_id = $1 AND id = $2",
        {tenant, id, health.state, health.reasons, health.message, health.capabilities, changed});
}

std::vector<std::string> Repository::tenants_with_printers() {
    return core::db::texts(
        core::db::exec_in_scope(pool_, "print_reconciler",
                                "SELECT DISTINCT tenant_id FROM print_printers ORDER BY tenant_id"),
        "tenant_id");
}

std::pair<std::int64_t, bool> Repository::add_job(Transaction& tx,
                                                  const core::TenantId& tenant,
                                                  const NewJob& job,
                                                  const std::string& token) {
    const auto rows = tx.exec(
        "INSERT INTO print_jobs (tenant_id, printer_id, source, render_id, payload, format, title, "
        "document_type, document_id, options, token, deadline_at, reprint_of, requested_by, "
        "idempotency_key) VALUES ($1, $2, $3, $4::bigint, decode($5, 'hex'), $6, $7, $8, $9, "
        "$10::jsonb, $11, now() + make_interval(secs => $12::int), $13::bigint, $14, $15) ON "
        "CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id",
        {tenant, job.printer_id, job.source, job.render_id,
         job.payload
             ? Param(core::to_hex(reinterpret_cast<const unsigned char*>(job.payload->data()),
                                  job.payload->size()))
             : std::nullopt,
         job.format, job.title, job.document_type, job.document_id, job.options, token,
         job.deadline_seconds, job.reprint_of, job.requested_by, job.idempotency_key});
    if (!rows.empty()) {
        return {rows.integer(0, "id"), true};
    }
    const auto existing =
        tx.exec("SELECT id FROM print_jobs WHERE tenant_id = $1 AND idempotency_key = $2",
                {tenant, job.idempotency_key});
    return {existing.integer(0, "id"), false};
}

std::optional<JobRow> Repository::job(Transaction& tx,
                                      const core::TenantId& tenant,
                                      std::int64_t id,
                                      bool for_update) {
    return core::db::select_first<JobRow>(
        tx, kJobColumns,
        std::string("FROM print_jobs j WHERE j.tenant_id = $1 AND j.id = $2") +
            (for_update ? " FOR UPDATE" : ""),
        {tenant, id});
}

std::optional<std::string> Repository::payload(Transaction& tx,
                                               const core::TenantId& tenant,
                                               std::int64_t id) {
    const auto rows = tx.exec(
        "SELECT encode(payload, 'hex') AS payload FROM print_jobs WHERE tenant_id = $1 AND id = "
        "$2 AND payload IS NOT NULL",
        {tenant, id});
    return rows.empty() ? std::nullopt : std::optional(core::from_hex(rows.text(0, "payload")));
}

core::db::Page<JobRow> Repository::list_jobs(const core::TenantId& tenant,
                                             const core::db::ListRequest& page) {
    return core::db::page_of<JobRow>(pool_, tenant, kJobColumns,
                                     "FROM print_jobs j WHERE j.tenant_id = $1", {tenant}, page);
}

void Repository::mark_submitting(Transaction& tx, const core::TenantId& tenant, std::int64_t id) {
    tx.exec(
        "UPDATE print_jobs SET status = 'submitting', submit_attempts = submit_attempts + 1, "
        "updated_at = now() WHERE tenant_id = $1 AND id = $2",
        {tenant, id});
}

void Repository::record_submitted(Transaction& tx,
                                  const core::TenantId& tenant,
                                  std::int64_t id,
                                  int cups_job_id,
                                  const std::string& status) {
    tx.exec(
        "UPDATE print_jobs SET cups_job_id = $3::int, status = CASE WHEN finished_at IS NULL "
        "THEN $4 ELSE status END, submitted_at = now(), updated_at = now() WHERE tenant_id = $1 "
        "AND id = $2",
        {tenant, id, cups_job_id, status});
}

bool Repository::record_state(Transaction& tx,
                              const core::TenantId& tenant,
                              std::int64_t id,
                              const std::string& status,
                              const json::array& reasons,
                              const std::string& printer_message,
                              std::optional<int> impressions,
                              const std::optional<std::string>& error) {
    return tx.exec(
                 "UPDATE print_jobs SET status = $3, state_reasons = $4::jsonb, printer_message "
                 "= $5, impressions = coalesce($6::int, impressions), error = coalesce($7, "
                 "error), updated_at = now(), finished_at = CASE WHEN $3 IN ('completed', "
                 "'canceled', 'aborted', 'failed') THEN now() END WHERE tenant_id = $1 AND id "
                 "= $2 AND finished_at IS NULL",
                 {tenant, id, status, reasons, printer_message, impressions, error})
               .affected() == 1;
}

bool Repository::has_unfinished_jobs(Transaction& tx,
                                     const core::TenantId& tenant,
                                     std::int64_t printer_id) {
    return !tx.exec(
                  "SELECT 1 FROM print_jobs WHERE tenant_id = $1 AND printer_id = $2 AND "
                  "finished_at IS NULL LIMIT 1",
                  {tenant, printer_id})
                .empty();
}

void Repository::request_cancel(Transaction& tx, const core::TenantId& tenant, std::int64_t id) {
    tx.exec(
        "UPDATE print_jobs SET cancel_requested = true, updated_at = now() WHERE tenant_id = $1 "
        "AND id = $2",
        {tenant, id});
}

std::optional<int> Repository::cups_cancel_wanted(Transaction& tx,
                                                  const core::TenantId& tenant,
                                                  std::int64_t id) {
    const auto rows = tx.exec(
        "SELECT cups_cancel_wanted FROM print_jobs WHERE tenant_id = $1 AND id = $2 AND "
        "cups_cancel_wanted IS NOT NULL",
        {tenant, id});
    if (rows.empty()) {
        return std::nullopt;
    }
    return static_cast<int>(rows.integer(0, "cups_cancel_wanted"));
}

void Repository::want_cups_cancel(Transaction& tx,
                                  const core::TenantId& tenant,
                                  std::int64_t id,
                                  int cups_job_id) {
    tx.exec(
        "UPDATE print_jobs SET cups_cancel_wanted = $3, updated_at = now() WHERE tenant_id = $1 "
        "AND id = $2",
        {tenant, id, cups_job_id});
}

void Repository::cups_cancel_done(Transaction& tx,
                                  const core::TenantId& tenant,
                                  std::int64_t id,
                                  int cups_job_id) {
    tx.exec(
        "UPDATE print_jobs SET cups_cancel_wanted = NULL, updated_at = now() WHERE tenant_id = $1 "
        "AND id = $2 AND cups_cancel_wanted = $3",
        {tenant, id, cups_job_id});
}

}  // namespace riveredge::devices
