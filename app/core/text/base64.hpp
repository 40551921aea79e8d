#pragma once

// Standard base64 (with padding) through OpenSSL: seals and keys, data URIs, PDFs in JSON.

#include <openssl/evp.h>

#include <cstddef>
#include <optional>
#include <string>

namespace riveredge::core {

inline std::string to_base64(const unsigned char* data, std::size_t size) {
    std::string out(4 * ((size + 2) / 3), '\0');
    const int written =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

inline std::string to_base64(const std::string& bytes) {
    return to_base64(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

/// The bytes of padded base64 `text`; nullopt when it is empty or not base64.
inline std::optional<std::string> from_base64(const std::string& text) {
    if (text.empty() || text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out(text.size() / 4 * 3, '\0');
    const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                        reinterpret_cast<const unsigned char*>(text.data()),
                                        static_cast<int>(text.size()));
    if (written < 0) {
        return std::nullopt;
    }
    std::size_t size = static_cast<std::size_t>(written);
    for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) {
        --size;  // EVP_DecodeBlock counts padding as zero bytes
    }
    out.resize(size);
    return out;
}

}  // namespace riveredge::core
