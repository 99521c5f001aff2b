// End-to-end: fragment reassembly slots are shared fairly (issue 15, item 8;
// server/reassembly.h). A flooding client keeps opening fragmented messages
// it never finishes, from one source port, while an honest client (another
// source port) stores 100 KB values: every honest set succeeds. On main
// before the per-source budget the flood held all 64 slots and 0 of 9 sets
// went through.
//
// The flooder is a thread of this test, stopped (and joined) by the test;
// the server is stopped by PID (ServerProcess); every loop is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "proto/native.h"
#include "tests/e2e/server_harness.h"
#include "tests/util/stats.h"

namespace ferrite {
namespace {

using testing::ServerProcess;

TEST(FragmentFlood, HonestLargeSetsSucceedDuringAFlood) {
  ServerProcess server;
  ASSERT_TRUE(server.start());
  auto flood_client = server.client();
  ASSERT_NE(flood_client, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread flooder([&] {
    // First fragment of a 2-fragment message with a fresh request id each
    // time, about 10 000 a second, for at most 60 s.
    const std::string junk(2000, 'j');
    std::vector<uint8_t> body, scratch, first;
    proto::append_request_op(&body, proto::RequestOp{.opcode = proto::Opcode::kSet, .key = "junk", .value = junk});
    proto::Header h;
    h.type = proto::MsgType::kRequest;
    h.cookie = flood_client->cookie();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (uint64_t rid = 1u << 30; !stop.load() && std::chrono::steady_clock::now() < deadline; ++rid) {
      h.request_id = rid;
      first.clear();
      proto::fragment(h, body, 1472, &scratch, [&](std::span<const uint8_t> d) {
        if (first.empty()) first.assign(d.begin(), d.end());
      });
      (void)flood_client->TEST_send_raw(first);
      if ((sent.fetch_add(1) + 1) % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  // Stopped and joined on every path out of the test, failed asserts included.
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop.store(true);
      if (t.joinable()) t.join();
    }
  } join{stop, flooder};
  // Let the flood fill the slots (64 messages take ~10 ms at this rate).
  const auto fill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sent.load() < 500 && std::chrono::steady_clock::now() < fill_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  auto honest = server.client(300);
  ASSERT_NE(honest, nullptr);
  const std::string value(100 * 1000, 'v');
  int ok = 0;
  for (int i = 0; i < 9; ++i) {
    auto st = honest->set("big" + std::to_string(i), value);
    if (st.is_ok() && *st == proto::OpStatus::kOk) ++ok;
  }
  const uint64_t flood_sent = sent.load();
  stop.store(true);
  flooder.join();
  ASSERT_GE(flood_sent, 500u) << "the flood ran";
  EXPECT_EQ(ok, 9) << "honest 100 KB sets that succeeded during the flood (" << flood_sent << " flood datagrams)";
  for (int i = 0; i < 9; ++i) {
    client::Reply r;
    auto st = honest->get("big" + std::to_string(i), &r);
    ASSERT_TRUE(st.is_ok());
    EXPECT_EQ(r.value.size(), value.size()) << i;
  }
  auto s = honest->stats();
  ASSERT_TRUE(s.is_ok());
  auto stats = testing::parse_stats(*s);
  EXPECT_GT(stats["drop_partial_source_budget"], 0u) << "the flooder's own messages were evicted";
  EXPECT_EQ(stats["drop_partial_oldest"], 0u) << "nobody else's";
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace ferrite
