#pragma once

// The two pieces of cryptography electronic signatures need: the server's Ed25519 seal over
// what was signed, and the slow hash of each signer's signing password.

#include <memory>
#include <optional>
#include <string>

namespace riveredge::records {

/// The server key that seals signatures (Ed25519 through OpenSSL). Its id (the first 16 hex
/// digits of the SHA-256 of its public key) is stored with every seal, so keys can rotate.
class SealKey {
public:
    /// Reads an Ed25519 private key in PEM; throws `std::runtime_error` naming what is wrong.
    static SealKey from_pem_file(const std::string& path);
    ~SealKey();
    SealKey(SealKey&&) noexcept;
    SealKey& operator=(SealKey&&) noexcept;

    const std::string& id() const noexcept { return id_; }
    /// The seal of `message`, base64.
    std::string seal(const std::string& message) const;
    /// True when `seal` (base64) is this key's seal of `message`.
    bool verify(const std::string& message, const std::string& seal) const;
    /// The raw Ed25519 public key, base64: what verifies this key's seals after it rotates.
    std::string public_key() const;

private:
    struct Key;
    explicit SealKey(std::unique_ptr<Key> key);
    std::unique_ptr<Key> key_;
    std::string id_;
};

/// True when `seal` is the seal of `message` by the Ed25519 `public_key` (raw, base64) and that
/// key is the one `key_id` names.
bool verify_seal(const std::string& public_key,
                 const std::string& key_id,
                 const std::string& message,
                 const std::string& seal);

/// A scrypt hash of `password` with a fresh salt, in the self-describing form
/// `scrypt$N$r$p$salt$hash` (base64 parts).
std::string hash_password(const std::string& password);
/// True when `password` matches `stored` (compared in constant time).
bool password_matches(const std::string& password, const std::string& stored);

}  // namespace riveredge::records
