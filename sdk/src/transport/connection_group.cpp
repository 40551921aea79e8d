#include "transport/connection_group.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>

namespace inngest::detail {

std::string connection_group(const std::string& address) {
    namespace ip = boost::asio::ip;
    boost::system::error_code ec;
    const auto parsed = ip::make_address(address, ec);
    if (ec || parsed.is_v4()) {
        return address;
    }
    const auto v6 = parsed.to_v6();
    if (v6.is_v4_mapped()) {
        return ip::make_address_v4(ip::v4_mapped, v6).to_string();
    }
    auto bytes = v6.to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), static_cast<unsigned char>(0));
    return ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace inngest::detail
