#pragma once

/// Errors are values in ember: every fallible call returns a Status or a Result<T>.
/// No exception crosses the public API.

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "ember/export.hpp"

namespace ember {

/// The small, stable set of error codes. Callers (and the fallback chain) branch on
/// the code; the message is for people. Values never change once released.
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kCancelled = 1,           ///< the caller gave up on the operation
  kUnknown = 2,             ///< an error that fits no other code
  kInvalidArgument = 3,     ///< the input is wrong, whatever the state of the system
  kDeadlineExceeded = 4,    ///< the operation did not finish in time
  kNotFound = 5,            ///< a named thing (file, model, input) does not exist
  kAlreadyExists = 6,       ///< a thing to be created exists already
  kPermissionDenied = 7,    ///< the caller may not do this
  kResourceExhausted = 8,   ///< out of memory (host or device), quota, or capacity
  kFailedPrecondition = 9,  ///< the system is not in a state to do this (e.g. no CUDA)
  kAborted = 10,            ///< a concurrency conflict; retrying at a higher level may work
  kOutOfRange = 11,         ///< a value past the end of a valid range
  kUnimplemented = 12,      ///< not supported by this build or this object
  kInternal = 13,           ///< an invariant broke, or the model itself failed
  kUnavailable = 14,        ///< transiently unavailable; retrying may work
  kDataLoss = 15,           ///< stored data is corrupt or truncated
};

/// "InvalidArgument", "NotFound", ... ("Unknown" for a value outside the enum).
EMBER_API std::string_view status_code_name(StatusCode code) noexcept;

/// The outcome of an operation: OK, or an error code with a one-line message that
/// names the offending input. An OK status holds no message and never allocates.
class [[nodiscard]] EMBER_API Status {
 public:
  /// OK.
  Status() noexcept = default;
  /// An error. A code of kOk gives OK and drops the message.
  Status(StatusCode code, std::string message);

  static Status ok_status() noexcept { return {}; }

  [[nodiscard]] bool ok() const noexcept { return code_ == StatusCode::kOk; }
  [[nodiscard]] StatusCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

  /// "OK", or "<CodeName>: <message>".
  [[nodiscard]] std::string to_string() const;

  /// A copy whose message starts with `context + ": "`; OK stays OK.
  [[nodiscard]] Status with_context(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// Shorthands for the common codes.
EMBER_API Status invalid_argument(std::string message);
EMBER_API Status not_found(std::string message);
EMBER_API Status failed_precondition(std::string message);
EMBER_API Status resource_exhausted(std::string message);
EMBER_API Status internal_error(std::string message);
EMBER_API Status data_loss(std::string message);
EMBER_API Status unimplemented(std::string message);
EMBER_API Status out_of_range(std::string message);

namespace detail {
/// Reports a Result accessed without a value and aborts: a programming error.
[[noreturn]] EMBER_API void die_bad_result_access(const Status& status) noexcept;
}  // namespace detail

/// A value of type T, or the error Status that explains why there is none.
///
/// Reading value() of an error Result is a programming error and aborts the process
/// with the status printed to stderr: check ok() first (or use value_or()).
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "Result<Status> is meaningless");
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

 public:
  /// A value.
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(implicit)
  /// An error. An OK status here is a programming error: it becomes kInternal.
  Result(Status status)  // NOLINT(implicit)
      : data_(std::in_place_index<1>,
              status.ok() ? Status(StatusCode::kInternal, "Result built from an OK status without a value")
                          : std::move(status)) {}

  [[nodiscard]] bool ok() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  /// OK when there is a value, else the error.
  [[nodiscard]] Status status() const& { return ok() ? Status() : std::get<1>(data_); }
  [[nodiscard]] Status status() && { return ok() ? Status() : std::get<1>(std::move(data_)); }

  [[nodiscard]] T& value() & { check(); return std::get<0>(data_); }
  [[nodiscard]] const T& value() const& { check(); return std::get<0>(data_); }
  [[nodiscard]] T&& value() && { check(); return std::get<0>(std::move(data_)); }

  [[nodiscard]] T value_or(T fallback) const& { return ok() ? std::get<0>(data_) : std::move(fallback); }
  [[nodiscard]] T value_or(T fallback) && { return ok() ? std::get<0>(std::move(data_)) : std::move(fallback); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void check() const {
    if (!ok()) detail::die_bad_result_access(std::get<1>(data_));
  }
  std::variant<T, Status> data_;
};

}  // namespace ember

/// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define EMBER_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    ::ember::Status ember_status_ = (expr);          \
    if (!ember_status_.ok()) return ember_status_;   \
  } while (false)
