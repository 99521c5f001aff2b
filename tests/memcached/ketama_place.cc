// Prints, for each key read from stdin (one a line), the index of the server
// Ferrite's client ketama ring (client/ketama.h) places it on; the servers
// are the arguments ("host:port"). Used by twemproxy_test.sh to compare the
// ring with twemproxy's ketama placement.
#include <iostream>
#include <string>
#include <vector>

#include "client/ketama.h"

int main(int argc, char** argv) {
  std::vector<std::string> servers(argv + 1, argv + argc);
  if (servers.empty()) {
    std::cerr << "usage: ketama_place host:port... < keys\n";
    return 2;
  }
  ferrite::client::KetamaRing ring(servers);
  std::string key;
  while (std::getline(std::cin, key)) std::cout << ring.server_index(key) << '\n';
  return 0;
}
