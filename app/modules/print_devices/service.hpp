#pragma once

// Print devices: a registry of each tenant's printers with their health, and print jobs sent to
// CUPS at most once by the print-job function, followed to the end or cancelled at a deadline.

#include "core/auth/principal.hpp"
#include "modules/print_devices/cups_client.hpp"
#include "modules/print_devices/repository.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <string>
#include <vector>

namespace riveredge::core {
class Capabilities;
}

namespace riveredge::devices {

/// A print job asked for (data: tenant_id, job_id); the print-job function sends it.
inline constexpr const char* kJobRequested = "print/job.requested";
/// Asks the health reconciler to check every tenant's printers now (it also runs each minute).
inline constexpr const char* kHealthCheckRequested = "print/printers.check-requested";
/// Raw documents (label printer languages such as ZPL) are small; larger ones are refused.
inline constexpr std::size_t kMaxRawBytes = 1024 * 1024;

class Service {
public:
    Service(Repository& repository,
            CupsClient& cups,
            core::Capabilities& capabilities,
            std::vector<std::string> failpoints);

    // The registry.
    PrinterRow add_printer(const core::Principal& who, const boost::json::object& body);
    PrinterRow update_printer(const core::Principal& who,
                              std::int64_t id,
                              const boost::json::object& body);
    PrinterRow printer(const core::TenantId& tenant, std::int64_t id);
    void delete_printer(const core::Principal& who, std::int64_t id);
    /// Reads the printer's state from CUPS now, records it, and notifies the owners when it
    /// changed to or from a problem. The printer as it is now.
    PrinterRow check_printer(const core::TenantId& tenant, std::int64_t id);
    /// The reconciler's work for one tenant: every printer checked; how many changed.
    int check_tenant(const core::TenantId& tenant);

    // Jobs.
    /// Records a job and announces it; the print-job function sends it. 202's body.
    JobRow request_job(const core::Principal& who, const boost::json::object& body);
    /// The job as it is now, read in a transaction of its own.
    JobRow current(const core::TenantId& tenant, std::int64_t id);
    /// The requester or an administrator: the job is cancelled in CUPS (or never sent).
    JobRow cancel_job(const core::Principal& who, std::int64_t id);
    /// A finished job printed again, as a new job; with an `idempotency_key` in `body`, a
    /// repeated reprint answers the job the first one made.
    JobRow reprint(const core::Principal& who, std::int64_t id, const boost::json::object& body);

    // The print-job function's steps.
    /// Sends the job to CUPS at most once: the job is marked `submitting` before CUPS is called,
    /// and a later attempt searches CUPS for the job's token before it sends anything again.
    /// {status, finished, seconds_left}, as `poll_step`.
    boost::json::object submit_step(const core::TenantId& tenant, std::int64_t id);
    /// Reads the job's state from CUPS and records it; cancels it in CUPS when a cancel was asked
    /// for or its deadline passed. {status, finished, seconds_left}.
    boost::json::object poll_step(const core::TenantId& tenant, std::int64_t id);
    /// The function failed for good: the job is marked failed (and cancelled in CUPS if there).
    void fail_step(const core::TenantId& tenant, std::int64_t id, const std::string& why);

    /// What the function's loop needs of a job: {status, finished, seconds_left}.
    static boost::json::object progress(const JobRow& row);

    Repository& repository() noexcept { return repository_; }
    CupsClient& cups() noexcept { return cups_; }

private:
    /// Reads one printer's state from CUPS, records it, and tells the owners of a change to or
    /// from a problem; whether the state changed. `cups_unreachable` is set when the CUPS server
    /// itself did not answer; when it is already set, CUPS is not asked again and the printer is
    /// offline as if it had been (one check of many printers waits for one server timeout).
    bool refresh_health(const core::TenantId& tenant,
                        const PrinterRow& row,
                        bool& cups_unreachable);
    JobRow require_job(core::db::Transaction& tx,
                       const core::TenantId& tenant,
                       std::int64_t id,
                       bool for_update);
    PrinterFields printer_fields(const core::Principal& who,
                                 const boost::json::object& body,
                                 const std::optional<PrinterRow>& existing);
    /// The health of a queue being registered: DomainError 422 when CUPS has no such queue,
    /// 503 when CUPS cannot be reached.
    Health queue_health(const std::string& queue);
    std::string load_document(const core::TenantId& tenant, const JobRow& job);
    /// Records CUPS' view of the job; the job as recorded.
    JobRow record_cups_state(const core::TenantId& tenant, const JobRow& job, const CupsJob& seen);
    void finish_failed(const core::TenantId& tenant, const JobRow& job, const std::string& why);
    void notify_job(const core::TenantId& tenant,
                    const JobRow& job,
                    const std::string& what,
                    const std::string& body);
    /// Cancels `cups_job_id` in CUPS for a job saved failed that wants it (outside any
    /// transaction), then saves that it is done. CUPS out of reach: throws, the want stays.
    void cancel_wanted(const core::TenantId& tenant,
                       std::int64_t id,
                       const std::string& queue,
                       int cups_job_id);
    void failpoint(const char* name) const;

    Repository& repository_;
    CupsClient& cups_;
    core::Capabilities& capabilities_;
    std::vector<std::string> failpoints_;
};

/// The health a CUPS queue's state stands for: ready, paused, offline, media_empty, error (or
/// missing when CUPS has no such queue).
Health health_of(const std::optional<CupsPrinter>& printer);

}  // namespace riveredge::devices
