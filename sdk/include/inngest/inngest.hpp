#pragma once

/// @file
/// @brief Umbrella header of the inngest-cpp SDK.

#include <inngest/client.hpp>
#include <inngest/context.hpp>
#include <inngest/errors.hpp>
#include <inngest/event.hpp>
#include <inngest/function.hpp>
#include <inngest/http_server.hpp>
#include <inngest/logger.hpp>
#include <inngest/metrics.hpp>
#include <inngest/serve.hpp>
#include <inngest/step.hpp>
#include <inngest/version.hpp>
