"""Behind a proxy: --forwarded-allow-ips (addresses, CIDR ranges, *, unix
peers), secure_scheme_headers, forwarder headers (SCRIPT_NAME),
--header-map, and the PROXY protocol with --proxy-allow-from (reference
e.1, e.3, f.1)."""

import json
import os
import shutil
import socket
import struct
import tempfile
import unittest

import server
from server import Server, Conn, build_request

APP = r'''
import json

KEYS = ('wsgi.url_scheme', 'SCRIPT_NAME', 'PATH_INFO', 'REMOTE_ADDR', 'REMOTE_PORT',
        'PROXY_PROTOCOL', 'PROXY_ADDR', 'PROXY_PORT', 'HTTP_X_CUSTOM', 'HTTP_SCRIPT_NAME')

def app(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in KEYS}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


class Proxies(unittest.TestCase):
    def serve(self, *args, **kw):
        srv = Server(APP, list(args), **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def exchange(self, srv, raw):
        """The response to raw bytes sent on a fresh connection."""
        conn = srv.connect()
        try:
            conn.send(raw)
            return conn.read_response('GET')
        finally:
            conn.close()

    def env(self, srv, path='/', headers=None, raw=None):
        resp = srv.request('GET', path, headers=headers) if raw is None else self.exchange(srv, raw)
        self.assertEqual(resp.status, 200, resp)
        return resp.json()

    # -- trust and secure_scheme_headers

    def test_trusted_peer_sets_the_scheme(self):
        srv = self.serve()  # 127.0.0.1 is trusted by default
        self.assertEqual(self.env(srv)['wsgi.url_scheme'], 'http')
        self.assertEqual(self.env(srv, headers=[('X-Forwarded-Proto', 'https')])['wsgi.url_scheme'], 'https')
        self.assertEqual(self.env(srv, headers=[('X-Forwarded-Ssl', 'on')])['wsgi.url_scheme'], 'https')
        self.assertEqual(self.env(srv, headers=[('X-Forwarded-Protocol', 'ssl')])['wsgi.url_scheme'], 'https')
        # The value must match exactly, case included.
        self.assertEqual(self.env(srv, headers=[('X-Forwarded-Proto', 'HTTPS')])['wsgi.url_scheme'], 'http')

    def test_untrusted_peer_cannot_set_the_scheme(self):
        srv = self.serve('--forwarded-allow-ips', '10.1.2.3,192.168.0.0/16')
        self.assertEqual(self.env(srv, headers=[('X-Forwarded-Proto', 'https')])['wsgi.url_scheme'], 'http')

    def test_cidr_ranges_and_star(self):
        for allow, trusted in (('127.0.0.0/8', True), ('10.0.0.0/8', False), ('*', True),
                               ('::1,127.0.0.2/32', False), ('0.0.0.0/0', True)):
            srv = self.serve('--forwarded-allow-ips', allow)
            got = self.env(srv, headers=[('X-Forwarded-Proto', 'https')])['wsgi.url_scheme']
            self.assertEqual(got, 'https' if trusted else 'http', allow)
            srv.stop()

    def test_forwarded_allow_ips_from_the_environment(self):
        srv = self.serve(env={'FORWARDED_ALLOW_IPS': '10.9.9.9'})
        self.assertEqual(self.env(srv, headers=[('X-Forwarded-Proto', 'https')])['wsgi.url_scheme'], 'http')

    def test_unix_socket_peers_are_always_trusted(self):
        d = tempfile.mkdtemp(prefix='cunicorn-proxy-')
        self.addCleanup(shutil.rmtree, d, True)
        srv = self.serve('--forwarded-allow-ips', '10.1.2.3', bind='unix:' + os.path.join(d, 's'))
        got = self.env(srv, headers=[('X-Forwarded-Proto', 'https')])
        self.assertEqual(got['wsgi.url_scheme'], 'https')

    def test_contradictory_scheme_headers(self):
        srv = self.serve()
        resp = srv.request('GET', '/', headers=[('X-Forwarded-Proto', 'https'), ('X-Forwarded-Ssl', 'off')])
        self.assertEqual(resp.status, 400)
        self.assertIn(b'Contradictory scheme headers', resp.body)

    def test_secure_scheme_headers_from_the_config_file(self):
        srv = self.serve('-c', 'conf.py', files={
            'conf.py': "secure_scheme_headers = {'X-SCHEME': 'secure'}\n"})
        self.assertEqual(self.env(srv, headers=[('X-Scheme', 'secure')])['wsgi.url_scheme'], 'https')
        # The default headers no longer count.
        self.assertEqual(self.env(srv, headers=[('X-Forwarded-Proto', 'https')])['wsgi.url_scheme'], 'http')

    # -- SCRIPT_NAME

    def test_script_name_from_a_trusted_header(self):
        srv = self.serve()
        got = self.env(srv, '/mount/page', headers=[('SCRIPT_NAME', '/mount')])
        self.assertEqual((got['SCRIPT_NAME'], got['PATH_INFO']), ('/mount', '/page'))
        self.assertEqual(got['HTTP_SCRIPT_NAME'], '/mount')
        # A path outside the mount point is a configuration problem (500).
        resp = srv.request('GET', '/elsewhere', headers=[('SCRIPT_NAME', '/mount')])
        self.assertEqual(resp.status, 500)

    def test_script_name_header_from_an_untrusted_peer_is_dropped(self):
        srv = self.serve('--forwarded-allow-ips', '10.1.2.3')
        got = self.env(srv, '/mount/page', headers=[('SCRIPT_NAME', '/mount')])
        self.assertEqual((got['SCRIPT_NAME'], got['PATH_INFO']), ('', '/mount/page'))
        self.assertIsNone(got['HTTP_SCRIPT_NAME'])

    def test_script_name_from_raw_env(self):
        srv = self.serve('-e', 'SCRIPT_NAME=/base')
        got = self.env(srv, '/base/x')
        self.assertEqual((got['SCRIPT_NAME'], got['PATH_INFO']), ('/base', '/x'))

    # -- header_map

    def test_header_map(self):
        untrusted = ['--forwarded-allow-ips', '10.1.2.3']
        drop = self.serve(*untrusted)
        self.assertIsNone(self.env(drop, headers=[('X_Custom', 'evil')])['HTTP_X_CUSTOM'])
        # X-Custom still arrives; an X_Custom cannot pose as it.
        got = self.env(drop, headers=[('X-Custom', 'good'), ('X_Custom', 'evil')])
        self.assertEqual(got['HTTP_X_CUSTOM'], 'good')
        refuse = self.serve('--header-map', 'refuse', *untrusted)
        resp = refuse.request('GET', '/', headers=[('X_Custom', 'evil')])
        self.assertEqual(resp.status, 400)
        dangerous = self.serve('--header-map', 'dangerous', *untrusted)
        self.assertEqual(self.env(dangerous, headers=[('X_Custom', 'kept')])['HTTP_X_CUSTOM'], 'kept')

    def test_header_map_refuses_bad_values(self):
        out = Server(APP, ['--header-map', 'keep'])
        out.spawn()
        self.addCleanup(out.stop)
        self.assertTrue(server.wait_for(lambda: out.proc.poll() is not None, 30 * server.SLOW))
        self.assertNotEqual(out.proc.returncode, 0)
        self.assertIn('header_map', out.log_text() + server.read_text(out.path('stderr.txt')))

    # -- PROXY protocol

    def test_proxy_v1_sets_the_client_address(self):
        srv = self.serve('--proxy-protocol', 'v1')
        raw = b'PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n' + build_request('GET', '/', close=True)
        got = self.env(srv, raw=raw)
        self.assertEqual((got['REMOTE_ADDR'], got['REMOTE_PORT']), ('203.0.113.7', '51234'))
        self.assertEqual((got['PROXY_PROTOCOL'], got['PROXY_ADDR'], got['PROXY_PORT']),
                         ('TCP4', '192.0.2.1', '443'))
        # Without a header the connection is plain HTTP (the header is optional).
        self.assertEqual(self.env(srv)['REMOTE_ADDR'], '127.0.0.1')

    def test_proxy_v2_and_keep_alive(self):
        srv = self.serve('--proxy-protocol', 'v2')
        sig = b'\r\n\r\n\x00\r\nQUIT\n'
        addrs = socket.inet_pton(socket.AF_INET6, '2001:db8::5') + socket.inet_pton(socket.AF_INET6, '2001:db8::1')
        header = sig + bytes([0x21, 0x21]) + struct.pack('!H', 36) + addrs + struct.pack('!HH', 4000, 8443)
        conn = srv.connect()
        try:
            conn.send(header + build_request('GET', '/one'))
            first = conn.read_response('GET').json()
            self.assertEqual((first['REMOTE_ADDR'], first['PROXY_PROTOCOL']), ('2001:db8::5', 'TCP6'))
            # The second request on the connection keeps the first's info,
            # and a PROXY header is only allowed first.
            conn.send(build_request('GET', '/two'))
            self.assertEqual(conn.read_response('GET').json()['REMOTE_ADDR'], '2001:db8::5')
            conn.send(b'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n' + build_request('GET', '/three'))
            self.assertEqual(conn.read_response('GET').status, 400)
        finally:
            conn.close()

    def test_proxy_header_from_a_peer_not_allowed(self):
        srv = self.serve('--proxy-protocol', 'v1', '--proxy-allow-from', '10.0.0.0/8')
        resp = self.exchange(srv, b'PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n' + build_request('GET', '/'))
        self.assertEqual(resp.status, 403)

    def test_proxy_unknown_is_refused(self):
        srv = self.serve('--proxy-protocol', 'v1')
        resp = self.exchange(srv, b'PROXY UNKNOWN\r\n' + build_request('GET', '/'))
        self.assertEqual(resp.status, 400)
        self.assertIn(b'Invalid PROXY line', resp.body)


if __name__ == '__main__':
    unittest.main()
