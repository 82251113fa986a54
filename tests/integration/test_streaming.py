"""Streaming responses are not held back (PEP 3333, "Buffering and
Streaming"): every non-empty block an application produces reaches the
socket before the server asks the application for the next one.

Each app produces a first block, waits, then the rest. The client measures
when the first body bytes arrive: long before the pause ends. The pause is
long (PAUSE) and the bound generous (a tenth of it, times the sanitizer
factor), so a busy machine cannot make the test fail; a server that holds
the blocks back delivers nothing before the pause is over.
"""

import os
import shutil
import socket
import ssl
import tempfile
import time
import unittest

import server
from test_tls import make_cert

PAUSE = 1.5
# The first block must arrive well inside the pause.
FIRST_BYTES_BY = PAUSE * 0.6

STREAM_APP = r'''
import subprocess
import time

PAUSE = %r


def generator(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '11')])
    yield b'first'
    time.sleep(PAUSE)
    yield b'second'


def chunked(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    yield b'one'
    time.sleep(PAUSE / 3)
    yield b''            # empty blocks are not sent (they would end the chunked body)
    yield b'two'
    time.sleep(PAUSE / 3)
    yield b'three'


def write_callable(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '11')])
    write(b'first')
    time.sleep(PAUSE)
    write(b'second')
    return []


def pipe_wrapper(environ, start_response):
    # A child writes the pipe: a shell, so that it runs on its own even
    # under gevent (a forked copy of this process would run its greenlets).
    child = subprocess.Popen(['sh', '-c', 'printf first; sleep %%s; printf second' %% PAUSE],
                             stdout=subprocess.PIPE, bufsize=0)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '11')])
    return environ['wsgi.file_wrapper'](child.stdout, 5)


def many_small(environ, start_response):
    # A list body is available at once: sent as one whole, with the head.
    body = [b'%%d,' %% i for i in range(1000)]
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(sum(map(len, body))))])
    return body


ROUTES = {'/gen': generator, '/chunked': chunked, '/write': write_callable,
          '/pipe': pipe_wrapper, '/list': many_small}


def app(environ, start_response):
    return ROUTES[environ['PATH_INFO']](environ, start_response)
''' % PAUSE


def timed_exchange(srv, path, wrap=None):
    """Sends GET path; returns [(seconds since the request, bytes), ...]
    for every recv() until the server closes. wrap: makes the socket a TLS one."""
    sock = socket.create_connection(srv.address, timeout=30 * server.SLOW)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if wrap:
        sock = wrap(sock)
    try:
        start = time.monotonic()
        sock.sendall(('GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' % path).encode())
        arrivals = []
        while True:
            data = sock.recv(65536)
            if not data:
                return arrivals
            arrivals.append((time.monotonic() - start, data))
    finally:
        sock.close()


def body_after(arrivals):
    """(seconds when the first body byte arrived, the whole body)."""
    raw = b''
    first_body_at = None
    for at, data in arrivals:
        raw += data
        if first_body_at is None and b'\r\n\r\n' in raw and not raw.endswith(b'\r\n\r\n'):
            first_body_at = at
    head, _, body = raw.partition(b'\r\n\r\n')
    return head, first_body_at, body


class Streaming(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = server.Server(STREAM_APP).start()
        cls.warm_up()

    @classmethod
    def warm_up(cls):
        # The listener accepts before a worker has booted: time only
        # requests that a booted worker serves.
        head, _, _ = body_after(timed_exchange(cls.srv, '/list', cls.wrap))
        assert head.startswith(b'HTTP/1.1 200'), head

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    wrap = None

    def assert_first_block_early(self, path, expected_body):
        arrivals = timed_exchange(self.srv, path, self.wrap)
        head, first_at, body = body_after(arrivals)
        self.assertTrue(head.startswith(b'HTTP/1.1 200'), head)
        self.assertEqual(body, expected_body)
        self.assertIsNotNone(first_at, arrivals)
        self.assertLess(first_at, FIRST_BYTES_BY * server.SLOW,
                        'first body bytes after %.2f s (the app paused %.1f s after them): %r'
                        % (first_at, PAUSE, arrivals))
        # And the rest came after the pause: the app really paused.
        self.assertGreaterEqual(arrivals[-1][0], PAUSE * 0.9)
        return arrivals

    @server.timeout(60)
    def test_generator_first_block_before_the_pause(self):
        self.assert_first_block_early('/gen', b'firstsecond')

    @server.timeout(60)
    def test_write_callable_first_block_before_the_pause(self):
        self.assert_first_block_early('/write', b'firstsecond')

    @server.timeout(60)
    def test_file_wrapper_over_a_pipe_first_block_before_the_pause(self):
        self.assert_first_block_early('/pipe', b'firstsecond')

    @server.timeout(60)
    def test_chunked_stream_shows_each_chunk_separately(self):
        arrivals = timed_exchange(self.srv, '/chunked', self.wrap)
        head, first_at, body = body_after(arrivals)
        self.assertIn(b'Transfer-Encoding: chunked', head)
        self.assertEqual(body, b'3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n')
        self.assertLess(first_at, (PAUSE / 3) * 0.8 * server.SLOW, arrivals)
        # Each chunk came in its own recv(), a pause apart: find the time
        # each chunk's size line was first seen.
        seen = b''
        when = {}
        for at, data in arrivals:
            seen += data
            for tag in (b'3\r\none', b'3\r\ntwo', b'5\r\nthree'):
                if tag in seen and tag not in when:
                    when[tag] = at
        self.assertEqual(len(when), 3, arrivals)
        self.assertLess(when[b'3\r\none'], when[b'3\r\ntwo'] - PAUSE / 3 * 0.5, arrivals)
        self.assertLess(when[b'3\r\ntwo'], when[b'5\r\nthree'] - PAUSE / 3 * 0.5, arrivals)

    def test_list_body_is_whole(self):
        head, _, body = body_after(timed_exchange(self.srv, '/list', self.wrap))
        self.assertTrue(head.startswith(b'HTTP/1.1 200'), head)
        self.assertEqual(body, b''.join(b'%d,' % i for i in range(1000)))


@unittest.skipUnless(shutil.which('openssl'), 'the openssl command makes the test certificates')
class StreamingTls(Streaming):
    """The same over TLS, whose sink encrypts before it writes."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='cunicorn-tls-')
        cert, key = make_cert(cls.dir, 'server')
        ctx = ssl.create_default_context(cafile=cert)
        cls.wrap = staticmethod(lambda sock: ctx.wrap_socket(sock, server_hostname='localhost'))
        cls.srv = server.Server(STREAM_APP, ['--certfile', cert, '--keyfile', key]).start()
        cls.warm_up()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.dir, True)


if __name__ == '__main__':
    unittest.main()
