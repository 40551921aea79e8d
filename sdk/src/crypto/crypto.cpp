#include "crypto/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <memory>
#include <stdexcept>

namespace inngest::detail::crypto {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string to_hex(const unsigned char* bytes, std::size_t length) {
    std::string out(length * 2, '\0');
    for (std::size_t i = 0; i < length; ++i) {
        out[2 * i] = kHexDigits[bytes[i] >> 4U];
        out[2 * i + 1] = kHexDigits[bytes[i] & 0x0FU];
    }
    return out;
}

const unsigned char* bytes_of(std::string_view data) noexcept {
    return reinterpret_cast<const unsigned char*>(data.data());
}

// One-shot SHA1()/SHA256() fetch the algorithm on every call, under a process-wide lock
// (20 % of a replay call's time in profiles). Fetch once; keep one context per thread.
std::string digest_hex(const char* algorithm, std::string_view data) {
    struct Fetched {
        EVP_MD* sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
        EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    };
    static const Fetched fetched;
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
        EVP_MD_CTX_new(), EVP_MD_CTX_free);
    const EVP_MD* md = std::string_view(algorithm) == "SHA1" ? fetched.sha1 : fetched.sha256;
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (md == nullptr || context == nullptr ||
        EVP_DigestInit_ex2(context.get(), md, nullptr) != 1 ||
        EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(context.get(), digest.data(), &length) != 1) {
        throw std::runtime_error(std::string(algorithm) + " is not available in this OpenSSL");
    }
    return to_hex(digest.data(), length);
}

}  // namespace

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string sha1_hex(std::string_view data) {
    return digest_hex("SHA1", data);
}

std::string sha256_hex(std::string_view data) {
    return digest_hex("SHA256", data);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data1, std::string_view data2) {
    // Fetching the algorithm is costly; the fetched object is immutable and thread-safe.
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) {
        throw std::runtime_error("HMAC is not available in this OpenSSL");
    }
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    if (ctx == nullptr) {
        throw std::bad_alloc();
    }
    char digest_name[] = "SHA256";
    const std::array params{
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    std::size_t length = 0;
    const bool ok = EVP_MAC_init(ctx, bytes_of(key), key.size(), params.data()) == 1 &&
                    EVP_MAC_update(ctx, bytes_of(data1), data1.size()) == 1 &&
                    EVP_MAC_update(ctx, bytes_of(data2), data2.size()) == 1 &&
                    EVP_MAC_final(ctx, digest.data(), &length, digest.size()) == 1;
    EVP_MAC_CTX_free(ctx);
    if (!ok) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    return to_hex(digest.data(), length);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = static_cast<unsigned char>(
            diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    }
    return diff == 0;
}

bool hex_decode(std::string_view hex, std::string& out) {
    if (hex.size() % 2 != 0) {
        return false;
    }
    out.clear();
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int high = hex_value(hex[i]);
        const int low = hex_value(hex[i + 1]);
        if (high < 0 || low < 0) {
            return false;
        }
        out.push_back(static_cast<char>((high << 4) | low));
    }
    return true;
}

std::string random_bytes(std::size_t count) {
    std::string out(count, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return out;
}

std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3), '\0');
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                        bytes_of(data), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

}  // namespace inngest::detail::crypto
