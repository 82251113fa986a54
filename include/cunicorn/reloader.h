// The development reloader (--reload; gunicorn/reloader.py): in each
// worker, watch the files of every imported module (sys.modules, collected
// again about once a second, since imports happen lazily) and the
// reload_extra_files (glob patterns re-expanded at each check). On a
// change the worker is told once, with the file's name.
//
// Engines: inotify on Linux, kqueue EVFILT_VNODE on the BSDs and macOS
// (its fd enters the worker's event loop), and 1-second mtime polling
// (reload_engine = "poll", or "auto" where neither exists).
//
// No Python.h here; every call needs the GIL (the worker holds it outside
// its sleep in poll()).
#ifndef CUNICORN_RELOADER_H
#define CUNICORN_RELOADER_H

#include <string>

namespace cunicorn {
struct Config;
namespace ev {
class Loop;
}
}  // namespace cunicorn

namespace cunicorn::reloader {

using ChangeCallback = void (*)(const std::string &file);

// Starts watching (cfg.reload must be set). Returns false, with a logged
// error, when the requested engine is unavailable; polling is used then.
bool start(const Config &cfg, ev::Loop &loop, ChangeCallback on_change);
// From the worker's loop a few times a second: re-collects the files
// (each second) and, for the poll engine, compares their mtimes.
void tick();
// Watches one more file (gunicorn's add_extra_file: the file of a
// SyntaxError met while loading the app). May be called before start().
void add_file(const std::string &path);
// The engine in use: "inotify", "kqueue" or "poll".
const char *engine();

}  // namespace cunicorn::reloader

#endif
