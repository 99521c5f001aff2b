// Status formatting.
#include "common/status.h"

namespace ferrite {

std::string_view code_name(Status::Code code) noexcept {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kAlreadyExists: return "already exists";
    case Status::Code::kBusy: return "busy";
    case Status::Code::kNoSpace: return "no space";
    case Status::Code::kCorruption: return "corruption";
    case Status::Code::kIncompatible: return "incompatible";
    case Status::Code::kIoError: return "I/O error";
    case Status::Code::kInternal: return "internal error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string s(code_name(code()));
  s += ": ";
  s += message();
  return s;
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message();
  return Status(code(), std::move(m));
}

}  // namespace ferrite
