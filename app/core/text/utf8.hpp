#pragma once

// One UTF-8 decoder for the places that must tell whole characters from bytes: JCS ordering
// (canonical.cpp), text made storable (storable.cpp) and text cut to a size (utf8_prefix).

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace riveredge::core {

struct Utf8Character {
    std::size_t length = 0;  ///< bytes; 0 where no whole character begins
    std::uint32_t point = 0;
};

/// The character that begins at `at` in `text` (a NUL is one); length 0 for bytes that are not
/// UTF-8: a continuation or invalid lead byte, a sequence cut short, an overlong form, a
/// surrogate, a point past U+10FFFF.
inline Utf8Character utf8_at(std::string_view text, std::size_t at) {
    const auto lead = static_cast<unsigned char>(text[at]);
    if (lead < 0x80) {
        return {1, lead};
    }
    std::size_t length = 0;
    std::uint32_t min = 0;
    std::uint32_t point = 0;
    if ((lead & 0xE0) == 0xC0) {
        length = 2, min = 0x80, point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, min = 0x800, point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, min = 0x10000, point = lead & 0x07;
    } else {
        return {};
    }
    if (at + length > text.size()) {
        return {};
    }
    for (std::size_t k = 1; k < length; ++k) {
        const auto next = static_cast<unsigned char>(text[at + k]);
        if ((next & 0xC0) != 0x80) {
            return {};
        }
        point = (point << 6) | (next & 0x3F);
    }
    if (point < min || (point >= 0xD800 && point <= 0xDFFF) || point > 0x10FFFF) {
        return {};
    }
    return {length, point};
}

/// At most `max_bytes` of `text`, cut between two characters: a character the cut would split
/// is left out whole (so is one `text` itself ends inside, when it was cut before). Bytes that
/// are not UTF-8 are kept as they are.
inline std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) {
    std::string_view head = text.substr(0, max_bytes);
    // The last lead byte among the last three bytes, and whether its character fits.
    for (std::size_t back = 1; back <= 3 && back <= head.size(); ++back) {
        const auto byte = static_cast<unsigned char>(head[head.size() - back]);
        if ((byte & 0xC0) == 0x80) {
            continue;  // a continuation: look further back for its lead
        }
        const std::size_t length = (byte & 0xE0) == 0xC0   ? 2
                                   : (byte & 0xF0) == 0xE0 ? 3
                                   : (byte & 0xF8) == 0xF0 ? 4
                                                           : 1;
        if (length > back) {
            head.remove_suffix(back);
        }
        break;
    }
    return head;
}

}  // namespace riveredge::core
