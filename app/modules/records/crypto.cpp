#include "modules/records/crypto.hpp"

#include "core/json/canonical.hpp"
#include "core/text/base64.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace riveredge::records {
namespace {

using core::to_base64;

// Bytes as OpenSSL's signing and key calls take them.
std::optional<std::vector<unsigned char>> unbase64(const std::string& text) {
    const auto bytes = core::from_base64(text);
    if (!bytes) {
        return std::nullopt;
    }
    return std::vector<unsigned char>(bytes->begin(), bytes->end());
}

// scrypt: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds per attempt).
constexpr std::uint64_t kN = 1U << 15;
constexpr std::uint64_t kR = 8;
constexpr std::uint64_t kP = 1;
constexpr std::size_t kHashBytes = 32;

std::vector<unsigned char> scrypt(const std::string& password,
                                  const std::vector<unsigned char>& salt,
                                  std::uint64_t n,
                                  std::uint64_t r,
                                  std::uint64_t p) {
    std::vector<unsigned char> out(kHashBytes);
    if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(), n, r, p,
                       std::uint64_t{256} * 1024 * 1024, out.data(), out.size()) != 1) {
        throw std::runtime_error("scrypt failed");
    }
    return out;
}

}  // namespace

struct SealKey::Key {
    EVP_PKEY* pkey = nullptr;
    ~Key() { EVP_PKEY_free(pkey); }
};

SealKey::SealKey(std::unique_ptr<Key> key) : key_(std::move(key)) {
    unsigned char raw[32];
    std::size_t size = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key_->pkey, raw, &size) != 1) {
        throw std::runtime_error("the seal key has no Ed25519 public key");
    }
    id_ = core::sha256_hex(std::string(reinterpret_cast<const char*>(raw), size)).substr(0, 16);
}
SealKey::~SealKey() = default;
SealKey::SealKey(SealKey&&) noexcept = default;
SealKey& SealKey::operator=(SealKey&&) noexcept = default;

SealKey SealKey::from_pem_file(const std::string& path) {
    FILE* file = std::fopen(path.c_str(), "r");
    if (file == nullptr) {
        throw std::runtime_error("the seal key file cannot be read: " + path);
    }
    auto key = std::make_unique<Key>();
    key->pkey = PEM_read_PrivateKey(file, nullptr, nullptr, nullptr);
    std::fclose(file);
    if (key->pkey == nullptr || EVP_PKEY_get_id(key->pkey) != EVP_PKEY_ED25519) {
        throw std::runtime_error("the seal key must be an Ed25519 private key in PEM (" + path +
                                 "; make one with: openssl genpkey -algorithm ed25519)");
    }
    return SealKey(std::move(key));
}

std::string SealKey::seal(const std::string& message) const {
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    unsigned char signature[64];
    std::size_t size = sizeof signature;
    const bool ok =
        context != nullptr &&
        EVP_DigestSignInit(context, nullptr, nullptr, nullptr, key_->pkey) == 1 &&
        EVP_DigestSign(context, signature, &size,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
    EVP_MD_CTX_free(context);
    if (!ok) {
        throw std::runtime_error("sealing failed");
    }
    return to_base64(signature, size);
}

namespace {

bool verify_with(EVP_PKEY* key, const std::string& message, const std::string& seal) {
    const auto signature = unbase64(seal);
    if (!signature) {
        return false;
    }
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    const bool ok = context != nullptr &&
                    EVP_DigestVerifyInit(context, nullptr, nullptr, nullptr, key) == 1 &&
                    EVP_DigestVerify(context, signature->data(), signature->size(),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size()) == 1;
    EVP_MD_CTX_free(context);
    return ok;
}

}  // namespace

bool SealKey::verify(const std::string& message, const std::string& seal) const {
    return verify_with(key_->pkey, message, seal);
}

std::string SealKey::public_key() const {
    unsigned char raw[32];
    std::size_t size = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key_->pkey, raw, &size) != 1) {
        throw std::runtime_error("the seal key has no Ed25519 public key");
    }
    return to_base64(raw, size);
}

bool verify_seal(const std::string& public_key,
                 const std::string& key_id,
                 const std::string& message,
                 const std::string& seal) {
    const auto raw = unbase64(public_key);
    if (!raw || raw->size() != 32 ||
        core::sha256_hex(std::string(raw->begin(), raw->end())).substr(0, 16) != key_id) {
        return false;  // not the key the id names
    }
    EVP_PKEY* key =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw->data(), raw->size());
    if (key == nullptr) {
        return false;
    }
    const bool ok = verify_with(key, message, seal);
    EVP_PKEY_free(key);
    return ok;
}

std::string hash_password(const std::string& password) {
    std::vector<unsigned char> salt(16);
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
        throw std::runtime_error("no random bytes for a salt");
    }
    const auto hash = scrypt(password, salt, kN, kR, kP);
    return "scrypt$" + std::to_string(kN) + "$" + std::to_string(kR) + "$" + std::to_string(kP) +
           "$" + to_base64(salt.data(), salt.size()) + "$" + to_base64(hash.data(), hash.size());
}

bool password_matches(const std::string& password, const std::string& stored) {
    std::vector<std::string> parts;
    std::stringstream in(stored);
    std::string part;
    while (std::getline(in, part, '$')) {
        parts.push_back(part);
    }
    if (parts.size() != 6 || parts[0] != "scrypt") {
        return false;
    }
    const auto salt = unbase64(parts[4]);
    const auto expected = unbase64(parts[5]);
    if (!salt || !expected || expected->size() != kHashBytes) {
        return false;
    }
    try {
        const auto actual = scrypt(password, *salt, std::stoull(parts[1]), std::stoull(parts[2]),
                                   std::stoull(parts[3]));
        return CRYPTO_memcmp(actual.data(), expected->data(), kHashBytes) == 0;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace riveredge::records
