// Ethernet/IPv4/UDP frames for the DPDK backend, over plain bytes (no DPDK
// types here, so the parser is unit-tested and fuzzed without a port).
//
// parse() classifies one received frame addressed to `Local`:
//  - a UDP datagram for our IPv4 address and port (checksums verified unless
//    the NIC already did): its source and payload are returned;
//  - an ARP request for our address or an ICMP echo request to it: the frame
//    is rewritten IN PLACE into the reply (addresses swapped, checksums
//    refilled) and its new length returned;
//  - anything else: a drop reason, counted by the caller.
// write_udp() fills the 42 header bytes of an outgoing datagram whose payload
// already sits at frame + kUdpHeaders.
//
// Thread safety: pure functions over caller-owned bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ferrite::net::frame {

using Mac = std::array<uint8_t, 6>;

inline constexpr std::size_t kEthHeader = 14;
inline constexpr std::size_t kIpHeader = 20;   // without options (what we send)
inline constexpr std::size_t kUdpHeader = 8;
inline constexpr std::size_t kUdpHeaders = kEthHeader + kIpHeader + kUdpHeader;  // 42

// Why a frame was not handed on. kCount is the number of reasons.
enum class Drop : uint8_t {
  kNone = 0,
  kTruncated,          // shorter than its headers or than its IP/UDP length says
  kUnknownEthertype,   // not IPv4 or ARP (IPv6, VLAN-tagged, LLDP ...)
  kNotForUs,           // other MAC, other IPv4 address, other UDP port, ARP for someone else
  kFragment,           // IPv4 fragment (MF set or offset != 0): never reassembled
  kBadIpChecksum,
  kBadUdpChecksum,
  kBadIcmpChecksum,
  kBadHeader,          // IP version != 4, IHL < 5, ARP not Ethernet/IPv4
  kUnknownProtocol,    // IPv4 protocol other than UDP and ICMP
  kIgnored,            // well-formed but needs no answer: ARP replies, ICMP other than echo request
  kCount
};
const char* drop_name(Drop d) noexcept;  // "truncated", "not_for_us", ...

enum class Kind : uint8_t {
  kDrop,       // see Parsed::drop
  kUdp,        // payload for the handler
  kReply,      // frame rewritten in place into an ARP reply or ICMP echo reply of reply_len bytes
};

// What the NIC says about checksums (mbuf offload flags), per layer.
enum class Csum : uint8_t { kUnknown, kGood, kBad };

struct Local {
  Mac mac{};
  uint32_t ip = 0;      // network byte order
  uint16_t port = 0;    // network byte order
  uint16_t port2 = 0;   // a second UDP port served (network byte order); 0 = none
};

struct Parsed {
  Kind kind = Kind::kDrop;
  Drop drop = Drop::kNone;
  bool arp = false;             // kReply: an ARP reply (else ICMP echo reply)
  Mac src_mac{};                // sender (kUdp, kReply; ARP replies too, for the neighbour table)
  uint32_t src_ip = 0;          // network byte order
  uint16_t src_port = 0;        // network byte order
  bool second_port = false;     // kUdp: sent to Local::port2, not Local::port
  bool learned = false;         // src_mac/src_ip are a valid neighbour entry
  std::size_t payload_off = 0;  // kUdp
  std::size_t payload_len = 0;  // kUdp
  std::size_t reply_len = 0;    // kReply
};

Parsed parse(uint8_t* frame, std::size_t len, const Local& me, Csum ip_csum = Csum::kUnknown,
             Csum l4_csum = Csum::kUnknown) noexcept;

// Checksum offload on transmit: software fills both checksums; kOffload
// leaves the IP checksum 0 and puts the pseudo-header sum in the UDP field
// (what NICs expect with IP/UDP checksum offload requested).
enum class TxCsum : uint8_t { kSoftware, kOffload };

// Writes Ethernet + IPv4 + UDP headers in front of payload_len bytes already
// at frame + kUdpHeaders. All addresses and ports in network byte order.
// Returns the frame length (kUdpHeaders + payload_len).
std::size_t write_udp(uint8_t* frame, const Mac& src_mac, const Mac& dst_mac, uint32_t src_ip, uint32_t dst_ip,
                      uint16_t src_port, uint16_t dst_port, std::size_t payload_len, uint16_t ip_id,
                      TxCsum csum) noexcept;

// Internet checksum helpers (RFC 1071), exposed for tests.
uint16_t ip_checksum(const uint8_t* ip_header, std::size_t len) noexcept;      // value to store
bool udp_checksum_ok(const uint8_t* ip_header, const uint8_t* udp, std::size_t udp_len) noexcept;
uint16_t udp_checksum(const uint8_t* ip_header, const uint8_t* udp, std::size_t udp_len) noexcept;  // value to store

bool parse_mac(const std::string& s, Mac* out) noexcept;
std::string mac_string(const Mac& m);

}  // namespace ferrite::net::frame
