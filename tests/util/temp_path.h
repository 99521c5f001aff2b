// Test helper: a unique file path under $FERRITE_TEST_DIR (default /dev/shm),
// removed when the helper goes out of scope.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace ferrite::testing {

class TempPath {
 public:
  explicit TempPath(const std::string& tag = "t") {
    static std::atomic<int> counter{0};
    const char* dir = std::getenv("FERRITE_TEST_DIR");
    path_ = std::string(dir != nullptr ? dir : "/dev/shm") + "/ferrite-test-" + tag + "-" +
            std::to_string(::getpid()) + "-" + std::to_string(counter++);
    ::unlink(path_.c_str());
  }
  ~TempPath() { ::unlink(path_.c_str()); }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  const std::string& str() const { return path_; }
  const char* c_str() const { return path_.c_str(); }

 private:
  std::string path_;
};

}  // namespace ferrite::testing
