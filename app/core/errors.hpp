#pragma once

// The app's domain errors. Services and repositories say what went wrong (not found, conflict,
// invalid with field details, forbidden, ...); the router alone turns a kind into an HTTP status
// and the JSON error body `{"error": {"code", "message", "details"}}`. `message` is for
// clients; `internal` only goes to the log.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <stdexcept>
#include <string>

namespace riveredge::core {

class DomainError : public std::runtime_error {
public:
    enum class Kind {
        kBadRequest,        ///< the request cannot be read (400)
        kUnauthorized,      ///< no valid credential (401)
        kForbidden,         ///< the caller may not do this (403)
        kNotFound,          ///< nothing of that id in the caller's tenant (404)
        kConflict,          ///< the state forbids it now (409)
        kInvalid,           ///< fields or a document with problems, in `details` (422)
        kTooMany,           ///< a limit on concurrent work was reached (429)
        kUnavailable,       ///< recorded or refused for now; try again (503)
        kMethodNotAllowed,  ///< the resource does not take this method (405)
        kUpgradeRequired,   ///< the resource speaks another protocol (426)
        kInternal,          ///< a fault of ours (500)
    };

    DomainError(Kind kind,
                std::string code,
                const std::string& message,
                boost::json::value details = nullptr,
                std::string internal = {})
        : std::runtime_error(message),
          kind_(kind),
          code_(std::move(code)),
          details_(std::move(details)),
          internal_(std::move(internal)) {}

    Kind kind() const noexcept { return kind_; }
    const std::string& code() const noexcept { return code_; }
    const boost::json::value& details() const noexcept { return details_; }
    const std::string& internal() const noexcept { return internal_; }

    static DomainError bad_request(const std::string& message,
                                   boost::json::value details = nullptr) {
        return {Kind::kBadRequest, "bad_request", message, std::move(details)};
    }
    /// Field-level problems: details = {"fields": {"name": "reason", ...}}.
    static DomainError validation(boost::json::object fields) {
        return {Kind::kInvalid, "validation_failed", "some fields are invalid",
                boost::json::object{{"fields", std::move(fields)}}};
    }
    static DomainError not_found(const std::string& what) {
        return {Kind::kNotFound, "not_found", what + " not found"};
    }
    static DomainError unauthorized() {
        return {Kind::kUnauthorized, "unauthorized", "a valid bearer token is required"};
    }
    static DomainError forbidden(const std::string& message) {
        return {Kind::kForbidden, "forbidden", message};
    }
    static DomainError conflict(const std::string& message) {
        return {Kind::kConflict, "conflict", message};
    }
    static DomainError unavailable(const std::string& message) {
        return {Kind::kUnavailable, "unavailable", message};
    }

private:
    Kind kind_;
    std::string code_;
    boost::json::value details_;
    std::string internal_;
};

}  // namespace riveredge::core
