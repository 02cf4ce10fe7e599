// Feetech servo replies and instructions: the byte stream fed to the incremental parsers in pieces whose sizes the
// input chooses, every packet taken out and its fields read.
#include <cstdint>

#include "common/error.h"
#include "hardware/feetech_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlascope::feetech;
  for (PacketKind kind : {PacketKind::status, PacketKind::instruction}) {
    try {
      PacketParser parser(kind);
      size_t at = 0;
      while (at < size) {
        const size_t piece = std::min<size_t>(size - at, 1 + data[at] % 17);
        parser.feed(data + at, piece);
        at += piece;
        Packet p;
        while (parser.next(p)) (void)hex(encode_packet(p.id, p.code, p.params));
      }
    } catch (const vlascope::Error&) {
    }
  }
  return 0;
}
