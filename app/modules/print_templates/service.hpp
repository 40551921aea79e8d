#pragma once

// Print templates: designs validated and versioned, previews drawn at once, renders of batches
// asked for here and drawn durably by the print-render function, outputs kept by content hash.

#include "core/auth/principal.hpp"
#include "modules/print_templates/pdf_renderer.hpp"
#include "modules/print_templates/repository.hpp"

#include <boost/json/object.hpp>

#include <memory>
#include <string>

namespace riveredge::print {

/// A render asked for (data: tenant_id, render_id); the print-render function draws it.
inline constexpr const char* kRenderRequested = "print/render.requested";
/// Data items one render takes at most (one page set each).
inline constexpr std::size_t kMaxItems = 500;

class Service {
public:
    Service(Repository& repository, std::shared_ptr<const FontChain> fonts)
        : repository_(repository), renderer_(std::move(fonts)) {}

    TemplateRow create(const core::Principal& who, const boost::json::object& request);
    TemplateRow get(const core::TenantId& tenant, std::int64_t id);
    /// A new draft (and name); validated like a new template.
    TemplateRow update(const core::Principal& who,
                       std::int64_t id,
                       const boost::json::object& request);
    /// The draft becomes the next immutable version.
    boost::json::object publish(const core::Principal& who, std::int64_t id);

    /// Draws a template at once: `template` (an unsaved design) or template `id` (its draft, or
    /// `version`), over `data` (one item) or `items`.
    RenderedPdf preview(const core::TenantId& tenant,
                        std::optional<std::int64_t> id,
                        const boost::json::object& request);

    /// Draws a design over items at once (the PdfPrinter other modules use).
    RenderedPdf draw(const boost::json::value& design,
                     const std::vector<boost::json::value>& items);

    /// Records a render of a published version over `items` and announces it (outbox); every
    /// item's binding is checked first, so a missing value is a 422 here, not a failed run.
    boost::json::object request_render(const core::Principal& who,
                                       const boost::json::object& request);
    /// The print-render function's step: draws the render, stores the PDF by its SHA-256 and
    /// marks the render done (or failed) in one transaction. Never returns the bytes.
    boost::json::object run_render(const core::TenantId& tenant, std::int64_t render_id);
    /// The print-render function's failure handler: a render still queued once its run failed
    /// through its retries ends failed (else nothing waits on it and print jobs for it are
    /// refused for ever). `cause` (the last error, maybe the database's) goes to the log only.
    void fail_render(const core::TenantId& tenant,
                     std::int64_t render_id,
                     const std::string& cause);
    boost::json::object render_status(const core::TenantId& tenant, std::int64_t render_id);
    Output render_output(const core::TenantId& tenant, std::int64_t render_id);

    Repository& repository() noexcept { return repository_; }

private:
    Repository& repository_;
    PdfRenderer renderer_;
};

}  // namespace riveredge::print
