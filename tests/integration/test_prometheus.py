"""The Prometheus endpoint (--prometheus-bind; cunicorn's own): the
master serves the figures StatsD sends and the control socket shows, in
Prometheus's text format, at http://ADDRESS/metrics."""

import math
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

import server
from server import Server

from test_statsd import APP  # 200, 404, 418, and 500 with a logged exception

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^(?P<name>%s)(?:\{(?P<labels>%s(?:,%s)*)?\})? (?P<value>\S+)$' % (NAME, LABEL, LABEL))
HELP = re.compile(r'^# HELP (?P<name>%s) (?P<text>.*)$' % NAME)
TYPE = re.compile(r'^# TYPE (?P<name>%s) (?P<type>counter|gauge|histogram|summary|untyped)$' % NAME)
SUFFIXES = {'histogram': ('_bucket', '_sum', '_count'), 'summary': ('_sum', '_count', '')}


def parse_value(text):
    if text in ('+Inf', '-Inf', 'NaN'):
        return float(text.replace('Inf', 'inf').replace('NaN', 'nan'))
    if not re.match(r'^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$', text):
        raise AssertionError('not a sample value: %r' % text)
    return float(text)


def parse_exposition(text):
    """A strict reading of the text format (0.0.4): every line a HELP, a
    TYPE or a sample; a family's HELP and TYPE once each, before its
    samples, its samples together; the text ends with a newline.
    Returns ({(name, ((label, value), ...)): value}, {family: type})."""
    if not text.endswith('\n'):
        raise AssertionError('the text does not end with a newline')
    samples, types, done = {}, {}, set()
    current = None
    for line in text[:-1].split('\n'):
        m = HELP.match(line) or TYPE.match(line)
        if m:
            name = m.group('name')
            if name in done or (name != current and current is not None and name in types):
                raise AssertionError('family %s declared again: %r' % (name, line))
            if current is not None and current != name:
                done.add(current)
            current = name
            if line.startswith('# TYPE'):
                if name in types:
                    raise AssertionError('second TYPE for %s' % name)
                types[name] = m.group('type')
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError('not a sample line: %r' % line)
        name = m.group('name')
        family = None
        for fam, typ in types.items():
            if name == fam or any(name == fam + s for s in SUFFIXES.get(typ, ())):
                family = fam
        if family is None or family != current:
            raise AssertionError('sample %s outside its family (TYPE first): %r' % (name, line))
        labels = tuple(sorted(tuple(kv.split('=', 1)) for kv in re.findall(LABEL, m.group('labels') or '')))
        labels = tuple((k, v[1:-1]) for k, v in labels)
        key = (name, labels)
        if key in samples:
            raise AssertionError('sample repeated: %r' % line)
        samples[key] = parse_value(m.group('value'))
    for fam, typ in types.items():
        if typ != 'histogram':
            continue
        buckets = sorted(((float(dict(l)['le'].replace('+Inf', 'inf')), v) for (n, l), v in samples.items()
                          if n == fam + '_bucket'))
        counts = [v for _, v in buckets]
        if counts != sorted(counts) or not buckets or buckets[-1][0] != math.inf:
            raise AssertionError('%s buckets are not cumulative up to +Inf: %r' % (fam, buckets))
        if samples[(fam + '_count', ())] != counts[-1]:
            raise AssertionError('%s_count is not the +Inf bucket' % fam)
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def http(address, raw, timeout=30):
    """Sends raw bytes, reads until the server closes; (status, headers, body)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout * server.SLOW)
        s.connect(address)
        s.sendall(raw)
        data = server.read_until_closed(s)
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split(' ')[1]) if lines[0].startswith('HTTP/1.1 ') else None
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def scrape(address):
    status, headers, body = http(address, b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
    if status != 200:
        raise AssertionError('scrape answered %r' % status)
    if headers.get('content-type') != 'text/plain; version=0.0.4; charset=utf-8':
        raise AssertionError('content type %r' % headers.get('content-type'))
    if int(headers['content-length']) != len(body) or headers.get('connection') != 'close':
        raise AssertionError('framing: %r for %d bytes' % (headers, len(body)))
    return parse_exposition(body.decode('utf-8'))[0]


@unittest.skipIf(server.is_gunicorn(), 'the Prometheus endpoint is cunicorn\'s own')
class Prometheus(unittest.TestCase):
    def serve(self, *args, bind=None):
        self.port = server.free_port()
        self.metrics = bind or ('127.0.0.1', self.port)
        where = bind and 'unix:' + bind or '127.0.0.1:%d' % self.port
        srv = Server(APP, ['--prometheus-bind', where] + list(args))
        srv.start()
        self.addCleanup(srv.stop)
        self.assertTrue(server.wait_for(lambda: 'Prometheus metrics at' in srv.error_text(), 30),
                        server.tail(srv.log_text()))
        return srv

    def wait_requests(self, n):
        """The requests are counted once answered: wait until all are."""
        server.wait_for(lambda: value(scrape(self.metrics), 'gunicorn_requests_total') >= n, 30)
        return scrape(self.metrics)

    def test_counts_add_up(self):
        srv = self.serve('-w', '2')
        srv.wait_workers(2)
        paths = ['/'] * 5 + ['/missing'] * 3 + ['/teapot'] * 2 + ['/boom'] * 2
        self.assertEqual([srv.get(p).status for p in paths], [200] * 5 + [404] * 3 + [418] * 2 + [500] * 2)
        m = self.wait_requests(len(paths))
        self.assertEqual(value(m, 'gunicorn_requests_total'), len(paths))
        codes = {dict(l)['code']: v for (n, l), v in m.items() if n == 'gunicorn_request_status_total'}
        self.assertEqual(codes, {'200': 5, '404': 3, '418': 2, '500': 2})
        self.assertEqual(value(m, 'gunicorn_request_duration_seconds_count'), len(paths))
        self.assertEqual(value(m, 'gunicorn_request_duration_seconds_bucket', le='+Inf'), len(paths))
        self.assertGreater(value(m, 'gunicorn_request_duration_seconds_sum'), 0)
        self.assertEqual(value(m, 'gunicorn_log_messages_total', level='exception'), 2)
        self.assertEqual(value(m, 'gunicorn_log_messages_total', level='error'), 0)
        self.assertEqual(value(m, 'gunicorn_workers'), 2)
        self.assertEqual(value(m, 'gunicorn_workers_target'), 2)
        per_worker = {dict(l)['pid']: v for (n, l), v in m.items() if n == 'gunicorn_worker_requests_total'}
        self.assertEqual(sorted(int(p) for p in per_worker), sorted(server.children(srv.pid)))
        self.assertEqual(sum(per_worker.values()), len(paths))
        rss = {dict(l)['pid']: v for (n, l), v in m.items() if n == 'gunicorn_worker_resident_memory_bytes'}
        self.assertEqual(set(rss), set(per_worker))
        self.assertTrue(all(v > 0 for v in rss.values()), rss)
        self.assertEqual(value(m, 'gunicorn_backlog'), 0)
        self.assertAlmostEqual(value(m, 'process_start_time_seconds'), time.time(), delta=600)

    def test_workers_come_and_go_counters_stay(self):
        srv = self.serve('-w', '1')
        first = srv.worker_pid()
        for _ in range(3):
            self.assertEqual(srv.get('/missing').status, 404)
        self.wait_requests(3)
        srv.send_signal(signal.SIGTTIN)
        srv.wait_workers(2)
        server.wait_for(lambda: value(scrape(self.metrics), 'gunicorn_workers') == 2, 30)
        m = scrape(self.metrics)
        self.assertEqual(value(m, 'gunicorn_workers'), 2)
        self.assertEqual(value(m, 'gunicorn_workers_target'), 2)
        self.assertEqual(value(m, 'gunicorn_workers_spawned_total'), 2)
        # The first worker goes (once the master has reaped it, it is no
        # longer listed); what it counted stays in the totals.
        os.kill(first, signal.SIGTERM)

        def replaced():
            m = scrape(self.metrics)
            pids = set(dict(l).get('pid') for (n, l) in m) - {None}
            return str(first) not in pids and len(pids) == 2
        self.assertTrue(server.wait_for(replaced, 30), server.tail(srv.log_text()))
        m = scrape(self.metrics)
        self.assertEqual(value(m, 'gunicorn_requests_total'), 3)
        self.assertEqual(value(m, 'gunicorn_request_status_total', code='404'), 3)
        self.assertEqual(value(m, 'gunicorn_request_duration_seconds_count'), 3)
        self.assertEqual(value(m, 'gunicorn_workers_spawned_total'), 3)

    def test_off_by_default(self):
        srv = Server(APP, ['--no-control-socket'])
        srv.start()
        self.addCleanup(srv.stop)
        srv.wait_workers(1)
        mine = server.socket_inodes(srv.pid)
        listening = set()
        for table in ('/proc/net/tcp', '/proc/net/tcp6'):
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == '0A' and int(fields[9]) in mine:
                        listening.add(int(fields[1].rsplit(':', 1)[1], 16))
        self.assertEqual(listening, {srv.port})  # the bind, nothing else
        self.assertNotIn('Prometheus', srv.error_text())

    def test_http_answers(self):
        srv = self.serve()
        status, headers, body = http(self.metrics, b'GET /metrics?x=1 HTTP/1.0\n\n')  # bare LFs
        self.assertEqual(status, 200)
        parse_exposition(body.decode())
        status, headers, body = http(self.metrics, b'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual((status, body), (200, b''))
        self.assertGreater(int(headers['content-length']), 100)
        status, headers, _ = http(self.metrics, b'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n')
        self.assertEqual((status, headers.get('allow')), (405, 'GET, HEAD'))
        for path in (b'/', b'/metrics/', b'/other'):
            self.assertEqual(http(self.metrics, b'GET ' + path + b' HTTP/1.1\r\n\r\n')[0], 404, path)
        for bad in (b'GET /metrics\r\n\r\n', b'GET  /metrics HTTP/1.1\r\n\r\n', b'get /metrics HTTP/1.1\r\n\r\n',
                    b'GET metrics HTTP/1.1\r\n\r\n', b'GET /metrics HTTP/2.0\r\n\r\n', b'\x00\xff\r\n\r\n'):
            self.assertEqual(http(self.metrics, bad)[0], 400, bad)
        # A head that never ends: answered 431 at 8 KiB, not buffered on.
        status, _, _ = http(self.metrics, b'GET /metrics HTTP/1.1\r\nX: ' + b'a' * 20000)
        self.assertEqual(status, 431)
        # Cut short.
        with socket.create_connection(self.metrics, timeout=30) as s:
            s.sendall(b'GET /metr')
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(server.read_until_closed(s).startswith(b'HTTP/1.1 400 '))
        self.assertEqual(srv.get('/').status, 200)

    def test_slow_and_many_clients_do_not_stall_the_master(self):
        srv = self.serve('-w', '1')
        old = srv.worker_pid()
        # More idle clients than the endpoint takes at once, and one that
        # trickles: the master goes on, and drops them after its deadline.
        idle = []
        for _ in range(40):
            s = socket.create_connection(self.metrics, timeout=60)
            self.addCleanup(s.close)
            idle.append(s)
        slow = idle[0]
        slow.sendall(b'GET /metrics HTTP/1.1\r\n')
        self.assertEqual(srv.get('/').status, 200)
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(server.wait_for(lambda: server.children(srv.pid) and old not in server.children(srv.pid), 60),
                        server.tail(srv.log_text()))
        self.assertEqual(srv.get('/').status, 200)
        for _ in range(3):
            try:
                slow.sendall(b'X: y\r\n')
            except OSError:
                break
            time.sleep(1)
        # Closed within the deadline (10 s from its connection), unanswered.
        started = time.monotonic()
        self.assertEqual(server.read_until_closed(slow), b'')
        self.assertLess(time.monotonic() - started, 60)
        # The others went too, and a scrape is answered.
        m = scrape(self.metrics)
        self.assertEqual(value(m, 'gunicorn_reloads_total'), 1)
        self.assertEqual(value(m, 'gunicorn_requests_total'), 2)

    def test_unix_socket(self):
        d = tempfile.mkdtemp(prefix='cunicorn-prom-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'metrics.sock')
        srv = self.serve(bind=path)
        self.assertEqual(srv.get('/teapot').status, 418)
        m = self.wait_requests(1)
        self.assertEqual(value(m, 'gunicorn_request_status_total', code='418'), 1)
        srv.stop()
        self.assertFalse(os.path.exists(path))

    def test_bad_address_is_a_config_error(self):
        for bad, why in (('host:port', "'port' is not a valid port number."),
                         ('fd://3', 'not a file descriptor')):
            with self.subTest(bad=bad):
                srv = Server(APP, ['--prometheus-bind', bad])
                srv.spawn()
                self.addCleanup(srv.stop)
                self.assertIsNotNone(srv.wait_exit(30), 'the server started')
                self.assertNotEqual(srv.returncode, 0)
                self.assertIn('prometheus_bind', srv.log_text())
                self.assertIn(why, srv.log_text())


if __name__ == '__main__':
    unittest.main()
