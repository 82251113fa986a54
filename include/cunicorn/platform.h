// The few things that differ between Linux and the BSDs and that do not
// belong to the event loop: process titles for now.
#ifndef CUNICORN_PLATFORM_H
#define CUNICORN_PLATFORM_H

#include <string>

namespace cunicorn::platform {

// Must run first in main(): moves the environment out of the way so the
// argv area can hold a longer process title.
void proctitle_init(int argc, char **argv);
// Sets what ps(1) and /proc/PID/cmdline show, e.g. "cunicorn: master [app]".
void set_proctitle(const std::string &title);

// The self-pipe a signal handler writes to and a loop polls: both ends
// non-blocking (a full pipe means the reader is awake anyway) and
// close-on-exec. Returns false with errno set.
bool signal_pipe(int fds[2]);

}  // namespace cunicorn::platform

#endif
