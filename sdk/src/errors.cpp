#include <inngest/errors.hpp>

#include <boost/assert/source_location.hpp>

#include <array>
#include <ctime>

namespace inngest {
namespace {

struct ErrorCodeInfo {
    ErrorCode code;
    std::string_view name;
    int status;
};

// The one table mapping codes to HTTP statuses and stable names.
constexpr std::array kErrorCodes{
    ErrorCodeInfo{ErrorCode::kNone, "none", 200},
    ErrorCodeInfo{ErrorCode::kMalformedRequest, "malformed_request", 400},
    ErrorCodeInfo{ErrorCode::kBodyTooLarge, "body_too_large", 413},
    ErrorCodeInfo{ErrorCode::kUnauthorized, "unauthorized", 401},
    ErrorCodeInfo{ErrorCode::kUnknownFunction, "unknown_function", 404},
    ErrorCodeInfo{ErrorCode::kMethodNotAllowed, "method_not_allowed", 405},
    ErrorCodeInfo{ErrorCode::kMissingSigningKey, "missing_signing_key", 500},
    ErrorCodeInfo{ErrorCode::kStepNotFound, "step_not_found", 500},
    ErrorCodeInfo{ErrorCode::kInterruptSwallowed, "interrupt_swallowed", 500},
    ErrorCodeInfo{ErrorCode::kSyncFailed, "sync_failed", 500},
    ErrorCodeInfo{ErrorCode::kNetwork, "network_error", 502},
    ErrorCodeInfo{ErrorCode::kRemoteRejected, "remote_rejected", 502},
    ErrorCodeInfo{ErrorCode::kInvalidArgument, "invalid_argument", 400},
    ErrorCodeInfo{ErrorCode::kInternal, "internal", 500},
};

const ErrorCodeInfo& info(ErrorCode code) noexcept {
    for (const auto& entry : kErrorCodes) {
        if (entry.code == code) {
            return entry;
        }
    }
    return kErrorCodes.back();
}

}  // namespace

RetryAfterError::RetryAfterError(const std::string& message, std::chrono::seconds delay)
    : Exception(message), retry_at_(delay) {}

RetryAfterError::RetryAfterError(const std::string& message,
                                 std::chrono::system_clock::time_point at)
    : Exception(message), retry_at_(at) {}

std::string RetryAfterError::header_value() const {
    if (const auto* delay = std::get_if<std::chrono::seconds>(&retry_at_)) {
        return std::to_string(delay->count());
    }
    const std::time_t when = std::chrono::system_clock::to_time_t(
        std::get<std::chrono::system_clock::time_point>(retry_at_));
    std::tm utc{};
    gmtime_r(&when, &utc);
    std::array<char, 32> text{};
    const std::size_t length = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
    return std::string(text.data(), length);
}

StepError::StepError(std::string step_id,
                     std::string name,
                     const std::string& message,
                     std::string stack,
                     boost::json::value data)
    : Exception(message),
      step_id_(std::move(step_id)),
      name_(std::move(name)),
      stack_(std::move(stack)),
      data_(std::move(data)) {}

std::string_view error_code_name(ErrorCode code) noexcept {
    return info(code).name;
}

int error_code_status(ErrorCode code) noexcept {
    return info(code).status;
}

ResultError::ResultError(Error error) : Exception(error.message), error_(std::move(error)) {}

void throw_exception_from_error(const Error& error, const boost::source_location& /*loc*/) {
    throw ResultError(error);
}

}  // namespace inngest
