// Process titles, written natively (no setproctitle module): on Linux by
// rewriting the argv area, which is what /proc/PID/cmdline and ps(1) show
// (nginx's ngx_setproctitle does the same); on the BSDs with setproctitle(3).
#include "cunicorn/platform.h"

#include <fcntl.h>

#include <cstdlib>
#include <cstring>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

namespace cunicorn::platform {

namespace {
char *g_area = nullptr;   // start of argv[0]
size_t g_area_len = 0;    // contiguous bytes of argv and environ strings
}  // namespace

void proctitle_init(int argc, char **argv) {
#if defined(__linux__)
    if (argc <= 0 || !argv[0]) return;
    char *end = argv[0] + std::strlen(argv[0]) + 1;
    for (int i = 1; i < argc; ++i)
        if (argv[i] == end) end = argv[i] + std::strlen(argv[i]) + 1;
    // The environment strings usually follow argv; copy them to the heap
    // so the title may use their space too.
    size_t n = 0;
    while (environ[n]) ++n;
    char **copy = static_cast<char **>(std::malloc((n + 1) * sizeof(char *)));
    if (!copy) return;
    for (size_t i = 0; i < n; ++i) {
        if (environ[i] == end) end = environ[i] + std::strlen(environ[i]) + 1;
        copy[i] = strdup(environ[i]);
    }
    copy[n] = nullptr;
    environ = copy;
    g_area = argv[0];
    g_area_len = static_cast<size_t>(end - argv[0]);
#else
    (void)argc;
    (void)argv;
#endif
}

void set_proctitle(const std::string &title) {
#if defined(__linux__)
    prctl(PR_SET_NAME, title.c_str(), 0, 0, 0);
    if (!g_area || g_area_len < 2) return;
    size_t n = std::min(title.size(), g_area_len - 1);
    std::memcpy(g_area, title.data(), n);
    std::memset(g_area + n, 0, g_area_len - n);
#elif defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
    setproctitle("-%s", title.c_str());
#else
    (void)title;
#endif
}

bool signal_pipe(int fds[2]) {
    if (pipe(fds) < 0) return false;
    for (int i = 0; i < 2; ++i) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    return true;
}

}  // namespace cunicorn::platform
