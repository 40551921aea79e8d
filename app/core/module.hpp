#pragma once

// The one shape of a module: it declares its name and registers its routes and Inngest functions
// when built from the AppContext (durable work needs no restart code: the executor resumes it,
// and the outbox relays what was announced). Modules never
// include each other: what one offers the others is a narrow interface declared here, which
// the providing module publishes in `Capabilities` and the using module looks up.

#include "core/auth/principal.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace riveredge::core {

namespace db {
class Transaction;
}

/// Where a request came from, for audit trails (Annex 11 §12.4).
struct RequestOrigin {
    std::string address;
    std::string user_agent;
};

/// Electronic signatures on records (the records module), for workflows whose decision is a
/// signature. Signing is two calls so that the slow, counted re-authentication runs outside the
/// caller's transaction and the signature commits with the caller's decision or not at all.
class RecordSigner {
public:
    /// A signer who has just re-authenticated.
    struct Signer {
        Principal who;
        std::string printed_name;
        RequestOrigin from;
    };
    virtual ~RecordSigner() = default;
    /// Re-authenticates `who` (Part 11.200) from `credentials` {password, user_id} in a
    /// transaction of its own: a wrong password counts towards the lockout. Throws DomainError.
    virtual Signer authenticate(const Principal& who,
                                const RequestOrigin& from,
                                const boost::json::object& credentials) = 0;
    /// Signs the record's latest version inside `tx`, once per version, signer, meaning and
    /// `step_key`; the signature's manifestation. Throws DomainError (404, 409, 422).
    virtual boost::json::object sign(db::Transaction& tx,
                                     const Signer& signer,
                                     std::int64_t record_id,
                                     const std::string& meaning,
                                     const std::string& reason,
                                     const std::string& step_key) = 0;
};

/// In-app notifications to users of a tenant (the messages module).
class Notifier {
public:
    virtual ~Notifier() = default;
    /// Sends `subject`/`body` to `user_ids`' inboxes, once per `idempotency_key` of `sender` (a
    /// part of the app, such as "approvals": its keys are never a user's); the message id.
    virtual std::int64_t notify(const TenantId& tenant,
                                const std::string& sender,
                                const std::vector<std::string>& user_ids,
                                const std::string& subject,
                                const std::string& body,
                                const std::optional<std::string>& idempotency_key) = 0;
};

/// A script run that ended without succeeding (failed, timed out, over its memory); `run` is its
/// record. The message: "script run <id> <status>: <the script's own message>".
class ScriptRunFailed : public std::runtime_error {
public:
    explicit ScriptRunFailed(boost::json::object run);
    const boost::json::object& run() const noexcept { return run_; }

private:
    boost::json::object run_;
};

/// A tenant's stored scripts and its outbound allow-list (the scripts module).
class StoredScripts {
public:
    virtual ~StoredScripts() = default;
    /// The script with its latest version; DomainError 404 when the tenant has none with this id.
    virtual boost::json::object get(const TenantId& tenant, std::int64_t script_id) = 0;
    /// Runs a stored script as `who` (synchronously unless the request says async) and returns
    /// the run record. A durable step passes its own `idempotency_key`: run again with it, the
    /// step gets the run that succeeded or is queued instead of a second one (a run that failed
    /// leaves the key free, so a retry runs the script again). While an earlier attempt of the
    /// step still runs the script, inngest::RetryAfterError after a bounded wait: the step lets
    /// it through (it is no failure of the step's own), is retried then and gets the run.
    virtual boost::json::object start_run(const Principal& who,
                                          std::int64_t script_id,
                                          const boost::json::object& request,
                                          const std::string& trigger,
                                          const std::optional<std::string>& idempotency_key) = 0;
    /// What a durable step of another module runs: the script, synchronously, as `runner` (a
    /// part of the app) with `arguments` (null: none), once per `key` (see start_run). The
    /// record of a run that succeeded; ScriptRunFailed for one that did not, DomainError when
    /// it could not start (no such script, disabled, arguments refused).
    boost::json::object run_to_success(const TenantId& tenant,
                                       const std::string& runner,
                                       std::int64_t script_id,
                                       const boost::json::value& arguments,
                                       const std::string& trigger,
                                       const std::string& key);
    /// The hosts the tenant allows outbound HTTP to (scripts, schedules, service tasks).
    virtual std::vector<std::string> http_allow_list(const TenantId& tenant) = 0;
};

/// PDF output from print-template designs (the print templates module).
class PdfPrinter {
public:
    struct Pdf {
        std::string bytes;
        int pages = 0;
        std::vector<std::string> warnings;
    };
    virtual ~PdfPrinter() = default;
    /// Draws `design` (a print template's JSON) over `items`, one document each; DomainError 422
    /// when the design or the data do not fit.
    virtual Pdf print(const boost::json::value& design,
                      const std::vector<boost::json::value>& items) = 0;
    /// The PDF a durable render of the tenant produced; DomainError 404 when the tenant has no
    /// such render, 409 until it is done.
    virtual Pdf rendered(const TenantId& tenant, std::int64_t render_id) = 0;
};

/// What modules offer each other, published while the app builds its modules in order.
class Capabilities {
public:
    void provide(Notifier& notifier) { notifier_ = &notifier; }
    void provide(StoredScripts& scripts) { scripts_ = &scripts; }
    void provide(RecordSigner& signer) { signer_ = &signer; }
    void provide(PdfPrinter& printer) { printer_ = &printer; }

    Notifier& notifier() const { return required(notifier_, "a notifier (the messages module)"); }
    StoredScripts& scripts() const {
        return required(scripts_, "stored scripts (the scripts module)");
    }
    PdfPrinter& pdf_printer() const {
        return required(printer_, "PDF output (the print templates module)");
    }
    RecordSigner& record_signer() const {
        return required(signer_, "electronic signatures (the records module)");
    }

private:
    template <class T>
    static T& required(T* provided, const char* what) {
        if (provided == nullptr) {
            throw std::logic_error(std::string("no module provides ") + what +
                                   ": list its module before the modules that use it");
        }
        return *provided;
    }
    Notifier* notifier_ = nullptr;
    StoredScripts* scripts_ = nullptr;
    RecordSigner* signer_ = nullptr;
    PdfPrinter* printer_ = nullptr;
};

class Module {
public:
    virtual ~Module() = default;
    virtual std::string_view name() const noexcept = 0;
};

}  // namespace riveredge::core
