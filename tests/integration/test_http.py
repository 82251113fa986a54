"""HTTP/1.x behaviour of the server: keep-alive, pipelining, request and
response framing, 100-continue, header hygiene, errors in the app.

Keep-alive and pipelining are cunicorn features: Gunicorn's sync worker
closes every connection, so those tests fail against it (use
--extra-args "-k gthread --threads 4" to check the keep-alive ones).
"""

import email.utils
import socket
import struct
import threading
import time
import unittest

import server
from server import Server, build_request, chunked

APP = r'''
import json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = [('Content-Type', 'text/plain')]


def query(environ):
    out = {}
    for part in environ.get('QUERY_STRING', '').split('&'):
        k, _, v = part.partition('=')
        if k:
            out[k] = v
    return out


class Closing:
    """An iterable whose close() leaves a line in a marker file."""

    def __init__(self, name, chunks, size):
        self.name = name
        self.chunks = chunks
        self.size = size
        self.sent = 0

    def __iter__(self):
        piece = b'x' * self.size
        for i in range(self.chunks):
            self.sent += 1
            yield piece

    def close(self):
        with open(os.path.join(HERE, 'close-' + self.name), 'a') as f:
            f.write('closed after %d of %d\n' % (self.sent, self.chunks))


def app(environ, start_response):
    path = environ['PATH_INFO']
    q = query(environ)
    if path == '/echo':
        body = environ['wsgi.input'].read()
        out = json.dumps({'method': environ['REQUEST_METHOD'], 'uri': environ['RAW_URI'],
                          'body': body.decode('latin-1'), 'length': len(body),
                          'protocol': environ['SERVER_PROTOCOL']}).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(out)))])
        return [out]
    if path.startswith('/path/'):
        body = path.encode('latin-1')
        start_response('200 OK', TEXT + [('Content-Length', str(len(body)))])
        return [body]
    if path == '/length':
        start_response('200 OK', TEXT + [('Content-Length', '6')])
        return [b'abc', b'def']
    if path == '/nolength':
        start_response('200 OK', TEXT)
        return [b'abc', b'', b'def']
    if path == '/status':
        code = q.get('code', '200')
        start_response(code + ' Whatever', TEXT + [('Content-Length', '17')])
        return [b'should not appear']
    if path == '/crlf':
        start_response('200 OK', TEXT + [('X-Bad', 'a\r\nX-Injected: yes')])
        return [b'body']
    if path == '/lf':
        start_response('200 OK', TEXT + [('X-Bad', 'a\nX-Injected: yes')])
        return [b'body']
    if path == '/hop':
        start_response('200 OK', TEXT + [
            ('Connection', 'x-app-connection'), ('Keep-Alive', 'timeout=99'),
            ('Proxy-Authenticate', 'Basic realm=app'), ('TE', 'trailers'),
            ('Trailers', 'X-App-Trailer'), ('Transfer-Encoding', 'x-app-coding'),
            ('Upgrade', 'x-app-proto'), ('Server', 'x-app-server'),
            ('Date', 'x-app-date'), ('X-Kept', 'yes'), ('Content-Length', '2')])
        return [b'ok']
    if path == '/boom':
        raise RuntimeError('boom-marker-early')
    if path == '/boom-late':
        def gen():
            yield b'partial'
            raise RuntimeError('boom-marker-late')
        start_response('200 OK', TEXT + [('Content-Length', '100')])
        return gen()
    if path == '/boom-late-chunked':
        def gen():
            yield b'partial'
            raise RuntimeError('boom-marker-late-chunked')
        start_response('200 OK', TEXT)
        return gen()
    if path == '/closing':
        start_response('200 OK', TEXT)
        return Closing(q['name'], int(q.get('chunks', '3')), int(q.get('size', '5')))
    if path == '/pid':
        body = str(os.getpid()).encode()
        start_response('200 OK', TEXT + [('Content-Length', str(len(body)))])
        return [body]
    if path == '/sleep':
        time.sleep(float(q.get('s', '1')))
        start_response('200 OK', TEXT + [('Content-Length', '5')])
        return [b'slept']
    start_response('404 Not Found', TEXT + [('Content-Length', '9')])
    return [b'not found']
'''

_shared = server.SharedServers()
tearDownModule = _shared.stop


def get_server(name='default', args=('--workers', '1')):
    return _shared.get(name, lambda: Server(APP, list(args)))


def head_and_rest(data):
    head, sep, rest = data.partition(b'\r\n\r\n')
    return head, rest


class KeepAlive(unittest.TestCase):
    def test_http11_default_keepalive(self):
        conn = get_server().connect()
        try:
            for i in range(3):
                conn.send(build_request('GET', '/path/%d' % i))
                r = conn.read_response()
                self.assertIsNotNone(r, 'connection closed after %d requests' % i)
                self.assertEqual(r.body, b'/path/%d' % i)
                self.assertFalse(r.has_token('Connection', 'close'), r)
        finally:
            conn.close()

    def test_http10_keepalive_header(self):
        conn = get_server().connect()
        try:
            for i in range(2):
                conn.send(build_request('GET', '/path/%d' % i, version='HTTP/1.0',
                                        headers=[('Connection', 'keep-alive')]))
                r = conn.read_response()
                self.assertIsNotNone(r, 'connection closed after %d requests' % i)
                self.assertEqual(r.body, b'/path/%d' % i)
                self.assertTrue(r.has_token('Connection', 'keep-alive'), r)
        finally:
            conn.close()

    def test_http10_closes_by_default(self):
        conn = get_server().connect()
        try:
            conn.send(build_request('GET', '/path/x', version='HTTP/1.0', host=False))
            r = conn.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(conn.wait_closed(10), 'HTTP/1.0 connection left open')
        finally:
            conn.close()

    def test_connection_close_honoured(self):
        conn = get_server().connect()
        try:
            conn.send(build_request('GET', '/path/x', close=True))
            r = conn.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.has_token('Connection', 'close'), r)
            self.assertTrue(conn.wait_closed(10), 'connection left open after Connection: close')
        finally:
            conn.close()

    def test_idle_timeout_closes(self):
        srv = get_server('ka2', ('--workers', '1', '--keep-alive', '2'))
        conn = srv.connect()
        try:
            conn.send(build_request('GET', '/path/1'))
            r = conn.read_response()
            self.assertEqual(r.status, 200)
            self.assertFalse(r.has_token('Connection', 'close'), r)
            t0 = time.monotonic()
            self.assertTrue(conn.wait_closed(30), 'idle connection still open after 30 s '
                            'with --keep-alive 2')
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 1.0, 'closed after %.2f s, before the '
                                    '2 s keep-alive timeout' % elapsed)
            self.assertEqual(conn.buf, b'', 'unexpected bytes before close')
        finally:
            conn.close()

    def test_pipelined_in_order(self):
        conn = get_server().connect()
        try:
            conn.send(b''.join(build_request('GET', '/path/%d' % i) for i in range(5)))
            for i in range(5):
                r = conn.read_response()
                self.assertIsNotNone(r, 'only %d of 5 pipelined requests answered' % i)
                self.assertEqual(r.body, b'/path/%d' % i)
        finally:
            conn.close()

    def test_pipelined_with_bodies(self):
        conn = get_server().connect()
        try:
            reqs = [build_request('POST', '/echo', body=b'first'),
                    build_request('POST', '/echo', body=chunked([b'sec', b'ond']),
                                  headers=[('Transfer-Encoding', 'chunked')]),
                    build_request('GET', '/echo'),
                    build_request('POST', '/echo', body=b'last', close=True)]
            conn.send(b''.join(reqs))
            bodies = []
            for i in range(4):
                r = conn.read_response()
                self.assertIsNotNone(r, 'only %d of 4 pipelined requests answered' % i)
                bodies.append(r.json()['body'])
            self.assertEqual(bodies, ['first', 'second', '', 'last'])
            self.assertTrue(conn.wait_closed(10))
        finally:
            conn.close()

    def test_pipelined_head_then_get(self):
        conn = get_server().connect()
        try:
            conn.send(build_request('HEAD', '/length') + build_request('GET', '/path/after'))
            r1 = conn.read_response('HEAD')
            self.assertEqual((r1.status, r1.header('Content-Length')), (200, '6'))
            r2 = conn.read_response()
            self.assertIsNotNone(r2, 'second request not answered')
            self.assertEqual(r2.body, b'/path/after')
        finally:
            conn.close()


class ClosingConnections(unittest.TestCase):
    """After the last response the server reads and discards what the
    client still sends before closing (an unread byte would make the
    kernel reset the connection and could destroy the response in flight),
    except when the client asked to close and left nothing unread."""

    def test_unread_input_does_not_destroy_the_response(self):
        body = b'b' * (256 * 1024)
        conn = get_server().connect()
        try:
            # More bytes than the request: the server must not close on them.
            conn.send(build_request('POST', '/echo', body=body, close=True) + b'z' * (128 * 1024))
            r = conn.read_response('POST')
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()['length'], len(body))
            self.assertTrue(conn.wait_closed(10))
        finally:
            conn.close()

    @unittest.skipIf(server.is_gunicorn(), 'Gunicorn always lingers')
    def test_a_client_that_asked_to_close_is_closed_at_once(self):
        conn = get_server().connect()
        try:
            conn.send(build_request('GET', '/path/x', close=True))
            self.assertEqual(conn.read_response().status, 200)
            self.assertTrue(conn.wait_closed(10))
            # The socket is closed, not lingering: bytes sent now are
            # answered with a reset (a lingering server would swallow them).
            def reset():
                try:
                    conn.sock.sendall(b'x')
                    conn.sock.recv(1)  # b'' (the FIN) until the reset arrives
                except (ConnectionResetError, BrokenPipeError):
                    return True
                return False
            # Within 1.5 s, unscaled even for sanitizer builds: a lingering
            # server would swallow bytes for 2 s; this one closed already.
            self.assertTrue(server.wait_for(reset, 1.5 / server.SLOW, interval=0.1))
        finally:
            conn.close()


SLOW_APP = r'''
import time

def app(environ, start_response):
    time.sleep(0.02)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
'''


class KeepAliveFairness(unittest.TestCase):
    """Clients waiting to connect are not starved by the keep-alive ones a
    worker already holds (a slow app, one worker)."""

    def test_queued_clients_are_served_in_turn(self):
        srv = Server(SLOW_APP, ['-w', '1', '--keep-alive', '30'])
        srv.start()
        self.addCleanup(srv.stop)
        stop = threading.Event()
        lock = threading.Lock()
        held_done = []          # completion times of the held clients' requests
        errors = []

        def held_client():
            conn = None
            try:
                while not stop.is_set():
                    if conn is None:
                        conn = srv.connect(30)
                    conn.send(build_request('GET', '/held'))
                    r = conn.read_response()
                    with lock:
                        held_done.append(time.monotonic())
                    if r is None or r.has_token('Connection', 'close'):
                        conn.close()  # told to queue again: reconnect
                        conn = None
            except Exception as e:  # reported below
                errors.append(e)
            finally:
                if conn is not None:
                    conn.close()

        held = [threading.Thread(target=held_client) for _ in range(8)]
        for t in held:
            t.start()
        self.addCleanup(lambda: [t.join(60) for t in held])
        self.addCleanup(stop.set)
        self.assertTrue(server.wait_for(lambda: len(held_done) >= 24, 60))

        new_done = []

        def new_client():
            try:
                r = srv.request('GET', '/new', timeout=60)
                new_done.append((r.status, time.monotonic()))
            except Exception as e:
                errors.append(e)

        start = time.monotonic()
        newcomers = [threading.Thread(target=new_client) for _ in range(8)]
        for t in newcomers:
            t.start()
        for t in newcomers:
            t.join(120)
        stop.set()
        self.assertEqual(errors, [])
        self.assertEqual(sorted(st for st, _ in new_done), [200] * 8)
        end = max(t for _, t in new_done)
        with lock:
            during = sum(1 for t in held_done if start <= t <= end)
        # Served in arrival order, each held client gets a turn or two while
        # the 8 newcomers are served; with one accept per loop turn and
        # every held connection served each turn, they would get 8 each (64).
        self.assertLess(during, 32, 'held clients served %d times while 8 newcomers waited' % during)


class RequestBodies(unittest.TestCase):
    def test_chunked_request_body(self):
        srv = get_server()
        body = chunked([b'hello ', b'chunked', b' world'], trailers=[('X-Trailer', 'v')])
        # A chunk extension as well.
        body = body.replace(b'6\r\nhello ', b'6;name="v"\r\nhello ', 1)
        r = srv.request('POST', '/echo', body=body, headers=[('Transfer-Encoding', 'chunked')])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()['body'], 'hello chunked world')

    def test_chunked_body_segmented(self):
        srv = get_server()
        data = build_request('POST', '/echo', body=chunked([b'a' * 100, b'b' * 3000]),
                             headers=[('Transfer-Encoding', 'chunked')], close=True)
        conn = srv.connect()
        try:
            import random
            conn.send_segmented(data, random.Random(7))
            r = conn.read_response()
            self.assertEqual(r.json()['length'], 3100)
        finally:
            conn.close()

    def test_expect_100_continue(self):
        srv = get_server()
        conn = srv.connect()
        try:
            conn.send(build_request('POST', '/echo', headers=[
                ('Content-Length', '10'), ('Expect', '100-continue')]))
            interim = conn.read_response(interim=True)
            self.assertIsNotNone(interim, 'closed instead of 100 Continue')
            self.assertEqual((interim.version, interim.status), ('HTTP/1.1', 100))
            self.assertEqual(interim.raw, b'HTTP/1.1 100 Continue\r\n\r\n')
            conn.send(b'0123456789')
            r = conn.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()['body'], '0123456789')
        finally:
            conn.close()

    def test_expect_100_ignored_on_http10(self):
        srv = get_server()
        conn = srv.connect()
        try:
            conn.send(build_request('POST', '/echo', version='HTTP/1.0', body=b'abc',
                                    headers=[('Expect', '100-continue')]))
            r = conn.read_response()
            self.assertEqual(r.interim, [], 'interim response to an HTTP/1.0 request')
            self.assertEqual(r.json()['body'], 'abc')
        finally:
            conn.close()


class ResponseFraming(unittest.TestCase):
    def raw(self, method, path, version='HTTP/1.1'):
        conn = get_server().connect()
        try:
            conn.send(build_request(method, path, version=version, close=True))
            return conn.read_until_close()
        finally:
            conn.close()

    def test_content_length_from_app(self):
        r = get_server().request('GET', '/length')
        self.assertEqual(r.header('Content-Length'), '6')
        self.assertIsNone(r.header('Transfer-Encoding'))
        self.assertEqual(r.body, b'abcdef')

    def test_chunked_without_length_http11(self):
        r = get_server().request('GET', '/nolength')
        self.assertEqual(r.header_all('Transfer-Encoding'), ['chunked'])
        self.assertIsNone(r.header('Content-Length'))
        self.assertTrue(r.complete)
        self.assertEqual(r.body, b'abcdef')

    def test_close_delimited_http10(self):
        conn = get_server().connect()
        try:
            conn.send(build_request('GET', '/nolength', version='HTTP/1.0'))
            r = conn.read_response()
            self.assertEqual(r.version, server.http10_response_version())
            self.assertIsNone(r.header('Transfer-Encoding'))
            self.assertEqual(r.framing, 'close')
            self.assertEqual(r.body, b'abcdef')
        finally:
            conn.close()

    def test_head_has_no_body(self):
        data = self.raw('HEAD', '/length')
        head, rest = head_and_rest(data)
        self.assertTrue(head.startswith(b'HTTP/1.1 200 '), data)
        self.assertEqual(rest, b'')

    def test_204_has_no_body(self):
        data = self.raw('GET', '/status?code=204')
        head, rest = head_and_rest(data)
        self.assertTrue(head.startswith(b'HTTP/1.1 204 '), data)
        self.assertEqual(rest, b'')
        self.assertNotIn(b'transfer-encoding', head.lower())

    def test_304_has_no_body(self):
        data = self.raw('GET', '/status?code=304')
        head, rest = head_and_rest(data)
        self.assertTrue(head.startswith(b'HTTP/1.1 304 '), data)
        self.assertEqual(rest, b'')
        self.assertNotIn(b'transfer-encoding', head.lower())

    def test_status_line_version(self):
        # RFC 9110 2.5: the server's own version (Gunicorn echoes the
        # request's); test_rfc9112.StatusLine has the other versions.
        r = get_server().request('GET', '/length', version='HTTP/1.0')
        self.assertEqual(r.version, server.http10_response_version())
        r = get_server().request('GET', '/length')
        self.assertEqual(r.version, 'HTTP/1.1')

    def test_date_and_server_headers(self):
        r = get_server().request('GET', '/length')
        self.assertEqual(len(r.header_all('Date')), 1, r)
        self.assertEqual(len(r.header_all('Server')), 1, r)
        self.assertTrue(r.header('Server'))
        when = email.utils.parsedate_to_datetime(r.header('Date'))
        self.assertLess(abs(time.time() - when.timestamp()), 3600)
        self.assertTrue(r.header('Date').endswith(' GMT'), r.header('Date'))

    def test_header_crlf_injection_is_500(self):
        for path in ('/crlf', '/lf'):
            r = get_server().request('GET', path)
            self.assertEqual(r.status, 500, r)
            self.assertNotIn(b'X-Injected', r.raw)
            self.assertNotIn(b'x-injected', r.raw.lower())

    def test_hop_by_hop_headers_dropped(self):
        r = get_server().request('GET', '/hop')
        self.assertEqual((r.status, r.body), (200, b'ok'))
        self.assertEqual(r.header('X-Kept'), 'yes')
        raw = r.raw.lower()
        for token in (b'x-app-connection', b'timeout=99', b'realm=app', b'x-app-trailer',
                      b'x-app-coding', b'x-app-proto', b'x-app-server', b'x-app-date'):
            self.assertNotIn(token, raw)
        self.assertIsNone(r.header('TE'))
        self.assertIsNone(r.header('Upgrade'))
        self.assertIsNone(r.header('Keep-Alive'))
        self.assertEqual(len(r.header_all('Date')), 1)
        self.assertEqual(len(r.header_all('Server')), 1)


class AppErrors(unittest.TestCase):
    def test_exception_gives_500_and_traceback(self):
        srv = get_server()
        pid = srv.get('/pid').body
        r = srv.request('GET', '/boom')
        self.assertEqual(r.status, 500)
        self.assertEqual(r.header('Content-Length'), str(len(r.body)))
        ok = server.wait_for(lambda: 'boom-marker-early' in srv.error_text(), 10)
        self.assertTrue(ok, 'no traceback in the error log')
        self.assertIn('Traceback', srv.error_text())
        # The same worker keeps serving.
        self.assertEqual(srv.get('/pid').body, pid)

    def test_exception_after_headers_closes(self):
        srv = get_server()
        conn = srv.connect()
        try:
            conn.send(build_request('GET', '/boom-late'))
            r = conn.read_response()
            self.assertEqual(r.status, 200)
            self.assertFalse(r.complete, 'a complete body after the app failed: %r' % r)
            self.assertTrue(r.body.startswith(b'partial'))
            self.assertTrue(conn.eof)
        finally:
            conn.close()
        server.wait_for(lambda: 'boom-marker-late' in srv.error_text(), 10)
        self.assertIn('boom-marker-late', srv.error_text())

    def test_exception_after_headers_chunked_closes(self):
        srv = get_server()
        conn = srv.connect()
        try:
            conn.send(build_request('GET', '/boom-late-chunked'))
            r = conn.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.chunked)
            self.assertFalse(r.complete, 'terminating chunk sent after the app failed')
            self.assertEqual(r.body, b'partial')
        finally:
            conn.close()

    def test_not_found_route(self):
        r = get_server().request('GET', '/nowhere')
        self.assertEqual((r.status, r.body), (404, b'not found'))


class IterableClose(unittest.TestCase):
    def marker(self, srv, name):
        try:
            with open(srv.path('close-' + name)) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def test_close_called_once(self):
        srv = get_server()
        name = 'once-%d' % time.monotonic_ns()
        r = srv.request('GET', '/closing?name=%s&chunks=3&size=5' % name)
        self.assertEqual(r.body, b'x' * 15)
        self.assertTrue(server.wait_for(lambda: self.marker(srv, name), 10), 'close() not called')
        srv.get('/pid')            # a later request: no second close()
        self.assertEqual(self.marker(srv, name), ['closed after 3 of 3'])

    def test_close_called_on_keepalive_connection(self):
        srv = get_server()
        name = 'ka-%d' % time.monotonic_ns()
        conn = srv.connect()
        try:
            conn.send(build_request('GET', '/closing?name=%s&chunks=2&size=3' % name))
            r = conn.read_response()
            self.assertEqual(r.body, b'x' * 6)
            self.assertTrue(server.wait_for(lambda: self.marker(srv, name), 10),
                            'close() not called while the connection stays open')
        finally:
            conn.close()
        srv.get('/pid')
        self.assertEqual(len(self.marker(srv, name)), 1)

    def test_close_called_when_client_disconnects(self):
        srv = get_server()
        name = 'gone-%d' % time.monotonic_ns()
        chunks = 4096                      # 256 MiB in 64 KiB pieces
        conn = srv.connect()
        try:
            conn.send(build_request('GET', '/closing?name=%s&chunks=%d&size=65536'
                                    % (name, chunks)))
            self.assertIsNotNone(conn.read_head())
            conn.read_exact(100000)
            # Reset the connection so the server's next write fails.
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        finally:
            conn.close()
        self.assertTrue(server.wait_for(lambda: self.marker(srv, name), 60),
                        'close() not called after the client went away')
        srv.get('/pid')
        lines = self.marker(srv, name)
        self.assertEqual(len(lines), 1, lines)
        sent = int(lines[0].split()[2])
        self.assertLess(sent, chunks, 'the app was iterated to the end for a gone client')


if __name__ == '__main__':
    unittest.main()
