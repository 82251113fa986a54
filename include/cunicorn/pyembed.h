// The embedded CPython interpreter as the rest of the server sees it:
// start-up, fork helpers, shutdown. No Python types here, so the arbiter
// and main stay free of Python.h; objects live in pyref.h.
#ifndef CUNICORN_PYEMBED_H
#define CUNICORN_PYEMBED_H

#include <string>

namespace cunicorn::py {

// Starts the interpreter without Python's own signal handlers (cunicorn
// owns process signals), with sys.executable pointing at the interpreter
// cunicorn was built against, and argv[0] as sys.argv[0].
void init(const char *argv0);
bool initialized();

// fork() wrappers that keep the interpreter consistent and run
// os.register_at_fork hooks.
void before_fork();
void after_fork_parent();
void after_fork_child();

// Flushes sys.stdout/sys.stderr and runs atexit handlers, as a Python
// process does when it exits; call before _exit() in a worker.
void finalize();

// Prepends a directory to sys.path (chdir, pythonpath).
void prepend_sys_path(const std::string &dir);

}  // namespace cunicorn::py

#endif
