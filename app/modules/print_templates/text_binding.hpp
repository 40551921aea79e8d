#pragma once

// Binds a template's text to data: `{{path}}` or `{{path | formatter:argument}}`, logic-less,
// with a fixed set of formatters (dates, numbers, currency, Chinese capital amounts and dates).
// Nothing in a template is ever executed.

#include <boost/json/value.hpp>

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

/// `text` with every placeholder replaced. A missing value is an error unless the placeholder
/// ends in `| default:…`. Throws BindingError.
std::string bind_text(const std::string& text, const boost::json::value& data);

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
