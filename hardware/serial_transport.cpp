#include "hardware/serial_transport.h"

#include <fcntl.h>
#include <libserialport.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace vlascope {

namespace {

std::string sp_error_text(int code) {
  if (code == SP_ERR_FAIL) {
    char* msg = sp_last_error_message();
    std::string text = msg ? msg : "unknown OS error";
    sp_free_error_message(msg);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
  }
  switch (code) {
    case SP_ERR_ARG:
      return "invalid argument";
    case SP_ERR_MEM:
      return "out of memory";
    case SP_ERR_SUPP:
      return "not supported by this device";
    default:
      return "error " + std::to_string(code);
  }
}

[[noreturn]] void port_error(const std::string& port, const std::string& what, const std::string& why) {
  throw Error("serial port " + port + ": " + what + ": " + why);
}

unsigned to_milliseconds(double seconds) {
  if (seconds <= 0) return 0;
  return static_cast<unsigned>(std::ceil(seconds * 1000.0));
}

speed_t termios_speed(int baud, bool* known) {
  *known = true;
  switch (baud) {
    case 4800:
      return B4800;
    case 9600:
      return B9600;
    case 19200:
      return B19200;
    case 38400:
      return B38400;
    case 57600:
      return B57600;
    case 115200:
      return B115200;
    case 230400:
      return B230400;
    case 460800:
      return B460800;
    case 500000:
      return B500000;
    case 576000:
      return B576000;
    case 921600:
      return B921600;
    case 1000000:
      return B1000000;
    case 1152000:
      return B1152000;
    case 1500000:
      return B1500000;
    case 2000000:
      return B2000000;
    default:
      *known = false;
      return B1000000;
  }
}

}  // namespace

// ---- libserialport ------------------------------------------------------------------------------

LibSerialPortTransport::LibSerialPortTransport(const std::string& port, int baud) : name_(port), baud_(baud) {
  if (int rc = sp_get_port_by_name(port.c_str(), &port_); rc != SP_OK) {
    port_ = nullptr;
    port_error(port, "not found",
               sp_error_text(rc) +
                   " (is the arm plugged in and powered? list ports with `ls /dev/ttyACM* "
                   "/dev/ttyUSB*`; a pseudo-terminal needs --transport posix)");
  }
  if (int rc = sp_open(port_, SP_MODE_READ_WRITE); rc != SP_OK) {
    std::string why = sp_error_text(rc);
    sp_free_port(port_);
    port_ = nullptr;
    port_error(port, "cannot open",
               why + " (permission? add yourself to the dialout group; busy? close other programs)");
  }
  auto check = [&](int rc, const char* what) {
    if (rc == SP_OK) return;
    std::string why = sp_error_text(rc);
    sp_close(port_);
    sp_free_port(port_);
    port_ = nullptr;
    port_error(port, what, why);
  };
  check(sp_set_baudrate(port_, baud), ("cannot set baud rate " + std::to_string(baud)).c_str());
  check(sp_set_bits(port_, 8), "cannot set 8 data bits");
  check(sp_set_parity(port_, SP_PARITY_NONE), "cannot set parity none");
  check(sp_set_stopbits(port_, 1), "cannot set 1 stop bit");
  check(sp_set_flowcontrol(port_, SP_FLOWCONTROL_NONE), "cannot disable flow control");
  sp_flush(port_, SP_BUF_BOTH);
}

LibSerialPortTransport::~LibSerialPortTransport() {
  if (!port_) return;
  sp_close(port_);
  sp_free_port(port_);
}

void LibSerialPortTransport::write(const uint8_t* data, size_t size) {
  const unsigned timeout_ms =
      100 + static_cast<unsigned>(size * 10000ull / static_cast<unsigned>(baud_ > 0 ? baud_ : 1));
  int n = sp_blocking_write(port_, data, size, timeout_ms);
  if (n < 0) port_error(name_, "write failed", sp_error_text(n) + " (device unplugged?)");
  if (static_cast<size_t>(n) != size)
    port_error(name_, "write timed out", std::to_string(n) + " of " + std::to_string(size) + " bytes sent");
}

size_t LibSerialPortTransport::read(uint8_t* data, size_t capacity, double timeout_s) {
  if (capacity == 0) return 0;
  int n = timeout_s <= 0 ? sp_nonblocking_read(port_, data, capacity)
                         : sp_blocking_read_next(port_, data, capacity, to_milliseconds(timeout_s));
  if (n < 0) port_error(name_, "read failed", sp_error_text(n) + " (device unplugged?)");
  return static_cast<size_t>(n);
}

void LibSerialPortTransport::flush_input() { sp_flush(port_, SP_BUF_INPUT); }

void LibSerialPortTransport::set_baud_rate(int baud) {
  if (int rc = sp_set_baudrate(port_, baud); rc != SP_OK)
    port_error(name_, "cannot set baud rate " + std::to_string(baud), sp_error_text(rc));
  baud_ = baud;
}

// ---- termios ------------------------------------------------------------------------------------

PosixSerialTransport::PosixSerialTransport(const std::string& path, int baud) : name_(path), baud_(baud) {
  fd_ = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) port_error(path, "cannot open", std::strerror(errno));
  if (!isatty(fd_)) {
    ::close(fd_);
    fd_ = -1;
    port_error(path, "cannot use", "not a terminal device");
  }
  try {
    set_baud_rate(baud);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
  tcflush(fd_, TCIOFLUSH);
}

PosixSerialTransport::~PosixSerialTransport() {
  if (fd_ >= 0) ::close(fd_);
}

void PosixSerialTransport::set_baud_rate(int baud) {
  termios tio{};
  if (tcgetattr(fd_, &tio) != 0) port_error(name_, "tcgetattr", std::strerror(errno));
  cfmakeraw(&tio);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_cflag &= ~(CSTOPB | CRTSCTS | PARENB);
  tio.c_cflag = (tio.c_cflag & ~CSIZE) | CS8;
  tio.c_cc[VMIN] = 0;
  tio.c_cc[VTIME] = 0;
  bool known = false;
  speed_t speed = termios_speed(baud, &known);
  if (!known && !is_pseudo_terminal(name_))
    port_error(name_, "baud rate " + std::to_string(baud), "not a standard termios rate (use libserialport)");
  cfsetispeed(&tio, speed);
  cfsetospeed(&tio, speed);
  if (tcsetattr(fd_, TCSANOW, &tio) != 0) port_error(name_, "tcsetattr", std::strerror(errno));
  baud_ = baud;
}

void PosixSerialTransport::write(const uint8_t* data, size_t size) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd_, data + done, size - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) port_error(name_, "write failed", std::strerror(errno));
    if (std::chrono::steady_clock::now() > deadline)
      port_error(name_, "write timed out", std::to_string(done) + " of " + std::to_string(size) + " bytes sent");
    pollfd p{fd_, POLLOUT, 0};
    ::poll(&p, 1, 5);
  }
}

size_t PosixSerialTransport::read(uint8_t* data, size_t capacity, double timeout_s) {
  if (capacity == 0) return 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::max(0.0, timeout_s));
  for (;;) {
    ssize_t n = ::read(fd_, data, capacity);
    if (n > 0) return static_cast<size_t>(n);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      port_error(name_, "read failed", std::string(std::strerror(errno)) + " (device gone?)");
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return 0;
    const double left = std::chrono::duration<double>(deadline - now).count();
    timespec ts{static_cast<time_t>(left), static_cast<long>((left - std::floor(left)) * 1e9)};
    pollfd p{fd_, POLLIN, 0};
    int rc = ::ppoll(&p, 1, &ts, nullptr);
    if (rc < 0 && errno != EINTR) port_error(name_, "poll failed", std::strerror(errno));
    if (rc > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) && !(p.revents & POLLIN))
      port_error(name_, "read failed", "the other end hung up (device unplugged or twin stopped)");
  }
}

void PosixSerialTransport::flush_input() { tcflush(fd_, TCIFLUSH); }

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- choosing ------------------------------------------------------------------------------------

bool is_pseudo_terminal(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) && std::strncmp(resolved, "/dev/pts/", 9) == 0) return true;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) return false;
  const unsigned maj = major(st.st_rdev);
  return maj >= 136 && maj <= 143;  // Unix98 pty slaves
}

TransportKind parse_transport_kind(const std::string& text) {
  if (text == "auto" || text.empty()) return TransportKind::automatic;
  if (text == "libserialport") return TransportKind::libserialport;
  if (text == "posix" || text == "termios") return TransportKind::posix;
  throw Error("--transport: unknown transport '" + text + "' (auto, libserialport, posix)");
}

std::unique_ptr<Transport> open_serial_transport(const std::string& port, int baud, TransportKind kind) {
  if (kind == TransportKind::automatic)
    kind = is_pseudo_terminal(port) ? TransportKind::posix : TransportKind::libserialport;
  if (kind == TransportKind::posix) return std::make_unique<PosixSerialTransport>(port, baud);
  return std::make_unique<LibSerialPortTransport>(port, baud);
}

}  // namespace vlascope
