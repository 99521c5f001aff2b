// sd_notify wrapper (see notify.h). libsystemd is optional at build time:
// without it (FERRITE_HAVE_SYSTEMD unset) nothing is ever sent.
#include "server/notify.h"

#include <cstdlib>
#include <string>

#include "common/log.h"

#if defined(FERRITE_HAVE_SYSTEMD) && FERRITE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace ferrite::server {

bool notify_service_manager(std::string_view state) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return false;
#if defined(FERRITE_HAVE_SYSTEMD) && FERRITE_HAVE_SYSTEMD
  const std::string s(state);
  const int r = sd_notify(0, s.c_str());  // 0: keep NOTIFY_SOCKET for the STOPPING=1 to come
  if (r < 0) {
    log_warn("sd_notify({}) to {} failed: error {}", s, socket, -r);
    return false;
  }
  return r > 0;
#else
  log_warn("NOTIFY_SOCKET is set but this ferrited was built without libsystemd: no readiness notification ({})",
           state);
  return false;
#endif
}

}  // namespace ferrite::server
