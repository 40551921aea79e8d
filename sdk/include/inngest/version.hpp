#pragma once

/// @file
/// @brief Compile-time version of the inngest-cpp SDK.

#define INNGEST_VERSION_MAJOR 0
#define INNGEST_VERSION_MINOR 1
#define INNGEST_VERSION_PATCH 0

namespace inngest {

/// The SDK version, as advertised in `X-Inngest-SDK` (`inngest-cpp:v<version>`).
inline constexpr const char* kSdkVersion = "0.1.0";
/// The SDK name part of `X-Inngest-SDK`.
inline constexpr const char* kSdkName = "inngest-cpp";
/// The language reported during sync and introspection.
inline constexpr const char* kSdkLanguage = "cpp";

}  // namespace inngest
