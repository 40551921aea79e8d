#include "modules/print_templates/fonts.hpp"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <sys/stat.h>
#include <unistd.h>

namespace riveredge::print {
namespace {

std::uint32_t read_u32(const std::string& data, std::size_t at) {
    if (at + 4 > data.size()) {
        throw std::runtime_error("the font collection is truncated");
    }
    return (std::uint32_t(std::uint8_t(data[at])) << 24) |
           (std::uint32_t(std::uint8_t(data[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(data[at + 2])) << 8) |
           std::uint32_t(std::uint8_t(data[at + 3]));
}

std::uint16_t read_u16(const std::string& data, std::size_t at) {
    if (at + 2 > data.size()) {
        throw std::runtime_error("the font collection is truncated");
    }
    return static_cast<std::uint16_t>((std::uint8_t(data[at]) << 8) | std::uint8_t(data[at + 1]));
}

void put_u32(std::string& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out.push_back(static_cast<char>((value >> shift) & 0xff));
    }
}

}  // namespace

void extract_collection_face(const std::string& ttc, int index, const std::string& out) {
    std::ifstream in(ttc, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read the font collection " + ttc);
    }
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.compare(0, 4, "ttcf") != 0) {
        throw std::runtime_error(ttc + " is not a TrueType collection");
    }
    const auto faces = read_u32(data, 8);
    if (index < 0 || static_cast<std::uint32_t>(index) >= faces) {
        throw std::runtime_error(ttc + " has no face " + std::to_string(index));
    }
    const std::size_t directory = read_u32(data, 12 + 4 * static_cast<std::size_t>(index));
    const std::uint16_t tables = read_u16(data, directory + 4);
    // The face's table directory, then each table copied from the collection and 4-byte aligned.
    std::string font = data.substr(directory, 12);
    std::size_t offset = 12 + 16 * std::size_t{tables};
    std::string bodies;
    for (std::uint16_t i = 0; i < tables; ++i) {
        const std::size_t record = directory + 12 + 16 * std::size_t{i};
        const auto table_offset = read_u32(data, record + 8);
        const auto length = read_u32(data, record + 12);
        if (std::size_t{table_offset} + length > data.size()) {
            throw std::runtime_error("a table of " + ttc + " lies outside the file");
        }
        font.append(data, record, 8);  // tag and checksum
        put_u32(font, static_cast<std::uint32_t>(offset + bodies.size()));
        put_u32(font, length);
        bodies.append(data, table_offset, length);
        bodies.append((4 - length % 4) % 4, '\0');
    }
    font += bodies;
    // Written under a temporary name and renamed: a reader never sees half a font.
    const std::string temporary = out + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
        file.write(font.data(), static_cast<std::streamsize>(font.size()));
        if (!file) {
            throw std::runtime_error("cannot write " + temporary);
        }
    }
    std::filesystem::rename(temporary, out);
}

struct FontFace::FreeType {
    FT_Library library = nullptr;
    FT_Face face = nullptr;
    ~FreeType() {
        if (face != nullptr) {
            FT_Done_Face(face);
        }
        if (library != nullptr) {
            FT_Done_FreeType(library);
        }
    }
};

FontFace::FontFace(std::string name, std::string path)
    : name_(std::move(name)), path_(std::move(path)), freetype_(std::make_unique<FreeType>()) {
    if (FT_Init_FreeType(&freetype_->library) != 0 ||
        FT_New_Face(freetype_->library, path_.c_str(), 0, &freetype_->face) != 0) {
        throw std::runtime_error("FreeType cannot read the font " + path_);
    }
}
FontFace::~FontFace() = default;
FontFace::FontFace(FontFace&&) noexcept = default;
FontFace& FontFace::operator=(FontFace&&) noexcept = default;

bool FontFace::covers(char32_t code_point) const {
    return FT_Get_Char_Index(freetype_->face, code_point) != 0;
}

std::shared_ptr<const FontChain> FontChain::from_system(const std::string& cache_dir) {
    std::vector<FontFace> faces;
    const std::string collection = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";
    if (std::filesystem::exists(collection)) {
        // The cache holds a font the renderer trusts: a directory of our own that nobody else
        // can write into (a predictable /tmp path could be planted by another local user).
        std::filesystem::create_directories(cache_dir);
        struct stat info {};
        if (::lstat(cache_dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) ||
            info.st_uid != ::geteuid()) {
            throw std::runtime_error("the font cache " + cache_dir +
                                     " is not a directory of this user's (RIVEREDGE_FONT_CACHE)");
        }
        ::chmod(cache_dir.c_str(), 0700);
        const std::string face = cache_dir + "/wqy-microhei-0.ttf";
        if (!std::filesystem::exists(face) ||
            std::filesystem::last_write_time(face) < std::filesystem::last_write_time(collection)) {
            extract_collection_face(collection, 0, face);
        }
        faces.emplace_back("WenQuanYi Micro Hei", face);
    }
    const std::string dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    if (std::filesystem::exists(dejavu)) {
        faces.emplace_back("DejaVu Sans", dejavu);
    }
    if (faces.empty()) {
        throw std::runtime_error(
            "no font for PDF output: install fonts-wqy-microhei (Chinese) or fonts-dejavu-core");
    }
    return std::make_shared<const FontChain>(std::move(faces));
}

std::optional<std::size_t> FontChain::face_for(char32_t code_point) const {
    for (std::size_t i = 0; i < faces_.size(); ++i) {
        if (faces_[i].covers(code_point)) {
            return i;
        }
    }
    return std::nullopt;
}

std::u32string decode_utf8(const std::string& text) {
    std::u32string out;
    for (std::size_t i = 0; i < text.size();) {
        const auto byte = static_cast<unsigned char>(text[i]);
        int length = byte < 0x80         ? 1
                     : (byte >> 5) == 6  ? 2
                     : (byte >> 4) == 14 ? 3
                     : (byte >> 3) == 30 ? 4
                                         : 0;
        if (length == 0 || i + static_cast<std::size_t>(length) > text.size()) {
            out.push_back(U'\uFFFD');
            ++i;
            continue;
        }
        char32_t code = length == 1 ? byte : byte & (0x7f >> length);
        bool valid = true;
        for (int k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
            valid = valid && (next >> 6) == 2;
            code = (code << 6) | (next & 0x3f);
        }
        out.push_back(valid ? code : U'\uFFFD');
        i += valid ? static_cast<std::size_t>(length) : 1;
    }
    return out;
}

std::string encode_utf8(const std::u32string& text) {
    std::string out;
    for (const char32_t c : text) {
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
        } else if (c < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
        } else if (c < 0x10000) {
            out.push_back(static_cast<char>(0xe0 | (c >> 12)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
        } else {
            out.push_back(static_cast<char>(0xf0 | (c >> 18)));
            out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
        }
    }
    return out;
}

}  // namespace riveredge::print
