// Ctrl-C for programs that drive a real arm. The first SIGINT (or SIGTERM) only raises a flag: the
// follower's safety thread sees it within a few milliseconds and turns torque off, and control loops see
// stop_requested() and unwind cleanly. The handler then reverts to the default, so a second Ctrl-C
// terminates the program at once, as a user expects.
#pragma once

namespace vlascope {

void install_stop_signal_handler();  // idempotent
bool stop_requested();
// Clears the flag and re-arms the handler if it was installed (tests; a new session after a handled stop).
void clear_stop_request();
// Raises the flag as the signal handler does (a GUI stop button, tests).
void request_stop();

}  // namespace vlascope
