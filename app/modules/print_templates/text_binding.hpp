#pragma once

// Binds a template's text to data: `{{path}}` or `{{path | formatter:argument}}`, logic-less,
// with a fixed set of formatters (dates, numbers, currency, Chinese capital amounts and dates).
// Nothing in a template is ever executed.

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace riveredge::print {

/// A placeholder that cannot be bound: the path or formatter, and why.
class BindingError : public std::runtime_error {
public:
    BindingError(std::string placeholder, const std::string& message)
        : std::runtime_error(message), placeholder_(std::move(placeholder)) {}
    const std::string& placeholder() const noexcept { return placeholder_; }

private:
    std::string placeholder_;
};

/// The most one bound text holds, in bytes: a text element, a table cell or a barcode's data
/// once its placeholders are replaced. More than a whole page of small print (an A4 page of
/// 6 pt Chinese is about 12,000 characters, 35 KB); what passes it is a value repeated or one
/// that does not belong in a printed box.
inline constexpr std::size_t kMaxBoundText = std::size_t{64} * 1024;

/// `text` with every placeholder replaced. A missing value is an error unless the placeholder
/// ends in `| default:…`. Throws BindingError; also as soon as the text would pass `limit`
/// bytes, naming the placeholder it passes at, before the rest is built (a value is not even
/// copied or serialised whole).
std::string bind_text(const std::string& text,
                      const boost::json::value& data,
                      std::size_t limit = kMaxBoundText);

/// The value at a dotted path (`items[0].name`); nullptr when there is none.
const boost::json::value* value_at(const boost::json::value& data, const std::string& path);

/// Whether the value at `path` is present and not false, 0, "" or an empty array.
bool truthy(const boost::json::value& data, const std::string& path);

/// A number from a JSON number or a whole numeric string ("12.5"); nullopt otherwise.
std::optional<double> number_value(const boost::json::value& value);

/// An amount in Chinese capital numerals for cheques and invoices (大写金额): 1234.5 ->
/// 壹仟贰佰叁拾肆元伍角整. `cents` is the amount in fen, below 10^14 (1万亿 yuan).
std::string chinese_capital_amount(std::int64_t cents);

}  // namespace riveredge::print
