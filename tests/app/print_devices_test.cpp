// Print devices against a real cupsd (a private scheduler per test process, scripts/cups-server):
// a rendered template printed on the virtual PDF printer and read back, ZPL bytes caught on a
// loopback "label printer" port, a paused queue, an unreachable printer cancelled at its
// deadline, health changes told to the owners, tenant isolation and bad input.

#include "app/app_under_test.hpp"
#include "app/approvals_support.hpp"
#include "app/command_output.hpp"
#include "core/text/base64.hpp"
#include "support/child_process.hpp"
#include "support/temp_cups.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace riveredge_test;
using inngest_test::RawPrinterListener;
using inngest_test::shared_cups;

namespace {

constexpr std::size_t kMaxRawBytesForTest = 1024 * 1024;

const char* kLabel = R"({"page":{"width":100,"height":60},"elements":[
  {"type":"text","x":5,"y":5,"width":90,"height":10,"text":"SHIP {{order}}","font_size":14}]})";

AppUnderTestOptions with_cups() {
    return AppUnderTestOptions{.cups_server = shared_cups().server()};
}

// A unique queue name per test for the tenant (queues outlive one test's app).
std::string queue_for(const std::string& tenant, const std::string& what) {
    static int counter = 0;
    return tenant + "-" + what + std::to_string(getpid()) + "_" + std::to_string(++counter);
}

// An object's keys, sorted: the API's fields, whatever order they come in.
std::vector<std::string> keys_of(const json::value& object) {
    std::vector<std::string> keys;
    for (const auto& field : object.as_object()) {
        keys.emplace_back(field.key());
    }
    std::sort(keys.begin(), keys.end());
    return keys;
}

std::int64_t add_printer(const AppUnderTest& t,
                         const std::string& admin,
                         const std::string& name,
                         const std::string& queue,
                         const std::string& extra = {}) {
    const auto r = t.call("POST", "/api/v1/print/printers", admin,
                          R"({"name":")" + name + R"(","site":"plant-1","cups_queue":")" + queue +
                              "\"" + extra + "}");
    INFO(json::serialize(r.body));
    REQUIRE(r.status == 201);
    return r.body.at("id").as_int64();
}

// A raw queue to `listener` (a label printer), registered for acme as a label printer.
struct LabelPrinter {
    std::int64_t id;
    std::string queue;
};
LabelPrinter label_printer_on(const AppUnderTest& t,
                              const std::string& admin,
                              const RawPrinterListener& listener,
                              const std::string& name,
                              const std::string& extra = {}) {
    const auto queue = queue_for("acme", "zpl");
    shared_cups().add_raw_queue(queue, "socket://127.0.0.1:" + std::to_string(listener.port()));
    return {add_printer(t, admin, name, queue, R"(,"kind":"label")" + extra), queue};
}

// acme's app with CUPS, alice its administrator, and a label printer on a raw queue to
// `label_printer` that carol owns.
struct CarolsLabelPrinter {
    explicit CarolsLabelPrinter(const std::string& name) {
        const auto registered =
            label_printer_on(t, admin, label_printer, name, R"(,"owners":["carol"])");
        printer = registered.id;
        queue = registered.queue;
    }

    RawPrinterListener label_printer;
    AppUnderTest t{with_cups()};
    std::string admin = t.token("acme", "alice", {"admin"});
    std::string carol = t.token("acme", "carol");
    std::int64_t printer = 0;
    std::string queue;
};

std::int64_t unread(const AppUnderTest& t, const std::string& token) {
    return t.call("GET", "/api/v1/messages/inbox/unread-count", token).body.at("unread").as_int64();
}

// The health reconciler, asked through its event (as its cron does each minute), run to its end.
void run_reconciler(AppUnderTest& t) {
    const auto sent = t.app().executor()->send(json::array{
        json::object{{"name", "print/printers.check-requested"}, {"data", json::object{}}}});
    REQUIRE(sent.has_value());
    REQUIRE(t.app().wait_settled(20s));
}

json::value wait_job(const AppUnderTest& t,
                     const std::string& token,
                     std::int64_t id,
                     const std::function<bool(const json::value&)>& done,
                     std::chrono::seconds timeout = 30s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    json::value last;
    while (std::chrono::steady_clock::now() < until) {
        const auto r = t.call("GET", "/api/v1/print/jobs/" + std::to_string(id), token);
        REQUIRE(r.status == 200);
        last = r.body;
        if (done(last)) {
            return last;
        }
        std::this_thread::sleep_for(50ms);
    }
    INFO("last seen: " << json::serialize(last));
    FAIL("the print job did not get there in time");
    return last;
}

bool has_status(const json::value& job, const char* status) {
    return job.at("status") == status;
}

std::string raw_job(std::int64_t printer, const std::string& bytes, const std::string& more = {}) {
    return R"({"printer_id":)" + std::to_string(printer) + R"(,"raw_base64":")" +
           riveredge::core::to_base64(bytes) + "\"" + more + "}";
}

std::int64_t published_render(const AppUnderTest& t,
                              const std::string& admin,
                              const std::string& order) {
    auto r = t.call("POST", "/api/v1/print/templates", admin,
                    R"({"key":"label","name":"Label","template":)" + std::string(kLabel) + "}");
    REQUIRE(r.status == 201);
    const auto template_id = r.body.at("id").as_int64();
    REQUIRE(
        t.call("POST", "/api/v1/print/templates/" + std::to_string(template_id) + "/publish", admin)
            .status == 201);
    r = t.call("POST", "/api/v1/print/renders", admin,
               R"({"template_id":)" + std::to_string(template_id) + R"(,"data":{"order":")" +
                   order + R"("}})");
    REQUIRE(r.status == 202);
    const auto render_id = r.body.at("id").as_int64();
    for (int i = 0; i < 400; ++i) {
        const auto s = t.call("GET", "/api/v1/print/renders/" + std::to_string(render_id), admin);
        if (s.body.at("status") == "done") {
            return render_id;
        }
        std::this_thread::sleep_for(25ms);
    }
    FAIL("the render did not finish");
    return 0;
}

// A "CUPS server" on a loopback port that takes each request and closes the connection without
// answering it: a server that does not answer, without making libcups wait for its reply timeout.
// Counts the connections. (A request is one connection: libcups connects again only when it could
// not send the request's headers, so they are read before closing.)
// A Unix socket in front of the test's cupsd that the app reaches CUPS through: the test can
// hold what the app sends (CUPS then answers nothing, as one that hangs) and let it go on.
class CupsRelay {
public:
    explicit CupsRelay(std::string target)
        : target_(std::move(target)),
          path_((std::filesystem::temp_directory_path() /
                 ("rv-cups-relay-" + std::to_string(getpid()) + ".sock"))
                    .string()) {
        std::filesystem::remove(path_);
        listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_un address = unix_address(path_);
        REQUIRE(bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(listen(listener_, 16) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~CupsRelay() {
        stop_ = true;
        thread_.join();
        for (auto& pump : pumps_) {
            pump.join();
        }
        close(listener_);
        std::filesystem::remove(path_);
    }
    CupsRelay(const CupsRelay&) = delete;
    CupsRelay& operator=(const CupsRelay&) = delete;

    const std::string& path() const { return path_; }
    void hold(bool on) { held_ = on; }
    /// Bytes the app sent while held that have not gone on to CUPS yet.
    std::size_t held_bytes() const { return held_bytes_; }

private:
    static sockaddr_un unix_address(const std::string& path) {
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
        return address;
    }
    static bool write_all(int fd, std::string_view bytes) {
        while (!bytes.empty()) {
            const auto n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    void serve() {
        while (!stop_) {
            pollfd waiting{listener_, POLLIN, 0};
            if (poll(&waiting, 1, 50) <= 0) {
                continue;
            }
            const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) {
                continue;
            }
            const int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const sockaddr_un address = unix_address(target_);
            if (connect(server, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
                close(server);
                close(client);
                continue;
            }
            pumps_.emplace_back([this, client, server] { pump(client, server); });
        }
    }
    void pump(int client, int server) {
        std::string pending;  // from the app, held
        std::array<char, 16384> buffer{};
        bool open = true;
        while (open && !stop_) {
            if (!held_ && !pending.empty()) {
                open = write_all(server, pending);
                held_bytes_ -= pending.size();
                pending.clear();
            }
            std::array<pollfd, 2> fds{pollfd{client, POLLIN, 0}, pollfd{server, POLLIN, 0}};
            if (poll(fds.data(), fds.size(), 50) <= 0) {
                continue;
            }
            if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                const auto n = read(client, buffer.data(), buffer.size());
                const std::string_view bytes(buffer.data(),
                                             n > 0 ? static_cast<std::size_t>(n) : 0);
                if (n <= 0) {
                    open = false;
                } else if (held_) {
                    pending.append(bytes);
                    held_bytes_ += bytes.size();
                } else {
                    open = write_all(server, bytes);
                }
            }
            if (open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                const auto n = read(server, buffer.data(), buffer.size());
                open = n > 0 && write_all(client, std::string_view(buffer.data(),
                                                                   static_cast<std::size_t>(n)));
            }
        }
        held_bytes_ -= pending.size();
        close(client);
        close(server);
    }

    std::string target_;
    std::string path_;
    int listener_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<bool> held_{false};
    std::atomic<std::size_t> held_bytes_{0};
    std::vector<std::thread> pumps_;
    std::thread thread_;
};

// Calls the print-job function's failure handler for `job_id` as the executor would, without
// Catch's assertions (it runs on a thread of its own): the HTTP status, 0 when unanswered.
int fail_job_through_handler(const AppUnderTest& t, std::int64_t job_id) {
    inngest_test::CallBuilder failure;
    failure.fn_slug = "riveredge-flow-print-job-failure";
    failure.run_id = "01JTESTRUNFAIL" + std::to_string(job_id);
    failure.event = json::object{
        {"name", "inngest/function.failed"},
        {"data",
         json::object{{"function_id", "riveredge-flow-print-job"},
                      {"run_id", "01JTESTRUN0000000000000002"},
                      {"error", json::object{{"name", "Error"}, {"message", "call timed out"}}},
                      {"event", json::object{{"name", "print/job.requested"},
                                             {"data", json::object{{"tenant_id", "acme"},
                                                                   {"job_id", job_id}}}}}}}};
    const auto body = failure.body();
    inngest::detail::OutboundRequest request{"POST",
                                             "http://127.0.0.1:" + std::to_string(t.port()) +
                                                 "/api/inngest?fnId=" + failure.fn_slug +
                                                 "&stepId=step",
                                             {{"Content-Type", "application/json"}},
                                             body,
                                             std::chrono::seconds(90),
                                             std::nullopt};
    request.headers.emplace_back(
        "X-Inngest-Signature",
        inngest::detail::sign_body(inngest::detail::SigningKey::parse(kExecutorKey), body,
                                   std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count()));
    const auto reply = inngest::detail::send_http(request);
    return reply ? reply->status : 0;
}

// Submits a file to `queue` straight through the test's cupsd (not through the app), named
// `name`: its CUPS job id.
int lp_job(const std::string& queue, const std::string& name) {
    const auto file =
        std::filesystem::temp_directory_path() / ("rv-lp-" + std::to_string(getpid()) + ".zpl");
    write_file(file.string(), "^XA^XZ");
    const auto output = command_output("lp -h '" + shared_cups().server() + "' -d '" + queue +
                                       "' -t '" + name + "' '" + file.string() + "'");
    std::filesystem::remove(file);
    const auto at = output.find(queue + "-");
    REQUIRE(at != std::string::npos);
    return std::stoi(output.substr(at + queue.size() + 1));
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

class UnansweringServer {
public:
    UnansweringServer() {
        listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        socklen_t length = sizeof address;
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
        REQUIRE(listen(listener_, 16) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~UnansweringServer() {
        stop_ = true;
        thread_.join();
        close(listener_);
    }
    UnansweringServer(const UnansweringServer&) = delete;
    UnansweringServer& operator=(const UnansweringServer&) = delete;

    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    /// The connections accepted so far (each answered call has returned after its close).
    int connections() const { return connections_; }

private:
    void serve() {
        while (!stop_) {
            pollfd waiting{listener_, POLLIN, 0};
            if (poll(&waiting, 1, 50) <= 0) {
                continue;
            }
            const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) {
                continue;
            }
            ++connections_;
            std::string request;
            std::array<char, 4096> buffer{};
            while (request.find("\r\n\r\n") == std::string::npos) {
                pollfd reading{client, POLLIN, 0};
                if (poll(&reading, 1, 5000) <= 0) {
                    break;
                }
                const auto n = read(client, buffer.data(), buffer.size());
                if (n <= 0) {
                    break;
                }
                request.append(buffer.data(), static_cast<std::size_t>(n));
            }
            close(client);
        }
    }

    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::thread thread_;
};

}  // namespace

TEST_CASE("print devices: a rendered template prints on the virtual PDF printer",
          "[app][print_devices]") {
    AppUnderTest t(with_cups());
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto queue = queue_for("acme", "pdf");
    shared_cups().add_pdf_queue(queue);

    const auto printer = add_printer(t, admin, "Office PDF", queue, R"(,"defaults":{"copies":1})");
    const auto described =
        t.call("GET", "/api/v1/print/printers/" + std::to_string(printer), admin);
    // A printer shows its health as one object; the check counter stays inside.
    CHECK(keys_of(described.body) ==
          std::vector<std::string>{"agent_id", "capabilities", "created_at", "created_by",
                                   "cups_queue", "defaults", "health", "id", "ipp_uri", "kind",
                                   "name", "owners", "site", "transport", "updated_at"});
    CHECK(keys_of(described.body.at("health")) ==
          std::vector<std::string>{"changed_at", "checked_at", "message", "reasons", "state"});
    CHECK(described.body.at("ipp_uri").is_null());
    CHECK(described.body.at("defaults") == json::parse(R"({"copies":1})"));
    CHECK(described.body.at("health").at("state") == "ready");
    CHECK(described.body.at("capabilities").at("make_and_model").as_string().find("PDF") !=
          json::string::npos);
    CHECK(!described.body.at("capabilities").at("media_supported").as_array().empty());

    const auto render_id = published_render(t, admin, "SO-4711");
    const auto asked = t.call(
        "POST", "/api/v1/print/jobs", admin,
        R"({"printer_id":)" + std::to_string(printer) + R"(,"render_id":)" +
            std::to_string(render_id) +
            R"(,"title":"shipping label","document":{"type":"sales_order","id":"SO-4711"}})");
    INFO(json::serialize(asked.body));
    REQUIRE(asked.status == 202);
    const auto job_id = asked.body.at("id").as_int64();
    const auto done = wait_job(t, admin, job_id, [](const json::value& job) {
        return has_status(job, "completed") || has_status(job, "failed");
    });
    REQUIRE(done.at("status") == "completed");
    CHECK(done.at("cups_job_id").is_int64());
    // A job shows its business document as one object; its token and deadline arithmetic are
    // the worker's.
    CHECK(keys_of(done) ==
          std::vector<std::string>{"cancel_requested", "created_at",   "cups_job_id",
                                   "deadline_at",      "document",     "error",
                                   "finished_at",      "format",       "id",
                                   "impressions",      "options",      "printer_id",
                                   "printer_message",  "render_id",    "reprint_of",
                                   "requested_by",     "source",       "state_reasons",
                                   "status",           "submitted_at", "title"});
    CHECK(done.at("document") == json::parse(R"({"type":"sales_order","id":"SO-4711"})"));
    CHECK(done.at("reprint_of").is_null());
    CHECK(done.at("error").is_null());
    CHECK(done.at("finished_at").is_string());

    // The virtual printer wrote one PDF for this job (named after its CUPS job), with our text.
    std::vector<std::string> files;
    for (int i = 0; i < 100 && files.empty(); ++i) {
        files = shared_cups().pdfs_containing(
            "job_" + std::to_string(done.at("cups_job_id").as_int64()) + ".pdf");
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(files.size() == 1);
    // cups-pdf prints through PostScript and Ghostscript, which turns the text into Type 3
    // glyphs that pdftotext cannot read: the page is checked for its title and for ink instead.
    const auto info = command_output("pdfinfo '" + files[0] + "'");
    CHECK(info.find("shipping label") != std::string::npos);
    CHECK(info.find("Pages:           1") != std::string::npos);
    const auto page = files[0] + ".pgm";
    command_output("pdftoppm -r 50 -gray -singlefile '" + files[0] + "' '" + files[0] + "'");
    std::ifstream image(page, std::ios::binary);
    std::string magic;
    int width = 0;
    int height = 0;
    int max = 0;
    image >> magic >> width >> height >> max;
    image.get();
    std::string pixels(static_cast<std::size_t>(width) * height, '\0');
    image.read(pixels.data(), static_cast<std::streamsize>(pixels.size()));
    REQUIRE(magic == "P5");
    const auto dark = std::count_if(pixels.begin(), pixels.end(),
                                    [](char c) { return static_cast<unsigned char>(c) < 128; });
    // "SHIP SO-4711" at 14 pt is a few hundred dark pixels at 50 dpi; a blank page has none.
    CHECK(dark > 50);
    CHECK(dark < 5000);

    // Job history per business document and per printer.
    const auto by_document =
        t.call("GET", "/api/v1/print/jobs?document_type=sales_order&document_id=SO-4711", admin);
    REQUIRE(by_document.status == 200);
    CHECK(by_document.body.at("total") == 1);
    CHECK(by_document.body.at("items").at(0).at("id") == job_id);
    CHECK(by_document.body.at("items").at(0) == done);
    CHECK(t.call("GET", "/api/v1/print/jobs?printer_id=" + std::to_string(printer), admin)
              .body.at("total") == 1);
    CHECK(t.call("GET", "/api/v1/print/jobs?document_type=sales_order&document_id=SO-1", admin)
              .body.at("total") == 0);
}

TEST_CASE("print devices: ZPL reaches a raw label printer byte for byte, and reprints",
          "[app][print_devices]") {
    RawPrinterListener label_printer;
    AppUnderTest t(with_cups());
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto [printer, queue] = label_printer_on(t, admin, label_printer, "Label 1");

    // Every byte value, so nothing on the way may treat the document as text.
    std::string zpl = "^XA^FO50,50^A0N,40,40^FDSO-4711^FS^XZ\n";
    for (int byte = 0; byte < 256; ++byte) {
        zpl.push_back(static_cast<char>(byte));
    }
    const auto asked = t.call("POST", "/api/v1/print/jobs", bob, raw_job(printer, zpl));
    INFO(json::serialize(asked.body));
    REQUIRE(asked.status == 202);
    const auto job_id = asked.body.at("id").as_int64();
    const auto done = wait_job(t, bob, job_id, [](const json::value& job) {
        return has_status(job, "completed") || has_status(job, "failed");
    });
    REQUIRE(done.at("status") == "completed");
    const auto received = label_printer.wait_for(1, 10s);
    REQUIRE(received.size() == 1);
    CHECK(received[0] == zpl);

    // A reprint is a new job with the same bytes; the original is untouched.
    const auto again =
        t.call("POST", "/api/v1/print/jobs/" + std::to_string(job_id) + "/reprint", bob);
    REQUIRE(again.status == 202);
    CHECK(again.body.at("reprint_of") == job_id);
    const auto second = again.body.at("id").as_int64();
    CHECK(second != job_id);
    wait_job(t, bob, second, [](const json::value& job) { return has_status(job, "completed"); });
    const auto both = label_printer.wait_for(2, 10s);
    REQUIRE(both.size() == 2);
    CHECK(both[1] == zpl);

    // A reprint retried with its idempotency key (a client whose first answer timed out) is the
    // same job, sent to CUPS once.
    const auto reprint_path = "/api/v1/print/jobs/" + std::to_string(job_id) + "/reprint";
    const auto keyed = t.call("POST", reprint_path, bob, R"({"idempotency_key":"reprint-1"})");
    REQUIRE(keyed.status == 202);
    const auto retried = t.call("POST", reprint_path, bob, R"({"idempotency_key":"reprint-1"})");
    REQUIRE(retried.status == 202);
    CHECK(retried.body.at("id") == keyed.body.at("id"));
    CHECK(retried.body.at("reprint_of") == job_id);
    wait_job(t, bob, keyed.body.at("id").as_int64(),
             [](const json::value& job) { return has_status(job, "completed"); });
    REQUIRE(t.app().wait_settled(20s));
    CHECK(shared_cups().job_lines(queue).size() == 3);
    CHECK(label_printer.wait_for(3, 10s).size() == 3);
    CHECK(t.call("GET", "/api/v1/print/jobs?printer_id=" + std::to_string(printer), bob)
              .body.at("total") == 3);
    // The key names that reprint: another job's reprint under it is refused.
    CHECK(t.call("POST", "/api/v1/print/jobs/" + std::to_string(second) + "/reprint", bob,
                 R"({"idempotency_key":"reprint-1"})")
              .status == 409);
    // Finished jobs cannot be cancelled; running jobs cannot be reprinted.
    CHECK(t.call("POST", "/api/v1/print/jobs/" + std::to_string(job_id) + "/cancel", bob).status ==
          409);
}

TEST_CASE(
    "print devices: a paused queue keeps the job pending, tells the owners, and prints "
    "on resume",
    "[app][print_devices]") {
    CarolsLabelPrinter setup("Label 2");
    auto& [label_printer, t, admin, carol, printer, queue] = setup;

    shared_cups().pause(queue);
    // The reconciler (asked through its event, as its cron does each minute) finds the printer
    // paused and tells its owner, once.
    run_reconciler(t);
    const auto checked = t.call("GET", "/api/v1/print/printers/" + std::to_string(printer), admin);
    REQUIRE(checked.status == 200);
    CHECK(checked.body.at("health").at("state") == "paused");
    const auto& reasons = checked.body.at("health").at("reasons").as_array();
    CHECK(std::find(reasons.begin(), reasons.end(), json::value("paused")) != reasons.end());
    CHECK(t.wait_unread(carol, 1));
    // Checked again, still paused: no second notice.
    run_reconciler(t);
    CHECK(t.call("GET", "/api/v1/print/printers/" + std::to_string(printer), admin)
              .body.at("health")
              .at("state") == "paused");
    CHECK(unread(t, carol) == 1);

    const auto asked = t.call("POST", "/api/v1/print/jobs", carol, raw_job(printer, "^XA^XZ"));
    REQUIRE(asked.status == 202);
    const auto job_id = asked.body.at("id").as_int64();
    const auto pending = wait_job(
        t, carol, job_id, [](const json::value& job) { return has_status(job, "pending"); });
    CHECK(pending.at("cups_job_id").is_int64());
    // The signal that a held job stays held: the job's run has polled CUPS again since it saw
    // the job pending, and the app has nothing else in flight. CUPS still holds the job.
    const auto polls = [&t] {
        int count = 0;
        for (const auto& run : t.app().executor()->runs("riveredge-flow-print-job")) {
            for (const auto& step : run.history) {
                count += step.name.rfind("poll-", 0) == 0 ? 1 : 0;
            }
        }
        return count;
    };
    const int polls_seen = polls();
    for (int i = 0; i < 800 && polls() <= polls_seen; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    REQUIRE(polls() > polls_seen);
    REQUIRE(t.app().wait_settled(20s));
    CHECK(shared_cups().unfinished_job_lines(queue).size() == 1);
    CHECK(t.call("GET", "/api/v1/print/jobs/" + std::to_string(job_id), carol).body.at("status") ==
          "pending");
    CHECK(label_printer.received().empty());

    shared_cups().resume(queue);
    wait_job(t, carol, job_id, [](const json::value& job) { return has_status(job, "completed"); });
    CHECK(label_printer.wait_for(1, 10s).size() == 1);
    CHECK(t.call("POST", "/api/v1/print/printers/" + std::to_string(printer) + "/check", admin)
              .body.at("health")
              .at("state") == "ready");
    CHECK(t.wait_unread(carol, 2));
}

TEST_CASE(
    "print devices: a health change whose save failed does not use up the notice of a later "
    "change",
    "[app][print_devices]") {
    CarolsLabelPrinter setup("Label 5");
    auto& [label_printer, t, admin, carol, printer, queue] = setup;
    const auto check = [&] {
        return t.call("POST", "/api/v1/print/printers/" + std::to_string(printer) + "/check",
                      admin);
    };
    REQUIRE(check().body.at("health").at("state") == "ready");
    // The first change's save fails after its notice went out (as a crash in between would).
    riveredge_test::approvals::fail_first_update(t, "health_save_fails", "print_printers",
                                                 "NEW.health <> OLD.health");
    shared_cups().pause(queue);
    CHECK(check().status == 500);
    REQUIRE(t.wait_unread(carol, 1));
    shared_cups().resume(queue);
    REQUIRE(check().body.at("health").at("state") == "ready");  // as recorded: no change
    // A later outage is a change of its own: its owners hear of it.
    shared_cups().pause(queue);
    REQUIRE(check().body.at("health").at("state") == "paused");
    CHECK(t.wait_unread(carol, 2));
    int paused = 0;
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", carol);
    for (const auto& item : inbox.body.at("items").as_array()) {
        paused += item.at("subject").as_string().find("is paused") != json::string::npos ? 1 : 0;
    }
    CHECK(paused == 2);
}

TEST_CASE(
    "print devices: a job cancelled in CUPS by hand whose save fails until its deadline has "
    "passed is told of its end once",
    "[app][print_devices]") {
    AppUnderTest t(with_cups());
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto dave = t.token("acme", "dave");
    const auto queue = queue_for("acme", "byhand");
    // Nothing listens there: CUPS' backend retries for ever and the job stays "processing".
    shared_cups().add_raw_queue(queue,
                                "socket://127.0.0.1:" + std::to_string(inngest_test::free_port()));
    const auto printer = add_printer(t, admin, "Dock", queue);
    // Saving the job "canceled" fails until its deadline has passed: the poll that saw it so
    // told its end, and its retries run after the deadline.
    {
        riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
        riveredge::core::db::transact(
            owner, std::nullopt, [](riveredge::core::db::Transaction& tx) {
                tx.exec(
                    "CREATE FUNCTION refuse_early_cancel() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'test: the save fails'; END $$");
                tx.exec(
                    "CREATE TRIGGER refuse_early_cancel BEFORE UPDATE ON print_jobs FOR EACH ROW "
                    "WHEN (NEW.status = 'canceled' AND now() < NEW.deadline_at) EXECUTE FUNCTION "
                    "refuse_early_cancel()");
            });
    }
    const auto asked = t.call("POST", "/api/v1/print/jobs", dave,
                              raw_job(printer, "^XA^XZ", R"(,"deadline_seconds":8)"));
    REQUIRE(asked.status == 202);
    const auto job_id = asked.body.at("id").as_int64();
    const auto processing = wait_job(
        t, dave, job_id, [](const json::value& job) { return has_status(job, "processing"); });
    REQUIRE(processing.at("cups_job_id").is_int64());
    command_output("cancel -h '" + shared_cups().server() + "' " +
                   std::to_string(processing.at("cups_job_id").as_int64()));
    const auto ended = wait_job(
        t, dave, job_id,
        [](const json::value& job) {
            return has_status(job, "failed") || has_status(job, "canceled");
        },
        60s);
    INFO(json::serialize(ended));
    REQUIRE(t.app().wait_settled(20s));
    // The requester (not an owner) heard of the job's end once.
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", dave).body.at("items");
    INFO(json::serialize(inbox));
    CHECK(inbox.as_array().size() == 1);
}

TEST_CASE(
    "print devices: a printer that cannot be reached is cancelled at the job's deadline "
    "and its owners are told",
    "[app][print_devices]") {
    AppUnderTest t(with_cups());
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto dave = t.token("acme", "dave");
    const auto queue = queue_for("acme", "gone");
    // Nothing listens there: CUPS' backend retries for ever and the job stays "processing".
    const int closed_port = inngest_test::free_port();
    shared_cups().add_raw_queue(queue, "socket://127.0.0.1:" + std::to_string(closed_port));
    const auto printer = add_printer(t, admin, "Warehouse", queue, R"(,"owners":["alice"])");

    const auto asked = t.call("POST", "/api/v1/print/jobs", dave,
                              raw_job(printer, "^XA^XZ", R"(,"deadline_seconds":6)"));
    REQUIRE(asked.status == 202);
    const auto job_id = asked.body.at("id").as_int64();
    wait_job(t, dave, job_id, [](const json::value& job) { return has_status(job, "processing"); });
    // While CUPS retries, the printer shows as offline (once the backend has tried) and its
    // owner is told.
    json::value checked;
    for (int i = 0; i < 100; ++i) {
        checked =
            t.call("POST", "/api/v1/print/printers/" + std::to_string(printer) + "/check", admin)
                .body;
        if (checked.at("health").at("state") == "offline") {
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    CHECK(checked.at("health").at("state") == "offline");
    for (int i = 0; i < 200 && unread(t, admin) < 1; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    CHECK(unread(t, admin) >= 1);
    const auto failed = wait_job(
        t, dave, job_id, [](const json::value& job) { return has_status(job, "failed"); }, 40s);
    CHECK(failed.at("error").as_string().find("deadline") != json::string::npos);
    CHECK(failed.at("error").as_string().find("cancelled in CUPS") != json::string::npos);
    REQUIRE(failed.at("cups_job_id").is_int64());
    // CUPS itself has the job cancelled, so it can never print late.
    const auto lines = shared_cups().job_lines(queue);
    REQUIRE(lines.size() == 1);
    const auto cups_state = command_output("lpstat -h '" + shared_cups().server() +
                                           "' -W not-completed -o '" + queue + "'");
    CHECK(cups_state.find(queue) == std::string::npos);
    // The requester and the printer's owner are told.
    // (At least: the minute's health check may also say the printer is back.)
    CHECK(t.wait_unread(dave, 1));
    for (int i = 0; i < 200 && unread(t, admin) < 2; ++i) {
        std::this_thread::sleep_for(25ms);
    }
    CHECK(unread(t, admin) >= 2);
}

TEST_CASE("print devices: tenants, roles and bad input are refused precisely",
          "[app][print_devices]") {
    AppUnderTest t(with_cups());
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");
    const auto globex = t.token("globex", "gina", {"admin"});
    const auto queue = queue_for("acme", "iso");
    shared_cups().add_raw_queue(queue, "socket://127.0.0.1:9");
    const auto printer = add_printer(t, admin, "Iso", queue);

    // Registering: administrators only, the tenant's own queue names, queues CUPS has.
    CHECK(t.call("POST", "/api/v1/print/printers", bob,
                 R"({"name":"x","cups_queue":")" + queue + "\"}")
              .status == 403);
    auto r = t.call("POST", "/api/v1/print/printers", globex,
                    R"({"name":"stolen","cups_queue":")" + queue + "\"}");
    CHECK(r.status == 422);
    CHECK(r.body.at("error").at("details").at("fields").as_object().contains("cups_queue"));
    r = t.call("POST", "/api/v1/print/printers", admin,
               R"({"name":"nowhere","cups_queue":"acme-not_there"})");
    CHECK(r.status == 422);
    CHECK(r.body.at("error")
              .at("details")
              .at("fields")
              .at("cups_queue")
              .as_string()
              .find("no queue") != json::string::npos);
    r = t.call("POST", "/api/v1/print/printers", admin,
               R"({"name":"Iso","cups_queue":")" + queue + "\"}");
    CHECK(r.status == 409);
    // CUPS ignores case in queue names: tenant "Acme" cannot take acme's queue as "Acme-...".
    const auto capital = t.token("Acme", "eve", {"admin"});
    r = t.call("POST", "/api/v1/print/printers", capital,
               R"({"name":"Iso","cups_queue":"A)" + queue.substr(1) + "\"}");
    CHECK(r.status == 409);
    r = t.call(
        "POST", "/api/v1/print/printers", admin,
        R"({"name":"bad","kind":"plotter","transport":"fax","defaults":{"copies":0,"staple":true}})");
    CHECK(r.status == 422);
    const auto& fields = r.body.at("error").at("details").at("fields").as_object();
    CHECK(fields.contains("kind"));
    CHECK(fields.contains("transport"));
    CHECK(fields.contains("defaults.copies"));
    CHECK(fields.contains("defaults.staple"));
    // A site agent is modelled: it registers, but cannot print yet.
    r = t.call("POST", "/api/v1/print/printers", admin,
               R"({"name":"Remote","transport":"agent","agent_id":"plant-2-agent"})");
    REQUIRE(r.status == 201);
    const auto agent_printer = r.body.at("id").as_int64();
    CHECK(t.call("POST", "/api/v1/print/jobs", bob, raw_job(agent_printer, "x")).status == 422);
    CHECK(t.call("POST", "/api/v1/print/printers", admin, "{not json").status == 400);

    // Another tenant sees nothing of ours and cannot print on it.
    CHECK(t.call("GET", "/api/v1/print/printers/" + std::to_string(printer), globex).status == 404);
    CHECK(t.call("GET", "/api/v1/print/printers", globex).body.at("total") == 0);
    CHECK(t.call("POST", "/api/v1/print/jobs", globex, raw_job(printer, "x")).status == 404);

    // Jobs: exactly one document, sizes, deadlines, options, render state.
    r = t.call("POST", "/api/v1/print/jobs", bob,
               R"({"printer_id":)" + std::to_string(printer) + "}");
    CHECK(r.status == 422);
    CHECK(t.call("POST", "/api/v1/print/jobs", bob,
                 R"({"printer_id":)" + std::to_string(printer) +
                     R"(,"render_id":1,"raw_base64":"eA=="})")
              .status == 422);
    CHECK(t.call("POST", "/api/v1/print/jobs", bob,
                 raw_job(printer, std::string(kMaxRawBytesForTest + 1, 'x')))
              .status == 422);
    CHECK(t.call("POST", "/api/v1/print/jobs", bob,
                 R"({"printer_id":)" + std::to_string(printer) + R"(,"raw_base64":"%%%"})")
              .status == 422);
    r = t.call("POST", "/api/v1/print/jobs", bob,
               raw_job(printer, "x",
                       R"(,"deadline_seconds":1,"options":{"copies":1000,"duplex":"maybe"})"));
    CHECK(r.status == 422);
    const auto& job_fields = r.body.at("error").at("details").at("fields").as_object();
    CHECK(job_fields.contains("deadline_seconds"));
    CHECK(job_fields.contains("options.copies"));
    CHECK(job_fields.contains("options.duplex"));
    CHECK(t.call("POST", "/api/v1/print/jobs", bob,
                 R"({"printer_id":)" + std::to_string(printer) + R"(,"render_id":999})")
              .status == 404);
    CHECK(t.call("GET", "/api/v1/print/jobs?printer_id=1%27%3B", bob).status == 422);
    // Nothing refused left a job behind.
    CHECK(t.call("GET", "/api/v1/print/jobs", admin).body.at("total") == 0);

    // A job of bob's: globex cannot see it, carol cannot cancel it, an administrator can.
    r = t.call("POST", "/api/v1/print/jobs", bob,
               raw_job(printer, "x", R"(,"idempotency_key":"order-1")"));
    REQUIRE(r.status == 202);
    const auto job_id = r.body.at("id").as_int64();
    CHECK(t.call("POST", "/api/v1/print/jobs", bob,
                 raw_job(printer, "x", R"(,"idempotency_key":"order-1")"))
              .body.at("id") == job_id);
    CHECK(t.call("GET", "/api/v1/print/jobs/" + std::to_string(job_id), globex).status == 404);
    CHECK(
        t.call("POST", "/api/v1/print/jobs/" + std::to_string(job_id) + "/cancel", globex).status ==
        404);
    const auto carol = t.token("acme", "carol");
    CHECK(
        t.call("POST", "/api/v1/print/jobs/" + std::to_string(job_id) + "/cancel", carol).status ==
        403);
    CHECK(t.call("POST", "/api/v1/print/jobs/" + std::to_string(job_id) + "/reprint", bob).status ==
          409);
    // Its printer cannot move to another queue (or transport) while the job is unfinished.
    CHECK(t.call("PUT", "/api/v1/print/printers/" + std::to_string(printer), admin,
                 R"({"transport":"agent","agent_id":"plant-9"})")
              .status == 409);
    const auto cancelled =
        t.call("POST", "/api/v1/print/jobs/" + std::to_string(job_id) + "/cancel", admin);
    REQUIRE(cancelled.status == 200);
    wait_job(t, bob, job_id, [](const json::value& job) { return has_status(job, "canceled"); });
    // A printer with jobs in its history stays.
    CHECK(t.call("DELETE", "/api/v1/print/printers/" + std::to_string(printer), admin).status ==
          409);
    CHECK(t.call("DELETE", "/api/v1/print/printers/" + std::to_string(agent_printer), bob).status ==
          403);
    CHECK(
        t.call("DELETE", "/api/v1/print/printers/" + std::to_string(agent_printer), admin).status ==
        200);
}

TEST_CASE("print devices: CUPS out of reach is a 503 that does not show where CUPS is",
          "[app][print_devices]") {
    const std::string nowhere = "/tmp/riveredge-no-cups-" + std::to_string(getpid()) + ".sock";
    AppUnderTest t(AppUnderTestOptions{.cups_server = nowhere});
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto r = t.call("POST", "/api/v1/print/printers", admin,
                          R"({"name":"Office","cups_queue":"acme-office"})");
    CHECK(r.status == 503);
    CHECK(json::serialize(r.body).find(nowhere) == std::string::npos);
    CHECK(t.call("GET", "/api/v1/print/printers", admin).body.at("total") == 0);
}

TEST_CASE(
    "print devices: a printer whose CUPS server is out of reach is offline without showing "
    "where the server is",
    "[app][print_devices]") {
    const auto queue = queue_for("acme", "away");
    shared_cups().add_raw_queue(queue, "socket://127.0.0.1:9");
    std::string database;
    std::int64_t printer = 0;
    {
        AppUnderTest first(with_cups());
        database = first.settings().database_url;
        printer = add_printer(first, first.token("acme", "alice", {"admin"}), "Away", queue);
    }
    // The same database, and a CUPS server address where nothing listens.
    const std::string nowhere = "127.0.0.1:" + std::to_string(inngest_test::free_port());
    AppUnderTest t(AppUnderTestOptions{.database_url = database, .cups_server = nowhere});
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto checked =
        t.call("POST", "/api/v1/print/printers/" + std::to_string(printer) + "/check", admin);
    REQUIRE(checked.status == 200);
    CHECK(checked.body.at("health").at("state") == "offline");
    CHECK(checked.body.at("health").at("message") == "the print server cannot be reached");
    CHECK(json::serialize(checked.body).find(nowhere) == std::string::npos);
    // The owner is told the printer is offline, without the server's address either.
    REQUIRE(t.wait_unread(admin, 1));
    const auto inbox = t.call("GET", "/api/v1/messages/inbox", admin);
    REQUIRE(inbox.status == 200);
    const auto told = json::serialize(inbox.body);
    CHECK(told.find("is offline") != std::string::npos);
    CHECK(told.find(nowhere) == std::string::npos);
    CHECK(told.find("127.0.0.1") == std::string::npos);
}

TEST_CASE(
    "print devices: one check of a tenant asks a CUPS server that does not answer once, and "
    "every printer is offline",
    "[app][print_devices]") {
    constexpr int kPrinters = 3;
    std::string database;
    std::vector<std::int64_t> printers;
    {
        AppUnderTest first(with_cups());
        database = first.settings().database_url;
        const auto admin = first.token("acme", "alice", {"admin"});
        for (int i = 0; i < kPrinters; ++i) {
            const auto queue = queue_for("acme", "silent");
            shared_cups().add_raw_queue(queue, "socket://127.0.0.1:9");
            printers.push_back(add_printer(first, admin, "Silent " + std::to_string(i), queue));
        }
    }
    // The same database and a CUPS server that takes requests and never answers them. The manual
    // clock keeps the reconciler's cron from running on its own.
    UnansweringServer cups;
    AppUnderTestOptions options;
    options.clock = std::make_shared<inngest::local::ManualClock>(std::chrono::system_clock::now());
    options.database_url = database;
    options.cups_server = cups.address();
    AppUnderTest t(std::move(options));
    const auto admin = t.token("acme", "alice", {"admin"});
    // What asking about one printer costs: the connections of one request.
    const auto one =
        t.call("POST", "/api/v1/print/printers/" + std::to_string(printers[0]) + "/check", admin);
    REQUIRE(one.status == 200);
    CHECK(one.body.at("health").at("state") == "offline");
    const int per_request = cups.connections();
    REQUIRE(per_request >= 1);

    run_reconciler(t);
    // The tenant's check asked once (once per printer before), and the printers it did not
    // ask are offline the same way, their owner told as for the first.
    const int during_check = cups.connections() - per_request;
    CHECK(during_check == per_request);
    for (const auto id : printers) {
        const auto r = t.call("GET", "/api/v1/print/printers/" + std::to_string(id), admin);
        REQUIRE(r.status == 200);
        CHECK(r.body.at("health").at("state") == "offline");
        CHECK(r.body.at("health").at("message") == "the print server cannot be reached");
    }
    CHECK(t.wait_unread(admin, kPrinters));
}

TEST_CASE(
    "print devices: a job failed while an attempt the executor gave up on is still sending it is "
    "not sent",
    "[app][print_devices]") {
    RawPrinterListener label_printer;
    AppUnderTest t(with_cups());
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto [printer, queue] = label_printer_on(t, admin, label_printer, "Label 9");
    const auto render_id = published_render(t, admin, "SO-9");
    const auto first = t.call("POST", "/api/v1/print/jobs", admin,
                              R"({"printer_id":)" + std::to_string(printer) + R"(,"render_id":)" +
                                  std::to_string(render_id) + "}");
    REQUIRE(first.status == 202);
    wait_job(t, admin, first.body.at("id").as_int64(),
             [](const json::value& job) { return has_status(job, "completed"); });
    REQUIRE(label_printer.wait_for(1, 10s).size() == 1);
    REQUIRE(t.app().wait_settled(20s));

    // The submit attempt of a reprint marks its job submitting, then waits behind this lock on
    // the render it reads next: an attempt still running after the executor gave up on it.
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    auto held = std::make_unique<riveredge::core::db::Transaction>(owner, std::nullopt);
    held->exec("LOCK TABLE print_renders IN ACCESS EXCLUSIVE MODE");
    const auto again = t.call(
        "POST", "/api/v1/print/jobs/" + std::to_string(first.body.at("id").as_int64()) + "/reprint",
        admin, "{}");
    REQUIRE(again.status == 202);
    const auto job_id = again.body.at("id").as_int64();
    wait_job(t, admin, job_id,
             [](const json::value& job) { return has_status(job, "submitting"); });

    // Meanwhile the function failed through its retries: its failure handler fails the job.
    inngest_test::CallBuilder failure;
    failure.fn_slug = "riveredge-flow-print-job-failure";
    failure.event = json::object{
        {"name", "inngest/function.failed"},
        {"data",
         json::object{{"function_id", "riveredge-flow-print-job"},
                      {"run_id", "01JTESTRUN0000000000000001"},
                      {"error", json::object{{"name", "Error"}, {"message", "call timed out"}}},
                      {"event", json::object{{"name", "print/job.requested"},
                                             {"data", json::object{{"tenant_id", "acme"},
                                                                   {"job_id", job_id}}}}}}}};
    const auto [status, reply] = t.replay(failure);
    INFO(json::serialize(reply));
    CHECK(status == 206);
    CHECK(t.call("GET", "/api/v1/print/jobs/" + std::to_string(job_id), admin).body.at("status") ==
          "failed");

    // The stale attempt goes on: it must not send the job its owners were told failed.
    held.reset();
    REQUIRE(t.app().wait_settled(30s));
    const auto after = t.call("GET", "/api/v1/print/jobs/" + std::to_string(job_id), admin).body;
    INFO(json::serialize(after));
    CHECK(after.at("status") == "failed");
    CHECK(after.at("cups_job_id").is_null());
    CHECK(shared_cups().job_lines(queue).size() == 1);
    std::this_thread::sleep_for(500ms);
    CHECK(label_printer.received().size() == 1);
}

TEST_CASE(
    "print devices: a failed job an attempt had sent is saved failed first, then cancelled in "
    "CUPS outside the transaction, and a cancel left wanted by a crash is done by the retry",
    "[app][print_devices]") {
    CupsRelay relay(shared_cups().server());
    AppUnderTest t(AppUnderTestOptions{.cups_server = relay.path()});
    const auto admin = t.token("acme", "alice", {"admin"});
    const auto queue = queue_for("acme", "relayed");
    shared_cups().add_raw_queue(queue,
                                "socket://127.0.0.1:" + std::to_string(inngest_test::free_port()));
    shared_cups().pause(queue);  // its jobs stay pending in CUPS
    const auto printer = add_printer(t, admin, "Relayed", queue);
    const auto acme = riveredge::core::TenantId::trusted("acme");
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    // A job an attempt marked submitting (no print-job run: only its failure handler runs).
    const std::string token = "relaytoken" + std::to_string(getpid());
    const auto job_id =
        riveredge::core::db::transact(owner, acme, [&](riveredge::core::db::Transaction& tx) {
            return tx
                .exec(
                    "INSERT INTO print_jobs (tenant_id, printer_id, source, payload, format, "
                    "title, token, status, deadline_at, requested_by) VALUES ($1, $2, 'raw', "
                    "convert_to($3, 'UTF8'), 'application/vnd.cups-raw', 'relayed', $4, "
                    "'submitting', now() + interval '10 minutes', 'alice') RETURNING id",
                    {acme, printer, std::string("^XA^XZ"), token})
                .integer(0, "id");
        });
    const auto row = [&]() {
        return riveredge::core::db::transact(
            owner, acme, [&](riveredge::core::db::Transaction& tx) {
                return tx.exec(
                    "SELECT status, coalesce(cups_cancel_wanted, 0) AS wanted FROM print_jobs "
                    "WHERE id = $1",
                    {job_id});
            });
    };
    const auto unfinished_in_cups = [&](int cups_id) {
        const auto lines = shared_cups().unfinished_job_lines(queue);
        const std::string name = queue + "-" + std::to_string(cups_id) + " ";
        return std::any_of(lines.begin(), lines.end(),
                           [&](const std::string& line) { return line.starts_with(name); });
    };

    // The attempt holds the job's send lock while it sends; the failure handler waits for it.
    auto sending = owner.connect();
    sending->exec(
        "SELECT pg_advisory_lock(hashtextextended('riveredge.print_job.sending.' || $1, 0))",
        {job_id});
    auto failing =
        std::async(std::launch::async, [&] { return fail_job_through_handler(t, job_id); });
    REQUIRE(eventually(
        [&] {
            return riveredge::core::db::transact(
                       owner, std::nullopt, [](riveredge::core::db::Transaction& tx) {
                           return tx
                               .exec(
                                   "SELECT count(*) AS n FROM pg_locks WHERE locktype = "
                                   "'advisory' AND NOT granted")
                               .integer(0, "n");
                       }) > 0;
        },
        20s));
    // The attempt got the job into CUPS and recorded its id, then lets go; CUPS now hangs.
    const int sent = lp_job(queue, token + " relayed");
    riveredge::core::db::transact(owner, acme, [&](riveredge::core::db::Transaction& tx) {
        tx.exec("UPDATE print_jobs SET cups_job_id = $2, status = 'pending' WHERE id = $1",
                {job_id, sent});
    });
    REQUIRE(unfinished_in_cups(sent));
    relay.hold(true);
    sending.reset();

    // The cancel waits on CUPS; the failure is saved already, the cancel wanted with it, and
    // the job's row is not locked meanwhile.
    REQUIRE(eventually([&] { return relay.held_bytes() > 0; }, 20s));
    bool row_free = true;
    try {
        riveredge::core::db::transact(owner, acme, [&](riveredge::core::db::Transaction& tx) {
            tx.exec("SELECT id FROM print_jobs WHERE id = $1 FOR UPDATE NOWAIT", {job_id});
        });
    } catch (const std::exception& error) {
        INFO(error.what());
        row_free = false;
    }
    CHECK(row_free);
    const auto during = row();
    CHECK(during.text(0, "status") == "failed");
    CHECK(during.integer(0, "wanted") == sent);
    CHECK(failing.wait_for(0s) == std::future_status::timeout);

    // CUPS answers again: the job is cancelled there, and no longer wanted.
    relay.hold(false);
    CHECK(failing.get() == 206);
    CHECK_FALSE(unfinished_in_cups(sent));
    CHECK(row().text(0, "status") == "failed");
    CHECK(row().integer(0, "wanted") == 0);

    // A crash between the save and the cancel leaves the cancel wanted: the step's retry
    // (the job already failed) does it.
    const int left = lp_job(queue, token + " left");
    riveredge::core::db::transact(owner, acme, [&](riveredge::core::db::Transaction& tx) {
        tx.exec("UPDATE print_jobs SET cups_cancel_wanted = $2 WHERE id = $1", {job_id, left});
    });
    REQUIRE(unfinished_in_cups(left));
    CHECK(fail_job_through_handler(t, job_id) == 206);
    CHECK_FALSE(unfinished_in_cups(left));
    CHECK(row().integer(0, "wanted") == 0);
    CHECK(row().text(0, "status") == "failed");
}
