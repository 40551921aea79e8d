#pragma once

// Fonts for PDF output from Debian's font packages, read at run time and never committed. PoDoFo
// 0.9.8 subsets only single TrueType files, so the default CJK face is taken out of its TrueType
// collection once at start-up; each character is then drawn with the first face of the chain that
// has a glyph for it (checked with FreeType).

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace riveredge::print {

/// Writes face `index` of the TrueType collection `ttc` as a standalone TrueType file `out`.
/// Throws `std::runtime_error` naming what is wrong with the input.
void extract_collection_face(const std::string& ttc, int index, const std::string& out);

/// One TrueType face: its file and which characters it has glyphs for.
class FontFace {
public:
    FontFace(std::string name, std::string path);
    ~FontFace();
    FontFace(FontFace&&) noexcept;
    FontFace& operator=(FontFace&&) noexcept;

    const std::string& name() const noexcept { return name_; }
    const std::string& path() const noexcept { return path_; }
    bool covers(char32_t code_point) const;

private:
    struct FreeType;
    std::string name_;
    std::string path_;
    std::unique_ptr<FreeType> freetype_;
};

/// The faces text falls back through, in order.
class FontChain {
public:
    /// WenQuanYi Micro Hei (face 0 of fonts-wqy-microhei's collection, extracted into
    /// `cache_dir`), then DejaVu Sans (fonts-dejavu-core). Throws when neither is installed.
    static std::shared_ptr<const FontChain> from_system(const std::string& cache_dir);
    explicit FontChain(std::vector<FontFace> faces) : faces_(std::move(faces)) {}

    const std::vector<FontFace>& faces() const noexcept { return faces_; }
    /// The first face with a glyph for `code_point`; nullopt when none has one.
    std::optional<std::size_t> face_for(char32_t code_point) const;

private:
    std::vector<FontFace> faces_;
};

/// UTF-8 to code points; invalid bytes become U+FFFD.
std::u32string decode_utf8(const std::string& text);
std::string encode_utf8(const std::u32string& text);

}  // namespace riveredge::print
