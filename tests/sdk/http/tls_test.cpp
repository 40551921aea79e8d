// HTTPS to Inngest Cloud: certificates are verified against the trust store and the host name.
// The server here is `openssl s_server` on loopback with certificates made for the test.

#include "support/child_process.hpp"
#include "transport/http_client.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using inngest::detail::OutboundRequest;
using inngest::detail::send_http;

namespace {

class TlsServer {
public:
    TlsServer(const std::string& san)
        : dir_(fs::temp_directory_path() /
               ("inngest-tls-" + std::to_string(getpid()) + "-" + std::to_string(counter_++))) {
        fs::create_directories(dir_);
        const std::string command =
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
            "-subj /CN=inngest-test -addext 'subjectAltName=" +
            san + "' -keyout '" + (dir_ / "key.pem").string() + "' -out '" + cert() +
            "' >/dev/null 2>&1";
        REQUIRE(std::system(command.c_str()) == 0);
        // A port the kernel just handed out, and a check that s_server really bound it: under
        // load another test can take a port first, and a probe answered by that other process
        // used to pass for a ready TLS server (the flake where the first request failed fast).
        for (int attempt = 0; attempt < 5 && !ready_; ++attempt) {
            port_ = inngest_test::free_port();
            start_server();
            ready_ = wait_ready();
            if (!ready_) {
                stop_server();
            }
        }
        REQUIRE(ready_);
    }

    void start_server() {
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            const int null = open("/dev/null", O_RDWR);
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            const std::string accept = "127.0.0.1:" + std::to_string(port_);
            const std::string key = (dir_ / "key.pem").string();
            const std::string certificate = cert();
            execlp("openssl", "openssl", "s_server", "-accept", accept.c_str(), "-cert",
                   certificate.c_str(), "-key", key.c_str(), "-www", "-quiet",
                   static_cast<char*>(nullptr));
            _exit(127);
        }
    }

    // Ready once it accepts TCP connections (a plain-HTTP probe fails, but not "refused") and
    // is still alive (it exits when it cannot bind the port).
    bool wait_ready() {
        for (int i = 0; i < 200; ++i) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                return false;  // it exited: the port was taken
            }
            const OutboundRequest probe{"GET", "http://127.0.0.1:" + std::to_string(port_) + "/",
                                        {},    {},
                                        500ms, std::nullopt};
            const auto response = send_http(probe);
            if (response || response.error().message.find("refused") == std::string::npos) {
                return waitpid(pid_, &status, WNOHANG) == 0;
            }
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

    void stop_server() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int status = 0;
            waitpid(pid_, &status, 0);
            pid_ = 0;
        }
    }

    ~TlsServer() {
        stop_server();
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    std::string url(const std::string& host = "127.0.0.1") const {
        return "https://" + host + ":" + std::to_string(port_) + "/";
    }
    std::string cert() const { return (dir_ / "cert.pem").string(); }

private:
    static inline int counter_ = 0;
    fs::path dir_;
    int port_ = 0;
    pid_t pid_ = 0;
    bool ready_ = false;
};

}  // namespace

// openssl s_server serves one connection at a time and starts slowly on a loaded machine (the
// suite runs two tests at once beside the app's): give each request room, so a slow server is
// never mistaken for a refused certificate.
constexpr auto kPatience = std::chrono::seconds(30);

TEST_CASE("HTTPS succeeds when the certificate chains to a trusted CA and names the host",
          "[http]") {
    TlsServer server("IP:127.0.0.1,DNS:localhost");
    OutboundRequest request{"GET", server.url(), {}, {}, kPatience, server.cert()};
    auto response = send_http(request);
    INFO((response ? std::string("ok") : response.error().message));
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    request.url = server.url("localhost");
    response = send_http(request);
    INFO((response ? std::string("ok") : response.error().message));
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
}

TEST_CASE("HTTPS refuses an untrusted certificate", "[http]") {
    TlsServer server("IP:127.0.0.1");
    const OutboundRequest request{"GET", server.url(), {}, {}, kPatience, std::nullopt};
    const auto response = send_http(request);
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().code == inngest::ErrorCode::kNetwork);
    CHECK(response.error().message.find("certificate") != std::string::npos);
}

TEST_CASE("HTTPS refuses a trusted certificate issued for another host", "[http]") {
    TlsServer server("DNS:other.example");
    const OutboundRequest request{"GET", server.url(), {}, {}, kPatience, server.cert()};
    const auto response = send_http(request);
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().code == inngest::ErrorCode::kNetwork);
}
