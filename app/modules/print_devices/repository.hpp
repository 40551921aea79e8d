#pragma once

// Print devices' rows: printers with their health, and print jobs, as typed rows.

#include "core/auth/principal.hpp"
#include "core/db/database.hpp"
#include "core/db/list.hpp"
#include "core/db/row.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::devices {

struct PrinterRow {
    std::int64_t id = 0;
    std::string name;
    std::string site;
    std::string kind;
    std::string transport;
    std::optional<std::string> cups_queue;
    std::optional<std::string> ipp_uri;
    std::optional<std::string> agent_id;
    boost::json::object defaults;
    boost::json::object capabilities;
    std::vector<std::string> owners;
    std::string health;
    boost::json::array health_reasons;
    std::string health_message;
    int health_version = 0;
    std::optional<std::string> health_checked_at;
    std::optional<std::string> health_changed_at;
    std::string created_by;
    std::string created_at;
    std::string updated_at;

    /// The row, its health columns shown as one `health` object.
    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(PrinterRow,
                      (),
                      (id,
                       name,
                       site,
                       kind,
                       transport,
                       cups_queue,
                       ipp_uri,
                       agent_id,
                       defaults,
                       capabilities,
                       owners,
                       health,
                       health_reasons,
                       health_message,
                       health_version,
                       health_checked_at,
                       health_changed_at,
                       created_by,
                       created_at,
                       updated_at))

/// A printer as registered or edited (validated by the service).
struct PrinterFields {
    std::string name;
    std::string site;
    std::string kind;
    std::string transport;
    std::optional<std::string> cups_queue;
    std::optional<std::string> ipp_uri;
    std::optional<std::string> agent_id;
    boost::json::object defaults;
    std::vector<std::string> owners;
};

/// What a health check found.
struct Health {
    std::string state;
    boost::json::array reasons;
    std::string message;
    boost::json::object capabilities;
};

struct JobRow {
    std::int64_t id = 0;
    std::int64_t printer_id = 0;
    std::string source;
    std::optional<std::int64_t> render_id;
    std::string format;
    std::string title;
    std::optional<std::string> document_type;
    std::optional<std::string> document_id;
    boost::json::object options;
    std::string token;
    std::string status;
    std::optional<int> cups_job_id;
    boost::json::array state_reasons;
    std::string printer_message;
    std::optional<int> impressions;
    std::optional<std::string> error;
    bool cancel_requested = false;
    std::string deadline_at;
    bool deadline_passed = false;
    int seconds_left = 0;
    int submit_attempts = 0;
    std::optional<std::int64_t> reprint_of;
    std::string requested_by;
    std::string created_at;
    std::optional<std::string> submitted_at;
    std::optional<std::string> finished_at;

    bool finished() const;
    /// The row, its business document as one `document` object, without the worker's columns.
    boost::json::object to_json() const;
};
BOOST_DESCRIBE_STRUCT(JobRow,
                      (),
                      (id,
                       printer_id,
                       source,
                       render_id,
                       format,
                       title,
                       document_type,
                       document_id,
                       options,
                       token,
                       status,
                       cups_job_id,
                       state_reasons,
                       printer_message,
                       impressions,
                       error,
                       cancel_requested,
                       deadline_at,
                       deadline_passed,
                       seconds_left,
                       submit_attempts,
                       reprint_of,
                       requested_by,
                       created_at,
                       submitted_at,
                       finished_at))

/// A job asked for (validated by the service).
struct NewJob {
    std::int64_t printer_id = 0;
    std::string source;
    std::optional<std::int64_t> render_id;
    /// Raw bytes (source "raw").
    std::optional<std::string> payload;
    std::string format;
    std::string title;
    std::optional<std::string> document_type;
    std::optional<std::string> document_id;
    boost::json::object options;
    int deadline_seconds = 600;
    std::optional<std::int64_t> reprint_of;
    std::string requested_by;
    std::optional<std::string> idempotency_key;
};

extern const core::db::ListSpec kPrinterList;
extern const core::db::ListSpec kJobList;

class Repository {
public:
    explicit Repository(core::db::Pool& pool) : pool_(pool) {}
    core::db::Pool& pool() noexcept { return pool_; }

    /// The new printer's id, in the caller's transaction; DomainError 409 when the name is
    /// taken in the tenant or any printer has the queue.
    std::int64_t add_printer(core::db::Transaction& tx,
                             const core::TenantId& tenant,
                             const PrinterFields& fields,
                             const std::string& author);
    void update_printer(core::db::Transaction& tx,
                        const core::TenantId& tenant,
                        std::int64_t id,
                        const PrinterFields& fields);
    /// In the caller's transaction (`for_update` locks the row there) or in one of its own.
    std::optional<PrinterRow> printer(const core::db::ReadIn& in,
                                      const core::TenantId& tenant,
                                      std::int64_t id,
                                      bool for_update = false);
    std::vector<PrinterRow> printers(const core::TenantId& tenant);
    /// The page asked for, its filters applied (`kPrinterList`).
    core::db::Page<PrinterRow> list_printers(const core::TenantId& tenant,
                                             const core::db::ListRequest& page);
    /// False when jobs still refer to the printer.
    bool delete_printer(const core::TenantId& tenant, std::int64_t id);
    /// Records a health check; a changed state bumps `health_version` and `health_changed_at`.
    void record_health(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       std::int64_t id,
                       const Health& health,
                       bool changed);
    /// Every tenant with a printer (the reconciler's scope).
    std::vector<std::string> tenants_with_printers();

    /// The new job's id and whether it is new (false: the idempotency key was used before).
    std::pair<std::int64_t, bool> add_job(core::db::Transaction& tx,
                                          const core::TenantId& tenant,
                                          const NewJob& job,
                                          const std::string& token);
    std::optional<JobRow> job(core::db::Transaction& tx,
                              const core::TenantId& tenant,
                              std::int64_t id,
                              bool for_update);
    /// The raw bytes of a job of source "raw".
    std::optional<std::string> payload(core::db::Transaction& tx,
                                       const core::TenantId& tenant,
                                       std::int64_t id);
    /// The page asked for, its filters applied (`kJobList`).
    core::db::Page<JobRow> list_jobs(const core::TenantId& tenant,
                                     const core::db::ListRequest& page);

    void mark_submitting(core::db::Transaction& tx, const core::TenantId& tenant, std::int64_t id);
    /// The CUPS job id as soon as it is known, with the state CUPS reported.
    void record_submitted(core::db::Transaction& tx,
                          const core::TenantId& tenant,
                          std::int64_t id,
                          int cups_job_id,
                          const std::string& status);
    /// A poll's result; a final status also sets `finished_at`. Only a job not finished yet
    /// changes (a finished job's end stands); false when it had finished.
    bool record_state(core::db::Transaction& tx,
                      const core::TenantId& tenant,
                      std::int64_t id,
                      const std::string& status,
                      const boost::json::array& reasons,
                      const std::string& printer_message,
                      std::optional<int> impressions,
                      const std::optional<std::string>& error);
    void request_cancel(core::db::Transaction& tx, const core::TenantId& tenant, std::int64_t id);
    /// The CUPS job a failed job still wants cancelled in CUPS (saved with the failure, cleared
    /// once CUPS cancelled it), if any.
    std::optional<int> cups_cancel_wanted(core::db::Transaction& tx,
                                          const core::TenantId& tenant,
                                          std::int64_t id);
    void want_cups_cancel(core::db::Transaction& tx,
                          const core::TenantId& tenant,
                          std::int64_t id,
                          int cups_job_id);
    /// CUPS cancelled `cups_job_id`: no longer wanted.
    void cups_cancel_done(core::db::Transaction& tx,
                          const core::TenantId& tenant,
                          std::int64_t id,
                          int cups_job_id);
    bool has_unfinished_jobs(core::db::Transaction& tx,
                             const core::TenantId& tenant,
                             std::int64_t printer_id);

private:
    core::db::Pool& pool_;
};

}  // namespace riveredge::devices
