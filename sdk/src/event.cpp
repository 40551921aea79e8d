#include <inngest/event.hpp>
#include <inngest/step.hpp>

#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <boost/system/system_error.hpp>

namespace inngest {
namespace {

[[noreturn]] void bad_event(const char* what) {
    throw boost::system::system_error(std::make_error_code(std::errc::invalid_argument),
                                      std::string("invalid event: ") + what);
}

}  // namespace

void tag_invoke(const boost::json::value_from_tag&, boost::json::value& out, const Event& event) {
    boost::json::object json;
    json.reserve(6);
    json["name"] = event.name;
    json["data"] = event.data;
    if (event.id) {
        json["id"] = *event.id;
    }
    if (event.ts) {
        json["ts"] = *event.ts;
    }
    if (!event.user.empty()) {
        json["user"] = event.user;
    }
    if (event.v) {
        json["v"] = *event.v;
    }
    out = std::move(json);
}

Event tag_invoke(const boost::json::value_to_tag<Event>&, const boost::json::value& json) {
    const auto* object = json.if_object();
    if (object == nullptr) {
        bad_event("not an object");
    }
    Event event;
    const auto* name = object->if_contains("name");
    if (name == nullptr || !name->is_string()) {
        bad_event("name must be a string");
    }
    event.name = name->get_string();
    if (const auto* data = object->if_contains("data"); data != nullptr && !data->is_null()) {
        if (!data->is_object()) {
            bad_event("data must be an object");
        }
        event.data = data->get_object();
    }
    if (const auto* user = object->if_contains("user"); user != nullptr && !user->is_null()) {
        if (!user->is_object()) {
            bad_event("user must be an object");
        }
        event.user = user->get_object();
    }
    if (const auto* id = object->if_contains("id"); id != nullptr && id->is_string()) {
        event.id = std::string(id->get_string());
    }
    if (const auto* ts = object->if_contains("ts"); ts != nullptr) {
        if (ts->is_int64()) {
            event.ts = ts->get_int64();
        } else if (ts->is_uint64()) {
            event.ts = static_cast<std::int64_t>(ts->get_uint64());
        } else if (ts->is_double() && ts->get_double() > -9.2e18 && ts->get_double() < 9.2e18) {
            // A double beyond int64 has no conversion (undefined behaviour): ignored, as a
            // string is.
            event.ts = static_cast<std::int64_t>(ts->get_double());
        }
    }
    if (const auto* v = object->if_contains("v"); v != nullptr && v->is_string()) {
        event.v = std::string(v->get_string());
    }
    return event;
}

void tag_invoke(const boost::json::value_from_tag&,
                boost::json::value& out,
                const SendEventResult& result) {
    boost::json::array ids;
    for (const auto& id : result.ids) {
        ids.emplace_back(id);
    }
    out = boost::json::object{{"ids", std::move(ids)}};
}

SendEventResult tag_invoke(const boost::json::value_to_tag<SendEventResult>&,
                           const boost::json::value& json) {
    SendEventResult result;
    const auto* object = json.if_object();
    if (object == nullptr) {
        return result;
    }
    if (const auto* ids = object->if_contains("ids"); ids != nullptr && ids->is_array()) {
        for (const auto& id : ids->get_array()) {
            if (id.is_string()) {
                result.ids.emplace_back(id.get_string());
            }
        }
    }
    return result;
}

}  // namespace inngest
