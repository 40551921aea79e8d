#pragma once

// Tests that read our output back with Debian's tools (poppler, zbar): write the bytes to a
// file, run the tool, take what it printed.

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

namespace riveredge_test {

inline void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

/// Standard output and error of a shell command.
inline std::string command_output(const std::string& command) {
    std::string output;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> buffer{};
    while (const auto n = fread(buffer.data(), 1, buffer.size(), pipe)) {
        output.append(buffer.data(), n);
    }
    pclose(pipe);
    return output;
}

/// The text pdftotext reads from `pdf` (kept in `file` for a look after a failure).
inline std::string pdf_text(const std::string& pdf, const std::string& file) {
    write_file(file, pdf);
    return command_output("pdftotext " + file + " -");
}

}  // namespace riveredge_test
