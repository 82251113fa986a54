// Test-only kqueue(2)/kevent(2) on top of epoll, so that the kqueue backend
// (src/ev_kqueue.cpp) can be built and run on Linux: `make cunicorn-kqueue`.
//
// What is emulated, after FreeBSD's kqueue(2) manual page:
// - EVFILT_READ and EVFILT_WRITE on descriptors epoll accepts (sockets,
//   pipes), level-triggered, one knote per (descriptor, filter) pair with
//   its own udata; the two filters of a descriptor share one epoll entry.
// - EV_ADD (implies EV_ENABLE), EV_DELETE (ENOENT when absent), EV_ENABLE,
//   EV_DISABLE, EV_ONESHOT (deleted once reported), EV_DISPATCH (disabled
//   once reported, to one caller when several threads wait), EV_RECEIPT.
// - Change errors: an EV_ERROR entry with data = errno while the event
//   list has room, and then kevent() returns at once; otherwise -1/errno.
// - EV_EOF on the read filter when the peer shut down its side (EPOLLRDHUP)
//   or the socket hung up or failed; on the write filter when it hung up
//   or failed. data is FIONREAD's count for the read filter.
// Not emulated: other filters and flags (EINVAL), EV_CLEAR, the socket
// error in fflags (reading SO_ERROR would clear it on Linux), the listen
// queue length in data, and BSD's rule that a child process does not
// inherit the queue (cunicorn creates its loops after fork).
#include <sys/epoll.h>
#include <sys/event.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <map>
#include <mutex>

static_assert(sizeof(struct kevent) == 64, "FreeBSD's struct kevent is 64 bytes on LP64");
static_assert(offsetof(struct kevent, filter) == 8 && offsetof(struct kevent, flags) == 10 &&
                  offsetof(struct kevent, fflags) == 12 && offsetof(struct kevent, data) == 16 &&
                  offsetof(struct kevent, udata) == 24 && offsetof(struct kevent, ext) == 32,
              "FreeBSD's struct kevent layout");

namespace {

struct Knote {
    bool present = false;
    bool enabled = false;
    bool oneshot = false;
    bool dispatch = false;
    void *udata = nullptr;
};

struct Watched {
    Knote rd, wr;
    bool in_epoll = false;
};

struct Queue {
    std::map<int, Watched> fds;
};

std::mutex g_lock;
std::map<int, Queue> g_queues;  // keyed by the epoll descriptor kqueue() returned

uint32_t epoll_mask(const Watched &w) {
    uint32_t m = 0;
    if (w.rd.present && w.rd.enabled) m |= EPOLLIN | EPOLLRDHUP;
    if (w.wr.present && w.wr.enabled) m |= EPOLLOUT;
    return m;
}

// Brings the epoll entry of fd in line with its knotes. A descriptor closed
// and reused behind our back may be in epoll or not: retry the other way.
int sync_epoll(int epfd, int fd, Watched &w) {
    uint32_t m = epoll_mask(w);
    epoll_event ev{};
    ev.events = m;
    ev.data.fd = fd;
    if (m == 0) {
        if (w.in_epoll) {
            w.in_epoll = false;
            if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT && errno != EBADF) return -1;
        }
        return 0;
    }
    int op = w.in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epfd, op, fd, &ev) < 0) {
        if (errno == ENOENT && op == EPOLL_CTL_MOD) op = EPOLL_CTL_ADD;
        else if (errno == EEXIST && op == EPOLL_CTL_ADD) op = EPOLL_CTL_MOD;
        else return -1;
        if (epoll_ctl(epfd, op, fd, &ev) < 0) return -1;
    }
    w.in_epoll = true;
    return 0;
}

// Applies one change; returns 0 or an errno value.
int apply_change(int epfd, Queue &q, const struct kevent &kc) {
    const unsigned short known = EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE | EV_ONESHOT | EV_DISPATCH | EV_RECEIPT;
    if ((kc.filter != EVFILT_READ && kc.filter != EVFILT_WRITE) || (kc.flags & ~known)) return EINVAL;
    if (kc.ident > static_cast<uintptr_t>(0x7fffffff)) return EBADF;
    int fd = static_cast<int>(kc.ident);
    if (fcntl(fd, F_GETFD) < 0) {
        // A closed descriptor loses its knotes, as on BSD.
        q.fds.erase(fd);
        return EBADF;
    }
    auto it = q.fds.find(fd);
    if (it == q.fds.end()) {
        if (!(kc.flags & EV_ADD)) return ENOENT;
        it = q.fds.emplace(fd, Watched{}).first;
    }
    Watched &w = it->second;
    Knote &k = kc.filter == EVFILT_READ ? w.rd : w.wr;
    Knote saved = k;
    if (kc.flags & EV_DELETE) {
        if (!k.present) return ENOENT;
        k = Knote{};
    } else {
        if (kc.flags & EV_ADD) {
            if (!k.present) k.enabled = true;
            k.present = true;
            k.udata = kc.udata;
            k.oneshot = (kc.flags & EV_ONESHOT) != 0;
            k.dispatch = (kc.flags & EV_DISPATCH) != 0;
        } else if (!k.present) {
            return ENOENT;
        }
        if (kc.flags & EV_ENABLE) k.enabled = true;
        if (kc.flags & EV_DISABLE) k.enabled = false;
    }
    if (sync_epoll(epfd, fd, w) < 0) {
        int err = errno;
        k = saved;
        return err;
    }
    if (!w.rd.present && !w.wr.present) q.fds.erase(it);
    return 0;
}

int timeout_ms(const struct timespec *ts) {
    if (!ts) return -1;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L) return -2;
    long long ms = static_cast<long long>(ts->tv_sec) * 1000 + (ts->tv_nsec + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

void fill(struct kevent &out, int fd, short filter, const Knote &k, bool eof, int64_t data) {
    EV_SET(&out, fd, filter, (k.oneshot ? EV_ONESHOT : 0) | (k.dispatch ? EV_DISPATCH : 0) | (eof ? EV_EOF : 0), 0,
           data, k.udata);
}

}  // namespace

extern "C" int kqueue(void) {
    // Close-on-exec, so a USR2 re-exec does not inherit it (BSD queues
    // cannot be inherited at all).
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return -1;
    std::lock_guard<std::mutex> guard(g_lock);
    g_queues[epfd] = Queue{};  // a number reused after close(kq) starts empty
    return epfd;
}

extern "C" int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
                      int nevents, const struct timespec *timeout) {
    if (nchanges < 0 || nevents < 0 || (nchanges > 0 && !changelist) || (nevents > 0 && !eventlist)) {
        errno = EINVAL;
        return -1;
    }
    int wait_ms = timeout_ms(timeout);
    if (wait_ms == -2) {
        errno = EINVAL;
        return -1;
    }
    int nout = 0;
    {
        std::lock_guard<std::mutex> guard(g_lock);
        auto qi = g_queues.find(kq);
        if (qi == g_queues.end()) {
            errno = EBADF;
            return -1;
        }
        for (int i = 0; i < nchanges; ++i) {
            const struct kevent &kc = changelist[i];
            int err = apply_change(kq, qi->second, kc);
            if (err == 0 && !(kc.flags & EV_RECEIPT)) continue;
            if (nout < nevents) {
                eventlist[nout] = kc;
                eventlist[nout].flags = EV_ERROR;
                eventlist[nout].data = err;
                ++nout;
            } else if (err != 0) {
                errno = err;
                return -1;
            }
        }
    }
    if (nout > 0 || nevents == 0) return nout;

    epoll_event evs[256];
    int max = nevents < 256 ? nevents : 256;
    int n = epoll_wait(kq, evs, max, wait_ms);
    if (n < 0) return -1;
    std::lock_guard<std::mutex> guard(g_lock);
    auto qi = g_queues.find(kq);
    if (qi == g_queues.end()) return 0;
    Queue &q = qi->second;
    for (int i = 0; i < n && nout < nevents; ++i) {
        int fd = evs[i].data.fd;
        uint32_t e = evs[i].events;
        auto it = q.fds.find(fd);
        if (it == q.fds.end()) continue;
        Watched &w = it->second;
        bool fired_once = false;
        if (w.rd.present && w.rd.enabled && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
            int avail = 0;
            if (ioctl(fd, FIONREAD, &avail) < 0) avail = 0;
            fill(eventlist[nout++], fd, EVFILT_READ, w.rd, (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0, avail);
            fired_once = fired_once || w.rd.oneshot || w.rd.dispatch;
            if (w.rd.oneshot) w.rd = Knote{};
            if (w.rd.dispatch) w.rd.enabled = false;
        }
        // A descriptor whose second event does not fit is reported again by
        // the next call: both filters are level-triggered.
        if (nout < nevents && w.wr.present && w.wr.enabled && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
            fill(eventlist[nout++], fd, EVFILT_WRITE, w.wr, (e & (EPOLLHUP | EPOLLERR)) != 0, 0);
            fired_once = fired_once || w.wr.oneshot || w.wr.dispatch;
            if (w.wr.oneshot) w.wr = Knote{};
            if (w.wr.dispatch) w.wr.enabled = false;
        }
        if (fired_once) {
            sync_epoll(kq, fd, w);
            if (!w.rd.present && !w.wr.present) q.fds.erase(it);
        }
    }
    return nout;
}
