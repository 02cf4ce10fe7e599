// vlascope servo: a setup and debugging tool for Feetech STS servos on one bus: scan, ping, dump the control
// table, read/write registers by LeRobot name, change an ID, torque on/off, reboot, factory restore.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "hardware/feetech_bus.h"
#include "hardware/serial_transport.h"

namespace vlascope {

using namespace feetech;

namespace {

const char* kUsage =
    "usage: vlascope servo <action> [arguments] --port PORT [--baud 1000000] [--transport auto]\n\n"
    "Setup and debugging for Feetech STS servos (SO-100: STS3215, IDs 1-6).\n\n"
    "actions:\n"
    "  scan [--first 0 --last 253] [--broadcast]\n"
    "                                 list the IDs that answer a PING, with model and firmware\n"
    "  dump ID                        every register of the control table\n"
    "  read ID REGISTER               one register by LeRobot name, e.g. Present_Position\n"
    "  write ID REGISTER VALUE        one register (EEPROM: unlocks, writes, locks again)\n"
    "  set-id ID NEW_ID               change a servo's ID (connect one servo at a time)\n"
    "  torque ID on|off               torque on or off (ID 254 = all)\n"
    "  reboot ID | restore ID | reset ID\n"
    "  registers                      list the STS3215 control table\n";

int id_of(const std::string& text) {
  char* end = nullptr;
  long id = std::strtol(text.c_str(), &end, 10);
  require(*end == '\0' && id >= 0 && id <= 254, "servo ID '" + text + "' must be 0…253 (254 = broadcast)");
  return static_cast<int>(id);
}

void write_eeprom_safely(FeetechBus& bus, int id, const Register& r, int value) {
  if (r.memory != Memory::ram) bus.write_register(id, reg::Lock, 0);
  bus.write_register(id, r, value);
  if (r.memory != Memory::ram) bus.write_register(id, reg::Lock, 1);
}

}  // namespace

int run_servo(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string action = argv[1];
  if (action == "registers") {
    std::printf("%-48s %4s %4s %5s %-8s %s\n", "name", "addr", "size", "sign", "memory", "access");
    for (const Register& r : sts3215_control_table())
      std::printf("%-48s %4d %4d %5s %-8s %s\n", r.name, r.address, r.size,
                  r.sign_bit >= 0 ? std::to_string(r.sign_bit).c_str() : "-",
                  r.memory == Memory::ram      ? "RAM"
                  : r.memory == Memory::eeprom ? "EEPROM"
                                               : "factory",
                  r.writable ? "rw" : "r");
    return 0;
  }
  std::vector<std::string> positionals;
  if (action == "dump" || action == "reboot" || action == "restore" || action == "reset")
    positionals = {"id"};
  else if (action == "read")
    positionals = {"id", "register"};
  else if (action == "write")
    positionals = {"id", "register", "value"};
  else if (action == "set-id")
    positionals = {"id", "new-id"};
  else if (action == "torque")
    positionals = {"id", "state"};
  else if (action != "scan")
    throw Error("vlascope servo: unknown action '" + action + "'\n\n" + kUsage);

  ArgParser args("vlascope servo " + action, "See `vlascope servo --help`.");
  for (const std::string& p : positionals) args.positional(p, p);
  args.required("port", "serial port");
  args.option("baud", "1000000", "baud rate");
  args.option("transport", "auto", "auto, libserialport or posix");
  args.option("bus-latency-ms", "20", "reply allowance beyond the wire time");
  args.option("first", "0", "scan: first ID");
  args.option("last", "253", "scan: last ID");
  args.option("scan-timeout-ms", "5", "scan: how long to wait for each ID's reply");
  args.flag("broadcast", "scan: one broadcast PING instead of one PING per ID (fast; replies may collide)");
  if (!args.parse(argc - 1, argv + 1)) return 0;

  BusOptions bus_options;
  bus_options.latency_allowance_s = args.get_double("bus-latency-ms") / 1e3;
  FeetechBus bus(
      open_serial_transport(args.get("port"), args.get_int("baud"), parse_transport_kind(args.get("transport"))),
      bus_options);

  if (action == "scan") {
    const std::vector<int> ids = args.get_flag("broadcast") ? bus.broadcast_ping(0.1)
                                                            : bus.scan(args.get_int("first"), args.get_int("last"),
                                                                       args.get_double("scan-timeout-ms") / 1e3);
    if (ids.empty()) std::printf("no servo answers on %s at %d baud\n", bus.port().c_str(), args.get_int("baud"));
    for (int id : ids) {
      uint8_t e = 0;
      const int model = bus.read_register(id, reg::Model_Number, &e);
      const int major = bus.read_register(id, reg::Firmware_Major_Version, &e);
      const int minor = bus.read_register(id, reg::Firmware_Minor_Version, &e);
      std::printf("ID %3d  model %4d%s  firmware %d.%d  status %s\n", id, model,
                  model == kModelSts3215 ? " (STS3215)" : "", major, minor, describe_error_bits(e).c_str());
    }
    return 0;
  }
  const int id = id_of(args.get("id"));
  if (action == "dump") {
    for (const Register& r : sts3215_control_table()) {
      uint8_t e = 0;
      std::printf("%-48s %4d  %6d\n", r.name, r.address, bus.read_register(id, r, &e));
    }
  } else if (action == "read") {
    const Register& r = find_register(args.get("register"));
    uint8_t e = 0;
    std::printf("%d\n", bus.read_register(id, r, &e));
    if (e) std::fprintf(stderr, "status: %s\n", describe_error_bits(e).c_str());
  } else if (action == "write") {
    const Register& r = find_register(args.get("register"));
    write_eeprom_safely(bus, id, r, static_cast<int>(args.get_int64("value")));
    std::printf("%s of servo %d := %s\n", r.name, id, args.get("value").c_str());
  } else if (action == "set-id") {
    const int new_id = id_of(args.get("new-id"));
    require(new_id <= kMaxServoId, "new ID must be 0…253");
    require(!bus.try_ping(new_id, 0.01).has_value(),
            "ID " + std::to_string(new_id) + " is already taken on " + bus.port());
    bus.write_register(id, reg::Torque_Enable, 0);
    bus.write_register(id, reg::Lock, 0);
    try {
      bus.write_register(id, reg::ID, new_id);
    } catch (const BusError& e) {
      // Some firmware acknowledges from the new ID; the PING below is what counts.
      if (e.kind != BusError::Kind::no_reply) throw;
    }
    require(bus.try_ping(new_id, 0.02).has_value(),
            "servo " + std::to_string(id) + " did not take ID " + std::to_string(new_id));
    bus.write_register(new_id, reg::Lock, 1);
    std::printf("servo %d is now servo %d\n", id, new_id);
  } else if (action == "torque") {
    const std::string state = args.get("state");
    require(state == "on" || state == "off", "torque: on or off");
    if (id == kBroadcastId)
      bus.broadcast_write_register(reg::Torque_Enable, state == "on");
    else
      bus.write_register(id, reg::Torque_Enable, state == "on");
  } else if (action == "reboot") {
    bus.reboot(id);
  } else if (action == "restore") {
    bus.restore_factory(id);
  } else if (action == "reset") {
    bus.reset(id);
  }
  return 0;
}

}  // namespace vlascope
