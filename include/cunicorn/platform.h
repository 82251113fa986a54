// The few things that differ between Linux, the BSDs and macOS and that do
// not belong to the event loop: process titles, the self-pipe, socket
// flags and options, sendfile and the path of the running executable.
#ifndef CUNICORN_PLATFORM_H
#define CUNICORN_PLATFORM_H

#include <sys/socket.h>
#include <sys/types.h>

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

// send(2) flags. SEND_NOSIGNAL: a reset peer gives EPIPE, not SIGPIPE
// (macOS has no MSG_NOSIGNAL; accept_nonblocking sets SO_NOSIGPIPE there).
// SEND_MORE: more follows, so the kernel may hold a short head back and
// put it in one segment with the file after it (Linux MSG_MORE only).
#ifdef MSG_NOSIGNAL
inline constexpr int SEND_NOSIGNAL = MSG_NOSIGNAL;
#else
inline constexpr int SEND_NOSIGNAL = 0;
#endif
#ifdef MSG_MORE
inline constexpr int SEND_MORE = MSG_MORE;
#else
inline constexpr int SEND_MORE = 0;
#endif

// socket(2) with SOCK_CLOEXEC, or socket and fcntl where the flag is
// missing (macOS). Returns the fd or -1 with errno.
int socket_cloexec(int domain, int type, int protocol);

// accept(2) whose socket is born non-blocking and close-on-exec (accept4
// where it exists, else accept and fcntl). Returns the fd or -1 with errno.
int accept_nonblocking(int listen_fd, sockaddr *addr, socklen_t *addr_len);

// --reuse-port: lets several sockets bind one TCP address. Only where the
// kernel then spreads new connections over them (Linux SO_REUSEPORT,
// FreeBSD 12+ SO_REUSEPORT_LB, DragonFly) does each worker bind its own
// listener; elsewhere (macOS, OpenBSD, NetBSD; FreeBSD's plain
// SO_REUSEPORT) one socket would get every connection, so the master's
// listener stays shared. set_reuse_port returns false with errno.
#if defined(__linux__) || defined(__DragonFly__) || defined(SO_REUSEPORT_LB)
inline constexpr bool REUSE_PORT_BALANCES = true;
#else
inline constexpr bool REUSE_PORT_BALANCES = false;
#endif
bool set_reuse_port(int fd);

// On a listening TCP socket: hand a connection to accept() only once its
// first bytes have arrived (HTTP clients speak first), so the worker reads
// the request at once instead of waiting for another wake-up. Linux
// TCP_DEFER_ACCEPT; FreeBSD's "dataready" accept filter when the accf_data
// module is loaded; nothing elsewhere. Best effort: failure changes only
// the timing.
void defer_accept(int fd);

// Sends up to count bytes of file from *offset to sock, advancing *offset
// by what went out: sendfile(2) on Linux, FreeBSD and macOS, pread+send
// elsewhere and where sendfile refuses the file or socket. Returns the bytes sent (> 0), 0 when the file ended early, or
// -1 with errno (EAGAIN: the socket is full and nothing went out).
ssize_t send_file(int sock, int file, off_t *offset, size_t count);

// Must run at start, before any chdir and before set_proctitle overwrites
// argv: argv[0] made absolute (searched in $PATH as execvp does), for
// systems whose kernel cannot name the running executable (OpenBSD).
void remember_executable(const char *argv0);
// The running executable's path, to start again on USR2 or a virtualenv
// change: /proc/self/exe on Linux, sysctl KERN_PROC_PATHNAME on FreeBSD,
// NetBSD and DragonFly, _NSGetExecutablePath on macOS, else what
// remember_executable found; empty when none of these knows. Ask at
// start: once an upgrade has replaced the file, the kernel names the old
// one ("... (deleted)" on Linux), while the path kept from the start leads
// to the new one.
std::string executable_path();

// The resident set size of process pid in bytes (/proc/PID/statm on
// Linux, sysctl KERN_PROC_PID on the BSDs and macOS' proc_pidinfo); -1
// where unknown.
long long rss_bytes(pid_t pid);

}  // namespace cunicorn::platform

#endif
