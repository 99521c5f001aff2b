// Test helper: the end-to-end scenarios written once and run against every
// transport (tests/util/kv_transport.h): the native protocol over kernel UDP
// (tests/e2e/server_test.cc) and over the DPDK backend (tests/e2e/dpdk_test.cc),
// and memcached's text protocol over TCP and UDP. A scenario states what any
// transport must see; one that needs a native-only feature (scan) says so
// and is skipped where the transport lacks it.
//
// Keys are prefixed (Keys), so scenarios of several transports may share one
// server, as in the DPDK test where the native and memcached ports serve
// one store.
//
// Thread safety: scenarios run on the test thread.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/util/kv_transport.h"

namespace ferrite::testing {

class Keys {
 public:
  explicit Keys(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string operator()(std::string_view k) const { return prefix_ + std::string(k); }

 private:
  std::string prefix_;
};

struct Scenario {
  const char* name;
  bool needs_scan;
  void (*run)(KvTransport& t, const Keys& k);
};

namespace scenario_detail {

using proto::Opcode;
using proto::OpStatus;

// Every data op in one batch, then cas with a fresh and a stale version.
inline void every_op(KvTransport& t, const Keys& k) {
  const std::string a = k("a"), b = k("b"), zz = k("zz");
  std::vector<OpReply> r;
  const std::vector<proto::RequestOp> ops = {
      op(Opcode::kSet, a, "1", 0, 7),  op(Opcode::kGet, a),           op(Opcode::kAdd, a, "x"),
      op(Opcode::kAdd, b, "2"),       op(Opcode::kReplace, zz, "x"), op(Opcode::kReplace, b, "3"),
      op(Opcode::kAppend, b, "4"),    op(Opcode::kPrepend, b, "0"),  op(Opcode::kGet, b),
      op(Opcode::kIncr, a, {}, 41),   op(Opcode::kDecr, a, {}, 2),   op(Opcode::kTouch, a),
      op(Opcode::kDel, b),            op(Opcode::kDel, b),           op(Opcode::kGet, b),
      op(Opcode::kNoop, {}),
  };
  ASSERT_TRUE(t.run(ops, &r));
  ASSERT_EQ(r.size(), ops.size());
  EXPECT_EQ(r[0].status, OpStatus::kOk);
  EXPECT_EQ(r[1].value, "1");
  EXPECT_EQ(r[1].flags, 7u);
  EXPECT_EQ(r[2].status, OpStatus::kExists);
  EXPECT_EQ(r[3].status, OpStatus::kOk);
  EXPECT_EQ(r[4].status, OpStatus::kNotStored);
  EXPECT_EQ(r[5].status, OpStatus::kOk);
  EXPECT_EQ(r[6].status, OpStatus::kOk);
  EXPECT_EQ(r[7].status, OpStatus::kOk);
  EXPECT_EQ(r[8].value, "034");
  EXPECT_EQ(r[9].value, "42");
  EXPECT_EQ(r[10].value, "40");
  EXPECT_EQ(r[11].status, OpStatus::kOk);
  EXPECT_EQ(r[12].status, OpStatus::kOk);
  EXPECT_EQ(r[13].status, OpStatus::kNotFound);
  EXPECT_EQ(r[14].status, OpStatus::kNotFound);
  EXPECT_EQ(r[15].status, OpStatus::kOk);

  // cas: with the version from a get, then with the now stale one.
  const std::vector<proto::RequestOp> get = {op(Opcode::kGet, a)};
  ASSERT_TRUE(t.run(get, &r));
  ASSERT_EQ(r[0].status, OpStatus::kOk);
  const uint64_t v = r[0].version;
  const std::vector<proto::RequestOp> cas = {op(Opcode::kCas, a, "new", v), op(Opcode::kCas, a, "x", v),
                                             op(Opcode::kGet, a), op(Opcode::kCas, zz, "x", v)};
  ASSERT_TRUE(t.run(cas, &r));
  EXPECT_EQ(r[0].status, OpStatus::kOk);
  EXPECT_EQ(r[1].status, OpStatus::kCasMismatch);
  EXPECT_EQ(r[2].value, "new");
  EXPECT_NE(r[2].version, v) << "a write gives a new version";
  EXPECT_EQ(r[3].status, OpStatus::kNotFound) << "cas on a missing key";
}

// Counters: incr of a missing key, of a number, of text; decr stops at 0.
// The same rules in both protocols (memcached's, tests/memcached).
inline void counters(KvTransport& t, const Keys& k) {
  const std::string ctr = k("ctr"), text = k("text");
  std::vector<OpReply> r;
  const std::vector<proto::RequestOp> ops = {
      op(Opcode::kIncr, ctr, {}, 5), op(Opcode::kSet, ctr, "10"),   op(Opcode::kIncr, ctr, {}, 5),
      op(Opcode::kDecr, ctr, {}, 100), op(Opcode::kGet, ctr),       op(Opcode::kSet, text, "abc"),
      op(Opcode::kIncr, text, {}, 1),  op(Opcode::kGet, text),
  };
  ASSERT_TRUE(t.run(ops, &r));
  ASSERT_EQ(r.size(), ops.size());
  EXPECT_EQ(r[0].status, OpStatus::kNotFound);
  EXPECT_EQ(r[2].status, OpStatus::kOk);
  EXPECT_EQ(r[2].value, "15");
  EXPECT_EQ(r[3].value, "0") << "decr below zero stops at zero";
  EXPECT_EQ(r[4].value, "0 ") << "the stored number keeps its length (space-padded), as in memcached";
  EXPECT_EQ(r[6].status, OpStatus::kNotNumeric);
  EXPECT_EQ(r[7].value, "abc") << "a refused incr leaves the value";
}

// Values of several sizes (up to what the transport carries) come back whole
// with their flags; one byte past the server's limit is refused.
inline void value_sizes(KvTransport& t, const Keys& k) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1000}, std::size_t{64} << 10, std::size_t{1} << 20}) {
    if (n > t.max_value()) continue;
    std::string v(n, 'q');
    for (std::size_t i = 0; i < n; i += 997) v[i] = static_cast<char>('a' + i % 26);
    const std::string key = k("sz" + std::to_string(n));
    std::vector<OpReply> r;
    const std::vector<proto::RequestOp> ops = {op(Opcode::kSet, key, v, 0, static_cast<uint32_t>(n)),
                                               op(Opcode::kGet, key)};
    ASSERT_TRUE(t.run(ops, &r)) << n;
    EXPECT_EQ(r[0].status, OpStatus::kOk) << n;
    EXPECT_EQ(r[1].status, OpStatus::kOk) << n;
    EXPECT_EQ(r[1].flags, n);
    EXPECT_EQ(r[1].value.size(), n);
    EXPECT_TRUE(r[1].value == v) << "value of " << n << " bytes differs";
  }
  if (t.max_value() < proto::kMaxValue) return;  // the server's limit is past what this transport carries
  std::vector<OpReply> r;
  const std::string big(proto::kMaxValue + 1, 'x');
  const std::string key = k("toolarge");
  const std::vector<proto::RequestOp> too_large = {op(Opcode::kSet, key, big), op(Opcode::kGet, key)};
  ASSERT_TRUE(t.run(too_large, &r));
  EXPECT_EQ(r[0].status, OpStatus::kTooLarge);
  EXPECT_EQ(r[1].status, OpStatus::kNotFound);
}

// A scan sees what is stored and not what was deleted.
inline void scan_sees_the_store(KvTransport& t, const Keys& k) {
  std::vector<OpReply> r;
  // The ops hold views: the keys live here for the whole call.
  const std::string s1 = k("s1"), s2 = k("s2"), s3 = k("s3");
  const std::vector<proto::RequestOp> ops = {op(Opcode::kSet, s1, "one"), op(Opcode::kSet, s2, "two"),
                                             op(Opcode::kSet, s3, "three"), op(Opcode::kDel, s2)};
  ASSERT_TRUE(t.run(ops, &r));
  std::map<std::string, std::string> seen;
  ASSERT_TRUE(t.scan_all(&seen));
  EXPECT_EQ(seen[k("s1")], "one");
  EXPECT_EQ(seen[k("s3")], "three");
  EXPECT_EQ(seen.count(k("s2")), 0u);
}

}  // namespace scenario_detail

inline const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      {"EveryOp", false, scenario_detail::every_op},
      {"Counters", false, scenario_detail::counters},
      {"ValueSizes", false, scenario_detail::value_sizes},
      {"ScanSeesTheStore", true, scenario_detail::scan_sees_the_store},
  };
  return all;
}

// gtest parameter names: the scenario's name.
inline std::string scenario_name(const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; }

}  // namespace ferrite::testing
