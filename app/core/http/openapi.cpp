#include "core/http/openapi.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>

namespace riveredge::core {
namespace {

// Route schemas may be written in JSON Schema's own way (`"type": ["string", "null"]`, as in
// OpenAPI 3.1); the document is 3.0, where that is `"type": "string", "nullable": true`.
void to_openapi_30(boost::json::value& schema) {
    if (auto* array = schema.if_array()) {
        for (auto& item : *array) {
            to_openapi_30(item);
        }
        return;
    }
    auto* object = schema.if_object();
    if (object == nullptr) {
        return;
    }
    if (auto* type = object->if_contains("type"); type != nullptr && type->is_array()) {
        boost::json::array kept;
        bool nullable = false;
        for (const auto& name : type->get_array()) {
            if (name == "null") {
                nullable = true;
            } else {
                kept.push_back(name);
            }
        }
        if (kept.size() == 1) {
            *type = kept.front();
        } else {
            object->erase("type");
            boost::json::array any_of;
            for (const auto& name : kept) {
                any_of.push_back(boost::json::object{{"type", name}});
            }
            (*object)["anyOf"] = std::move(any_of);
        }
        if (nullable) {
            (*object)["nullable"] = true;
        }
    }
    for (auto& [key, value] : *object) {
        (void)key;
        to_openapi_30(value);
    }
}

void add_list_parameters(const db::ListSpec& spec, boost::json::array& parameters) {
    std::string fields;
    for (const auto& field : spec.sort_fields) {
        fields += (fields.empty() ? "" : ", ") + field.name;
    }
    parameters.push_back(boost::json::object{
        {"name", "page"},
        {"in", "query"},
        {"description", "Page number, from 1."},
        {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100000}, {"default", 1}}}});
    parameters.push_back(boost::json::object{{"name", "page_size"},
                                             {"in", "query"},
                                             {"description", "Items per page."},
                                             {"schema",
                                              {{"type", "integer"},
                                               {"minimum", 1},
                                               {"maximum", spec.max_page_size},
                                               {"default", spec.default_page_size}}}});
    parameters.push_back(boost::json::object{
        {"name", "sort"},
        {"in", "query"},
        {"description",
         "Comma-separated fields, '-' before a field for descending. Fields: " + fields + "."},
        {"schema", {{"type", "string"}, {"default", spec.default_sort}}}});
    for (const auto& filter : spec.filters) {
        boost::json::value filter_schema = boost::json::object{{"type", "string"}};
        if (!filter.schema.empty()) {
            filter_schema = boost::json::parse(filter.schema);
        }
        parameters.push_back(boost::json::object{{"name", filter.name},
                                                 {"in", "query"},
                                                 {"description", filter.description},
                                                 {"schema", std::move(filter_schema)}});
    }
}

boost::json::value list_schema(boost::json::value item) {
    return boost::json::object{
        {"type", "object"},
        {"required", boost::json::array{"items", "total", "page", "page_size", "sort"}},
        {"properties",
         {{"items", {{"type", "array"}, {"items", std::move(item)}}},
          {"total", {{"type", "integer"}, {"description", "items matching, over all pages"}}},
          {"page", {{"type", "integer"}}},
          {"page_size", {{"type", "integer"}}},
          {"sort", {{"type", "string"}}}}}};
}

}  // namespace

boost::json::object openapi_document(const Router& router) {
    const boost::json::value error_schema = boost::json::parse(
        R"({"type":"object","properties":{"error":{"type":"object","properties":{
            "code":{"type":"string"},"message":{"type":"string"},"details":{}}}}})");
    boost::json::object paths;
    for (const auto& route : router.routes()) {
        boost::json::array parameters;
        std::size_t pos = 0;
        while ((pos = route.pattern.find('{', pos)) != std::string::npos) {
            const auto end = route.pattern.find('}', pos);
            parameters.push_back(
                boost::json::object{{"name", route.pattern.substr(pos + 1, end - pos - 1)},
                                    {"in", "path"},
                                    {"required", true},
                                    {"schema", {{"type", "string"}}}});
            pos = end;
        }
        if (route.list != nullptr) {
            add_list_parameters(*route.list, parameters);
        }
        boost::json::object operation;
        operation["summary"] = route.summary;
        operation["parameters"] = parameters;
        const auto schema = [](const std::string& text) {
            if (text.empty()) {
                return boost::json::value{{"type", "object"}};
            }
            auto parsed = boost::json::parse(text);
            to_openapi_30(parsed);
            return parsed;
        };
        // The route's success statuses, from its declaration: the router answers them.
        boost::json::object responses;
        const auto body = route.list != nullptr ? list_schema(schema(route.response_schema))
                                                : schema(route.response_schema);
        for (const int status : {route.status, route.other_status}) {
            if (status != 0) {
                responses[std::to_string(status)] =
                    boost::json::object{{"description", status == 201   ? "created"
                                                        : status == 202 ? "accepted"
                                                                        : "success"},
                                        {"content", {{"application/json", {{"schema", body}}}}}};
            }
        }
        responses["default"] = boost::json::parse(
            R"({"description":"error","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}})");
        operation["responses"] = std::move(responses);
        operation["x-permission"] = access_name(route.access);
        operation["description"] =
            route.access == Access::kAdmin  ? "Permission: tenant administrators (role admin)."
            : route.access == Access::kUser ? "Permission: any user of the token's tenant."
                                            : "Permission: public.";
        if (route.access != Access::kPublic) {
            operation["security"] =
                boost::json::array{boost::json::object{{"bearer", boost::json::array{}}}};
        }
        if (route.method == "POST" || route.method == "PUT" || route.method == "PATCH") {
            operation["requestBody"] = boost::json::object{
                {"content", {{"application/json", {{"schema", schema(route.request_schema)}}}}}};
        }
        std::string method = route.method;
        std::transform(method.begin(), method.end(), method.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        auto& entry = paths[route.pattern];
        if (!entry.is_object()) {
            entry.emplace_object();
        }
        entry.as_object()[method] = std::move(operation);
    }
    boost::json::object document;
    document["openapi"] = "3.0.3";
    document["info"] = boost::json::parse(R"({"title":"riveredge-flow","version":"0.1.0"})");
    document["paths"] = std::move(paths);
    boost::json::object components =
        boost::json::parse(
            R"({"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","bearerFormat":"JWT"}}})")
            .as_object();
    components["schemas"] = boost::json::object{{"Error", error_schema}};
    document["components"] = std::move(components);
    return document;
}

}  // namespace riveredge::core
