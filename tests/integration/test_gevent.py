"""The gevent worker class (-k gevent): gevent's hub owns the worker's
thread, the connection engine runs in its main greenlet, and each request
runs in a greenlet of its own, with the standard library monkey-patched
before the application is imported.

The tests assert outcomes (how many requests were in the application at
once, bytes, what the log says), never elapsed time: the machine may be
loaded. The protocol suites run under gevent too (tests/run.py's class
passes).
"""

import http.server
import os
import selectors
import shutil
import socket
import tempfile
import threading
import time
import unittest

import server
from server import Server, build_request, run_binary
from test_virtualenv import make_venv

NO_GEVENT = server.gevent_runs()

# The application both worker-class modules serve.
APP = server.read_text(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'concurrent_app.py'))


def gevent_args(connections=1000):
    return ['-k', 'gevent', '--worker-connections', str(connections)]


class Clients:
    """Many concurrent one-request connections from one thread: opened and
    sent first, then read to the end (Connection: close)."""

    def __init__(self, address, paths, timeout=90):
        self.sel = selectors.DefaultSelector()
        self.replies = [b''] * len(paths)
        self.open = 0
        self.deadline = time.monotonic() + timeout * server.SLOW
        for i, path in enumerate(paths):
            s = socket.create_connection(address, timeout=30)
            s.sendall(build_request('GET', path, close=True))
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, i)
            self.open += 1

    def answered(self):
        """Replies complete so far."""
        return sum(1 for r in self.replies if r and r.startswith(b'HTTP/'))

    def pump(self, seconds):
        """Reads what arrives for `seconds` (or until every reply is in)."""
        until = min(time.monotonic() + seconds, self.deadline)
        while self.open and time.monotonic() < until:
            for key, _ in self.sel.select(max(0.0, until - time.monotonic())):
                data = key.fileobj.recv(65536)
                if data:
                    self.replies[key.data] += data
                else:
                    self.sel.unregister(key.fileobj)
                    key.fileobj.close()
                    self.open -= 1

    def finish(self):
        """Every reply as (status, body); closes what is left."""
        self.pump(self.deadline - time.monotonic())
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()
        out = []
        for raw in self.replies:
            head, _, body = raw.partition(b'\r\n\r\n')
            status = int(head.split(b' ', 2)[1]) if head.startswith(b'HTTP/') else None
            out.append((status, body))
        return out


@unittest.skipIf(NO_GEVENT, NO_GEVENT)
class GeventTest(unittest.TestCase):
    @server.timeout(180)
    def test_500_requests_in_the_application_at_once(self):
        with Server(APP, args=['-w', '1'] + gevent_args(500)) as srv:
            self.assertEqual(srv.get('/').body, b'hello')  # the worker has booted
            t0 = time.monotonic()
            replies = Clients(srv.address, ['/gather/500'] * 500).finish()
            took = time.monotonic() - t0
            self.assertEqual([s for s, _ in replies], [200] * 500)
            # Every request saw all 500 inside the application at once.
            self.assertEqual({b for _, b in replies}, {b'500'})
            print('500 concurrent requests (sleep 100 ms each) in %.2f s' % took)

    @server.timeout(180)
    def test_connection_past_the_bound_waits(self):
        # worker_connections bounds the greenlets: the 501st connection is
        # not accepted while 500 requests hold theirs, and is served once
        # they finish.
        with Server(APP, args=['-w', '1'] + gevent_args(500)) as srv:
            self.assertEqual(srv.get('/').body, b'hello')
            held = Clients(srv.address, ['/hold?500'] * 500)
            self.assertTrue(server.wait_for(lambda: held.pump(0.05) or os.path.exists(srv.path('all-inside')),
                                            60 * server.SLOW))
            late = Clients(srv.address, ['/'])
            late.pump(1.0)
            self.assertEqual(late.answered(), 0)   # it waits
            self.assertEqual(held.answered(), 0)
            server.write_file(srv.path('release'), '')
            self.assertEqual(late.finish(), [(200, b'hello')])
            self.assertEqual(held.finish(), [(200, b'released')] * 500)

    def test_a_waiting_worker_sleeps(self):
        # Between events the main greenlet waits in the hub: neither an idle
        # worker nor one whose requests all wait costs CPU.
        with Server(APP, args=['-w', '1', '-k', 'gevent']) as srv:
            self.assertEqual(srv.get('/').body, b'hello')
            keep = srv.connect()
            waiting = srv.connect()
            try:
                keep.send(build_request('GET', '/'))
                self.assertEqual(keep.read_response().body, b'hello')
                waiting.send(build_request('GET', '/stuck', close=True))
                self.assertTrue(server.wait_for(lambda: os.path.exists(srv.path('stuck')), 30))
                worker = srv.worker_pid()
                before = server.cpu_seconds(worker)
                time.sleep(3)
                self.assertLess(server.cpu_seconds(worker) - before, 0.5)
            finally:
                keep.close()
                waiting.close()

    def test_application_timeout_while_reading_the_body(self):
        with Server(APP, args=['-w', '1', '-k', 'gevent']) as srv:
            conn = srv.connect()
            try:
                # More than the 64 KiB read before the application runs, then
                # nothing: the application's read waits for the client.
                conn.send(b'POST /read-timeout HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n' +
                          b'x' * 70000)
                r = conn.read_response('POST')
                self.assertEqual((r.status, r.body), (200, b'timed out'))
            finally:
                conn.close()
            self.assertEqual(srv.get('/').body, b'hello')   # the worker goes on

    def test_preload_imports_the_application_unpatched(self):
        # As with Gunicorn: --preload imports the application in the master,
        # before any worker patches.
        with Server(APP, args=['-w', '1', '-k', 'gevent', '--preload']) as srv:
            sock_mod, _ = srv.get('/patched').body.decode().split()
            self.assertEqual(sock_mod, 'socket')

    def test_patched_before_the_application_is_imported(self):
        with Server(APP, args=['-w', '1', '-k', 'gevent']) as srv:
            sock_mod, sleep_mod = srv.get('/patched').body.decode().split()
            self.assertTrue(sock_mod.startswith('gevent'), sock_mod)
            self.assertTrue(sleep_mod.startswith('gevent'), sleep_mod)
            self.assertEqual(srv.get('/multithread').body, b'(True, False)')

    @server.timeout(120)
    def test_requests_wait_on_patched_sockets_together(self):
        # 50 requests each fetch from a backend that answers only once all
        # 50 wait on it: one worker has them all waiting at once.
        backend = Barrier(50)
        with Server(APP, args=['-w', '1'] + gevent_args()) as srv:
            try:
                replies = Clients(srv.address, ['/fetch?%d' % backend.port] * 50).finish()
            finally:
                backend.close()
            self.assertEqual(replies, [(200, b'together')] * 50)

    def test_large_bodies_both_ways(self):
        body = os.urandom(3 << 20)
        with Server(APP, args=['-w', '1', '-k', 'gevent']) as srv:
            conn = srv.connect()
            try:
                conn.send(build_request('POST', '/echo', body=body))
                self.assertEqual(conn.read_response().body, body)
            finally:
                conn.close()

    def test_request_timeout_reports_the_greenlet_stack(self):
        args = ['-w', '1', '--request-timeout', '1', '--graceful-timeout', '1', '-k', 'gevent']
        with Server(APP, args=args) as srv:
            conn = srv.connect()
            try:
                server.check_request_timeout(self, srv, conn)
            finally:
                conn.close()

    def test_gevent_backend_variable_chooses_the_hub_loop(self):
        # The README points at GEVENT_BACKEND for libev's io_uring backend:
        # the worker's hub honours gevent's own setting (poll exists on
        # every system gevent runs on).
        env = {'GEVENT_BACKEND': 'poll'}
        with Server(APP, args=['-w', '1', '-k', 'gevent'], env=env) as srv:
            self.assertEqual(srv.get('/backend').body, b'poll')


class Barrier:
    """A loopback HTTP backend whose requests are all answered once `n` of
    them wait at once (or fail after a bound)."""

    def __init__(self, n):
        barrier = threading.Barrier(n, timeout=60)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    barrier.wait()
                    body = b'together'
                except threading.BrokenBarrierError:
                    body = b'alone'
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@unittest.skipUnless(server.module_available('gevent'),
                     'gevent is not installed for /usr/bin/python3 (Debian python3-gevent; make deps)')
class GeventMissing(unittest.TestCase):
    def test_one_line_naming_the_packages(self):
        tmp = tempfile.mkdtemp(prefix='cunicorn-nogevent-')
        self.addCleanup(shutil.rmtree, tmp, True)
        venv = make_venv(os.path.join(tmp, 'venv'), system_site_packages=False)
        server.write_file(os.path.join(tmp, 'app.py'), 'def app(e, s):\n    return []\n')
        status, out, err = run_binary(['-k', 'gevent', '-b', '127.0.0.1:%d' % server.free_port(), 'app:app'],
                                      cwd=tmp, env={'VIRTUAL_ENV': venv}, timeout=60)
        self.assertEqual(status, 1, out + err)
        lines = [l for l in (out + err).splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, out + err)
        self.assertIn('python3-gevent', lines[0])
        self.assertIn('pip install gevent', lines[0])


SLOW_GUIDE_APP = '''
import time

from guide_flask_app import app


@app.route('/slow')
def slow():
    started = time.monotonic()
    time.sleep(%r)
    return '%%r %%r' %% (started, time.monotonic())
'''


@unittest.skipIf(NO_GEVENT, NO_GEVENT)
@unittest.skipUnless(server.module_available('flask'), 'Flask is not installed for /usr/bin/python3 (python3-flask)')
class SeedConfigs(unittest.TestCase):
    """The guides' configurations (tests/data/configs), unchanged but for
    the paths and the address given on the command line, run their gevent
    workers: the guides' Flask app answers, and 200 slow requests are in
    the application at once."""

    CONFIGS = os.path.join(server.ROOT, 'tests', 'data', 'configs')
    PAUSE = 3.0

    def run_config(self, name):
        files = {n: server.read_text(os.path.join(self.CONFIGS, n))
                 for n in (name, 'guide_flask_app.py')}
        files['slow_guide.py'] = SLOW_GUIDE_APP % (self.PAUSE * server.SLOW)
        srv = Server(files=files, appname='slow_guide:app', extra=False,
                     args=['-c', name, '-p', 'gunicorn.pid', '--access-logfile', 'access.log'])
        with srv:
            self.assertEqual(srv.get('/').body, b'hello world!')
            replies = Clients(srv.address, ['/slow'] * 200).finish()
            self.assertEqual([s for s, _ in replies], [200] * 200)
            spans = [tuple(map(float, b.split())) for _, b in replies]
            # Every request started before the first one ended (4 or 5
            # sync workers would run 200 of them in 40 or more rounds).
            self.assertLess(max(s for s, _ in spans), min(e for _, e in spans))

    @server.timeout(180)
    def test_guide_a(self):
        self.run_config('guide-a.conf.py')

    @server.timeout(180)
    def test_guide_b(self):
        self.run_config('guide-b.conf.py')

    @server.timeout(180)
    def test_guide_c(self):
        self.run_config('guide-c.conf.py')
