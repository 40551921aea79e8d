#pragma once

/// @file
/// @brief The SDK's error vocabulary: exceptions for function bodies, `Error`/`Result` for
/// boundary calls, `ConfigError` for start-up mistakes.

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace inngest {

/// Base of every exception the SDK throws or interprets.
class Exception : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A configuration mistake (invalid option, duplicate function id, malformed key).
/// Thrown only while the client and its functions are being set up, never later.
class ConfigError : public Exception {
public:
    using Exception::Exception;
};

/// Thrown from a function body or a step: fail now and do not retry.
class NonRetriableError : public Exception {
public:
    using Exception::Exception;
};

/// Thrown from a function body or a step: retry, but not before the given delay or instant.
class RetryAfterError : public Exception {
public:
    using RetryAt = std::variant<std::chrono::seconds, std::chrono::system_clock::time_point>;

    RetryAfterError(const std::string& message, std::chrono::seconds delay);
    RetryAfterError(const std::string& message, std::chrono::system_clock::time_point at);

    /// A delay or an absolute instant, as given.
    const RetryAt& retry_at() const noexcept { return retry_at_; }
    /// The value of the `Retry-After` header: whole seconds, or an RFC 3339 timestamp.
    std::string header_value() const;

private:
    RetryAt retry_at_;
};

/// A step that failed for good (retries exhausted, or non-retriable).
///
/// @par Replay
/// Thrown again, at the same place, on every later invocation that replays the step. If it
/// escapes the function, the run fails without further retries; catch it to recover.
class StepError : public Exception {
public:
    StepError(std::string step_id,
              std::string name,
              const std::string& message,
              std::string stack = {},
              boost::json::value data = nullptr);

    /// The developer-facing step id (not the hash).
    const std::string& step_id() const noexcept { return step_id_; }
    /// The error's type name as serialized when the step failed (for example `Error`).
    const std::string& name() const noexcept { return name_; }
    /// The error message.
    std::string message() const { return what(); }
    /// The stack trace recorded by the SDK that ran the step (empty for C++ steps).
    const std::string& stack() const noexcept { return stack_; }
    /// Extra error data, or null.
    const boost::json::value& data() const noexcept { return data_; }

private:
    std::string step_id_;
    std::string name_;
    std::string stack_;
    boost::json::value data_;
};

/// Codes for failures at the SDK's boundaries (serve handler, event sending, sync).
/// Each code maps to one HTTP status and one stable snake_case string (`error_code_name`).
enum class ErrorCode {
    kNone = 0,            ///< No error.
    kMalformedRequest,    ///< A request body that is not the JSON the protocol specifies (400).
    kBodyTooLarge,        ///< A request body over the configured limit (413).
    kUnauthorized,        ///< Missing, invalid or expired `X-Inngest-Signature` (401).
    kUnknownFunction,     ///< `fnId` names no function of this app (404).
    kMethodNotAllowed,    ///< An HTTP method the serve endpoint does not answer (405).
    kMissingSigningKey,   ///< Cloud mode without a signing key: the SDK refuses to serve (500).
    kStepNotFound,        ///< A targeted step was not reached on replay (500).
    kInterruptSwallowed,  ///< User code swallowed the SDK's step interruption (500).
    kSyncFailed,          ///< Registering the app with the Inngest server failed (500).
    kNetwork,             ///< A connection, TLS or timeout failure talking to Inngest (502).
    kRemoteRejected,      ///< The Inngest server answered with an error status (502).
    kInvalidArgument,     ///< A caller passed an invalid value to an SDK call (400).
    kInternal,            ///< A bug or an unexpected exception inside the SDK (500).
};

/// The stable snake_case name of a code (for example `invalid_signature`).
std::string_view error_code_name(ErrorCode code) noexcept;
/// The HTTP status that represents a code.
int error_code_status(ErrorCode code) noexcept;

/// A failure at an SDK boundary. `message` is safe to show to clients; never holds secrets.
struct Error {
    ErrorCode code = ErrorCode::kNone;
    std::string message{};
};

/// Thrown by `Result<T>::value()` when it holds an error.
class ResultError : public Exception {
public:
    explicit ResultError(Error error);
    const Error& error() const noexcept { return error_; }

private:
    Error error_;
};

/// ADL hook that `boost::system::result` uses to throw from `value()`.
[[noreturn]] void throw_exception_from_error(const Error& error, const boost::source_location& loc);

/// Value-or-error for SDK boundary calls (`Client::send`, request parsing).
template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace inngest
