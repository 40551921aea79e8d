#pragma once

#include <string>

namespace inngest::detail {

/// Whom the HTTP server's per-address connection cap counts: an IPv4 address (also when mapped
/// into IPv6), or an IPv6 /64 (`2001:db8:1:2::/64`), the smallest network a site is given, all
/// of whose addresses one host can use. Text that is not an address is its own group.
std::string connection_group(const std::string& address);

}  // namespace inngest::detail
