#include "modules/print_templates/service.hpp"

#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/found.hpp"
#include "core/json/canonical.hpp"
#include "core/json/request_fields.hpp"
#include "core/log/logger.hpp"
#include "core/outbox/outbox.hpp"

#include <inngest/event.hpp>

namespace riveredge::print {
namespace {

namespace json = boost::json;
using core::DomainError;
using core::db::Transaction;

// The data items of a request: `items` (an array of objects) or `data` (one object).
std::vector<json::value> items_of(const json::object& request) {
    std::vector<json::value> items;
    if (const auto* list = request.if_contains("items"); list != nullptr && !list->is_null()) {
        if (!list->is_array() || list->get_array().empty() ||
            list->get_array().size() > kMaxItems) {
            throw DomainError::validation(json::object{
                {"items", "an array of 1 to " + std::to_string(kMaxItems) + " data objects"}});
        }
        for (std::size_t i = 0; i < list->get_array().size(); ++i) {
            if (!list->get_array()[i].is_object()) {
                throw DomainError::validation(
                    json::object{{"items[" + std::to_string(i) + "]", "a data object"}});
            }
            items.push_back(list->get_array()[i]);
        }
        return items;
    }
    json::object problems;
    items.push_back(core::object_field(request, "data", problems).value_or(json::object{}));
    core::refuse_if_any(problems);
    return items;
}

// A binding problem as a 422 that names the item, the element and the placeholder.
[[noreturn]] void refuse_binding(const ElementBindingError& error, bool several) {
    const std::string at =
        (several ? "items[" + std::to_string(error.item()) + "]." : std::string("data.")) +
        error.placeholder();
    throw DomainError::validation(
        json::object{{at, "elements[" + std::to_string(error.element()) + "]: " + error.what()}});
}

// A render past a limit of the renderer (table rows, pages, text): a 422 naming what is too large.
[[noreturn]] void refuse_limit(const RenderLimitError& error) {
    throw DomainError::validation(json::object{{error.field(), error.what()}});
}

// Every placeholder of every item, bound without drawing, and the text it binds to counted: the
// first problem is refused.
void check_bound(const PrintTemplate& layout, const std::vector<json::value>& items) {
    try {
        check_binding(layout, items);
    } catch (const ElementBindingError& error) {
        refuse_binding(error, items.size() > 1);
    } catch (const RenderLimitError& error) {
        refuse_limit(error);
    }
}

// The items' table rows counted against the renderer's limit, before binding them one by one.
void check_rows(const PrintTemplate& layout, const std::vector<json::value>& items) {
    try {
        check_table_rows(layout, items);
    } catch (const RenderLimitError& error) {
        refuse_limit(error);
    }
}

// The design a create or an update saves, checked; a 422 first for the other fields' `problems`.
const json::value& design_of(const json::object& request, json::object problems) {
    core::refuse_if_any(problems);
    const auto* source = request.if_contains("template");
    if (source == nullptr) {
        throw DomainError::validation(json::object{{"template", "required: the design"}});
    }
    parse_template(*source);
    return *source;
}

// The layout drawn over `items`, every binding checked first; a binding problem is a 422.
RenderedPdf draw_checked(const PdfRenderer& renderer,
                         const PrintTemplate& layout,
                         const std::vector<json::value>& items) {
    check_rows(layout, items);
    check_bound(layout, items);
    try {
        return renderer.render(layout, items);
    } catch (const ElementBindingError& error) {
        refuse_binding(error, items.size() > 1);
    } catch (const RenderLimitError& error) {
        refuse_limit(error);
    }
}

TemplateRow require(Repository& repository,
                    Transaction& tx,
                    const core::TenantId& tenant,
                    std::int64_t id,
                    bool for_update) {
    return core::found(repository.find(tx, tenant, id, for_update),
                       "print template " + std::to_string(id));
}

}  // namespace

TemplateRow Service::create(const core::Principal& who, const json::object& request) {
    json::object problems;
    const auto key = core::required_text(request, "key", 100, problems);
    const auto name = core::required_text(request, "name", 200, problems);
    const auto& source = design_of(request, std::move(problems));
    const auto id = repository_.create(who.tenant, key, name, source, who.user_id);
    if (!id) {
        throw DomainError::conflict("a print template with key '" + key + "' exists already");
    }
    return get(who.tenant, *id);
}

TemplateRow Service::get(const core::TenantId& tenant, std::int64_t id) {
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        return require(repository_, tx, tenant, id, false);
    });
}

TemplateRow Service::update(const core::Principal& who,
                            std::int64_t id,
                            const json::object& request) {
    json::object problems;
    const auto name = core::text_field(request, "name", {.max = 200, .min = 1}, problems);
    const auto& source = design_of(request, std::move(problems));
    return core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        require(repository_, tx, who.tenant, id, true);
        repository_.save_draft(tx, who.tenant, id, name, source);
        auto row = require(repository_, tx, who.tenant, id, false);
        return row;
    });
}

json::object Service::publish(const core::Principal& who, std::int64_t id) {
    return core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto row = require(repository_, tx, who.tenant, id, true);
        parse_template(row.draft);
        const int version = row.latest_version + 1;
        std::string hash;
        try {
            hash = core::sha256_hex(core::canonical_json(row.draft));
        } catch (const core::CanonicalJsonError& error) {
            // As stored, the draft holds what JCS cannot write (a whole number past 2^53).
            throw DomainError::validation(json::object{{"template", error.what()}});
        }
        repository_.add_version(tx, who.tenant, id, version, row.draft, hash, who.user_id);
        return json::object{{"template_id", id}, {"version", version}, {"content_hash", hash}};
    });
}

RenderedPdf Service::preview(const core::TenantId& tenant,
                             std::optional<std::int64_t> id,
                             const json::object& request) {
    json::value source;
    if (id) {
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            const auto row = require(repository_, tx, tenant, *id, false);
            source = row.draft;
            if (const auto* v = request.if_contains("version"); v != nullptr && !v->is_null()) {
                // A number past int is refused, not truncated into another version.
                if (!v->is_int64() || v->get_int64() < 1 || v->get_int64() > 1000000) {
                    throw DomainError::validation(
                        json::object{{"version", "a published version number"}});
                }
                source = core::found(
                    repository_.version_source(tx, tenant, *id, static_cast<int>(v->get_int64())),
                    "version " + std::to_string(v->get_int64()) + " of print template " +
                        std::to_string(*id));
            }
        });
    } else {
        const auto* given = request.if_contains("template");
        if (given == nullptr) {
            throw DomainError::validation(
                json::object{{"template", "required: the design to preview"}});
        }
        source = *given;
    }
    // The design is read before the items, so a bad design is the problem named first.
    const auto layout = parse_template(source);
    return draw_checked(renderer_, layout, items_of(request));
}

RenderedPdf Service::draw(const json::value& design, const std::vector<json::value>& items) {
    return draw_checked(renderer_, parse_template(design), items);
}

json::object Service::request_render(const core::Principal& who, const json::object& request) {
    const auto* template_id = request.if_contains("template_id");
    if (template_id == nullptr || !template_id->is_int64()) {
        throw DomainError::validation(json::object{{"template_id", "required: the template's id"}});
    }
    json::object problems;
    const auto key = core::text_field(request, "idempotency_key", {.max = 200, .min = 1}, problems);
    core::refuse_if_any(problems);
    const auto items = items_of(request);
    return core::db::transact(repository_.pool(), who.tenant, [&](Transaction& tx) {
        const auto row = require(repository_, tx, who.tenant, template_id->get_int64(), false);
        int version = row.latest_version;
        if (const auto* v = request.if_contains("version"); v != nullptr && !v->is_null()) {
            if (!v->is_int64() || v->get_int64() < 1 || v->get_int64() > 1000000) {
                throw DomainError::validation(
                    json::object{{"version", "a published version number"}});
            }
            version = static_cast<int>(v->get_int64());
        }
        if (version == 0) {
            throw DomainError::conflict("print template " + std::to_string(row.id) +
                                        " has no published version; publish it first");
        }
        const auto layout = parse_template(core::found(
            repository_.version_source(tx, who.tenant, row.id, version),
            "version " + std::to_string(version) + " of print template " + std::to_string(row.id)));
        check_rows(layout, items);
        check_bound(layout, items);
        json::array stored(items.begin(), items.end());
        const auto [render_id, fresh] =
            repository_.add_render(tx, who.tenant, row.id, version, stored, who.user_id, key);
        if (fresh) {
            core::outbox::add(tx, who.tenant,
                              core::row_event(kRenderRequested, who.tenant, "render_id", render_id,
                                              "print-render"));
        }
        auto render = repository_.render(tx, who.tenant, render_id, false);
        // The items compared as jsonb: read back into json::value, the request's 1e2 (a double)
        // comes back as the integer 100, which json::value does not hold equal.
        if (!fresh && (render->template_id != row.id || render->version != version ||
                       !repository_.same_items(tx, who.tenant, render_id, stored))) {
            throw DomainError::conflict("idempotency key '" + key.value_or("") +
                                        "' was used for a different render (" +
                                        std::to_string(render_id) + ")");
        }
        return render->to_json();
    });
}

json::object Service::run_render(const core::TenantId& tenant, std::int64_t render_id) {
    // The step's answer; a step run again answers what the attempt that stored it answered.
    const auto answer = [render_id](const std::string& status,
                                    const std::optional<std::string>& sha256,
                                    std::optional<int> pages) {
        return json::object{{"render_id", render_id},
                            {"status", status},
                            {"output_sha256", sha256 ? json::value(*sha256) : json::value(nullptr)},
                            {"pages", pages ? json::value(*pages) : json::value(nullptr)}};
    };
    // Drawn outside any transaction: a document of hundreds of items holds no row lock and no
    // pooled connection while it draws. Drawing has no side effect, so two attempts that
    // overlap draw twice and the first to store its output wins.
    const auto [render, source] =
        core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
            auto row = core::found(repository_.render(tx, tenant, render_id, false),
                                   "render " + std::to_string(render_id));
            auto design = row.status == "queued"
                              ? repository_.version_source(tx, tenant, row.template_id, row.version)
                              : std::nullopt;
            return std::pair{std::move(row), std::move(design)};
        });
    if (render.status != "queued") {
        // A retried step: the render was finished in the same transaction as its output.
        return answer(render.status, render.output_sha256, render.pages);
    }
    std::vector<json::value> items(render.items.as_array().begin(), render.items.as_array().end());
    std::optional<Output> output;
    json::array warnings;
    std::optional<std::string> error;
    try {
        const auto design =
            core::found(source, "version " + std::to_string(render.version) + " of template " +
                                    std::to_string(render.template_id));
        const auto pdf = renderer_.render(parse_template(design), items);
        output = Output{core::sha256_hex(pdf.bytes), pdf.bytes, pdf.pages};
        warnings = json::array(pdf.warnings.begin(), pdf.warnings.end());
    } catch (const ElementBindingError& failure) {
        error = "items[" + std::to_string(failure.item()) + "] elements[" +
                std::to_string(failure.element()) + "]: " + failure.what();
    } catch (const DomainError& failure) {
        error = failure.what();
    } catch (const RenderLimitError& failure) {
        error = failure.what();  // the same items are past it on every attempt
    } catch (const std::bad_alloc&) {
        throw;  // the process is in trouble: let the step retry elsewhere or later
    } catch (const std::exception& failure) {
        // PoDoFo, a font, zint: the same input fails the same way again; record it.
        error = std::string("the PDF could not be drawn: ") + failure.what();
    }
    const auto stored = core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        auto now = core::found(repository_.render(tx, tenant, render_id, true),
                               "render " + std::to_string(render_id));
        if (now.status != "queued") {
            return std::optional(std::move(now));
        }
        repository_.finish_render(tx, tenant, render_id, output, warnings, error);
        return std::optional<RenderRow>();
    });
    if (stored) {  // another attempt stored first: its answer
        return answer(stored->status, stored->output_sha256, stored->pages);
    }
    const bool done = output.has_value();
    core::log(done ? core::LogLevel::kInfo : core::LogLevel::kWarn,
              done ? "print render done" : "print render failed",
              {{"tenant", tenant.value()}, {"render", render_id}, {"error", error.value_or("")}});
    return answer(done ? "done" : "failed", done ? std::optional(output->sha256) : std::nullopt,
                  done ? std::optional(output->pages) : std::nullopt);
}

void Service::fail_render(const core::TenantId& tenant,
                          std::int64_t render_id,
                          const std::string& cause) {
    core::log(core::LogLevel::kWarn, "print render failed through its retries",
              {{"tenant", tenant.value()}, {"render", render_id}, {"error", cause}});
    core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        const auto now = repository_.render(tx, tenant, render_id, true);
        if (now && now->status == "queued") {
            // The tenant reads a render's error: the cause may be the database's, for the log.
            repository_.finish_render(tx, tenant, render_id, std::nullopt, {},
                                      "the render could not be finished (it failed on every "
                                      "attempt); ask for it again");
        }
    });
}

json::object Service::render_status(const core::TenantId& tenant, std::int64_t render_id) {
    return core::db::transact(repository_.pool(), tenant, [&](Transaction& tx) {
        return core::found(repository_.render(tx, tenant, render_id, false),
                           "render " + std::to_string(render_id))
            .to_json();
    });
}

Output Service::render_output(const core::TenantId& tenant, std::int64_t render_id) {
    const auto status = render_status(tenant, render_id);
    if (status.at("status") != "done") {
        throw DomainError::conflict("render " + std::to_string(render_id) + " is " +
                                    std::string(status.at("status").as_string()) +
                                    "; its PDF is not there");
    }
    return core::found(
        repository_.output(tenant, std::string(status.at("output_sha256").as_string())),
        "the PDF of render " + std::to_string(render_id));
}

}  // namespace riveredge::print
