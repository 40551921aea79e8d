#pragma once

// Where the calls tenants configure may go: schedule HTTP actions, approval service tasks,
// script ctx.http, SMTP relays and SMS endpoints. It is the deployment's policy, never a
// tenant's: a tenant's allow-list only narrows it. Every call resolves its host, checks each
// address the name resolves to, and connects only to the checked address (pinned with curl's
// CURLOPT_RESOLVE), so a second DNS answer cannot swap in an internal one.
//
// Refused unless the deployment lists the network: loopback, private (RFC 1918, unique local),
// link-local (169.254.169.254, the cloud metadata service, included), carrier-grade NAT,
// multicast, reserved and unspecified addresses, and IPv6 forms that embed an IPv4 address
// (mapped, NAT64). Always refused: the app's own endpoints (its API, its executor, its
// database), whatever the networks allow. Ports are an explicit list.
//
// No Boost and no app headers: the script worker, a separate executable, compiles it too.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

struct curl_slist;

namespace riveredge::core {

/// A destination the policy does not allow; the message says which rule refused it.
class OutboundRefused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A checked destination: connect to `address` (numeric) when calling `host`:`port`.
struct CheckedDestination {
    std::string host;
    int port = 0;
    std::string address;
    /// curl's CURLOPT_RESOLVE entry that pins the address: "host:port:address".
    std::string curl_resolve() const;
};

class OutboundPolicy {
public:
    /// The ports open by default: HTTP, HTTPS and the SMTP submission ports.
    static std::vector<std::string> default_ports();

    /// `networks`: CIDR ranges allowed besides public addresses ("127.0.0.0/8", "::1/128",
    /// "10.20.0.0/16"). `ports`: ports and ranges ("443", "1024-65535"). Throws
    /// std::invalid_argument naming a bad entry.
    explicit OutboundPolicy(const std::vector<std::string>& networks = {},
                            const std::vector<std::string>& ports = default_ports());
    OutboundPolicy(const OutboundPolicy& other);
    OutboundPolicy& operator=(const OutboundPolicy&) = delete;

    /// From now on refuses `port` on every address `host` resolves to, and on every address of
    /// this machine when `host` is local or unspecified (a listener on 0.0.0.0): the app's own
    /// endpoints.
    void reserve(const std::string& host, int port);

    /// Resolves `host` and checks the port and every address; the address to connect to.
    /// Throws OutboundRefused naming the rule, std::runtime_error when the name does not resolve.
    CheckedDestination check(const std::string& host, int port) const;

    /// Whether `method` is one an outbound HTTP call may use (GET, POST, PUT, PATCH, DELETE).
    static bool method_allowed(const std::string& method);

    /// The policy, reserved endpoints included, as text and back: how the script worker (a
    /// separate process) receives it. Text without ports means the default ports.
    std::string to_text() const;
    static OutboundPolicy from_text(const std::string& text);

    /// For the start-up log: the networks and ports, without resolving anything.
    std::string describe() const;

private:
    using Address = std::array<std::uint8_t, 16>;  // IPv4 as ::ffff:a.b.c.d
    struct Network {
        Address base{};
        int prefix = 0;
        bool contains(const Address& address) const;
    };
    struct PortRange {
        int low = 0;
        int high = 0;
    };
    struct Reserved {
        int port = 0;
        std::set<Address> addresses;
        bool any_local = false;
    };

    bool port_allowed(int port) const;
    bool reserved(const Address& address, int port) const;

    std::vector<std::string> network_texts_;
    std::vector<std::string> port_texts_;
    std::vector<Network> networks_;
    std::vector<PortRange> ports_;
    mutable std::mutex mutex_;
    std::vector<Reserved> reserved_;
};

/// Parses `url` (its scheme one of `schemes`) and checks its host and port (the scheme's default
/// when the URL names none) against `policy`. Throws OutboundRefused.
CheckedDestination check_url(const OutboundPolicy& policy,
                             const std::string& url,
                             std::initializer_list<const char*> schemes);

/// Pins a checked destination on a curl handle for one transfer: curl connects to the checked
/// address and resolves nothing itself. Keep it alive until the transfer ends.
class CurlPin {
public:
    CurlPin(void* curl, const CheckedDestination& destination);
    ~CurlPin();
    CurlPin(const CurlPin&) = delete;
    CurlPin& operator=(const CurlPin&) = delete;

private:
    ::curl_slist* list_;
    std::string address_;
};

}  // namespace riveredge::core
