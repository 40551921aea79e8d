// Definition sources: YAML read into the JSON model JSON sources already are.

#include "modules/workflows/definition.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

#include <yaml-cpp/yaml.h>

namespace riveredge::workflows {

namespace json = boost::json;

namespace {

constexpr int kMaxDepth = 64;
// Aliases let a small document expand into a huge one: the model is capped by its nodes.
constexpr int kMaxNodes = 100000;

json::value plain_scalar(const std::string& text) {
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
        return nullptr;
    }
    if (text == "true" || text == "True" || text == "TRUE") {
        return true;
    }
    if (text == "false" || text == "False" || text == "FALSE") {
        return false;
    }
    const char* begin = text.data();
    const char* end = begin + text.size();
    const char* digits = (*begin == '-' || *begin == '+') ? begin + 1 : begin;
    if (digits < end && std::isdigit(static_cast<unsigned char>(*digits)) != 0) {
        std::int64_t integer = 0;
        const char* from = *begin == '+' ? begin + 1 : begin;
        if (auto [ptr, ec] = std::from_chars(from, end, integer); ec == std::errc() && ptr == end) {
            return integer;
        }
        double real = 0;
        if (auto [ptr, ec] = std::from_chars(from, end, real);
            ec == std::errc() && ptr == end && std::isfinite(real)) {
            return real;
        }
    }
    return json::string(text);
}

json::value convert(const YAML::Node& node, int depth, int& count) {
    if (depth > kMaxDepth) {
        throw SourceError("the YAML document is nested deeper than 64 levels");
    }
    if (++count > kMaxNodes) {
        throw SourceError("the YAML document expands to more than 100000 values");
    }
    switch (node.Type()) {
        case YAML::NodeType::Scalar:
            // A quoted scalar (tag "!") or an explicit !!str stays a string.
            if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
                return json::string(node.Scalar());
            }
            return plain_scalar(node.Scalar());
        case YAML::NodeType::Sequence: {
            json::array out;
            for (const auto& item : node) {
                out.push_back(convert(item, depth + 1, count));
            }
            return out;
        }
        case YAML::NodeType::Map: {
            json::object out;
            for (const auto& item : node) {
                if (!item.first.IsScalar()) {
                    throw SourceError("a YAML mapping key is not a plain scalar");
                }
                out[item.first.Scalar()] = convert(item.second, depth + 1, count);
            }
            return out;
        }
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            break;
    }
    return nullptr;
}

}  // namespace

json::value yaml_to_json(std::string_view text) {
    try {
        const YAML::Node root = YAML::Load(std::string(text));
        int count = 0;
        return convert(root, 0, count);
    } catch (const YAML::Exception& error) {
        throw SourceError("YAML line " + std::to_string(error.mark.line + 1) + ", column " +
                          std::to_string(error.mark.column + 1) + ": " + error.msg);
    }
}

}  // namespace riveredge::workflows
