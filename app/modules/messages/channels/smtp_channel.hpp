#pragma once

// Email through libcurl's SMTP client: STARTTLS or SMTPS, AUTH, UTF-8 headers as RFC 2047 words.

#include "core/http/outbound_policy.hpp"
#include "modules/messages/channels/provider_result.hpp"

#include <optional>
#include <string>

namespace riveredge::messages {

struct SmtpSettings {
    std::string host;
    int port = 25;
    std::string tls_mode = "none";  // none | starttls | smtps
    std::optional<std::string> username;
    std::optional<std::string> password;
    std::string from_address;
    std::optional<std::string> from_name;
    /// Extra CA bundle for relays with a private CA (a process setting, not a tenant's).
    std::optional<std::string> ca_file;
};

struct Email {
    std::string to;
    std::string subject;
    std::string text;
    /// With an HTML part the message is multipart/alternative: `text` for plain clients.
    std::optional<std::string> html;
    /// Stable per delivery, so a resent copy is recognisably the same message.
    std::string message_id;
};

/// `=?UTF-8?B?...?=` for text that is not plain ASCII, else the text itself.
std::string encode_header_word(const std::string& text);

/// The RFC 5322 message (headers and body, CRLF line ends).
std::string render_email(const SmtpSettings& settings, const Email& email);

/// Sent when the relay accepts it; 4xx and connection failures may succeed later, 5xx will not.
ProviderResult send_email(const core::OutboundPolicy& policy,
                          const SmtpSettings& settings,
                          const Email& email);

}  // namespace riveredge::messages
