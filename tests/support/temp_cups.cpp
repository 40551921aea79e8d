#include "support/temp_cups.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace inngest_test {
namespace {

std::string output_of(const std::string& command) {
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return out;
    }
    std::array<char, 4096> buffer{};
    while (const auto n = fread(buffer.data(), 1, buffer.size(), pipe)) {
        out.append(buffer.data(), n);
    }
    pclose(pipe);
    return out;
}

}  // namespace

TempCups::TempCups() {
    dir_ =
        (std::filesystem::temp_directory_path() / ("rv-cups-" + std::to_string(getpid()))).string();
    std::filesystem::remove_all(dir_);
    socket_ = dir_ + "/sock/cups.sock";
    run(std::string(PROJECT_SOURCE_DIR) + "/scripts/cups-server start '" + dir_ + "'");
}

TempCups::~TempCups() {
    const std::string command =
        std::string(PROJECT_SOURCE_DIR) + "/scripts/cups-server stop '" + dir_ + "'";
    (void)std::system(command.c_str());
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

void TempCups::run(const std::string& command) const {
    if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
        throw std::runtime_error("CUPS test set-up failed: " + command);
    }
}

// Queue names and URIs are the tests' own, never input: safe to put on a command line.
void TempCups::add_pdf_queue(const std::string& name) {
    const std::string uri =
        output_of(std::string(PROJECT_SOURCE_DIR) + "/scripts/cups-server pdf-uri '" + dir_ + "'");
    run("lpadmin -h '" + socket_ + "' -p '" + name + "' -E -v '" + uri.substr(0, uri.find('\n')) +
        "' -P /usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd");
}

void TempCups::add_raw_queue(const std::string& name, const std::string& device_uri) {
    run("lpadmin -h '" + socket_ + "' -p '" + name + "' -E -v '" + device_uri + "' -m raw");
}

void TempCups::pause(const std::string& name) {
    run("cupsdisable -h '" + socket_ + "' '" + name + "'");
}

void TempCups::resume(const std::string& name) {
    run("cupsenable -h '" + socket_ + "' '" + name + "'");
}

namespace {

// The lines of `lpstat -o` output that name one of the queue's jobs.
std::vector<std::string> lines_of_queue(const std::string& text, const std::string& queue) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        const auto line = text.substr(start, end == std::string::npos ? end : end - start);
        if (line.rfind(queue + "-", 0) == 0) {
            lines.push_back(line);
        }
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    return lines;
}

}  // namespace

std::vector<std::string> TempCups::job_lines(const std::string& queue) const {
    return lines_of_queue(
        output_of("lpstat -h '" + socket_ + "' -W all -o '" + queue + "' 2>/dev/null"), queue);
}

std::vector<std::string> TempCups::unfinished_job_lines(const std::string& queue) const {
    return lines_of_queue(
        output_of("lpstat -h '" + socket_ + "' -W not-completed -o '" + queue + "' 2>/dev/null"),
        queue);
}

std::vector<std::string> TempCups::pdfs_containing(const std::string& text) const {
    std::vector<std::string> out;
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(pdf_dir(), ignored)) {
        const auto name = entry.path().filename().string();
        if (name.find(text) != std::string::npos && entry.path().extension() == ".pdf") {
            out.push_back(entry.path().string());
        }
    }
    return out;
}

TempCups& shared_cups() {
    static TempCups cups;
    return cups;
}

RawPrinterListener::RawPrinterListener() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int yes = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(9100);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        address.sin_port = 0;
        if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            throw std::runtime_error("raw printer listener: cannot bind");
        }
    }
    socklen_t length = sizeof address;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    listen(listener_, 8);
    thread_ = std::thread([this] { serve(); });
}

RawPrinterListener::~RawPrinterListener() {
    stop_ = true;
    thread_.join();
    close(listener_);
}

void RawPrinterListener::serve() {
    while (!stop_) {
        pollfd waiting{listener_, POLLIN, 0};
        if (poll(&waiting, 1, 100) <= 0) {
            continue;
        }
        const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) {
            continue;
        }
        std::string bytes;
        std::array<char, 65536> buffer{};
        for (;;) {
            pollfd reading{client, POLLIN, 0};
            if (poll(&reading, 1, 100) == 0) {
                if (stop_) {
                    break;
                }
                continue;
            }
            const auto n = read(client, buffer.data(), buffer.size());
            if (n <= 0) {
                break;
            }
            bytes.append(buffer.data(), static_cast<std::size_t>(n));
        }
        close(client);
        std::lock_guard lock(mutex_);
        received_.push_back(std::move(bytes));
    }
}

std::vector<std::string> RawPrinterListener::received() const {
    std::lock_guard lock(mutex_);
    return received_;
}

std::vector<std::string> RawPrinterListener::wait_for(std::size_t count,
                                                      std::chrono::milliseconds timeout) const {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (received().size() >= count) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return received();
}

}  // namespace inngest_test
