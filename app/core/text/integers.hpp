#pragma once

// Integers from paths, query strings and other text: the whole text, in range, or nothing.

#include <charconv>
#include <optional>
#include <string_view>

namespace riveredge::core {

/// The decimal integer `text` spells, when it is one in [low, high]; nullopt otherwise (signs,
/// spaces, trailing characters and overflow included).
template <class Integer>
std::optional<Integer> parse_integer_in(std::string_view text, Integer low, Integer high) {
    Integer value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < low || value > high) {
        return std::nullopt;
    }
    return value;
}

}  // namespace riveredge::core
