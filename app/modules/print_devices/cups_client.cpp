#include "modules/print_devices/cups_client.hpp"

#include <cups/cups.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>

#include <unistd.h>

namespace riveredge::devices {
namespace {

// libcups waits this long for a connection, and this long for any reply, then gives up.
constexpr int kConnectTimeoutMs = 10000;
constexpr double kReplyTimeoutSeconds = 30.0;

struct HttpCloser {
    void operator()(http_t* http) const noexcept { httpClose(http); }
};
using Connection = std::unique_ptr<http_t, HttpCloser>;

struct IppDeleter {
    void operator()(ipp_t* ipp) const noexcept { ippDelete(ipp); }
};
using Ipp = std::unique_ptr<ipp_t, IppDeleter>;

int give_up(http_t*, void*) {
    return 0;
}

Connection connect(const std::string& server) {
    std::string host;
    int port = ippPort();
    if (server.empty()) {
        host = cupsServer();
    } else if (server.front() == '/') {
        host = server;
    } else if (const auto colon = server.rfind(':');
               colon != std::string::npos && server.find(']', colon) == std::string::npos) {
        host = server.substr(0, colon);
        port = std::atoi(server.c_str() + colon + 1);
    } else {
        host = server;
    }
    if (!host.empty() && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    Connection http(httpConnect2(host.c_str(), port, nullptr, AF_UNSPEC,
                                 HTTP_ENCRYPTION_IF_REQUESTED, 1, kConnectTimeoutMs, nullptr));
    if (!http) {
        throw CupsError("cannot reach the CUPS server" +
                            (server.empty() ? std::string() : " at " + server) + ": " +
                            std::strerror(errno),
                        false, true);
    }
    httpSetTimeout(http.get(), kReplyTimeoutSeconds, give_up, nullptr);
    return http;
}

std::string printer_uri(const std::string& queue) {
    char uri[HTTP_MAX_URI];
    httpAssembleURIf(HTTP_URI_CODING_ALL, uri, sizeof uri, "ipp", nullptr, "localhost", 0,
                     "/printers/%s", queue.c_str());
    return uri;
}

// Client errors are CUPS refusing this request; server errors and no reply may pass. No HTTP
// reply at all on `http` (a timeout, the connection closed unanswered) is the server not
// answering, not this request failing.
[[noreturn]] void fail(http_t* http, const std::string& what) {
    const ipp_status_t status = cupsLastError();
    const bool unreachable = httpGetStatus(http) == HTTP_STATUS_ERROR;
    const bool permanent =
        !unreachable && status >= IPP_STATUS_ERROR_BAD_REQUEST &&
        (status < IPP_STATUS_ERROR_INTERNAL || status == IPP_STATUS_ERROR_NOT_ACCEPTING_JOBS);
    throw CupsError(what + ": " + cupsLastErrorString(), permanent, unreachable);
}

// The target (printer-uri or job-uri) comes first after charset and language, as IPP wants.
Ipp request(ipp_op_t operation, const char* target, const std::string& uri) {
    Ipp ipp(ippNewRequest(operation));
    ippAddString(ipp.get(), IPP_TAG_OPERATION, IPP_TAG_URI, target, nullptr, uri.c_str());
    ippAddString(ipp.get(), IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", nullptr,
                 cupsUser());
    return ipp;
}

std::vector<std::string> strings(ipp_attribute_t* attribute) {
    std::vector<std::string> out;
    for (int i = 0; attribute != nullptr && i < ippGetCount(attribute); ++i) {
        if (const char* value = ippGetString(attribute, i, nullptr)) {
            out.emplace_back(value);
        }
    }
    return out;
}

std::string string_of(ipp_t* ipp, const char* name) {
    const char* value = ippGetString(ippFindAttribute(ipp, name, IPP_TAG_ZERO), 0, nullptr);
    return value != nullptr ? value : "";
}

void add_requested(ipp_t* ipp, const std::vector<const char*>& names) {
    ippAddStrings(ipp, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                  static_cast<int>(names.size()), nullptr, names.data());
}

const std::vector<const char*> kJobAttributes{"job-id",
                                              "job-name",
                                              "job-state",
                                              "job-state-reasons",
                                              "job-printer-state-message",
                                              "job-impressions-completed"};

// One job's attributes, from `first` up to the next separator (Get-Jobs lists several).
CupsJob job_from(ipp_t* response, ipp_attribute_t* first) {
    CupsJob job;
    for (ipp_attribute_t* a = first; a != nullptr && ippGetName(a) != nullptr;
         a = ippNextAttribute(response)) {
        const std::string name = ippGetName(a);
        const char* text = ippGetString(a, 0, nullptr);
        if (name == "job-id") {
            job.id = ippGetInteger(a, 0);
        } else if (name == "job-name") {
            job.name = text != nullptr ? text : "";
        } else if (name == "job-state") {
            job.state = static_cast<JobState>(ippGetInteger(a, 0));
        } else if (name == "job-state-reasons") {
            job.reasons = strings(a);
        } else if (name == "job-printer-state-message") {
            job.message = text != nullptr ? text : "";
        } else if (name == "job-impressions-completed") {
            job.impressions_completed = ippGetInteger(a, 0);
        }
    }
    return job;
}

}  // namespace

bool is_final(JobState state) noexcept {
    return state == JobState::kCanceled || state == JobState::kAborted ||
           state == JobState::kCompleted;
}

const char* to_string(JobState state) noexcept {
    switch (state) {
        case JobState::kPending:
            return "pending";
        case JobState::kHeld:
            return "held";
        case JobState::kProcessing:
            return "processing";
        case JobState::kStopped:
            return "stopped";
        case JobState::kCanceled:
            return "canceled";
        case JobState::kAborted:
            return "aborted";
        case JobState::kCompleted:
            return "completed";
    }
    return "unknown";
}

CupsClient::CupsClient(std::string server, int workers) : server_(std::move(server)) {
    for (int i = 0; i < workers; ++i) {
        workers_.emplace_back([this] { worker_loop(); });
    }
}

CupsClient::~CupsClient() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    ready_.notify_all();
    for (auto& worker : workers_) {
        worker.join();
    }
}

void CupsClient::worker_loop() {
    for (;;) {
        std::function<void()> work;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return;
            }
            work = std::move(queue_.front());
            queue_.pop_front();
        }
        work();
    }
}

void CupsClient::on_worker(std::function<void()> work) {
    // Every libcups call is bounded by the connection's timeouts, so waiting is bounded too.
    auto task = std::make_shared<std::packaged_task<void()>>(std::move(work));
    auto done = task->get_future();
    {
        std::lock_guard lock(mutex_);
        queue_.emplace_back([task] { (*task)(); });
    }
    ready_.notify_one();
    done.get();
}

std::optional<CupsPrinter> CupsClient::printer(const std::string& queue) {
    std::optional<CupsPrinter> out;
    on_worker([&] {
        const auto http = connect(server_);
        auto ipp = request(IPP_OP_GET_PRINTER_ATTRIBUTES, "printer-uri", printer_uri(queue));
        add_requested(ipp.get(),
                      {"printer-state", "printer-state-reasons", "printer-state-message",
                       "printer-is-accepting-jobs", "printer-make-and-model", "media-supported",
                       "media-default", "sides-supported", "document-format-supported"});
        Ipp response(cupsDoRequest(http.get(), ipp.release(), "/"));
        if (cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND) {
            return;
        }
        if (!response || cupsLastError() > IPP_STATUS_OK_CONFLICTING) {
            fail(http.get(), "CUPS could not describe queue " + queue);
        }
        CupsPrinter printer;
        ipp_t* r = response.get();
        printer.state = static_cast<PrinterState>(
            ippGetInteger(ippFindAttribute(r, "printer-state", IPP_TAG_ENUM), 0));
        printer.reasons = strings(ippFindAttribute(r, "printer-state-reasons", IPP_TAG_KEYWORD));
        printer.message = string_of(r, "printer-state-message");
        printer.accepting_jobs =
            ippGetBoolean(ippFindAttribute(r, "printer-is-accepting-jobs", IPP_TAG_BOOLEAN), 0) !=
            0;
        printer.make_and_model = string_of(r, "printer-make-and-model");
        printer.media_supported = strings(ippFindAttribute(r, "media-supported", IPP_TAG_ZERO));
        printer.media_default = string_of(r, "media-default");
        printer.sides_supported = strings(ippFindAttribute(r, "sides-supported", IPP_TAG_KEYWORD));
        printer.document_formats =
            strings(ippFindAttribute(r, "document-format-supported", IPP_TAG_MIMETYPE));
        out = std::move(printer);
    });
    return out;
}

int CupsClient::submit(const std::string& queue,
                       const std::string& job_name,
                       const std::string& document,
                       const std::string& format,
                       const JobOptions& options) {
    int job_id = 0;
    on_worker([&] {
        // libcups sends a file it can read itself (cupsPrintFile2: Create-Job, then the
        // document). A job whose document never arrived whole is not printed by CUPS, and the
        // token in its name lets the next attempt find it instead of sending a second job.
        std::string path =
            (std::filesystem::temp_directory_path() / "riveredge-print-XXXXXX").string();
        const int fd = mkstemp(path.data());
        if (fd < 0) {
            throw CupsError("cannot stage the document for CUPS: " + std::string(strerror(errno)),
                            false);
        }
        struct Unlink {
            std::string path;
            ~Unlink() { unlink(path.c_str()); }
        } staged{path};
        for (std::size_t written = 0; written < document.size();) {
            const auto n = write(fd, document.data() + written, document.size() - written);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                close(fd);
                throw CupsError("cannot stage the document for CUPS", false);
            }
            written += static_cast<std::size_t>(n);
        }
        close(fd);
        cups_option_t* list = nullptr;
        int count = 0;
        if (format == "application/vnd.cups-raw") {
            count = cupsAddOption("raw", "true", count, &list);
        }
        if (options.copies > 1) {
            count = cupsAddOption("copies", std::to_string(options.copies).c_str(), count, &list);
        }
        if (options.media) {
            count = cupsAddOption("media", options.media->c_str(), count, &list);
        }
        if (options.sides) {
            count = cupsAddOption("sides", options.sides->c_str(), count, &list);
        }
        const auto http = connect(server_);
        job_id =
            cupsPrintFile2(http.get(), queue.c_str(), path.c_str(), job_name.c_str(), count, list);
        cupsFreeOptions(count, list);
        if (job_id <= 0) {
            fail(http.get(), "CUPS did not take the job for queue " + queue);
        }
    });
    return job_id;
}

std::optional<CupsJob> CupsClient::find_job(const std::string& queue,
                                            const std::string& name_prefix) {
    std::optional<CupsJob> out;
    on_worker([&] {
        const auto http = connect(server_);
        auto ipp = request(IPP_OP_GET_JOBS, "printer-uri", printer_uri(queue));
        ippAddString(ipp.get(), IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", nullptr, "all");
        add_requested(ipp.get(), kJobAttributes);
        Ipp response(cupsDoRequest(http.get(), ipp.release(), "/"));
        if (cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND) {
            return;
        }
        if (!response || cupsLastError() > IPP_STATUS_OK_CONFLICTING) {
            fail(http.get(), "CUPS could not list the jobs of queue " + queue);
        }
        ipp_t* r = response.get();
        for (ipp_attribute_t* a = ippFirstAttribute(r); a != nullptr; a = ippNextAttribute(r)) {
            if (ippGetGroupTag(a) != IPP_TAG_JOB) {
                continue;
            }
            CupsJob job = job_from(r, a);
            if (job.name.empty()) {
                // CUPS hides job names from whoever does not own the job: searching blind
                // could send a job twice, so this is an error, not "not found".
                throw CupsError("CUPS does not show the names of queue " + queue +
                                    "'s jobs to this user; set JobPrivateValues so it does",
                                false);
            }
            if (job.name.rfind(name_prefix, 0) == 0) {
                out = std::move(job);
                return;
            }
        }
    });
    return out;
}

std::optional<CupsJob> CupsClient::job(int job_id) {
    std::optional<CupsJob> out;
    on_worker([&] {
        const auto http = connect(server_);
        auto ipp = request(IPP_OP_GET_JOB_ATTRIBUTES, "job-uri",
                           "ipp://localhost/jobs/" + std::to_string(job_id));
        add_requested(ipp.get(), kJobAttributes);
        Ipp response(cupsDoRequest(http.get(), ipp.release(), "/jobs/"));
        if (cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND) {
            return;
        }
        if (!response || cupsLastError() > IPP_STATUS_OK_CONFLICTING) {
            fail(http.get(), "CUPS could not describe job " + std::to_string(job_id));
        }
        ipp_t* r = response.get();
        for (ipp_attribute_t* a = ippFirstAttribute(r); a != nullptr; a = ippNextAttribute(r)) {
            if (ippGetGroupTag(a) == IPP_TAG_JOB) {
                out = job_from(r, a);
                return;
            }
        }
    });
    return out;
}

void CupsClient::cancel(const std::string& queue, int job_id) {
    on_worker([&] {
        const auto http = connect(server_);
        const ipp_status_t status = cupsCancelJob2(http.get(), queue.c_str(), job_id, 0);
        // "not possible": the job has already finished, which is what cancelling wants.
        if (status > IPP_STATUS_OK_CONFLICTING && status != IPP_STATUS_ERROR_NOT_POSSIBLE) {
            fail(http.get(), "CUPS could not cancel job " + std::to_string(job_id));
        }
    });
}

}  // namespace riveredge::devices
