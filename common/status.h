// Status and StatusOr<T>: the control-path error type (setup, pool open,
// config, recovery). A null state means OK, so success costs one pointer test.
// The hot path does not use these; it returns the small enum in result.h.
//
// Thread safety: a Status is a value; distinct objects may be used from
// distinct threads, one object is not synchronized.
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ferrite {

class [[nodiscard]] Status {
 public:
  enum class Code : int {
    kOk = 0,
    kInvalidArgument,  // caller passed something out of range or malformed
    kNotFound,         // file or object missing
    kAlreadyExists,    // refusing to overwrite
    kBusy,             // held by another process (pool lock, port in use)
    kNoSpace,          // device or pool out of space
    kCorruption,       // on-media data failed a check
    kIncompatible,     // layout or version we cannot read
    kIoError,          // syscall failed for another reason
    kInternal,         // a bug: an invariant did not hold
  };

  Status() noexcept = default;
  Status(Code code, std::string msg)
      : state_(std::make_shared<const State>(State{code, std::move(msg)})) {
    assert(code != Code::kOk);
  }

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status no_space(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status incompatible(std::string m) { return {Code::kIncompatible, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool is_ok() const noexcept { return state_ == nullptr; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return state_ ? state_->code : Code::kOk; }
  std::string_view message() const noexcept {
    return state_ ? std::string_view(state_->msg) : std::string_view();
  }
  // "<code name>: <message>", or "OK".
  std::string to_string() const;
  // Returns a copy with "context: " prepended to the message.
  Status with_context(std::string_view context) const;

 private:
  struct State {
    Code code;
    std::string msg;
  };
  std::shared_ptr<const State> state_;  // null means OK
};

std::string_view code_name(Status::Code code) noexcept;

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status s) : status_(std::move(s)) { assert(!status_.is_ok()); }  // NOLINT
  StatusOr(T value) : value_(std::move(value)) {}                          // NOLINT

  bool is_ok() const noexcept { return status_.is_ok(); }
  explicit operator bool() const noexcept { return is_ok(); }
  const Status& status() const noexcept { return status_; }

  T& value() & { assert(is_ok()); return *value_; }
  const T& value() const& { assert(is_ok()); return *value_; }
  T&& value() && { assert(is_ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ferrite

// Propagate a non-OK Status from an expression returning Status.
#define FERRITE_RETURN_IF_ERROR(expr)                      \
  do {                                                     \
    ::ferrite::Status ferrite_status_ = (expr);            \
    if (!ferrite_status_.is_ok()) return ferrite_status_;  \
  } while (0)
