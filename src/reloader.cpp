// The development reloader; see include/cunicorn/reloader.h.
#include "cunicorn/reloader.h"

#include "cunicorn/config.h"
#include "cunicorn/ev.h"
#include "cunicorn/log.h"
#include "cunicorn/pyref.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/inotify.h>
#define CUNICORN_RELOAD_INOTIFY 1
#elif defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || defined(__DragonFly__) || \
    defined(__APPLE__)
#include <sys/event.h>
#define CUNICORN_RELOAD_KQUEUE 1
#endif

#ifdef __APPLE__
#define st_mtim st_mtimespec
#endif

namespace cunicorn::reloader {

namespace {

enum class Engine { POLL, INOTIFY, KQUEUE };

struct State {
    const Config *cfg = nullptr;
    ChangeCallback on_change = nullptr;
    Engine engine = Engine::POLL;
    bool fired = false;
    int64_t last_check = 0;
    std::string cwd;
    std::set<std::string> files;                  // absolute paths
    std::map<std::string, struct timespec> mtimes;  // poll engine
    std::vector<std::string> added;               // add_file()
    std::set<std::string> warned;                 // patterns that matched nothing
    int fd = -1;                                  // inotify or kqueue
    std::map<int, std::string> by_wd;             // inotify: watch -> directory
    std::map<std::string, int> dirs;              // inotify: directory -> watch
    std::map<int, std::string> by_fd;             // kqueue: open file -> path
    std::set<std::string> opened;                 // kqueue: paths with an fd
};

State g;

int64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string absolute(const std::string &p) {
    if (p.empty() || p[0] == '/') return p;
    return g.cwd + "/" + p;
}

bool has_magic(const std::string &p) { return p.find_first_of("*?[") != std::string::npos; }

void fire(const std::string &file) {
    if (g.fired) return;
    g.fired = true;
    if (g.on_change) g.on_change(file);
}

using py::Ref;

void add_str(PyObject *s) {
    if (!s || !PyUnicode_Check(s)) return;
    const char *u = PyUnicode_AsUTF8(s);
    if (!u) {
        PyErr_Clear();  // a name that is no valid text names no file to watch
        return;
    }
    std::string f(u);
    // gunicorn's COMPILED_EXT_RE: a .pyc/.pyo __file__ watches the source.
    if (f.size() > 4 && f.compare(f.size() - 4, 3, ".py") == 0 && (f.back() == 'c' || f.back() == 'o'))
        f.pop_back();
    g.files.insert(absolute(f));
}

// glob.glob(pattern, recursive=True): "**" spans directories. Null, with
// the Python error set, on failure.
Ref expand(const std::string &pattern) {
    Ref glob = Ref::steal(PyImport_ImportModule("glob"));
    Ref fn = glob ? Ref::steal(PyObject_GetAttrString(glob.get(), "glob")) : Ref();
    Ref args = fn ? Ref::steal(Py_BuildValue("(s)", pattern.c_str())) : Ref();
    Ref kw = args ? Ref::steal(Py_BuildValue("{s:O}", "recursive", Py_True)) : Ref();
    return kw ? Ref::steal(PyObject_Call(fn.get(), args.get(), kw.get())) : Ref();
}

// sys.modules' __file__ values plus the extra files (globs expanded now).
// A module or pattern Python cannot answer for is left out of this round:
// the next collect() tries again.
void collect() {
    g.files.clear();
    PyObject *modules = PySys_GetObject("modules");  // borrowed
    Ref values = modules && PyDict_Check(modules) ? Ref::steal(PyDict_Values(modules)) : Ref();
    for (Py_ssize_t i = 0; values && i < PyList_GET_SIZE(values.get()); ++i) {
        Ref f = Ref::steal(PyObject_GetAttrString(PyList_GET_ITEM(values.get(), i), "__file__"));
        if (f) add_str(f.get());
    }
    PyErr_Clear();  // modules without __file__ (builtins, namespace packages)
    for (const std::string &f : g.added) g.files.insert(f);
    for (const std::string &pattern : g.cfg->reload_extra_files) {
        if (!has_magic(pattern)) {
            g.files.insert(absolute(pattern));
            continue;
        }
        Ref found = expand(pattern);
        if (!found || !PyList_Check(found.get())) {
            if (g.warned.insert(pattern).second)
                log::write_text(log::Level::WARNING,
                                "reload_extra_files: cannot expand pattern " + pattern + "\n" + py::fetch_traceback());
            PyErr_Clear();
            continue;
        }
        Py_ssize_t n = PyList_GET_SIZE(found.get());
        if (n == 0 && g.warned.insert(pattern).second)
            LOG_WARNING("reload_extra_files: pattern %s matches no file", pattern.c_str());
        for (Py_ssize_t i = 0; i < n; ++i) add_str(PyList_GET_ITEM(found.get(), i));
    }
}

bool same_time(const struct timespec &a, const struct timespec &b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

void poll_check() {
    for (const std::string &f : g.files) {
        struct stat st;
        if (stat(f.c_str(), &st) < 0) continue;
        auto it = g.mtimes.find(f);
        if (it == g.mtimes.end()) {
            g.mtimes.emplace(f, st.st_mtim);
            continue;
        }
        if (!same_time(it->second, st.st_mtim)) {
            fire(f);
            return;
        }
    }
}

#ifdef CUNICORN_RELOAD_INOTIFY
const uint32_t WATCH_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_ATTRIB;

void inotify_watch() {
    for (const std::string &f : g.files) {
        size_t slash = f.rfind('/');
        std::string dir = slash == 0 ? "/" : f.substr(0, slash);
        if (dir.empty() || g.dirs.count(dir)) continue;
        int wd = inotify_add_watch(g.fd, dir.c_str(), WATCH_MASK);
        g.dirs[dir] = wd;  // -1 too: not retried every second
        if (wd >= 0) g.by_wd[wd] = dir;
    }
}

void on_inotify(ev::Loop &, int fd, int, void *) {
    alignas(struct inotify_event) char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return;
        for (ssize_t off = 0; off < n;) {
            const auto *e = reinterpret_cast<const struct inotify_event *>(buf + off);
            off += static_cast<ssize_t>(sizeof(struct inotify_event) + e->len);
            if (e->len == 0) continue;
            auto it = g.by_wd.find(e->wd);
            if (it == g.by_wd.end()) continue;
            std::string path = (it->second == "/" ? std::string() : it->second) + "/" + e->name;
            if (g.files.count(path)) fire(path);
        }
    }
}
#endif

#ifdef CUNICORN_RELOAD_KQUEUE
void kqueue_watch() {
    for (const std::string &f : g.files) {
        if (g.opened.count(f)) continue;
        g.opened.insert(f);  // a file that cannot be opened is not retried
#ifdef O_EVTONLY
        int fd = open(f.c_str(), O_EVTONLY | O_CLOEXEC);
#else
        int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
#endif
        if (fd < 0) continue;
        struct kevent kev;
        EV_SET(&kev, fd, EVFILT_VNODE, EV_ADD | EV_CLEAR,
               NOTE_WRITE | NOTE_EXTEND | NOTE_DELETE | NOTE_RENAME | NOTE_ATTRIB, 0, 0);
        if (kevent(g.fd, &kev, 1, nullptr, 0, nullptr) < 0) {
            close(fd);
            continue;
        }
        g.by_fd[fd] = f;
    }
}

void on_kqueue(ev::Loop &, int fd, int, void *) {
    struct kevent evs[16];
    struct timespec zero = {0, 0};
    int n = kevent(fd, nullptr, 0, evs, 16, &zero);
    for (int i = 0; i < n; ++i) {
        auto it = g.by_fd.find(static_cast<int>(evs[i].ident));
        if (it != g.by_fd.end()) fire(it->second);
    }
}
#endif

}  // namespace

bool start(const Config &cfg, ev::Loop &loop, ChangeCallback on_change) {
    g.cfg = &cfg;
    g.on_change = on_change;
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf)) g.cwd = buf;
    bool ok = true;
    g.engine = Engine::POLL;
    if (cfg.reload_engine != Config::ReloadEngine::POLL) {
#if defined(CUNICORN_RELOAD_INOTIFY)
        g.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (g.fd >= 0 && loop.add(g.fd, ev::READABLE, on_inotify, nullptr) == 0) {
            g.engine = Engine::INOTIFY;
        } else {
            LOG_ERROR("reloader: inotify is unavailable (%s); polling instead", std::strerror(errno));
            if (g.fd >= 0) close(g.fd);
            g.fd = -1;
            ok = cfg.reload_engine != Config::ReloadEngine::INOTIFY;
        }
#elif defined(CUNICORN_RELOAD_KQUEUE)
        g.fd = kqueue();
        if (g.fd >= 0 && loop.add(g.fd, ev::READABLE, on_kqueue, nullptr) == 0) {
            g.engine = Engine::KQUEUE;
        } else {
            LOG_ERROR("reloader: kqueue is unavailable (%s); polling instead", std::strerror(errno));
            if (g.fd >= 0) close(g.fd);
            g.fd = -1;
            ok = cfg.reload_engine != Config::ReloadEngine::INOTIFY;
        }
#else
        if (cfg.reload_engine == Config::ReloadEngine::INOTIFY) {
            LOG_ERROR("reloader: inotify is not available on this system; polling instead");
            ok = false;
        }
#endif
    }
    (void)loop;
    g.last_check = 0;
    tick();
    return ok;
}

void tick() {
    if (!g.cfg || g.fired) return;
    int64_t now = now_ms();
    if (g.last_check && now - g.last_check < 1000) return;
    g.last_check = now;
    collect();
    switch (g.engine) {
    case Engine::POLL:
        poll_check();
        break;
    case Engine::INOTIFY:
#ifdef CUNICORN_RELOAD_INOTIFY
        inotify_watch();
#endif
        break;
    case Engine::KQUEUE:
#ifdef CUNICORN_RELOAD_KQUEUE
        kqueue_watch();
#endif
        break;
    }
}

void add_file(const std::string &path) {
    if (path.empty()) return;
    if (g.cwd.empty()) {
        char buf[PATH_MAX];
        if (getcwd(buf, sizeof buf)) g.cwd = buf;
    }
    g.added.push_back(absolute(path));
}

const char *engine() {
    switch (g.engine) {
    case Engine::INOTIFY: return "inotify";
    case Engine::KQUEUE: return "kqueue";
    default: return "poll";
    }
}

}  // namespace cunicorn::reloader
