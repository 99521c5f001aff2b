// common/status.h and common/result.h: Status codes, messages, context and
// StatusOr's value-or-error; every Result has its own name.
//
// Thread safety: single-threaded test.
#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "common/result.h"

namespace ferrite {
namespace {

TEST(Status, OkAndErrors) {
  const Status ok;
  EXPECT_TRUE(ok.is_ok());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(ok.code(), Status::Code::kOk);
  EXPECT_EQ(ok.to_string(), "OK");
  EXPECT_TRUE(ok.message().empty());
  const Status e = Status::corruption("bad checksum in segment 3");
  EXPECT_FALSE(e.is_ok());
  EXPECT_EQ(e.code(), Status::Code::kCorruption);
  EXPECT_EQ(e.message(), "bad checksum in segment 3");
  EXPECT_EQ(e.to_string(), "corruption: bad checksum in segment 3");
  const Status copy = e;  // copies share the state; both stay valid
  EXPECT_EQ(copy.to_string(), e.to_string());
}

TEST(Status, EveryFactoryHasItsCodeAndName) {
  const std::pair<Status, std::string_view> all[] = {
      {Status::invalid_argument("m"), "invalid argument"}, {Status::not_found("m"), "not found"},
      {Status::already_exists("m"), "already exists"},     {Status::busy("m"), "busy"},
      {Status::no_space("m"), "no space"},                 {Status::corruption("m"), "corruption"},
      {Status::incompatible("m"), "incompatible"},         {Status::io_error("m"), "I/O error"},
      {Status::internal("m"), "internal error"},
  };
  std::set<Status::Code> codes;
  for (const auto& [s, name] : all) {
    EXPECT_FALSE(s.is_ok());
    EXPECT_TRUE(codes.insert(s.code()).second) << name;
    EXPECT_EQ(code_name(s.code()), name);
    EXPECT_EQ(s.to_string(), std::string(name) + ": m");
  }
}

TEST(Status, WithContextPrependsAndKeepsTheCode) {
  const Status e = Status::io_error("read failed").with_context("pool /dev/shm/p").with_context("open");
  EXPECT_EQ(e.code(), Status::Code::kIoError);
  EXPECT_EQ(e.message(), "open: pool /dev/shm/p: read failed");
  EXPECT_TRUE(Status::ok().with_context("anything").is_ok());
}

Status fails_at(int step, int* reached) {
  for (int i = 0; i < 3; ++i) {
    *reached = i;
    FERRITE_RETURN_IF_ERROR(i == step ? Status::busy("step " + std::to_string(i)) : Status::ok());
  }
  return Status::ok();
}

TEST(Status, ReturnIfErrorStopsAtTheFirstError) {
  int reached = -1;
  EXPECT_TRUE(fails_at(-1, &reached).is_ok());
  EXPECT_EQ(reached, 2);
  const Status s = fails_at(1, &reached);
  EXPECT_EQ(s.to_string(), "busy: step 1");
  EXPECT_EQ(reached, 1);
}

TEST(StatusOr, HoldsAValueOrAnError) {
  StatusOr<std::unique_ptr<int>> v(std::make_unique<int>(7));
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v.status().is_ok());
  EXPECT_EQ(**v, 7);
  std::unique_ptr<int> moved = std::move(v).value();  // move-only values move out
  EXPECT_EQ(*moved, 7);
  StatusOr<std::string> e(Status::not_found("no key"));
  EXPECT_FALSE(e.is_ok());
  EXPECT_FALSE(static_cast<bool>(e));
  EXPECT_EQ(e.status().code(), Status::Code::kNotFound);
  StatusOr<std::string> s(std::string("abc"));
  EXPECT_EQ(s->size(), 3u);
}

TEST(Result, EveryValueHasItsOwnName) {
  std::set<std::string_view> names;
  for (int r = 0; r <= static_cast<int>(Result::kMalformed); ++r) {
    const std::string_view n = result_name(static_cast<Result>(r));
    EXPECT_NE(n, "unknown") << r;
    EXPECT_TRUE(names.insert(n).second) << n;
  }
  EXPECT_EQ(result_name(static_cast<Result>(static_cast<int>(Result::kMalformed) + 1)), "unknown");
  static_assert(sizeof(Result) == 1, "the hot path passes Result in a byte");
}

}  // namespace
}  // namespace ferrite
