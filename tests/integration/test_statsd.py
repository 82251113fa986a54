"""StatsD (--statsd-host, --statsd-prefix, --dogstatsd-tags,
--enable-backlog-metric): the datagrams gunicorn/instrument/statsd.py
sends, received on sockets this test binds (reference g.6)."""

import os
import signal
import re
import shutil
import socket
import tempfile
import time
import unittest

import server
from server import Server

APP = r'''
def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/boom':
        raise RuntimeError('boom')
    status = {'/missing': '404 Not Found', '/teapot': "418 I'm a teapot"}.get(path, '200 OK')
    start_response(status, [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
'''

# statsd.py: "<prefix><name>:<value>|<type>", counters "|@1.0", then
# "|#<tags>" when dogstatsd_tags is set.
METRIC = re.compile(r'^(?P<name>[^:]+):(?P<value>[0-9.]+)\|(?P<type>c\|@1\.0|ms|g|h)(?:\|#(?P<tags>.*))?$')


class Datagrams:
    """A datagram socket bound by the test: UDP on 127.0.0.1 or a unix
    path. collect() returns what arrived, decoded, in order."""

    def __init__(self, family=socket.AF_INET, path=None, rcvbuf=None):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(path or ('127.0.0.1', 0))
        self.address = path or '127.0.0.1:%d' % self.sock.getsockname()[1]
        self.got = []

    def close(self):
        self.sock.close()

    def collect(self, until=lambda got: False, timeout=30, quiet=0.3):
        """Reads until until(got) holds, then until nothing comes for
        `quiet` seconds (so that an extra datagram would be seen); or
        until the timeout."""
        deadline = time.monotonic() + timeout * server.SLOW
        done = False
        while time.monotonic() < deadline:
            if not done and until(self.got):
                done = True
            self.sock.settimeout(quiet if done else 0.2)
            try:
                self.got.append(self.sock.recv(65536))
            except socket.timeout:
                if done:
                    break
        return self.got


def lines(datagrams):
    """The metrics of the datagrams: a datagram may carry several, one
    per line (the multi-metric packets StatsD servers read)."""
    return [line for d in datagrams for line in d.decode('ascii').split('\n')]


def parse(datagrams):
    out = []
    for line in lines(datagrams):
        m = METRIC.match(line)
        if not m:
            raise AssertionError('not a statsd metric: %r' % line)
        out.append(m.groupdict())
    return out


def counter(metrics, name):
    return sum(int(m['value']) for m in metrics if m['name'] == name and m['type'].startswith('c'))


class Statsd(unittest.TestCase):
    def receiver(self, *args, **kw):
        r = Datagrams(*args, **kw)
        self.addCleanup(r.close)
        return r

    def serve(self, *args):
        srv = Server(APP, list(args))
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def test_counters_timers_and_gauge_add_up(self):
        r = self.receiver()
        srv = self.serve('-w', '2', '--statsd-host', r.address)
        srv.wait_workers(2)
        paths = ['/'] * 5 + ['/missing'] * 3 + ['/teapot'] * 2 + ['/boom'] * 2
        statuses = [srv.get(p).status for p in paths]
        self.assertEqual(statuses, [200] * 5 + [404] * 3 + [418] * 2 + [500] * 2)

        def complete(got):
            ms = [m for m in parse(got)]
            return counter(ms, 'gunicorn.requests') >= len(paths) and \
                counter(ms, 'gunicorn.log.exception') >= 2 and \
                any(m['name'] == 'gunicorn.workers' for m in ms)
        metrics = parse(r.collect(complete, quiet=1))
        self.assertEqual(counter(metrics, 'gunicorn.requests'), len(paths), metrics)
        self.assertEqual(counter(metrics, 'gunicorn.request.status.200'), 5)
        self.assertEqual(counter(metrics, 'gunicorn.request.status.404'), 3)
        self.assertEqual(counter(metrics, 'gunicorn.request.status.418'), 2)
        self.assertEqual(counter(metrics, 'gunicorn.request.status.500'), 2)
        # Each failing request logged "Error handling request" with its
        # traceback: log.exception, not log.error.
        self.assertEqual(counter(metrics, 'gunicorn.log.exception'), 2)
        self.assertEqual(counter(metrics, 'gunicorn.log.error'), 0)
        timers = [m for m in metrics if m['name'] == 'gunicorn.request.duration']
        self.assertEqual(len(timers), len(paths))
        for t in timers:
            self.assertEqual(t['type'], 'ms')
            self.assertRegex(t['value'], r'^\d+\.\d{1,3}$')  # a Python float of milliseconds
        gauges = [m for m in metrics if m['name'] == 'gunicorn.workers']
        self.assertEqual([(g['value'], g['type']) for g in gauges], [('2', 'g')])
        self.assertTrue(all(m['tags'] is None for m in metrics))
        names = set(m['name'] for m in metrics)
        self.assertLessEqual(names, {'gunicorn.requests', 'gunicorn.request.duration', 'gunicorn.workers',
                                     'gunicorn.request.status.200', 'gunicorn.request.status.404',
                                     'gunicorn.request.status.418', 'gunicorn.request.status.500',
                                     'gunicorn.log.exception', 'gunicorn.log.warning'})

    def test_prefix_tags_and_worker_changes(self):
        r = self.receiver()
        srv = self.serve('-w', '1', '--statsd-host', r.address, '--statsd-prefix', 'shop.web',
                         '--dogstatsd-tags', 'env:ci,team:web')
        srv.wait_workers(1)
        self.assertEqual(srv.get('/').status, 200)
        srv.send_signal(signal.SIGTTIN)
        srv.wait_workers(2)

        def seen(got):
            text = b'\n'.join(got)
            return b'gunicorn.requests:' in text and b'gunicorn.workers:2|g' in text
        got = lines(r.collect(seen))
        self.assertIn('shop.web.gunicorn.request.status.200:1|c|@1.0|#env:ci,team:web', got)
        self.assertIn('shop.web.gunicorn.requests:1|c|@1.0|#env:ci,team:web', got)
        gauges = [d for d in got if '.workers:' in d]
        self.assertEqual(gauges, ['shop.web.gunicorn.workers:1|g|#env:ci,team:web',
                                  'shop.web.gunicorn.workers:2|g|#env:ci,team:web'])
        for d in got:
            self.assertTrue(d.startswith('shop.web.gunicorn.'), d)
            self.assertTrue(d.endswith('|#env:ci,team:web'), d)

    def test_unix_socket(self):
        d = tempfile.mkdtemp(prefix='cunicorn-statsd-')
        self.addCleanup(shutil.rmtree, d, True)
        r = self.receiver(socket.AF_UNIX, os.path.join(d, 'statsd.sock'))
        srv = self.serve('--statsd-host', 'unix://' + r.address, '--statsd-prefix', 'u.')
        self.assertEqual(srv.get('/missing').status, 404)
        got = lines(r.collect(lambda got: 'u.gunicorn.request.status.404:1|c|@1.0' in lines(got)))
        self.assertIn('u.gunicorn.request.status.404:1|c|@1.0', got)
        self.assertIn('u.gunicorn.requests:1|c|@1.0', got)

    def test_backlog_histogram(self):
        if not os.path.exists('/proc/self'):
            self.skipTest('the backlog metric is measured on Linux only')
        r = self.receiver()
        srv = self.serve('--statsd-host', r.address, '--enable-backlog-metric', '--log-level', 'debug')
        got = r.collect(lambda got: sum(b'gunicorn.backlog:' in d for d in got) >= 2, quiet=0.1)
        backlog = [m for m in parse(got) if m['name'] == 'gunicorn.backlog']
        self.assertGreaterEqual(len(backlog), 2, got)  # each master loop
        self.assertTrue(all(m['type'] == 'h' and m['value'].isdigit() for m in backlog), backlog)
        self.assertTrue(server.wait_for(lambda: 'socket backlog: ' in srv.error_text(), 10))

    def test_unreachable_statsd_never_holds_a_request(self):
        # A closed UDP port (the kernel answers ECONNREFUSED), a unix path
        # nobody listens on, and a receiver that never reads, whose queue
        # fills after a few hundred datagrams (a blocking sender would
        # then wait forever).
        closed = Datagrams()
        port = closed.address
        closed.close()
        d = tempfile.mkdtemp(prefix='cunicorn-statsd-')
        self.addCleanup(shutil.rmtree, d, True)
        full = self.receiver(socket.AF_UNIX, os.path.join(d, 'full.sock'), rcvbuf=4096)
        for target in (port, 'unix://' + os.path.join(d, 'absent.sock'), 'unix://' + full.address):
            with self.subTest(target=target):
                srv = self.serve('--statsd-host', target)
                conn = srv.connect()
                try:
                    for i in range(400):
                        conn.send(server.build_request('GET', '/', close=False))
                        resp = conn.read_response('GET')
                        self.assertEqual(resp.status if resp else None, 200, 'request %d' % i)
                finally:
                    conn.close()
                srv.stop()
                self.assertEqual(srv.returncode, 0, server.tail(srv.log_text()))
                if target == port and not server.is_gunicorn():
                    # Said, but not for each of the hundreds of failures.
                    warnings = srv.log_text().count('Error sending message to statsd: Connection refused')
                    self.assertTrue(1 <= warnings < 20, server.tail(srv.log_text()))

    def test_bad_statsd_host_is_a_config_error(self):
        srv = Server(APP, ['--statsd-host', 'host:port'])
        srv.spawn()
        self.addCleanup(srv.stop)
        self.assertIsNotNone(srv.wait_exit(30), 'the server started')
        self.assertNotEqual(srv.returncode, 0)
        self.assertIn("Value must be one of ('host:port', 'unix://PATH')", srv.log_text())


if __name__ == '__main__':
    unittest.main()
