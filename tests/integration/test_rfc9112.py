"""Server-side MUSTs of RFC 9112 and RFC 9110 (framing, Host, versions, the
status line) over a real socket, one table row or test per rule, named by
its section. Rules where cunicorn is stricter than Gunicorn are listed in
the README; the smuggling-related ones have their own tests, with a request
behind them, in test_smuggling.py.
"""

import json
import os
import unittest

import server
import test_conformance
from server import Server

_shared = server.SharedServers()
tearDownModule = _shared.stop


def get_server(*args):
    args = ('--workers', '1') + args
    return _shared.get(args, lambda: Server(server.ECHO_APP, list(args)))


cunicorn_only = unittest.skipIf(server.is_gunicorn(), 'cunicorn follows the RFC where Gunicorn differs')


def b(text):
    return text.encode('latin-1')


class Case(unittest.TestCase):
    def exchange(self, raw, srv=None, method='GET'):
        """raw on a fresh connection: (response, whether the server closed)."""
        conn = (srv or get_server()).connect()
        try:
            conn.send(b(raw))
            resp = conn.read_response(method)
            self.assertIsNotNone(resp, 'closed without an answer')
            return resp, conn.wait_closed(10)
        finally:
            conn.close()

    def refused(self, raw, status=400, message=None, srv=None):
        resp, closed = self.exchange(raw, srv)
        self.assertEqual(resp.status, status, resp)
        if message is not None:
            self.assertIn(b(message), resp.body.replace(b'&#x27;', b"'").replace(b'&gt;', b'>'))
        self.assertTrue(resp.has_token('Connection', 'close'), resp)
        self.assertTrue(closed, 'connection left open after the error')
        return resp

    def served(self, raw, srv=None):
        resp, _ = self.exchange(raw, srv)
        self.assertEqual(resp.status, 200, resp)
        return resp


MISSING_HOST = "Missing HTTP Header: 'HOST'"
BAD_HOST = "Invalid HTTP Header: 'HOST'"


@cunicorn_only
class Host(Case):
    """RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, with more
    than one, or with an invalid value (Gunicorn refuses only two)."""

    def test_http11_without_host(self):
        self.refused('GET / HTTP/1.1\r\n\r\n', 400, MISSING_HOST)

    def test_http11_absolute_form_without_host(self):
        # The target's authority does not stand in for the field (3.2).
        self.refused('GET http://example.com/ HTTP/1.1\r\n\r\n', 400, MISSING_HOST)

    def test_http10_without_host_is_served(self):
        resp = self.served('GET / HTTP/1.0\r\n\r\n')
        self.assertEqual(resp.json()['SERVER_PROTOCOL'], 'HTTP/1.0')

    def test_empty_host_is_valid(self):
        self.served('GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n')

    def test_valid_values(self):
        for value in ('example.com', 'example.com:8080', '127.0.0.1:80', '[::1]:8000', 'a_b-c~d', 'x:'):
            with self.subTest(value=value):
                resp = self.served('GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' % value)
                self.assertEqual(resp.json()['HTTP_HOST'], value)

    def test_invalid_values(self):
        for value in ('a b', 'a/b', 'user@a', 'a:1:2', 'a:http', '::1', '[::1', '[::g]', 'a%zz', 'caf\xe9'):
            with self.subTest(value=value):
                self.refused('GET / HTTP/1.1\r\nHost: %s\r\n\r\n' % value, 400, BAD_HOST)

    def test_invalid_value_in_http10(self):
        self.refused('GET / HTTP/1.0\r\nHost: a/b\r\n\r\n', 400, BAD_HOST)

    def test_two_hosts(self):
        self.refused('GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400, BAD_HOST)

    def test_permit_missing_host(self):
        srv = get_server('--permit-missing-host')
        self.served('GET / HTTP/1.1\r\nConnection: close\r\n\r\n', srv)
        # An invalid value is still refused.
        self.refused('GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400, BAD_HOST, srv)

    def test_conformance_samples_without_host(self):
        # The Gunicorn samples listed in stricter.json run elsewhere with
        # permit_missing_host; by default the first request without Host
        # in each is answered 400, and nothing after it.
        path = os.path.join(os.path.dirname(server.CONFORMANCE_DIR), 'stricter.json')
        with open(path) as f:
            names = json.load(f)['permit_missing_host']['samples']
        self.assertTrue(names)
        for name in names:
            with open(os.path.join(server.CONFORMANCE_DIR, name + '.json')) as f:
                sample = json.load(f)
            args = test_conformance.config_args(sample['config'])
            srv = _shared.get(tuple(args), lambda: Server(server.ECHO_APP, args))
            with self.subTest(sample=name):
                conn = srv.connect()
                try:
                    conn.send(b(sample['wire']))
                    resps = []
                    while True:
                        resp = conn.read_response()
                        if resp is None:
                            break
                        resps.append(resp)
                finally:
                    conn.close()
                self.assertTrue(resps, 'no answer')
                self.assertEqual(resps[-1].status, 400, resps)
                self.assertIn(b(MISSING_HOST.replace("'", '&#x27;')), resps[-1].body)


class StatusLine(Case):
    """RFC 9110 2.5 (and 6.2): the response carries the highest version the
    server conforms to, HTTP/1.1, and never one it does not. Gunicorn
    echoes the request's version."""

    def version_for(self, request_version, srv=None):
        resp = self.served('GET / %s\r\nHost: x\r\nConnection: close\r\n\r\n' % request_version, srv)
        self.assertEqual(resp.json()['SERVER_PROTOCOL'], request_version)
        return resp.version

    def test_http11(self):
        self.assertEqual(self.version_for('HTTP/1.1'), 'HTTP/1.1')

    @cunicorn_only
    def test_http10(self):
        self.assertEqual(self.version_for('HTTP/1.0'), 'HTTP/1.1')

    @cunicorn_only
    def test_http12(self):
        self.assertEqual(self.version_for('HTTP/1.2'), 'HTTP/1.1')

    @cunicorn_only
    def test_unconventional_versions(self):
        srv = get_server('--permit-unconventional-http-version')
        for version in ('HTTP/2.0', 'HTTP/0.9', 'HTTP/3.1'):
            with self.subTest(version=version):
                self.assertEqual(self.version_for(version, srv), 'HTTP/1.1')

    @cunicorn_only
    def test_error_pages(self):
        resp = self.refused('GET / HTTP/1.0\r\nX: a\x00\r\n\r\n')
        self.assertEqual(resp.version, 'HTTP/1.1')

    def test_http10_response_is_not_chunked(self):
        # RFC 9112 6.1: no Transfer-Encoding in a response to HTTP/1.0.
        srv = _shared.get('nolength', lambda: Server(NOLENGTH_APP, ['--workers', '1']))
        resp, closed = self.exchange('GET / HTTP/1.0\r\n\r\n', srv)
        self.assertEqual(resp.header_all('Transfer-Encoding'), [])
        self.assertEqual((resp.framing, resp.body, closed), ('close', b'abc', True))


NOLENGTH_APP = r'''
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'abc']
'''

CONNECT_APP = r'''
def app(environ, start_response):
    start_response('200 Connection Established', [('Content-Length', '3')])
    return [b'abc']
'''


class Connect(Case):
    @cunicorn_only
    def test_2xx_to_connect_has_no_framing_fields(self):
        # RFC 9110 9.3.6 and 8.6, RFC 9112 6.1: neither Content-Length nor
        # Transfer-Encoding in a 2xx to CONNECT; the bytes that follow are
        # the tunnel's, so the connection ends them.
        srv = _shared.get('connect', lambda: Server(CONNECT_APP, ['--workers', '1']))
        resp, closed = self.exchange('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', srv)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.header_all('Content-Length') + resp.header_all('Transfer-Encoding'), [])
        self.assertEqual((resp.framing, resp.body, closed), ('close', b'abc', True))


class RequestLine(Case):
    @cunicorn_only
    def test_long_target_is_414(self):
        # RFC 9112 3: a request-target longer than the server parses is
        # answered 414 (Gunicorn: 400).
        resp = self.refused('GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' % ('a' * 5000), 414,
                            'Request Line is too large')
        self.assertEqual(resp.reason, 'URI Too Long')

    def test_long_line_without_crlf_is_414(self):
        if server.is_gunicorn():
            self.skipTest('Gunicorn answers 400')
        self.refused('GET /' + 'a' * 5000, 414)


class AlreadyStrict(Case):
    """MUSTs cunicorn (and Gunicorn) already met; one row each, the
    section first. test_smuggling.py has more cases for several."""

    ROWS = [
        ('9112 2.2 whitespace before the first field', 'GET / HTTP/1.1\r\n Host: x\r\n\r\n', 400),
        ('9112 2.2 bare CR in a field value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n', 400),
        ('9112 2.3 version is case-sensitive', 'GET / http/1.1\r\nHost: x\r\n\r\n', 400),
        ('9112 3.2.3 authority-form only with CONNECT', 'GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n', 400),
        ('9112 3.2.4 asterisk-form only with OPTIONS', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n', 400),
        ('9112 5.1 whitespace between name and colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400),
        ('9112 5.2 obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n', 400),
        ('9112 6.1 chunked applied twice', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked'
         '\r\n\r\n0\r\n\r\n', 400),
        ('9112 6.1 chunked in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
        ('9112 6.1 Transfer-Encoding with Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n'
         'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
        ('9112 6.3 chunked not final', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip'
         '\r\n\r\n0\r\n\r\n', 400),
        ('9112 6.3 differing Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n'
         'Content-Length: 2\r\n\r\nab', 400),
        ('9110 8.6 Content-Length list, same values', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2'
         '\r\n\r\nab', 400),
        ('9112 6.3 invalid Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x2\r\n\r\nab', 400),
        ('9112 6.1 unknown transfer coding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br\r\n\r\n', 501),
        ('9110 5.5 NUL in a field value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\x00\r\n\r\n', 400),
    ]

    def test_refused(self):
        for name, raw, status in self.ROWS:
            with self.subTest(rule=name):
                self.refused(raw, status)

    def test_absolute_form_is_accepted(self):
        # RFC 9112 3.2.2: a server MUST accept the absolute-form.
        env = self.served('GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n'
                          'Connection: close\r\n\r\n').json()
        self.assertEqual((env['PATH_INFO'], env['QUERY_STRING']), ('/p', 'q'))

    @cunicorn_only
    def test_absolute_form_authority_replaces_host(self):
        # RFC 9112 3.2.2: the server MUST ignore Host and use the target's
        # authority (userinfo is not part of the host).
        env = self.served('GET http://user@example.org:8080/p HTTP/1.1\r\nHost: other.example\r\n'
                          'Connection: close\r\n\r\n').json()
        self.assertEqual(env['HTTP_HOST'], 'example.org:8080')
        env = self.served('GET /p HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n').json()
        self.assertEqual(env['HTTP_HOST'], 'other.example')

    def test_expect_100_continue_ignored_in_http10(self):
        # RFC 9110 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored.
        conn = get_server().connect()
        try:
            conn.send(b'POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok')
            resp = conn.read_response()
            self.assertEqual((resp.status, resp.interim), (200, []))
        finally:
            conn.close()


if __name__ == '__main__':
    unittest.main()
