#pragma once

// A real CUPS scheduler for tests: a private cupsd (scripts/cups-server) in a temporary folder,
// reachable through its own Unix socket, with a virtual PDF printer (cups-pdf) writing into that
// folder; and a loopback listener standing in for a label printer's raw port (AppSocket/9100).

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace inngest_test {

class TempCups {
public:
    TempCups();
    ~TempCups();
    TempCups(const TempCups&) = delete;
    TempCups& operator=(const TempCups&) = delete;

    /// CUPS_SERVER for libcups: the socket path.
    const std::string& server() const noexcept { return socket_; }
    /// Where the virtual PDF printer writes.
    std::string pdf_dir() const { return dir_ + "/pdf"; }

    /// A queue printing to the virtual PDF printer.
    void add_pdf_queue(const std::string& name);
    /// A raw queue (bytes passed through untouched) to `device_uri` (socket://, ipp://).
    void add_raw_queue(const std::string& name, const std::string& device_uri);
    /// cupsdisable / cupsenable: a paused queue keeps its jobs pending.
    void pause(const std::string& name);
    void resume(const std::string& name);
    /// Jobs of the queue in CUPS' own listing (`lpstat -W all`), one line each, for asserting
    /// how many jobs CUPS received.
    std::vector<std::string> job_lines(const std::string& queue) const;
    /// The same for the jobs CUPS has not finished (pending, held or printing): none left means
    /// CUPS will send the queue's device nothing more.
    std::vector<std::string> unfinished_job_lines(const std::string& queue) const;
    /// The PDFs the virtual printer wrote whose file name contains `text`.
    std::vector<std::string> pdfs_containing(const std::string& text) const;

private:
    void run(const std::string& command) const;
    std::string dir_;
    std::string socket_;
};

/// One scheduler per test process, started on first use.
TempCups& shared_cups();

/// Accepts connections on 127.0.0.1 (port 9100 when free, else any) and keeps each connection's
/// bytes: what a label printer would have received, one entry per job.
class RawPrinterListener {
public:
    RawPrinterListener();
    ~RawPrinterListener();
    RawPrinterListener(const RawPrinterListener&) = delete;
    RawPrinterListener& operator=(const RawPrinterListener&) = delete;

    int port() const noexcept { return port_; }
    /// Waits until `count` connections have closed; the bytes of each.
    std::vector<std::string> wait_for(std::size_t count, std::chrono::milliseconds timeout) const;
    std::vector<std::string> received() const;

private:
    void serve();
    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<std::string> received_;
    std::thread thread_;
};

}  // namespace inngest_test
