# The gevent worker class's Python half (src/executor_gevent.cpp runs it
# in the worker, before the application is imported). gevent's hub owns
# the thread: the connection engine's poll descriptor is one read watcher
# in the hub, and the engine runs in the main greenlet whenever it is
# readable; each request runs in a greenlet of its own.
#
# Gunicorn's GeventWorker.init_process patches first, then reinitialises
# the hub (the master may have used gevent before the fork, with --preload).

from gevent import monkey

monkey.patch_all()

import traceback

import gevent
from gevent import getcurrent
from greenlet import greenlet

gevent.reinit()

_hub = gevent.get_hub()
_loop = _hub.loop
_run_callback = _loop.run_callback
_hub_switch = _hub.switch


class Runners:
    """The greenlets that run requests: run(item, greenlet) for each item
    submitted, in a greenlet of its own. A greenlet that finishes a request
    waits for the next one instead of ending (a new greenlet costs an
    mmap and a munmap of its Python frame stack); at most `keep` wait, so a
    burst of concurrency does not pin its memory."""

    def __init__(self, run, keep=64):
        self.run = run
        self.keep = keep
        self.idle = []

    def submit(self, item):
        g = self.idle.pop() if self.idle else greenlet(self._serve, _hub)
        _run_callback(g.switch, item)

    def _serve(self, item):
        run = self.run
        idle = self.idle
        me = getcurrent()
        while True:
            run(item, me)
            if len(idle) >= self.keep:
                return
            idle.append(me)
            item = _hub_switch()


class LoopWaiter:
    """Where the engine's loop (the main greenlet) sleeps: in the hub, until
    fd (the engine's epoll or kqueue descriptor) is readable, the time is
    up, or a request's greenlet has news for the loop (wake); other
    greenlets run meanwhile."""

    def __init__(self, fd):
        self.main = getcurrent()
        self.io = _loop.io(fd, 1)
        self.timers = {}
        self.sleeping = False
        self.scheduled = False

    def sleep(self, timeout_ms):
        # A stopped libev timer keeps what was left of its time, and
        # start() would resume from there (nothing, once it has fired):
        # again() arms it afresh, for its full repeat interval.
        timer = self.timers.get(timeout_ms)
        if timer is None:
            seconds = timeout_ms / 1000.0
            timer = self.timers[timeout_ms] = _loop.timer(seconds, seconds)
        switch = self.main.switch
        self.io.start(switch)
        timer.again(switch)
        self.sleeping = True
        try:
            _hub_switch()
        finally:
            self.sleeping = False
            self.io.stop()
            timer.stop()

    def wake(self):
        if self.sleeping and not self.scheduled:
            self.scheduled = True
            _run_callback(self._wake)

    def _wake(self):
        self.scheduled = False
        if self.sleeping:
            self.main.switch()


class Gate:
    """A relayed request's waiter (conn::Gate): the request's greenlet
    waits in the hub until the engine notifies it. A notification only
    ever resumes the greenlet while it waits here, and at most once per
    wait, so it cannot disturb a greenlet that waits for something else
    (a database socket) by then."""

    __slots__ = ("waiting", "scheduled")

    def __init__(self):
        self.waiting = None
        self.scheduled = False

    def wait(self):
        self.waiting = getcurrent()
        try:
            _hub_switch()
        finally:
            self.waiting = None

    def notify(self):
        if self.waiting is not None and not self.scheduled:
            self.scheduled = True
            _run_callback(self._wake)

    def _wake(self):
        self.scheduled = False
        waiting = self.waiting
        if waiting is not None:
            waiting.switch()


def stack(greenlet):
    """Where a request's greenlet is, as a traceback (request_timeout)."""
    frame = getattr(greenlet, "gr_frame", None)
    if frame is None:
        return "(the greenlet is not running)\n"
    return "".join(traceback.format_stack(frame))
