#pragma once

// Writing a JSON array or object's members with commas between them, for our writers (the API
// text and the canonical form), which differ only in how they write one value.

#include <string>

namespace riveredge::core::json_detail {

/// `open`, each of `items` written by `write_one(item, out)` with commas between, `close`.
template <class Items, class WriteOne>
void write_separated(
    const Items& items, char open, char close, std::string& out, WriteOne write_one) {
    out.push_back(open);
    bool first = true;
    for (const auto& item : items) {
        if (!first) {
            out.push_back(',');
        }
        first = false;
        write_one(item, out);
    }
    out.push_back(close);
}

}  // namespace riveredge::core::json_detail
