// A program outside the tree, built by tests/install/install_test.sh against
// the installed ferrite-client.pc (headers from include/ferrite/, the static
// libferrite-client.a): sets a key on the ferrited the test started, reads it
// back, exits 0 only if the value matches. Single-threaded.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "client/client.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PORT KEY VALUE\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<uint16_t>(std::atoi(argv[1]));
  auto c = ferrite::client::Client::connect("127.0.0.1", port);
  if (!c) {
    std::fprintf(stderr, "connect: %s\n", c.status().to_string().c_str());
    return 1;
  }
  using ferrite::proto::OpStatus;
  auto set = (*c)->set(argv[2], argv[3]);
  if (!set || *set != OpStatus::kOk) {
    std::fprintf(stderr, "set: %s\n", set ? std::string(ferrite::client::status_name(*set)).c_str()
                                           : set.status().to_string().c_str());
    return 1;
  }
  ferrite::client::Reply r;
  auto get = (*c)->get(argv[2], &r);
  if (!get || *get != OpStatus::kOk || r.value != argv[3]) {
    std::fprintf(stderr, "get: %s, value \"%s\"\n",
                 get ? std::string(ferrite::client::status_name(*get)).c_str() : get.status().to_string().c_str(),
                 r.value.c_str());
    return 1;
  }
  std::printf("%s\n", r.value.c_str());
  return 0;
}
