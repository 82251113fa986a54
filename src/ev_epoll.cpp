// Linux backend of the event loop: level-triggered epoll.
#include "cunicorn/ev.h"

#ifdef CUNICORN_EV_EPOLL

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

namespace cunicorn::ev {

struct Loop::Backend {
    int epfd;
};

static uint32_t to_epoll(int mask, bool one_shot) {
    uint32_t e = one_shot ? static_cast<uint32_t>(EPOLLONESHOT) : 0u;
    if (mask & READABLE) e |= EPOLLIN;
    if (mask & WRITABLE) e |= EPOLLOUT;
#ifdef EPOLLEXCLUSIVE
    if (mask & EXCLUSIVE) e |= EPOLLEXCLUSIVE;
#endif
    return e;
}

Loop::Backend *backend_create() {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return nullptr;
    return new Loop::Backend{fd};
}

void backend_free(Loop::Backend *b) {
    if (!b) return;
    close(b->epfd);
    delete b;
}

int backend_add(Loop::Backend *b, int fd, int old_mask, int new_mask, bool one_shot) {
    // EPOLLEXCLUSIVE is only accepted with EPOLL_CTL_ADD.
    if (old_mask != NONE) new_mask &= ~EXCLUSIVE;
    epoll_event ev{};
    ev.events = to_epoll(new_mask, one_shot);
    ev.data.fd = fd;
    return epoll_ctl(b->epfd, old_mask == NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

int backend_del(Loop::Backend *b, int fd, int old_mask, int removed_mask, bool one_shot) {
    int left = old_mask & ~removed_mask & ~EXCLUSIVE;
    epoll_event ev{};
    ev.events = to_epoll(left, one_shot);
    ev.data.fd = fd;
    // A descriptor closed before its removal is already gone from the set;
    // that ENOENT/EBADF is expected and harmless.
    return epoll_ctl(b->epfd, left == NONE ? EPOLL_CTL_DEL : EPOLL_CTL_MOD, fd, &ev);
}

int backend_rearm(Loop::Backend *b, int fd, int mask) {
    epoll_event ev{};
    ev.events = to_epoll(mask, true);
    ev.data.fd = fd;
    return epoll_ctl(b->epfd, EPOLL_CTL_MOD, fd, &ev);
}

// close() takes the descriptor out of the set (connections are never dup'd).
int backend_forget_closing(Loop::Backend *, int, int) { return 0; }

int backend_wait(Loop::Backend *b, int timeout_ms, std::vector<Loop::Fired> &fired) {
    // On the stack: threads taking turns at one loop wait at the same time.
    epoll_event events[256];
    int n = epoll_wait(b->epfd, events, 256, timeout_ms);
    if (n < 0) return -1;
    for (int i = 0; i < n; ++i) {
        const epoll_event &e = events[i];
        int mask = NONE;
        if (e.events & EPOLLIN) mask |= READABLE;
        if (e.events & EPOLLOUT) mask |= WRITABLE;
        if (e.events & (EPOLLERR | EPOLLHUP)) mask |= READABLE | WRITABLE;
        fired.push_back({e.data.fd, mask});
    }
    return n;
}

int backend_fd(const Loop::Backend *b) { return b->epfd; }

const char *backend_name() { return "epoll"; }

}  // namespace cunicorn::ev

#endif
