"""Load and resource tests: 1 GiB streamed uploads with bounded worker
memory, 10,000 keep-alive requests without fd growth, slow clients that do
not hold up others.

Outcomes are asserted, never speed: deadlines are generous, and the slow
client keeps trickling until the fast clients are done.
"""

import os
import random
import threading
import time
import unittest
import zlib

import server
from server import Server, build_request

APP = r'''
import json, os, zlib


def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/upload':
        inp = environ['wsgi.input']
        total = 0
        crc = 0
        while True:
            piece = inp.read(65536)
            if not piece:
                break
            total += len(piece)
            crc = zlib.crc32(piece, crc)
        body = json.dumps({'length': total, 'crc32': crc}).encode()
    elif path == '/pid':
        body = str(os.getpid()).encode()
    else:
        body = environ['wsgi.input'].read()
        body = json.dumps({'length': len(body), 'path': path}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''

GiB = 1 << 30
MiB = 1 << 20
# 1 GiB; a quarter of it under ASan, which is several times slower.
UPLOAD_SIZE = GiB // 4 if server.SANITIZED else GiB
RSS_LIMIT_KIB = 64 * 1024


class Upload(unittest.TestCase):
    """1 GiB request bodies, generated on the fly; the app reads wsgi.input
    in 64 KiB pieces. The worker's RSS may not grow by 64 MiB or more."""

    def setUp(self):
        self.srv = Server(APP, ['--workers', '1', '--timeout', '300'])
        self.srv.start()
        self.addCleanup(self.srv.stop)
        r = self.srv.request('POST', '/warmup', body=b'x' * (4 * MiB))
        self.assertEqual(r.status, 200)
        self.worker = self.srv.worker_pid()
        self.baseline = server.rss_kib(self.worker)

    def blocks(self, total):
        """1 MiB blocks of pseudo-random data, each one a rotation of a seed block."""
        rng = random.Random(1234)
        seed = bytes(rng.getrandbits(8) for _ in range(4096)) * 256
        sent = 0
        i = 0
        while sent < total:
            k = (i * 7919) % len(seed)
            block = seed[k:] + seed[:k]
            block = block[:min(len(block), total - sent)]
            sent += len(block)
            i += 1
            yield block

    def sample_rss(self, stop, peaks):
        while not stop.is_set():
            rss = server.rss_kib(self.worker)
            if rss is not None:
                peaks.append(rss)
            stop.wait(0.05)

    def upload(self, chunked):
        stop = threading.Event()
        peaks = []
        sampler = threading.Thread(target=self.sample_rss, args=(stop, peaks))
        sampler.start()
        conn = self.srv.connect(timeout=120)
        crc = 0
        try:
            if chunked:
                conn.send(build_request('POST', '/upload', close=True, headers=[
                    ('Transfer-Encoding', 'chunked')]))
            else:
                conn.send(build_request('POST', '/upload', close=True, headers=[
                    ('Content-Length', str(UPLOAD_SIZE))]))
            rng = random.Random(99)
            for block in self.blocks(UPLOAD_SIZE):
                crc = zlib.crc32(block, crc)
                if chunked:
                    # Chunks of varied sizes, not aligned with the app's reads.
                    pos = 0
                    while pos < len(block):
                        n = rng.randint(1, 300 * 1024)
                        piece = block[pos:pos + n]
                        pos += len(piece)
                        conn.send(b'%x\r\n' % len(piece))
                        conn.send(piece)
                        conn.send(b'\r\n')
                else:
                    conn.send(block)
            if chunked:
                conn.send(b'0\r\n\r\n')
            resp = conn.read_response()
        finally:
            conn.close()
            stop.set()
            sampler.join()
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json(), {'length': UPLOAD_SIZE, 'crc32': crc})
        if server.SANITIZED:
            return          # ASan's shadow memory and quarantine make RSS meaningless
        self.assertTrue(peaks, 'no RSS samples of the worker')
        growth = max(peaks) - self.baseline
        self.assertLess(growth, RSS_LIMIT_KIB, 'worker RSS grew by %d KiB (baseline %d KiB)'
                        % (growth, self.baseline))

    @server.timeout(600)
    def test_upload_1gib_content_length(self):
        self.upload(chunked=False)

    @server.timeout(600)
    def test_upload_1gib_chunked(self):
        self.upload(chunked=True)


class ManyRequests(unittest.TestCase):
    @server.timeout(300)
    def test_10000_keepalive_requests_no_fd_growth(self):
        srv = Server(APP, ['--workers', '1', '--keep-alive', '30'])
        srv.start()
        self.addCleanup(srv.stop)
        # Warm up (lazy imports, log files), then measure with no connection open.
        for _ in range(3):
            self.assertEqual(srv.get('/pid').status, 200)
        worker = srv.worker_pid()
        time.sleep(0.5)
        before = server.fd_count(worker)
        before_links = self.fd_links(worker)

        nconn = 4
        conns = [srv.connect() for _ in range(nconn)]
        opened = nconn
        try:
            for i in range(10000):
                k = i % nconn
                req = build_request('GET', '/n/%d' % i)
                conns[k].send(req)
                r = conns[k].read_response()
                if r is None:
                    # The server closed the connection: reconnect (counted).
                    conns[k].close()
                    conns[k] = srv.connect()
                    opened += 1
                    conns[k].send(req)
                    r = conns[k].read_response()
                self.assertIsNotNone(r, 'no response to request %d' % i)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()['path'], '/n/%d' % i)
        finally:
            for c in conns:
                c.close()
        self.assertEqual(srv.worker_pid(), worker, 'the worker was replaced')
        ok = server.wait_for(lambda: server.fd_count(worker) <= before, 15)
        self.assertTrue(ok, 'worker fds %d -> %d; new: %r' % (
            before, server.fd_count(worker), sorted(set(self.fd_links(worker)) - set(before_links))))
        self.assertEqual(opened, nconn, 'keep-alive connections were closed by the server '
                         '(%d connections for 10000 requests)' % opened)

    def fd_links(self, pid):
        out = []
        for fd in os.listdir('/proc/%d/fd' % pid):
            try:
                out.append(os.readlink('/proc/%d/fd/%s' % (pid, fd)))
            except OSError:
                pass
        return out


class SlowClient(unittest.TestCase):
    """A client sending one byte per 100 ms must not delay the others,
    even with a single worker."""

    BODY_LEN = 300

    def setUp(self):
        self.srv = Server(APP, ['--workers', '1', '--timeout', '120'])
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.assertEqual(self.srv.get('/pid').status, 200)

    def trickle(self, sent, fast_done, result):
        data = build_request('POST', '/slow', close=True, body=b's' * self.BODY_LEN)
        conn = self.srv.connect(timeout=120)
        try:
            pos = 0
            while pos < len(data) and not fast_done.is_set():
                conn.send(data[pos:pos + 1])
                pos += 1
                sent[0] = pos
                time.sleep(0.1)
            result['unfinished_when_fast_done'] = pos < len(data)
            conn.send(data[pos:])
            result['response'] = conn.read_response()
        except Exception as e:          # reported by the main thread
            result['error'] = repr(e)
        finally:
            conn.close()

    def run_case(self, start_after):
        sent = [0]
        fast_done = threading.Event()
        result = {}
        t = threading.Thread(target=self.trickle, args=(sent, fast_done, result))
        t.start()
        try:
            self.assertTrue(server.wait_for(lambda: sent[0] >= start_after, 60),
                            'slow client did not get going')
            for i in range(5):
                conn = self.srv.connect(timeout=20)
                try:
                    conn.send(build_request('GET', '/fast/%d' % i, close=True))
                    r = conn.read_response()
                finally:
                    conn.close()
                self.assertIsNotNone(r)
                self.assertEqual(r.json()['path'], '/fast/%d' % i)
        finally:
            fast_done.set()
            t.join(180)
        self.assertNotIn('error', result)
        self.assertTrue(result.get('unfinished_when_fast_done'),
                        'the slow request finished before the fast ones')
        r = result.get('response')
        self.assertIsNotNone(r, 'no response for the slow client')
        self.assertEqual(r.json(), {'length': self.BODY_LEN, 'path': '/slow'})

    @server.timeout(240)
    def test_slow_request_head_does_not_block_others(self):
        self.run_case(start_after=10)

    @server.timeout(240)
    def test_slow_request_body_does_not_block_others(self):
        head_len = len(build_request('POST', '/slow', close=True, body=b's' * self.BODY_LEN)) \
            - self.BODY_LEN
        self.run_case(start_after=head_len + 5)


if __name__ == '__main__':
    unittest.main()
