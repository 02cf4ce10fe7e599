// The byte transport under the Feetech bus: write bytes, read bytes with a timeout, drop unread input.
// Everything above it (feetech_bus.h, so100_follower.h) is the same code whatever carries the bytes:
//
//   LibSerialPortTransport  real serial devices (/dev/ttyACM0, /dev/ttyUSB0, COM3) through libserialport
//   PosixSerialTransport    plain termios; opens pseudo-terminals, which libserialport 0.1.1 cannot
//                           (it needs a sysfs tty entry, and upstream declined pty support)
//   LoopbackTransport       in-process, straight into a servo-bus twin (servo_twin.h); tests, benchmarks
//
// open_serial_transport() picks the first or the second from the port name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct sp_port;  // libserialport's handle, kept out of this header

namespace vlascope {

class Transport {
 public:
  virtual ~Transport() = default;

  virtual const std::string& name() const = 0;  // the port, for error messages
  // Sends every byte or throws Error naming the port.
  virtual void write(const uint8_t* data, size_t size) = 0;
  // Waits at most timeout_s for input, then returns what is available (up to capacity); 0 on timeout.
  // Throws Error naming the port when the device fails (e.g. unplugged).
  virtual size_t read(uint8_t* data, size_t capacity, double timeout_s) = 0;
  // Discards input that arrived but was not read (stale replies, line noise).
  virtual void flush_input() = 0;
  virtual void set_baud_rate(int baud) = 0;
  virtual int baud_rate() const = 0;
};

// Real serial ports through libserialport: 8N1, no flow control.
class LibSerialPortTransport : public Transport {
 public:
  LibSerialPortTransport(const std::string& port, int baud);
  ~LibSerialPortTransport() override;

  const std::string& name() const override { return name_; }
  void write(const uint8_t* data, size_t size) override;
  size_t read(uint8_t* data, size_t capacity, double timeout_s) override;
  void flush_input() override;
  void set_baud_rate(int baud) override;
  int baud_rate() const override { return baud_; }

 private:
  std::string name_;
  int baud_;
  ::sp_port* port_ = nullptr;
};

// termios on a file descriptor: raw mode, 8N1, non-blocking reads with poll(). Works on pseudo-terminals
// (where the baud rate is accepted and ignored) and on real ttys.
class PosixSerialTransport : public Transport {
 public:
  PosixSerialTransport(const std::string& path, int baud);
  ~PosixSerialTransport() override;

  const std::string& name() const override { return name_; }
  void write(const uint8_t* data, size_t size) override;
  size_t read(uint8_t* data, size_t capacity, double timeout_s) override;
  void flush_input() override;
  void set_baud_rate(int baud) override;
  int baud_rate() const override { return baud_; }

 private:
  std::string name_;
  int baud_;
  int fd_ = -1;
};

enum class TransportKind {
  automatic,  // termios for pseudo-terminals (/dev/pts/*, /dev/ptmx children, symlinks to them), else libserialport
  libserialport,
  posix,
};
TransportKind parse_transport_kind(const std::string& text);  // "auto", "libserialport", "posix"

// Opens `port` at `baud`. Throws Error naming the port (and what to check) when it cannot be opened.
std::unique_ptr<Transport> open_serial_transport(const std::string& port, int baud = 1000000,
                                                 TransportKind kind = TransportKind::automatic);

// True when `path` (after following symlinks) is a pseudo-terminal.
bool is_pseudo_terminal(const std::string& path);

// Seconds on the steady clock: the time base of transports, the bus, the twin and the follower's watchdog.
double steady_seconds();

}  // namespace vlascope
