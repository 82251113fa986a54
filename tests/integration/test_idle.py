"""Idle and slow connections at scale, per worker class: one worker
holds 10,000 idle keep-alive connections (each made one request, then
went quiet), keeps answering new clients, and each costs it little memory
(an idle connection keeps no read or write buffer). At the
--worker-connections bound, idle connections make room for new clients:
the oldest is closed to take a new one. And 500 clients that send their
heads a byte at a time hold no worker back from the others.

The figures printed (RSS growth per idle connection) are for reading; the
assertions use generous bounds, never timing.
"""

import resource
import socket
import threading
import time
import unittest

import server
from server import Server, build_request

# The worker classes under test (-k NAME); each runs every test below
# (gevent where it can run: server.gevent_runs()).
CLASSES = ['sync', 'gthread'] + ([] if server.gevent_runs() else ['gevent'])

IDLE = 10000
NEED_FDS = IDLE + 1000     # each process's: this one's clients, the server's sockets
RSS_BOUND_KIB = 4.0          # per idle connection

APP = r'''
import time


def app(environ, start_response):
    if environ['PATH_INFO'] == '/slow':
        time.sleep(0.3)
    body = b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
'''

REQUEST = b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
RESPONSE_END = b'hello'


def class_args(name):
    args = ['-k', name]
    if name == 'gthread':
        args += ['--threads', '4']
    return args


def raise_fd_limit(need):
    """Raises this process's RLIMIT_NOFILE (the server inherits it); None
    when the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        return None
    if soft == resource.RLIM_INFINITY or soft >= need:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return soft


def read_answer(s):
    """The bytes of one answer to REQUEST (fewer if the server closes)."""
    got = b''
    while not got.endswith(RESPONSE_END):
        data = s.recv(4096)
        if not data:
            break
        got += data
    return got


def open_idle(address, count, batch=200, deadline=120):
    """`count` connections that each made one keep-alive request and read
    its answer, then stay open, idle. Returns the sockets. (A worker that
    sees clients queueing behind a slow request closes the connection with
    its answer, for fairness: such a client connects again.)"""
    socks = []
    end = time.monotonic() + deadline * server.SLOW
    try:
        while len(socks) < count:
            if time.monotonic() > end:
                raise AssertionError('%d connections of %d within the deadline' % (len(socks), count))
            group = [socket.create_connection(address, timeout=30)
                     for _ in range(min(batch, count - len(socks)))]
            for s in group:
                s.sendall(REQUEST)
            for s in group:
                got = read_answer(s)
                assert got.startswith(b'HTTP/1.1 200') and got.endswith(RESPONSE_END), got
                if b'connection: close' in got.lower():
                    s.close()
                else:
                    socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def fetch_all(address, clients, path='/', deadline=30):
    """`clients` new clients at once, each one request on a connection of
    its own; returns their bodies (None for a client left unanswered)."""
    bodies = [None] * clients

    def one(i):
        try:
            s = socket.create_connection(address, timeout=deadline * server.SLOW)
            try:
                s.sendall(build_request('GET', path, close=True))
                got = server.read_until_closed(s)
                head, _, body = got.partition(b'\r\n\r\n')
                if head.startswith(b'HTTP/1.1 200'):
                    bodies[i] = body
            finally:
                s.close()
        except OSError:
            pass
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(deadline * server.SLOW + 30)
    return bodies


def still_open(socks):
    """How many of `socks` answer a second request."""
    ok = 0
    for s in socks:
        try:
            s.sendall(REQUEST)
            got = read_answer(s)
            ok += got.startswith(b'HTTP/1.1 200') and got.endswith(RESPONSE_END)
        except OSError:
            pass
    return ok


@unittest.skipIf(server.is_gunicorn(), 'measures cunicorn\'s own worker')
class IdleConnections(unittest.TestCase):
    @server.timeout(240)
    def test_ten_thousand_idle_connections(self):
        for name in CLASSES:
            with self.subTest(worker_class=name):
                self.idle_connections(name)

    def idle_connections(self, name):
        old = raise_fd_limit(NEED_FDS)
        if old is None:
            self.skipTest('RLIMIT_NOFILE hard limit below %d' % NEED_FDS)
        try:
            args = ['-w', '1', '--worker-connections', str(IDLE + 1000), '--keep-alive', '300',
                    '--backlog', '4096'] + class_args(name)
            with Server(APP, args=args, extra=False) as srv:
                pid = srv.worker_pid()
                # Warm up: the worker's first requests allocate what every
                # request reuses.
                warm = open_idle(srv.address, 100)
                for s in warm:
                    s.close()
                self.assertTrue(server.wait_for(lambda: server.fd_count(pid) < 60, 30))
                before = server.rss_kib(pid)
                socks = open_idle(srv.address, IDLE)
                try:
                    time.sleep(0.5)
                    after = server.rss_kib(pid)
                    per_conn = (after - before) * 1024.0 / IDLE
                    print('\n%s: %d idle keep-alive connections: worker RSS %d -> %d KiB, %.0f bytes each'
                          % (name, IDLE, before, after, per_conn))
                    self.assertGreaterEqual(server.fd_count(pid), IDLE)
                    # New clients are still answered, and the idle ones held.
                    self.assertEqual(fetch_all(srv.address, 20), [b'hello'] * 20)
                    self.assertEqual(still_open(socks[:50] + socks[-50:]), 100)
                    if not server.SANITIZED:
                        self.assertLess(per_conn, RSS_BOUND_KIB * 1024)
                finally:
                    for s in socks:
                        s.close()
        finally:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (old, hard))

    @server.timeout(240)
    def test_slow_header_clients_hold_no_one_back(self):
        # 500 connections each sending one header byte every 2 s, beside
        # normal clients: with 2 workers, every normal request is answered.
        for name in CLASSES:
            with self.subTest(worker_class=name):
                with Server(APP, args=['-w', '2'] + class_args(name), extra=False) as srv:
                    srv.wait_workers(2)
                    self.assertGreaterEqual(server.serve_beside_slow_clients(srv, 500, 10), 10)

    def test_bound_closes_oldest_idle_for_new_clients(self):
        # Two workers of 20 connections each, all held by idle keep-alive
        # clients: new clients are served, the oldest idle ones make room.
        for name in CLASSES:
            with self.subTest(worker_class=name):
                args = ['-w', '2', '--worker-connections', '20', '--keep-alive', '300'] + class_args(name)
                with Server(APP, args=args, extra=False) as srv:
                    srv.wait_workers(2)
                    idle = open_idle(srv.address, 40, batch=1)
                    try:
                        self.assertEqual(fetch_all(srv.address, 50), [b'hello'] * 50)
                    finally:
                        for s in idle:
                            s.close()

    def test_busy_connections_are_never_closed_for_new_ones(self):
        # Every connection mid-request: accept waits; a new client is
        # served once a slot frees, and no request in flight is cut.
        for name in CLASSES:
            with self.subTest(worker_class=name):
                args = ['-w', '1', '--worker-connections', '2', '--keep-alive', '300'] + class_args(name)
                with Server(APP, args=args, extra=False) as srv:
                    busy = [socket.create_connection(srv.address, timeout=30) for _ in range(2)]
                    try:
                        for s in busy:
                            s.sendall(build_request('GET', '/slow', close=True))
                        bodies = fetch_all(srv.address, 3)
                        for s in busy:
                            got = server.read_until_closed(s)
                            self.assertTrue(got.startswith(b'HTTP/1.1 200') and got.endswith(b'hello'), got)
                        self.assertEqual(bodies, [b'hello'] * 3)
                    finally:
                        for s in busy:
                            s.close()


if __name__ == '__main__':
    unittest.main()
