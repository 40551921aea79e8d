// The deployment's outbound policy on its own: which addresses and ports it refuses, what a
// deployment can open, the app's own endpoints that stay closed, and its text form (how the
// script worker receives it).

#include "core/http/outbound_policy.hpp"

#include <catch2/catch.hpp>

#include <string>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

using riveredge::core::OutboundPolicy;
using riveredge::core::OutboundRefused;

namespace {

std::string refusal(const OutboundPolicy& policy, const std::string& host, int port) {
    try {
        policy.check(host, port);
    } catch (const OutboundRefused& refused) {
        return refused.what();
    }
    return {};
}

}  // namespace

TEST_CASE("the production policy reaches public addresses on its ports and nothing internal",
          "[unit][outbound]") {
    const OutboundPolicy policy;
    const auto checked = policy.check("93.184.215.14", 443);
    CHECK(checked.address == "93.184.215.14");
    CHECK(checked.curl_resolve() == "93.184.215.14:443:93.184.215.14");
    CHECK(policy.check("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 80).address ==
          "2606:2800:21f:cb07:6820:80da:af6b:8b2c");
    CHECK(refusal(policy, "93.184.215.14", 8080).find("port 8080") != std::string::npos);

    const std::pair<const char*, const char*> internal[] = {
        {"127.0.0.1", "loopback"},
        {"127.8.9.10", "loopback"},
        {"localhost", "loopback"},
        {"::1", "loopback"},
        {"[::1]", "loopback"},
        {"0.0.0.0", "unspecified"},
        {"::", "unspecified"},
        {"10.1.2.3", "private"},
        {"172.20.0.1", "private"},
        {"192.168.1.1", "private"},
        {"169.254.169.254", "link-local"},
        {"fe80::1", "link-local"},
        {"fd00::1", "unique local"},
        {"100.64.0.1", "carrier-grade NAT"},
        {"224.0.0.1", "multicast"},
        {"::ffff:127.0.0.1", "loopback"},  // IPv4-mapped: the IPv4 rules apply
        {"::ffff:169.254.169.254", "link-local"},
        {"64:ff9b::a9fe:a9fe", "NAT64"},  // 169.254.169.254 through NAT64
        {"2130706433", "loopback"},       // 127.0.0.1 written as one number
        {"0x7f.1", "loopback"},
    };
    for (const auto& [host, what] : internal) {
        INFO(host);
        CHECK(refusal(policy, host, 80).find(what) != std::string::npos);
    }
    CHECK_THROWS_AS(policy.check("name.invalid", 443), std::runtime_error);
    CHECK(OutboundPolicy::method_allowed("PATCH"));
    CHECK_FALSE(OutboundPolicy::method_allowed("CONNECT"));
    CHECK_FALSE(OutboundPolicy::method_allowed("get"));
}

TEST_CASE("a deployment opens networks and ports, but never the app's own endpoints",
          "[unit][outbound]") {
    OutboundPolicy policy({"127.0.0.0/8", "::1", "10.20.0.0/16"}, {"80", "1024-65535"});
    CHECK(policy.check("127.0.0.1", 8025).address == "127.0.0.1");
    CHECK(policy.check("localhost", 8025).port == 8025);
    CHECK(policy.check("10.20.3.4", 80).address == "10.20.3.4");
    CHECK(refusal(policy, "10.21.0.1", 80).find("private") != std::string::npos);
    CHECK(refusal(policy, "169.254.169.254", 80).find("link-local") != std::string::npos);
    CHECK(refusal(policy, "127.0.0.1", 443).find("port 443") != std::string::npos);

    policy.reserve("127.0.0.1", 8288);  // the executor
    policy.reserve("0.0.0.0", 8200);    // the API on every interface
    for (const auto& host : {"127.0.0.1", "127.0.0.2", "localhost", "::1"}) {
        INFO(host);
        CHECK(refusal(policy, host, 8288).find("own endpoint") != std::string::npos);
        CHECK(refusal(policy, host, 8200).find("own endpoint") != std::string::npos);
    }
    CHECK(policy.check("127.0.0.1", 8289).port == 8289);
    // A listener on 0.0.0.0 is reachable on this machine's own addresses too.
    ifaddrs* list = nullptr;
    REQUIRE(getifaddrs(&list) == 0);
    for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
        if (entry->ifa_addr != nullptr && entry->ifa_addr->sa_family == AF_INET) {
            char text[INET_ADDRSTRLEN] = {};
            inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr,
                      text, sizeof text);
            OutboundPolicy open({"0.0.0.0/0"}, {"1-65535"});
            open.reserve("0.0.0.0", 8200);
            INFO(text);
            CHECK(refusal(open, text, 8200).find("own endpoint") != std::string::npos);
        }
    }
    freeifaddrs(list);

    // The text form keeps networks, ports and the reserved endpoints.
    const auto copy = OutboundPolicy::from_text(policy.to_text());
    CHECK(copy.check("10.20.3.4", 80).address == "10.20.3.4");
    CHECK(refusal(copy, "localhost", 8288).find("own endpoint") != std::string::npos);
    CHECK(refusal(copy, "127.0.0.1", 8200).find("own endpoint") != std::string::npos);
    CHECK(refusal(copy, "127.0.0.1", 22).find("port 22") != std::string::npos);
}

TEST_CASE("a bad network or port in the policy is refused with the entry named",
          "[unit][outbound]") {
    CHECK_THROWS_WITH(OutboundPolicy({"10.0.0.0/33"}), Catch::Contains("10.0.0.0/33"));
    CHECK_THROWS_WITH(OutboundPolicy({"intranet"}), Catch::Contains("intranet"));
    CHECK_THROWS_WITH(OutboundPolicy({}, {"0"}), Catch::Contains("'0'"));
    CHECK_THROWS_WITH(OutboundPolicy({}, {"9000-80"}), Catch::Contains("9000-80"));
    CHECK_THROWS_WITH(OutboundPolicy({}, {"http"}), Catch::Contains("http"));
    CHECK_THROWS_AS(OutboundPolicy::from_text("allow everything\n"), std::invalid_argument);
    // A policy text without ports (a worker request without one) means the default ports.
    CHECK(OutboundPolicy::from_text("").check("93.184.215.14", 443).port == 443);
}

TEST_CASE("URLs are checked with their scheme, default port and host as connected",
          "[unit][outbound]") {
    const OutboundPolicy policy;
    using riveredge::core::check_url;
    CHECK(check_url(policy, "https://93.184.215.14/x", {"https"}).port == 443);
    CHECK(check_url(policy, "http://93.184.215.14/x", {"http"}).port == 80);
    CHECK_THROWS_WITH(check_url(policy, "ftp://93.184.215.14/", {"http", "https"}),
                      Catch::Contains("scheme"));
    CHECK_THROWS_WITH(check_url(policy, "http://user:pw@93.184.215.14/", {"http"}),
                      Catch::Contains("credentials"));
    // An IDN name is checked in one form and would be connected in another: refused.
    CHECK_THROWS_WITH(check_url(policy, "http://b\xC3\xBC" "cher.example/", {"http"}),
                      Catch::Contains("punycode"));
    CHECK_THROWS_WITH(check_url(policy, "http://[::1]:8080/", {"http"}),
                      Catch::Contains("loopback"));
}
