#include "core/auth/jwt.hpp"

#include <boost/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>

namespace riveredge::core {
namespace {

std::string base64url(std::string_view data) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    while (i + 2 < data.size()) {
        const auto n = (static_cast<unsigned>(static_cast<unsigned char>(data[i])) << 16U) |
                       (static_cast<unsigned>(static_cast<unsigned char>(data[i + 1])) << 8U) |
                       static_cast<unsigned>(static_cast<unsigned char>(data[i + 2]));
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += kAlphabet[(n >> 6U) & 63U];
        out += kAlphabet[n & 63U];
        i += 3;
    }
    const std::size_t rest = data.size() - i;
    if (rest > 0) {
        unsigned n = static_cast<unsigned>(static_cast<unsigned char>(data[i])) << 16U;
        if (rest == 2) {
            n |= static_cast<unsigned>(static_cast<unsigned char>(data[i + 1])) << 8U;
        }
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        if (rest == 2) {
            out += kAlphabet[(n >> 6U) & 63U];
        }
    }
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (const char c : text) {
        int value = -1;
        if (c >= 'A' && c <= 'Z') {
            value = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            value = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            value = c - '0' + 52;
        } else if (c == '-') {
            value = 62;
        } else if (c == '_') {
            value = 63;
        } else {
            return std::nullopt;
        }
        buffer = (buffer << 6U) | static_cast<unsigned>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> static_cast<unsigned>(bits)) & 0xFFU));
        }
    }
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data(), &length);
    return std::string(reinterpret_cast<const char*>(digest.data()), length);
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

bool Principal::has_role(const std::string& role) const {
    return std::find(roles.begin(), roles.end(), role) != roles.end();
}

std::string issue_token(const Principal& principal,
                        std::string_view secret,
                        std::chrono::seconds lifetime) {
    boost::json::array roles;
    for (const auto& role : principal.roles) {
        roles.emplace_back(role);
    }
    const std::string header = base64url(R"({"alg":"HS256","typ":"JWT"})");
    const std::string payload = base64url(
        boost::json::serialize(boost::json::object{{"tenant_id", principal.tenant.value()},
                                                   {"sub", principal.user_id},
                                                   {"roles", roles},
                                                   {"iat", now_seconds()},
                                                   {"exp", now_seconds() + lifetime.count()}}));
    const std::string signing_input = header + "." + payload;
    return signing_input + "." + base64url(hmac_sha256(secret, signing_input));
}

std::optional<Principal> verify_token(std::string_view token, std::string_view secret) {
    auto verified = verify_token_until(token, secret);
    return verified ? std::optional(std::move(verified->who)) : std::nullopt;
}

std::optional<VerifiedToken> verify_token_until(std::string_view token, std::string_view secret) {
    const auto first = token.find('.');
    const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
    if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    const auto header = base64url_decode(token.substr(0, first));
    const auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
    const auto signature = base64url_decode(token.substr(second + 1));
    if (!header || !payload || !signature) {
        return std::nullopt;
    }
    if (!constant_time_equal(*signature, hmac_sha256(secret, token.substr(0, second)))) {
        return std::nullopt;
    }
    try {
        const auto head = boost::json::parse(*header);
        if (head.at("alg") != "HS256") {
            return std::nullopt;  // no "none", no algorithm confusion
        }
        const auto claims = boost::json::parse(*payload).as_object();
        if (const auto* exp = claims.if_contains("exp");
            exp == nullptr || !exp->is_int64() || exp->get_int64() < now_seconds()) {
            return std::nullopt;
        }
        const auto& tenant = claims.at("tenant_id").as_string();
        const auto& sub = claims.at("sub").as_string();
        if (!valid_tenant_id(tenant) || sub.empty()) {
            return std::nullopt;
        }
        const auto expires_at = std::chrono::system_clock::time_point(
            std::chrono::seconds(claims.at("exp").as_int64()));
        Principal principal{TenantId::trusted(std::string(tenant)), std::string(sub), {}};
        if (const auto* roles = claims.if_contains("roles");
            roles != nullptr && roles->is_array()) {
            for (const auto& role : roles->get_array()) {
                if (role.is_string()) {
                    principal.roles.emplace_back(role.get_string());
                }
            }
        }
        return VerifiedToken{std::move(principal), expires_at};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace riveredge::core
