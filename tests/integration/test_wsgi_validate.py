"""PEP 3333 compliance, checked by wsgiref.validate around the app.

The validator raises AssertionError (-> a 500 and a traceback in the error
log) and emits WSGIWarning (written to stderr as "VALIDATOR WARNING") when
the server breaks the spec; every test checks its response and that the
server's output gained none of those.
"""

import hashlib
import unittest

import server
from server import Server, build_request, chunked

APP = r'''
import hashlib, json, os, sys, tempfile, warnings
from wsgiref.validate import validator, WSGIWarning


def _showwarning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write('VALIDATOR WARNING: %s: %s\n' % (category.__name__, message))
    sys.stderr.flush()


warnings.showwarning = _showwarning
warnings.simplefilter('always', WSGIWarning)

TEXT = [('Content-Type', 'text/plain')]
FILE_DATA = bytes(range(256)) * 300 + b'tail'
FILE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data.bin')
with open(FILE_PATH, 'wb') as f:
    f.write(FILE_DATA)


def as_json(start_response, obj, status='200 OK'):
    body = json.dumps(obj).encode('utf-8')
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(body)))])
    return [body]


def environ_json(environ):
    out = {}
    for k, v in environ.items():
        if isinstance(v, (str, bool, int)) or v is None:
            out[k] = v
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = 'object'
    return out


def query_int(environ, name, default):
    for part in environ.get('QUERY_STRING', '').split('&'):
        k, _, v = part.partition('=')
        if k == name:
            return int(v)
    return default


def pattern(n):
    block = hashlib.sha256(b'cunicorn').digest() * 2048          # 64 KiB
    while n > 0:
        piece = block[:min(n, len(block))]
        n -= len(piece)
        yield piece


def summary(body, **extra):
    d = {'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()}
    d.update(extra)
    return d


def inner(environ, start_response):
    path = environ['PATH_INFO']
    inp = environ['wsgi.input']
    if path == '/hello':
        body = b'hello world'
        start_response('200 OK', TEXT + [('Content-Length', str(len(body)))])
        return [body]
    if path == '/environ' or path.startswith('/path/') or path == '/foo':
        return as_json(start_response, environ_json(environ))
    if path == '/read-n':
        n = query_int(environ, 'n', 7)
        parts = []
        while True:
            piece = inp.read(n)
            if not piece:
                break
            assert len(piece) <= n, 'read(%d) returned %d bytes' % (n, len(piece))
            parts.append(piece)
        assert inp.read(n) == b''
        return as_json(start_response, summary(b''.join(parts), reads=len(parts)))
    if path == '/readline':
        lines = []
        while True:
            line = inp.readline()
            if not line:
                break
            lines.append(line.decode('latin-1'))
        return as_json(start_response, {'lines': lines})
    if path == '/readline-n':
        lines = []
        while True:
            line = inp.readline(5)
            if not line:
                break
            assert len(line) <= 5
            lines.append(line.decode('latin-1'))
        return as_json(start_response, {'lines': lines})
    if path == '/readlines':
        return as_json(start_response, {'lines': [l.decode('latin-1') for l in inp.readlines()]})
    if path == '/iter':
        return as_json(start_response, {'lines': [l.decode('latin-1') for l in inp]})
    if path == '/write':
        write = start_response('200 OK', TEXT)
        write(b'one,')
        write(b'two,')
        return [b'three']
    if path == '/late':
        def gen():
            start_response('200 OK', TEXT)
            yield b'late '
            yield b'start'
        return gen()
    if path == '/exc-info':
        start_response('200 OK', TEXT)
        try:
            raise ValueError('handled on purpose')
        except ValueError:
            start_response('500 Internal Server Error', TEXT, sys.exc_info())
        return [b'error page']
    if path == '/empty':
        start_response('200 OK', TEXT)
        return []
    if path == '/empty-strings':
        start_response('200 OK', TEXT)
        return [b'', b'abc', b'', b'def', b'']
    if path == '/no-content':
        start_response('204 No Content', [])
        return []
    if path == '/large':
        n = query_int(environ, 'n', 1 << 20)
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return pattern(n)
    if path == '/large-echo':
        h = hashlib.sha256()
        total = 0
        while True:
            piece = inp.read(65536)
            if not piece:
                break
            h.update(piece)
            total += len(piece)
        return as_json(start_response, {'length': total, 'sha256': h.hexdigest()})
    if path == '/file':
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(len(FILE_DATA)))])
        return environ['wsgi.file_wrapper'](open(FILE_PATH, 'rb'), 8192)
    if path == '/errors':
        environ['wsgi.errors'].write('MARKER-WSGI-ERRORS-1\n')
        environ['wsgi.errors'].writelines(['MARKER-WSGI-ERRORS-2\n'])
        environ['wsgi.errors'].flush()
        start_response('200 OK', TEXT)
        return [b'logged']
    start_response('404 Not Found', TEXT)
    return [b'not found']


validated = validator(inner)


def app(environ, start_response):
    # Routes under /raw/ use what the validator forbids: read() without a
    # size, and returning the file_wrapper itself (so sendfile can be used).
    path = environ['PATH_INFO']
    if path == '/raw/read-all':
        body = environ['wsgi.input'].read()
        return as_json(start_response, summary(body, again=len(environ['wsgi.input'].read())))
    if path == '/raw/file':
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(len(FILE_DATA)))])
        return environ['wsgi.file_wrapper'](open(FILE_PATH, 'rb'), 8192)
    if path == '/raw/file-chunked':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(FILE_PATH, 'rb'), 8192)
    return validated(environ, start_response)
'''

FILE_DATA = bytes(range(256)) * 300 + b'tail'
BAD_MARKERS = ('AssertionError', 'Traceback', 'VALIDATOR WARNING', 'Exception ignored',
               'garbage collected')

_shared = server.SharedServers()
tearDownModule = _shared.stop


def get_server(name='w1', args=('--workers', '1')):
    return _shared.get(name, lambda: Server(APP, list(args)))


def pattern(n):
    block = hashlib.sha256(b'cunicorn').digest() * 2048
    return (block * (n // len(block) + 1))[:n]


class ValidatedApp(unittest.TestCase):
    maxDiff = 4000
    server_name = 'w1'
    server_args = ('--workers', '1')

    def setUp(self):
        self.srv = get_server(self.server_name, self.server_args)
        self.log_mark = self.srv.log_mark()

    def assert_clean_log(self):
        # The next request on the (single) worker starts only after the
        # previous one was closed and its objects collected.
        self.srv.get('/hello')
        new = self.srv.log_since(self.log_mark)
        for marker in BAD_MARKERS:
            self.assertNotIn(marker, new, 'server output:\n' + new[-3000:])

    def req(self, method='GET', path='/', **kw):
        resp = self.srv.request(method, path, **kw)
        return resp

    # -- methods, paths, query strings
    def test_get(self):
        r = self.req('GET', '/hello')
        self.assertEqual((r.status, r.body), (200, b'hello world'))
        self.assert_clean_log()

    def test_head(self):
        r = self.req('HEAD', '/hello')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header('Content-Length'), '11')
        self.assert_clean_log()

    def test_head_sends_no_body(self):
        conn = self.srv.connect()
        conn.send(build_request('HEAD', '/hello', close=True))
        data = conn.read_until_close()
        conn.close()
        self.assertTrue(data.startswith(b'HTTP/1.1 200'), data)
        self.assertTrue(data.endswith(b'\r\n\r\n'), 'body bytes after a HEAD response: %r' % data)
        self.assert_clean_log()

    def test_post(self):
        body = b'x' * 1000
        r = self.req('POST', '/read-n?n=100', body=body,
                     headers=[('Content-Type', 'application/octet-stream')])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()['length'], 1000)
        self.assert_clean_log()

    def test_query_string(self):
        r = self.req('GET', '/environ?a=1&b=%20x&c')
        env = r.json()
        self.assertEqual(env['QUERY_STRING'], 'a=1&b=%20x&c')
        self.assertEqual(env['PATH_INFO'], '/environ')
        self.assertEqual(env['RAW_URI'], '/environ?a=1&b=%20x&c')
        self.assert_clean_log()

    def test_empty_query_string(self):
        env = self.req('GET', '/environ').json()
        self.assertEqual(env['QUERY_STRING'], '')
        self.assert_clean_log()

    def test_percent_encoded_path(self):
        r = self.req('GET', '/path/caf%C3%A9%20x%2Fy')
        env = r.json()
        # PEP 3333: PATH_INFO is decoded, the bytes shown as latin-1.
        self.assertEqual(env['PATH_INFO'], '/path/caf\u00c3\u00a9 x/y')
        self.assertEqual(env['RAW_URI'], '/path/caf%C3%A9%20x%2Fy')
        self.assert_clean_log()

    # -- wsgi.input
    def test_read_n(self):
        body = bytes(range(256)) * 40
        r = self.req('POST', '/read-n?n=7', body=body)
        d = r.json()
        self.assertEqual(d['length'], len(body))
        self.assertEqual(d['sha256'], hashlib.sha256(body).hexdigest())
        self.assert_clean_log()

    def test_read_all(self):
        body = b'abc\n' * 5000
        d = self.req('POST', '/raw/read-all', body=body).json()
        self.assertEqual(d['length'], len(body))
        self.assertEqual(d['sha256'], hashlib.sha256(body).hexdigest())
        self.assertEqual(d['again'], 0)
        self.assert_clean_log()

    def test_read_all_chunked(self):
        body = b'abc\n' * 5000
        d = self.req('POST', '/raw/read-all', body=chunked([body[:7], body[7:9000], body[9000:]]),
                     headers=[('Transfer-Encoding', 'chunked')]).json()
        self.assertEqual(d['length'], len(body))
        self.assertEqual(d['sha256'], hashlib.sha256(body).hexdigest())
        self.assert_clean_log()

    LINES = b'first line\nsecond\n\nfourth is longer than five\nno newline at end'
    EXPECTED_LINES = ['first line\n', 'second\n', '\n', 'fourth is longer than five\n',
                      'no newline at end']

    def test_readline(self):
        d = self.req('POST', '/readline', body=self.LINES).json()
        self.assertEqual(d['lines'], self.EXPECTED_LINES)
        self.assert_clean_log()

    def test_readline_size(self):
        d = self.req('POST', '/readline-n', body=self.LINES).json()
        self.assertEqual(''.join(d['lines']), self.LINES.decode())
        for line in d['lines']:
            self.assertLessEqual(len(line), 5)
            self.assertNotIn('\n', line[:-1])
        self.assert_clean_log()

    def test_readlines(self):
        d = self.req('POST', '/readlines', body=self.LINES).json()
        self.assertEqual(d['lines'], self.EXPECTED_LINES)
        self.assert_clean_log()

    def test_iteration(self):
        d = self.req('POST', '/iter', body=self.LINES).json()
        self.assertEqual(d['lines'], self.EXPECTED_LINES)
        self.assert_clean_log()

    def test_readline_chunked_body(self):
        body = chunked([self.LINES[:3], self.LINES[3:20], self.LINES[20:]])
        d = self.req('POST', '/readline', body=body,
                     headers=[('Transfer-Encoding', 'chunked')]).json()
        self.assertEqual(d['lines'], self.EXPECTED_LINES)
        self.assert_clean_log()

    def test_empty_body_read(self):
        d = self.req('POST', '/read-n?n=10', body=b'', headers=[('Content-Length', '0')]).json()
        self.assertEqual(d['length'], 0)
        self.assert_clean_log()

    def test_read_without_body(self):
        d = self.req('GET', '/read-n?n=10').json()
        self.assertEqual(d['length'], 0)
        self.assert_clean_log()

    # -- response side
    def test_write_callable(self):
        r = self.req('GET', '/write')
        self.assertEqual((r.status, r.body), (200, b'one,two,three'))
        self.assert_clean_log()

    def test_start_response_in_generator(self):
        r = self.req('GET', '/late')
        self.assertEqual((r.status, r.body), (200, b'late start'))
        self.assert_clean_log()

    def test_exc_info_replaces_status(self):
        r = self.req('GET', '/exc-info')
        self.assertEqual((r.status, r.body), (500, b'error page'))
        self.assert_clean_log()

    def test_empty_iterable(self):
        r = self.req('GET', '/empty')
        self.assertEqual((r.status, r.body), (200, b''))
        self.assert_clean_log()

    def test_empty_strings_in_iterable(self):
        r = self.req('GET', '/empty-strings')
        self.assertEqual((r.status, r.body), (200, b'abcdef'))
        self.assert_clean_log()

    def test_204(self):
        r = self.req('GET', '/no-content')
        self.assertEqual((r.status, r.body), (204, b''))
        self.assert_clean_log()

    def test_large_response(self):
        n = 8 * 1024 * 1024 + 123
        r = self.req('GET', '/large?n=%d' % n)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), n)
        self.assertEqual(r.body, pattern(n))
        self.assert_clean_log()

    def test_large_request_body(self):
        body = pattern(8 * 1024 * 1024 + 77)
        d = self.req('POST', '/large-echo', body=body).json()
        self.assertEqual(d, {'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()})
        self.assert_clean_log()

    def test_file_wrapper_validated(self):
        r = self.req('GET', '/file')
        self.assertEqual((r.status, r.body), (200, FILE_DATA))
        self.assert_clean_log()

    def test_file_wrapper_sendfile(self):
        r = self.req('GET', '/raw/file')
        self.assertEqual((r.status, r.body), (200, FILE_DATA))
        self.assert_clean_log()

    def test_file_wrapper_without_length(self):
        r = self.req('GET', '/raw/file-chunked')
        self.assertEqual((r.status, r.body), (200, FILE_DATA))
        self.assert_clean_log()

    def test_wsgi_errors_goes_to_error_log(self):
        r = self.req('GET', '/errors')
        self.assertEqual(r.status, 200)
        ok = server.wait_for(lambda: 'MARKER-WSGI-ERRORS-2' in self.srv.error_text(), 10)
        self.assertTrue(ok, 'wsgi.errors output not in the error log:\n'
                        + self.srv.log_text()[-2000:])
        self.assertIn('MARKER-WSGI-ERRORS-1', self.srv.error_text())
        self.assert_clean_log()


class Environ(unittest.TestCase):
    maxDiff = 4000

    def environ(self, srv, path='/environ', method='GET', headers=None, body=b''):
        conn = srv.connect()
        try:
            conn.send(build_request(method, path, headers, body, close=True))
            r = conn.read_response(method)
            self.assertEqual(r.status, 200, r)
            return r.json(), conn.sock.getsockname()
        finally:
            conn.close()

    def test_wsgi_keys(self):
        srv = get_server()
        env, _ = self.environ(srv)
        self.assertEqual(env['wsgi.version'], [1, 0])
        self.assertEqual(env['wsgi.url_scheme'], 'http')
        self.assertIs(env['wsgi.run_once'], False)
        self.assertIs(env['wsgi.input_terminated'], True)
        self.assertEqual(env['REQUEST_METHOD'], 'GET')
        self.assertEqual(env['SERVER_PROTOCOL'], 'HTTP/1.1')
        self.assertEqual(env['SCRIPT_NAME'], '')

    def test_multithread_false_for_sync(self):
        env, _ = self.environ(get_server())
        # True under gthread and gevent (gunicorn too), the class passes of tests/run.py.
        self.assertIs(env['wsgi.multithread'], server.is_concurrent())

    def test_multiprocess_false_with_one_worker(self):
        env, _ = self.environ(get_server())
        self.assertIs(env['wsgi.multiprocess'], False)

    def test_multiprocess_true_with_two_workers(self):
        env, _ = self.environ(get_server('w2', ('--workers', '2')))
        self.assertIs(env['wsgi.multiprocess'], True)

    def test_server_and_remote_address(self):
        srv = get_server()
        env, (addr, port) = self.environ(srv)
        self.assertEqual(env['SERVER_NAME'], '127.0.0.1')
        self.assertEqual(env['SERVER_PORT'], str(srv.port))
        self.assertEqual(env['REMOTE_ADDR'], '127.0.0.1')
        self.assertEqual(env['REMOTE_PORT'], str(port))

    def test_raw_uri(self):
        env, _ = self.environ(get_server(), '/environ?x=%41#frag')
        self.assertEqual(env['RAW_URI'], '/environ?x=%41#frag')
        self.assertEqual(env['QUERY_STRING'], 'x=%41')

    def test_script_name_from_env(self):
        srv = get_server('script', ('--workers', '1', '-e', 'SCRIPT_NAME=/prefix'))
        env, _ = self.environ(srv, '/prefix/foo')
        self.assertEqual(env['SCRIPT_NAME'], '/prefix')
        self.assertEqual(env['PATH_INFO'], '/foo')

    def test_no_content_headers_unless_sent(self):
        env, _ = self.environ(get_server())
        self.assertNotIn('CONTENT_TYPE', env)
        self.assertNotIn('CONTENT_LENGTH', env)
        self.assertNotIn('HTTP_CONTENT_TYPE', env)
        self.assertNotIn('HTTP_CONTENT_LENGTH', env)

    def test_content_headers_when_sent(self):
        env, _ = self.environ(get_server(), method='POST', body=b'abc',
                              headers=[('Content-Type', 'text/plain; charset=utf-8')])
        self.assertEqual(env['CONTENT_TYPE'], 'text/plain; charset=utf-8')
        self.assertEqual(env['CONTENT_LENGTH'], '3')
        self.assertNotIn('HTTP_CONTENT_TYPE', env)
        self.assertNotIn('HTTP_CONTENT_LENGTH', env)

    def test_repeated_headers_joined(self):
        env, _ = self.environ(get_server(), headers=[
            ('X-Dup', 'a'), ('X-Other', '1'), ('X-Dup', 'b'), ('x-dup', 'c')])
        self.assertEqual(env['HTTP_X_DUP'], 'a,b,c')
        self.assertEqual(env['HTTP_X_OTHER'], '1')

    def test_header_names(self):
        env, _ = self.environ(get_server(), headers=[('Host', 'example.com:8080'),
                                                     ('X-Forwarded-For', '10.0.0.1'),
                                                     ('Accept-Language', 'en')])
        self.assertEqual(env['HTTP_HOST'], 'example.com:8080')
        self.assertEqual(env['HTTP_X_FORWARDED_FOR'], '10.0.0.1')
        self.assertEqual(env['HTTP_ACCEPT_LANGUAGE'], 'en')

    def test_server_software(self):
        env, _ = self.environ(get_server())
        prefix = 'gunicorn/' if server.is_gunicorn() else 'cunicorn/'
        self.assertTrue(env['SERVER_SOFTWARE'].startswith(prefix), env['SERVER_SOFTWARE'])

    def test_http10_protocol(self):
        srv = get_server()
        conn = srv.connect()
        conn.send(b'GET /environ HTTP/1.0\r\n\r\n')
        r = conn.read_response()
        conn.close()
        env = r.json()
        self.assertEqual(env['SERVER_PROTOCOL'], 'HTTP/1.0')
        self.assertNotIn('HTTP_HOST', env)


if __name__ == '__main__':
    unittest.main()
