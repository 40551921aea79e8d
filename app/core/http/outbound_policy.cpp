#include "core/http/outbound_policy.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace riveredge::core {
namespace {

using Address = std::array<std::uint8_t, 16>;

Address from_ipv4(const in_addr& v4) {
    Address out{};
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4.s_addr, 4);
    return out;
}

Address from_sockaddr(const sockaddr* address) {
    if (address->sa_family == AF_INET) {
        return from_ipv4(reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
    }
    Address out{};
    std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, 16);
    return out;
}

bool is_ipv4(const Address& address) {
    static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::equal(kMapped.begin(), kMapped.end(), address.begin());
}

// 127.0.0.0/8, ::1, 0.0.0.0 or ::: an address that means this machine itself.
bool loopback_or_unspecified(const Address& address) {
    if (is_ipv4(address)) {
        return address[12] == 127 ||
               (address[12] == 0 && address[13] == 0 && address[14] == 0 && address[15] == 0);
    }
    const bool zero_prefix = std::all_of(address.begin(), address.begin() + 15,
                                         [](std::uint8_t byte) { return byte == 0; });
    return zero_prefix && (address[15] == 0 || address[15] == 1);
}

std::string address_text(const Address& address) {
    char buffer[INET6_ADDRSTRLEN] = {};
    if (is_ipv4(address)) {
        in_addr v4{};
        std::memcpy(&v4.s_addr, address.data() + 12, 4);
        inet_ntop(AF_INET, &v4, buffer, sizeof buffer);
    } else {
        in6_addr v6{};
        std::memcpy(&v6, address.data(), 16);
        inet_ntop(AF_INET6, &v6, buffer, sizeof buffer);
    }
    return buffer;
}

// A numeric address, IPv4 or IPv6; nothing when `text` is not one.
std::optional<Address> parse_address(const std::string& text) {
    in_addr v4{};
    if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        return from_ipv4(v4);
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
        Address out{};
        std::memcpy(out.data(), &v6, 16);
        return out;
    }
    return std::nullopt;
}

int parse_int(const std::string& text, int low, int high) {
    if (text.empty() || text.size() > 6 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return -1;
    }
    const int value = std::stoi(text);
    return value < low || value > high ? -1 : value;
}

struct Resolved {
    std::vector<Address> addresses;
    std::string error;
};

Resolved resolve(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int status = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (status != 0) {
        return {{}, gai_strerror(status)};
    }
    const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
    Resolved out;
    for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
        if (entry->ai_family == AF_INET || entry->ai_family == AF_INET6) {
            const auto address = from_sockaddr(entry->ai_addr);
            if (std::find(out.addresses.begin(), out.addresses.end(), address) ==
                out.addresses.end()) {
                out.addresses.push_back(address);
            }
        }
    }
    return out;
}

std::vector<Address> machine_addresses() {
    std::vector<Address> out;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        return out;
    }
    for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
        if (entry->ifa_addr != nullptr &&
            (entry->ifa_addr->sa_family == AF_INET || entry->ifa_addr->sa_family == AF_INET6)) {
            out.push_back(from_sockaddr(entry->ifa_addr));
        }
    }
    freeifaddrs(list);
    return out;
}

// What each special range is, for the refusal's message.
struct SpecialRange {
    const char* cidr;
    const char* what;
};

constexpr SpecialRange kSpecialRanges[] = {
    {"0.0.0.0/8", "an unspecified"},
    {"10.0.0.0/8", "a private"},
    {"100.64.0.0/10", "a carrier-grade NAT"},
    {"127.0.0.0/8", "a loopback"},
    {"169.254.0.0/16", "a link-local"},
    {"172.16.0.0/12", "a private"},
    {"192.0.0.0/24", "a reserved"},
    {"192.0.2.0/24", "a documentation"},
    {"192.168.0.0/16", "a private"},
    {"198.18.0.0/15", "a benchmarking"},
    {"198.51.100.0/24", "a documentation"},
    {"203.0.113.0/24", "a documentation"},
    {"224.0.0.0/4", "a multicast"},
    {"240.0.0.0/4", "a reserved"},
    {"::/128", "an unspecified"},
    {"::1/128", "a loopback"},
    {"::/96", "an IPv4-compatible"},
    {"64:ff9b::/96", "a NAT64"},
    {"64:ff9b:1::/48", "a NAT64"},
    {"100::/64", "a discard"},
    {"2001:db8::/32", "a documentation"},
    {"2002::/16", "a 6to4"},
    {"fc00::/7", "a unique local (private)"},
    {"fe80::/10", "a link-local"},
    {"ff00::/8", "a multicast"},
};

}  // namespace

std::string CheckedDestination::curl_resolve() const {
    const bool v6 = address.find(':') != std::string::npos;
    return host + ":" + std::to_string(port) + ":" + (v6 ? "[" + address + "]" : address);
}

bool OutboundPolicy::Network::contains(const Address& address) const {
    int bits = prefix;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
        const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
        if ((address[i] & mask) != (base[i] & mask)) {
            return false;
        }
    }
    return true;
}

namespace {

// "a.b.c.d/n" or "x::y/n" (a bare address is a single host).
bool parse_network(const std::string& text, Address& base, int& prefix) {
    const auto slash = text.find('/');
    const std::string host = text.substr(0, slash);
    const auto address = parse_address(host);
    if (!address) {
        return false;
    }
    const bool v4 = is_ipv4(*address) && host.find(':') == std::string::npos;
    const int max = v4 ? 32 : 128;
    const int bits = slash == std::string::npos ? max : parse_int(text.substr(slash + 1), 0, max);
    if (bits < 0) {
        return false;
    }
    base = *address;
    prefix = v4 ? bits + 96 : bits;
    return true;
}

}  // namespace

std::vector<std::string> OutboundPolicy::default_ports() {
    return {"80", "443", "25", "465", "587"};
}

OutboundPolicy::OutboundPolicy(const std::vector<std::string>& networks,
                               const std::vector<std::string>& ports)
    : network_texts_(networks), port_texts_(ports) {
    for (const auto& text : networks) {
        Network network;
        if (!parse_network(text, network.base, network.prefix)) {
            throw std::invalid_argument("outbound network '" + text +
                                        "' is not an address or CIDR range");
        }
        networks_.push_back(network);
    }
    for (const auto& text : ports) {
        const auto dash = text.find('-');
        const int low = parse_int(text.substr(0, dash), 1, 65535);
        const int high =
            dash == std::string::npos ? low : parse_int(text.substr(dash + 1), 1, 65535);
        if (low < 0 || high < low) {
            throw std::invalid_argument("outbound port '" + text +
                                        "' is not a port or a range low-high in 1..65535");
        }
        ports_.push_back({low, high});
    }
}

OutboundPolicy::OutboundPolicy(const OutboundPolicy& other)
    : network_texts_(other.network_texts_),
      port_texts_(other.port_texts_),
      networks_(other.networks_),
      ports_(other.ports_) {
    const std::lock_guard lock(other.mutex_);
    reserved_ = other.reserved_;
}

void OutboundPolicy::reserve(const std::string& host, int port) {
    Reserved entry{port, {}, host.empty()};
    for (const auto& address : resolve(host.empty() ? "0.0.0.0" : host).addresses) {
        entry.addresses.insert(address);
        entry.any_local = entry.any_local || loopback_or_unspecified(address);
    }
    const std::lock_guard lock(mutex_);
    reserved_.push_back(std::move(entry));
}

bool OutboundPolicy::port_allowed(int port) const {
    return std::any_of(ports_.begin(), ports_.end(), [port](const PortRange& range) {
        return port >= range.low && port <= range.high;
    });
}

bool OutboundPolicy::reserved(const Address& address, int port) const {
    const std::lock_guard lock(mutex_);
    std::optional<std::vector<Address>> machine;
    for (const auto& entry : reserved_) {
        if (entry.port != port) {
            continue;
        }
        if (entry.addresses.count(address) != 0) {
            return true;
        }
        if (entry.any_local) {
            if (loopback_or_unspecified(address)) {
                return true;
            }
            if (!machine) {
                machine = machine_addresses();
            }
            if (std::find(machine->begin(), machine->end(), address) != machine->end()) {
                return true;
            }
        }
    }
    return false;
}

CheckedDestination OutboundPolicy::check(const std::string& host, int port) const {
    if (host.empty()) {
        throw OutboundRefused("the URL names no host");
    }
    // A bracketed IPv6 literal from a URL.
    const std::string name = host.size() > 2 && host.front() == '[' && host.back() == ']'
                                 ? host.substr(1, host.size() - 2)
                                 : host;
    const auto resolved = resolve(name);
    if (resolved.addresses.empty()) {
        throw std::runtime_error("cannot resolve host " + name + ": " +
                                 (resolved.error.empty() ? "no address" : resolved.error));
    }
    static const std::vector<std::pair<Network, const char*>> kSpecial = [] {
        std::vector<std::pair<Network, const char*>> out;
        for (const auto& range : kSpecialRanges) {
            Network network;
            parse_network(range.cidr, network.base, network.prefix);
            out.emplace_back(network, range.what);
        }
        return out;
    }();
    for (const auto& address : resolved.addresses) {
        if (reserved(address, port)) {
            throw OutboundRefused(name + ":" + std::to_string(port) +
                                  " is this application's own endpoint");
        }
        const bool listed = std::any_of(networks_.begin(), networks_.end(),
                                        [&](const Network& n) { return n.contains(address); });
        if (listed) {
            continue;
        }
        for (const auto& [network, what] : kSpecial) {
            if (network.contains(address)) {
                throw OutboundRefused("host " + name + " resolves to " + address_text(address) +
                                      ", " + what + " address this deployment does not allow");
            }
        }
    }
    if (!port_allowed(port)) {
        throw OutboundRefused("port " + std::to_string(port) +
                              " is not open to outbound calls in this deployment");
    }
    return CheckedDestination{name, port, address_text(resolved.addresses.front())};
}

bool OutboundPolicy::method_allowed(const std::string& method) {
    static const std::set<std::string> kMethods{"GET", "POST", "PUT", "PATCH", "DELETE"};
    return kMethods.count(method) != 0;
}

std::string OutboundPolicy::to_text() const {
    std::ostringstream out;
    for (const auto& network : network_texts_) {
        out << "network " << network << '\n';
    }
    for (const auto& port : port_texts_) {
        out << "port " << port << '\n';
    }
    const std::lock_guard lock(mutex_);
    for (const auto& entry : reserved_) {
        out << "reserved " << entry.port << ' ' << (entry.any_local ? 1 : 0);
        for (const auto& address : entry.addresses) {
            out << ' ' << address_text(address);
        }
        out << '\n';
    }
    return out.str();
}

OutboundPolicy OutboundPolicy::from_text(const std::string& text) {
    std::vector<std::string> networks;
    std::vector<std::string> ports;
    std::vector<Reserved> reserved;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string kind;
        words >> kind;
        if (kind == "network") {
            networks.emplace_back();
            words >> networks.back();
        } else if (kind == "port") {
            ports.emplace_back();
            words >> ports.back();
        } else if (kind == "reserved") {
            Reserved entry;
            int any_local = 0;
            words >> entry.port >> any_local;
            entry.any_local = any_local != 0;
            std::string address;
            while (words >> address) {
                if (const auto parsed = parse_address(address)) {
                    entry.addresses.insert(*parsed);
                }
            }
            reserved.push_back(std::move(entry));
        } else if (!kind.empty()) {
            throw std::invalid_argument("unknown outbound policy line '" + line + "'");
        }
    }
    OutboundPolicy policy(networks, ports.empty() ? default_ports() : ports);
    policy.reserved_ = std::move(reserved);
    return policy;
}

std::string OutboundPolicy::describe() const {
    std::string out = "networks=";
    for (std::size_t i = 0; i < network_texts_.size(); ++i) {
        out += (i > 0 ? "," : "") + network_texts_[i];
    }
    out += network_texts_.empty() ? "public-only" : "";
    out += " ports=";
    for (std::size_t i = 0; i < port_texts_.size(); ++i) {
        out += (i > 0 ? "," : "") + port_texts_[i];
    }
    return out;
}

CheckedDestination check_url(const OutboundPolicy& policy,
                             const std::string& url,
                             std::initializer_list<const char*> schemes) {
    const std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), curl_url_cleanup);
    if (curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
        throw OutboundRefused("'" + url + "' is not a URL");
    }
    const auto part = [&](CURLUPart which, unsigned flags) {
        char* value = nullptr;
        std::string out;
        if (curl_url_get(parsed.get(), which, &value, flags) == CURLUE_OK && value != nullptr) {
            out = value;
        }
        curl_free(value);
        return out;
    };
    const std::string scheme = part(CURLUPART_SCHEME, 0);
    if (std::none_of(schemes.begin(), schemes.end(),
                     [&](const char* allowed) { return scheme == allowed; })) {
        throw OutboundRefused("the scheme '" + scheme + "' is not allowed here");
    }
    if (!part(CURLUPART_USER, 0).empty()) {
        throw OutboundRefused("credentials in the URL are not allowed");
    }
    const std::string host = part(CURLUPART_HOST, 0);
    // An IDN name would be checked in one form and connected in another (punycode).
    if (std::any_of(host.begin(), host.end(), [](char c) { return (c & 0x80) != 0; })) {
        throw OutboundRefused("host '" + host + "' is not ASCII; give its punycode form");
    }
    const int port = std::atoi(part(CURLUPART_PORT, CURLU_DEFAULT_PORT).c_str());
    return policy.check(host, port);
}

namespace {

// Fails the transfer closed when curl is about to talk to any address but the checked one.
int connected_to_checked(void* checked, char* primary_ip, char*, int, int) {
    const auto expected = parse_address(*static_cast<const std::string*>(checked));
    const auto actual = parse_address(primary_ip != nullptr ? primary_ip : "");
    return expected && actual && *expected == *actual ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

}  // namespace

CurlPin::CurlPin(void* curl, const CheckedDestination& destination)
    : list_(nullptr), address_(destination.address) {
    // A numeric host is not resolved at all; a name is resolved to the checked address only.
    if (!parse_address(destination.host)) {
        list_ = curl_slist_append(nullptr, destination.curl_resolve().c_str());
        curl_easy_setopt(curl, CURLOPT_RESOLVE, list_);
    }
    // No proxy from the environment: it would resolve the name itself.
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, connected_to_checked);
    curl_easy_setopt(curl, CURLOPT_PREREQDATA, &address_);
}

CurlPin::~CurlPin() {
    curl_slist_free_all(list_);
}

}  // namespace riveredge::core
