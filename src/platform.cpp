// What differs between Linux, the BSDs and macOS outside the event loop.
// Process titles are written natively (no setproctitle module): on Linux by
// rewriting the argv area, which is what /proc/PID/cmdline and ps(1) show
// (nginx's ngx_setproctitle does the same); on the BSDs with setproctitle(3).
#include "cunicorn/platform.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/sendfile.h>
#elif defined(__FreeBSD__) || defined(__DragonFly__) || defined(__NetBSD__)
#include <sys/sysctl.h>
#elif defined(__APPLE__)
#include <libproc.h>
#include <mach-o/dyld.h>
#endif
#if defined(__FreeBSD__)
#include <sys/user.h>
#endif

extern char **environ;

namespace cunicorn::platform {

namespace {
char *g_area = nullptr;   // start of argv[0]
size_t g_area_len = 0;    // contiguous bytes of argv and environ strings
// proctitle_init's copy of the environment, for the process's lifetime.
// setenv() and unsetenv() may replace environ's entries or move it to a
// new array; these keep the array and every string reachable, so that leak
// checkers see none of them lost (volatile: stores never read would be
// optimised away).
char **volatile g_env_array = nullptr;
char **volatile g_env_strings = nullptr;
std::string g_start_executable;  // argv[0] made absolute at start
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
    char **strings = static_cast<char **>(std::malloc((n + 1) * sizeof(char *)));
    if (!copy || !strings) {
        std::free(copy);
        std::free(strings);
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        if (environ[i] == end) end = environ[i] + std::strlen(environ[i]) + 1;
        copy[i] = strings[i] = strdup(environ[i]);
    }
    copy[n] = strings[n] = nullptr;
    g_env_array = copy;
    g_env_strings = strings;
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

int socket_cloexec(int domain, int type, int protocol) {
#ifdef SOCK_CLOEXEC
    return socket(domain, type | SOCK_CLOEXEC, protocol);
#else
    int fd = socket(domain, type, protocol);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#endif
}

int accept_nonblocking(int listen_fd, sockaddr *addr, socklen_t *addr_len) {
#if defined(__APPLE__)
    int fd = accept(listen_fd, addr, addr_len);
    if (fd < 0) return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    // No MSG_NOSIGNAL here: the socket itself is told not to raise SIGPIPE.
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    return fd;
#else
    // Linux 2.6.28, FreeBSD 10, OpenBSD 5.7, NetBSD 8, DragonFly 4.4.
    return accept4(listen_fd, addr, addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#endif
}

bool set_reuse_port(int fd) {
    int one = 1;
#if defined(SO_REUSEPORT_LB)
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT_LB, &one, sizeof one) == 0;
#elif defined(SO_REUSEPORT)
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0;
#else
    (void)fd;
    (void)one;
    errno = ENOPROTOOPT;
    return false;
#endif
}

void defer_accept(int fd) {
#if defined(TCP_DEFER_ACCEPT)
    // A client silent this long is handed over anyway (the kernel then
    // accepts on its next retransmitted ACK), to meet the I/O timeout.
    int seconds = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds);
#elif defined(SO_ACCEPTFILTER)
    accept_filter_arg filter{};
    std::strncpy(filter.af_name, "dataready", sizeof filter.af_name - 1);
    (void)setsockopt(fd, SOL_SOCKET, SO_ACCEPTFILTER, &filter, sizeof filter);
#else
    (void)fd;
#endif
}

namespace {

// The portable way, for systems without sendfile(2) and for files or
// sockets the kernel's sendfile refuses: one buffer through user space.
ssize_t send_file_by_copy(int sock, int file, off_t *offset, size_t count) {
    char buf[65536];
    ssize_t r = pread(file, buf, std::min(count, sizeof buf), *offset);
    if (r <= 0) return r;
    ssize_t w = send(sock, buf, static_cast<size_t>(r), SEND_NOSIGNAL);
    if (w > 0) *offset += w;
    return w;
}

// sendfile(2) errors that mean "not with this file or socket" rather than
// a broken connection: a socket type (unix sockets on some systems) or a
// file system the kernel's sendfile does not handle.
bool sendfile_unsupported(int err) {
    return err == EINVAL || err == ENOSYS || err == ENOTSOCK || err == EOPNOTSUPP || err == ENOTSUP;
}

}  // namespace

ssize_t send_file(int sock, int file, off_t *offset, size_t count) {
    if (count == 0) return 0;  // the BSDs' sendfile reads 0 as "to the end"
#if defined(__linux__)
    ssize_t sent = sendfile(sock, file, offset, count);
    if (sent >= 0 || !sendfile_unsupported(errno)) return sent;
#elif defined(__FreeBSD__) || defined(__DragonFly__)
    // A non-blocking socket that fills up gives -1/EAGAIN with sbytes
    // already sent: that is progress, not an error.
    off_t sbytes = 0;
    int rc = sendfile(file, sock, *offset, count, nullptr, &sbytes, 0);
    *offset += sbytes;
    if (sbytes > 0 || rc == 0) return static_cast<ssize_t>(sbytes);
    if (!sendfile_unsupported(errno)) return -1;
#elif defined(__APPLE__)
    // len is in-out: the bytes asked for, then the bytes sent (also on
    // EAGAIN and EINTR).
    off_t len = static_cast<off_t>(count);
    int rc = sendfile(file, sock, *offset, &len, nullptr, 0);
    *offset += len;
    if (len > 0 || rc == 0) return static_cast<ssize_t>(len);
    if (!sendfile_unsupported(errno)) return -1;
#endif
    return send_file_by_copy(sock, file, offset, count);
}

void remember_executable(const char *argv0) {
    if (!argv0 || !*argv0) return;
    std::string found;
    if (std::strchr(argv0, '/')) {
        found = argv0;
    } else {
        // As execvp(3) searches: an empty $PATH entry is the current directory.
        const char *env_path = std::getenv("PATH");
        std::string dirs = env_path ? env_path : "/usr/bin:/bin";
        for (size_t start = 0;;) {
            size_t end = dirs.find(':', start);
            std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
            std::string candidate = (dir.empty() ? "." : dir) + "/" + argv0;
            if (access(candidate.c_str(), X_OK) == 0) {
                found = candidate;
                break;
            }
            if (end == std::string::npos) return;
            start = end + 1;
        }
    }
    if (found[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return;
        found = std::string(cwd) + "/" + found;
    }
    g_start_executable = found;
}

std::string executable_path() {
    char buf[PATH_MAX];
#if defined(__linux__)
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) return std::string(buf, static_cast<size_t>(n));
#elif defined(__FreeBSD__) || defined(__DragonFly__) || defined(__NetBSD__)
#if defined(__NetBSD__)
    int mib[4] = {CTL_KERN, KERN_PROC_ARGS, -1, KERN_PROC_PATHNAME};
#else
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1};
#endif
    size_t len = sizeof buf;
    if (sysctl(mib, 4, buf, &len, nullptr, 0) == 0 && len > 1) return std::string(buf, strnlen(buf, len));
#elif defined(__APPLE__)
    uint32_t size = sizeof buf;
    char real[PATH_MAX];
    if (_NSGetExecutablePath(buf, &size) == 0 && realpath(buf, real)) return real;
#else
    (void)buf;  // OpenBSD cannot name a process's executable
#endif
    return g_start_executable;
}

long long rss_bytes(pid_t pid) {
#if defined(__linux__)
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
    FILE *f = std::fopen(path, "r");
    if (!f) return -1;
    long long size = 0, resident = -1;
    if (std::fscanf(f, "%lld %lld", &size, &resident) != 2) resident = -1;
    std::fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
#elif defined(__FreeBSD__)
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, static_cast<int>(pid)};
    struct kinfo_proc kp;
    size_t len = sizeof kp;
    if (sysctl(mib, 4, &kp, &len, nullptr, 0) < 0 || len != sizeof kp) return -1;
    return static_cast<long long>(kp.ki_rssize) * sysconf(_SC_PAGESIZE);
#elif defined(__APPLE__)
    struct proc_taskinfo ti;
    if (proc_pidinfo(pid, PROC_PIDTASKINFO, 0, &ti, sizeof ti) != static_cast<int>(sizeof ti)) return -1;
    return static_cast<long long>(ti.pti_resident_size);
#else
    (void)pid;
    return -1;
#endif
}

}  // namespace cunicorn::platform
