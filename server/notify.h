// Service manager notifications (systemd's sd_notify protocol) for ferrited
// under the Type=notify unit (dist/systemd/ferrited.service.in): READY=1 once
// every port serves, STOPPING=1 when shutdown begins. Only when NOTIFY_SOCKET
// is set (the service manager sets it); otherwise, and in a build without
// libsystemd (-Dsystemd=disabled), each call does nothing.
//
// Concurrency: call from one thread (ferrited's main thread).
#pragma once

#include <string_view>

namespace ferrite::server {

// Sends `state` (e.g. "READY=1\nSTATUS=serving udp 127.0.0.1:11311") to the
// service manager. Returns true if it was sent; false if NOTIFY_SOCKET is
// unset, this build has no libsystemd, or the send failed (logged).
bool notify_service_manager(std::string_view state);

}  // namespace ferrite::server
