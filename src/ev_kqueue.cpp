// BSD/macOS backend of the event loop: kqueue with one EVFILT_READ and one
// EVFILT_WRITE filter per descriptor, merged into one mask per descriptor
// (Redis ae_kqueue.c) so a callback runs once per round.
#include "cunicorn/ev.h"

#ifdef CUNICORN_EV_KQUEUE

#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

namespace cunicorn::ev {

struct Loop::Backend {
    int kq;
};

Loop::Backend *backend_create() {
    int kq = kqueue();
    if (kq < 0) return nullptr;
    return new Loop::Backend{kq};
}

void backend_free(Loop::Backend *b) {
    if (!b) return;
    close(b->kq);
    delete b;
}

static int change(Loop::Backend *b, int fd, int filter, int flags) {
    struct kevent ke;
    EV_SET(&ke, fd, filter, flags, 0, 0, nullptr);
    return kevent(b->kq, &ke, 1, nullptr, 0, nullptr);
}

// One-shot: EV_DISPATCH disables a filter once reported; EV_ENABLE arms
// it again (and the filters a change leaves, as epoll's EPOLL_CTL_MOD does).
int backend_rearm(Loop::Backend *b, int fd, int mask) {
    int rc = 0;
    if ((mask & READABLE) && change(b, fd, EVFILT_READ, EV_ENABLE) < 0) rc = -1;
    if ((mask & WRITABLE) && change(b, fd, EVFILT_WRITE, EV_ENABLE) < 0) rc = -1;
    return rc;
}

int backend_add(Loop::Backend *b, int fd, int old_mask, int new_mask, bool one_shot) {
    int added = new_mask & ~old_mask;
    int flags = EV_ADD | (one_shot ? EV_DISPATCH : 0);
    if ((added & READABLE) && change(b, fd, EVFILT_READ, flags) < 0) return -1;
    if ((added & WRITABLE) && change(b, fd, EVFILT_WRITE, flags) < 0) return -1;
    return one_shot ? backend_rearm(b, fd, old_mask & new_mask) : 0;
}

int backend_del(Loop::Backend *b, int fd, int old_mask, int removed_mask, bool one_shot) {
    int gone = old_mask & removed_mask;
    int rc = 0;
    if ((gone & READABLE) && change(b, fd, EVFILT_READ, EV_DELETE) < 0) rc = -1;
    if ((gone & WRITABLE) && change(b, fd, EVFILT_WRITE, EV_DELETE) < 0) rc = -1;
    if (one_shot && backend_rearm(b, fd, old_mask & ~gone) < 0) rc = -1;
    return rc;
}

// close() drops the knotes too, but deleting them first keeps a change
// list (and the test shim, which emulates knotes) in step with the fd.
int backend_forget_closing(Loop::Backend *b, int fd, int old_mask) {
    return backend_del(b, fd, old_mask, old_mask, false);
}

int backend_wait(Loop::Backend *b, int timeout_ms, std::vector<Loop::Fired> &fired) {
    struct timespec ts, *tsp = nullptr;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    // On the stack: threads taking turns at one loop wait at the same time.
    struct kevent events[128];
    int n = kevent(b->kq, nullptr, 0, events, 128, tsp);
    if (n < 0) return -1;
    size_t first = fired.size();
    for (int i = 0; i < n; ++i) {
        const struct kevent &e = events[i];
        int fd = static_cast<int>(e.ident);
        int mask = e.filter == EVFILT_READ ? READABLE : WRITABLE;
        if (e.flags & (EV_EOF | EV_ERROR)) mask |= READABLE | WRITABLE;
        // Merge the read and write kevents of one descriptor.
        bool merged = false;
        for (size_t j = first; j < fired.size(); ++j) {
            if (fired[j].fd == fd) {
                fired[j].mask |= mask;
                merged = true;
                break;
            }
        }
        if (!merged) fired.push_back({fd, mask});
    }
    return static_cast<int>(fired.size() - first);
}

int backend_fd(const Loop::Backend *b) { return b->kq; }

const char *backend_name() { return "kqueue"; }

}  // namespace cunicorn::ev

#endif
