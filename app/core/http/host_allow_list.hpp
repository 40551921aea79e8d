#pragma once

// Outbound calls a tenant allows (script ctx.http, schedule HTTP actions): host names only,
// "api.example.com" for itself, "*.example.com" for any subdomain. Header-only: the script
// worker, a separate executable, uses it too.

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace riveredge::core {

inline std::string lower_ascii(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

inline bool host_allowed(std::string_view host, const std::vector<std::string>& allow_list) {
    const std::string wanted = lower_ascii(host);
    for (const auto& entry : allow_list) {
        const std::string allowed = lower_ascii(entry);
        if (allowed == wanted) {
            return true;
        }
        const std::string suffix = allowed.rfind("*.", 0) == 0 ? allowed.substr(1) : "";
        if (!suffix.empty() && wanted.size() > suffix.size() &&
            wanted.compare(wanted.size() - suffix.size(), std::string::npos, suffix) == 0) {
            return true;
        }
    }
    return false;
}

}  // namespace riveredge::core
