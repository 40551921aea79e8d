#pragma once

// CUPS through libcups, on worker threads of its own: libcups blocks and keeps per-thread state,
// so no call ever runs on an HTTP or executor thread. Every call opens its own connection to the
// configured server (a Unix socket path, `host` or `host:port`; empty: libcups' default, which
// honours CUPS_SERVER), with timeouts, and never blocks its caller beyond them.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace riveredge::devices {

/// IPP job states (RFC 8011 §5.3.7), as CUPS reports them.
enum class JobState {
    kPending = 3,
    kHeld = 4,
    kProcessing = 5,
    kStopped = 6,
    kCanceled = 7,
    kAborted = 8,
    kCompleted = 9,
};
/// Canceled, aborted or completed: CUPS will do nothing more with the job.
bool is_final(JobState state) noexcept;
/// `pending`, `held`, `processing`, `stopped`, `canceled`, `aborted`, `completed`.
const char* to_string(JobState state) noexcept;

struct CupsJob {
    int id = 0;
    std::string name;
    JobState state = JobState::kPending;
    std::vector<std::string> reasons;
    /// What the printer said while the job was on it (job-printer-state-message).
    std::string message;
    int impressions_completed = 0;
};

/// IPP printer states (RFC 8011 §5.4.12).
enum class PrinterState { kIdle = 3, kProcessing = 4, kStopped = 5 };

struct CupsPrinter {
    PrinterState state = PrinterState::kIdle;
    std::vector<std::string> reasons;
    std::string message;
    bool accepting_jobs = true;
    std::string make_and_model;
    std::vector<std::string> media_supported;
    std::string media_default;
    std::vector<std::string> sides_supported;
    std::vector<std::string> document_formats;
};

/// What a job asks of the printer; unset values are the queue's defaults.
struct JobOptions {
    int copies = 1;
    std::optional<std::string> media;
    /// IPP `sides`: one-sided, two-sided-long-edge or two-sided-short-edge.
    std::optional<std::string> sides;
};

/// A CUPS call that failed. `permanent` when CUPS refused the request itself (no such queue,
/// a format it cannot print, a queue rejecting jobs): trying again cannot help. Otherwise the
/// server could not be reached or failed, and a retry may succeed. `unreachable` when the server
/// itself did not answer (no connection, or no HTTP reply on it: a timeout, a connection closed
/// unanswered), whatever was asked: another call now would wait for its timeouts the same way.
class CupsError : public std::runtime_error {
public:
    CupsError(const std::string& message, bool permanent, bool unreachable = false)
        : std::runtime_error(message), permanent_(permanent), unreachable_(unreachable) {}
    bool permanent() const noexcept { return permanent_; }
    bool unreachable() const noexcept { return unreachable_; }

private:
    bool permanent_;
    bool unreachable_;
};

class CupsClient {
public:
    /// `server`: a socket path, `host` or `host:port`; empty for libcups' default.
    explicit CupsClient(std::string server, int workers = 2);
    ~CupsClient();
    CupsClient(const CupsClient&) = delete;
    CupsClient& operator=(const CupsClient&) = delete;

    /// The queue's state and capabilities; nullopt when CUPS has no such queue.
    std::optional<CupsPrinter> printer(const std::string& queue);
    /// Print-Job of `document` (MIME `format`) named `job_name`; the CUPS job id.
    int submit(const std::string& queue,
               const std::string& job_name,
               const std::string& document,
               const std::string& format,
               const JobOptions& options);
    /// The queue's job (of any age CUPS keeps) whose name starts with `name_prefix`.
    std::optional<CupsJob> find_job(const std::string& queue, const std::string& name_prefix);
    /// nullopt when CUPS no longer knows the job.
    std::optional<CupsJob> job(int job_id);
    /// Cancels the job; a job already finished is left as it is.
    void cancel(const std::string& queue, int job_id);

private:
    // Runs `work` on a worker and waits for it (up to the calls' own timeouts plus a margin).
    void on_worker(std::function<void()> work);
    void worker_loop();

    std::string server_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

}  // namespace riveredge::devices
