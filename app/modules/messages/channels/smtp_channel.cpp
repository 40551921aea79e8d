#include "modules/messages/channels/smtp_channel.hpp"

#include "core/text/base64.hpp"

#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

#include <curl/curl.h>

namespace riveredge::messages {
namespace {

bool plain_ascii(const std::string& text) {
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x80 || u < 0x20) {
            return false;
        }
    }
    return true;
}

// Splits UTF-8 text into chunks that never cut a character, each short enough for one word.
std::vector<std::string> utf8_chunks(const std::string& text, std::size_t max_bytes) {
    std::vector<std::string> chunks;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = std::min(text.size(), start + max_bytes);
        while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U) {
            --end;
        }
        chunks.push_back(text.substr(start, end - start));
        start = end;
    }
    return chunks;
}

std::string date_header() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[64];
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &utc);
    return text;
}

struct Upload {
    const std::string* data;
    std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t count, void* user) {
    auto* upload = static_cast<Upload*>(user);
    const std::size_t left = upload->data->size() - upload->offset;
    const std::size_t n = std::min(left, size * count);
    std::memcpy(buffer, upload->data->data() + upload->offset, n);
    upload->offset += n;
    return n;
}

std::size_t ignore_output(char*, std::size_t size, std::size_t count, void*) {
    return size * count;
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One UTF-8 body as base64 in 76-column lines, with its Content-Type header.
std::string part_headers_and_body(const char* content_type, const std::string& content) {
    std::string part = std::string("Content-Type: ") + content_type + "; charset=UTF-8\r\n";
    part += "Content-Transfer-Encoding: base64\r\n\r\n";
    const std::string encoded = core::to_base64(content);
    for (std::size_t i = 0; i < encoded.size(); i += 76) {
        part += encoded.substr(i, 76) + "\r\n";
    }
    return part;
}

}  // namespace

std::string encode_header_word(const std::string& text) {
    if (plain_ascii(text)) {
        return text;
    }
    std::string out;
    for (const auto& chunk : utf8_chunks(text, 45)) {
        if (!out.empty()) {
            out += "\r\n ";
        }
        out += "=?UTF-8?B?" + core::to_base64(chunk) + "?=";
    }
    return out;
}

std::string render_email(const SmtpSettings& settings, const Email& email) {
    std::string from = "<" + settings.from_address + ">";
    if (settings.from_name && !settings.from_name->empty()) {
        from = encode_header_word(*settings.from_name) + " " + from;
    }
    std::string message;
    message += "From: " + from + "\r\n";
    message += "To: <" + email.to + ">\r\n";
    message += "Subject: " + encode_header_word(email.subject) + "\r\n";
    message += "Date: " + date_header() + "\r\n";
    message += "Message-ID: <" + email.message_id + ">\r\n";
    message += "MIME-Version: 1.0\r\n";
    if (!email.html) {
        message += part_headers_and_body("text/plain", email.text);
        return message;
    }
    // "=_" never occurs in base64, so the boundary cannot collide with a part's content.
    const std::string boundary = "=_riveredge_" + core::to_base64(email.message_id).substr(0, 24);
    message += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n";
    message += "--" + boundary + "\r\n" + part_headers_and_body("text/plain", email.text);
    message += "--" + boundary + "\r\n" + part_headers_and_body("text/html", *email.html);
    message += "--" + boundary + "--\r\n";
    return message;
}

ProviderResult send_email(const core::OutboundPolicy& policy,
                          const SmtpSettings& settings,
                          const Email& email) {
    std::optional<core::CheckedDestination> destination;
    try {
        destination = policy.check(settings.host, settings.port);
    } catch (const std::exception& failure) {
        return not_sent(failure);
    }
    global_init();
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
        return {false, "curl initialisation failed", true};
    }
    const std::string scheme = settings.tls_mode == "smtps" ? "smtps" : "smtp";
    const std::string url = scheme + "://" + settings.host + ":" + std::to_string(settings.port);
    const std::string message = render_email(settings, email);
    Upload upload{&message};
    curl_slist* recipients = curl_slist_append(nullptr, ("<" + email.to + ">").c_str());
    const core::CurlPin pin(curl, *destination);
    const std::string from = "<" + settings.from_address + ">";
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ignore_output);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (settings.tls_mode == "starttls") {
        curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    }
    if (settings.ca_file) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, settings.ca_file->c_str());
    }
    if (settings.username) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, settings.username->c_str());
    }
    if (settings.password) {
        curl_easy_setopt(curl, CURLOPT_PASSWORD, settings.password->c_str());
    }
    char error[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    const CURLcode status = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(recipients);
    curl_easy_cleanup(curl);
    ProviderResult result;
    if (status == CURLE_OK) {
        result.sent = true;
        result.reply = "accepted (" + std::to_string(code) + ")";
        return result;
    }
    result.reply =
        std::to_string(code) + " " + (error[0] != '\0' ? error : curl_easy_strerror(status));
    // 5xx is a permanent refusal; 4xx and connection problems may pass on a later attempt.
    result.retriable = code < 500;
    return result;
}

}  // namespace riveredge::messages
