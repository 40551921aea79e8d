#pragma once

// The app's one error model: `{"error": {"code", "message", "details"}}` with an HTTP status.
// `message` is for clients; `internal` only goes to the log.

#include <boost/json/value.hpp>

#include <stdexcept>
#include <string>

namespace riveredge::core {

class ApiError : public std::runtime_error {
public:
    ApiError(int status,
             std::string code,
             const std::string& message,
             boost::json::value details = nullptr,
             std::string internal = {})
        : std::runtime_error(message),
          status_(status),
          code_(std::move(code)),
          details_(std::move(details)),
          internal_(std::move(internal)) {}

    int status() const noexcept { return status_; }
    const std::string& code() const noexcept { return code_; }
    const boost::json::value& details() const noexcept { return details_; }
    const std::string& internal() const noexcept { return internal_; }

    static ApiError bad_request(const std::string& message, boost::json::value details = nullptr) {
        return ApiError(400, "bad_request", message, std::move(details));
    }
    /// Field-level validation errors: details = {"fields": {"name": "reason", ...}}.
    static ApiError validation(boost::json::object fields);
    static ApiError not_found(const std::string& what) {
        return ApiError(404, "not_found", what + " not found");
    }
    static ApiError unauthorized() {
        return ApiError(401, "unauthorized", "a valid bearer token is required");
    }
    static ApiError forbidden(const std::string& message) {
        return ApiError(403, "forbidden", message);
    }
    static ApiError conflict(const std::string& message) {
        return ApiError(409, "conflict", message);
    }

private:
    int status_;
    std::string code_;
    boost::json::value details_;
    std::string internal_;
};

}  // namespace riveredge::core
