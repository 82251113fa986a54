"""TLS (--certfile, --keyfile, --ca-certs, --cert-reqs, --ciphers,
--suppress-ragged-eofs, the ssl_context hook), driven by Python's ssl
client and curl over loopback, with certificates made at test time."""

import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import server
from server import Server, Conn, build_request, chunked

APP = r'''
import hashlib, os

BIG = bytes(range(256)) * 4096 * 5   # 5 MiB

def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/echo-sha':
        h = hashlib.sha256()
        n = 0
        while True:
            piece = environ['wsgi.input'].read(65536)
            if not piece:
                break
            h.update(piece)
            n += len(piece)
        body = ('%d %s' % (n, h.hexdigest())).encode()
    elif path == '/body-status':
        try:
            data = environ['wsgi.input'].read()
            body = ('short %d' % len(data)).encode()
        except Exception as e:
            body = ('error %s' % type(e).__name__).encode()
        with open(os.path.join(os.path.dirname(__file__), 'body-status.txt'), 'w') as f:
            f.write(body.decode())
    elif path == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [BIG[i:i + 100000] for i in range(0, len(BIG), 100000)]
    elif path == '/file':
        f = open(os.path.join(os.path.dirname(__file__), 'blob.bin'), 'rb')
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(os.fstat(f.fileno()).st_size))])
        return environ['wsgi.file_wrapper'](f)
    else:
        body = ('%s %s %s' % (environ['wsgi.url_scheme'], path, os.getpid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''

BLOB = os.urandom(3 * 1024 * 1024 + 123)


def openssl(*args, cwd):
    subprocess.run(['openssl'] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_cert(directory, name, cn='localhost', ca=None):
    """A key and certificate for cn (signed by ca=(cert, key), else
    self-signed) in directory; returns (certfile, keyfile)."""
    key = os.path.join(directory, name + '.key')
    cert = os.path.join(directory, name + '.pem')
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key, cwd=directory)
    if ca is None:
        openssl('req', '-x509', '-new', '-key', key, '-out', cert, '-days', '2',
                '-subj', '/CN=' + cn, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
                cwd=directory)
    else:
        csr = os.path.join(directory, name + '.csr')
        openssl('req', '-new', '-key', key, '-out', csr, '-subj', '/CN=' + cn, cwd=directory)
        openssl('x509', '-req', '-in', csr, '-CA', ca[0], '-CAkey', ca[1], '-CAcreateserial',
                '-out', cert, '-days', '2', cwd=directory)
    return cert, key


@unittest.skipUnless(shutil.which('openssl'), 'the openssl command makes the test certificates')
class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='cunicorn-tls-')
        cls.cert, cls.key = make_cert(cls.dir, 'server')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def serve(self, *args, cert=None, key=None, **kw):
        files = dict(kw.pop('files', {}))
        srv = Server(APP, ['--certfile', cert or self.cert, '--keyfile', key or self.key] + list(args),
                     files=files, **kw)
        srv._prepare()
        with open(srv.path('blob.bin'), 'wb') as f:
            f.write(BLOB)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def client_context(self, cafile=None):
        ctx = ssl.create_default_context(cafile=cafile or self.cert)
        return ctx

    def tls_connect(self, srv, ctx=None, timeout=30):
        raw = socket.create_connection(('127.0.0.1', srv.port), timeout=timeout * server.SLOW)
        return Conn((ctx or self.client_context()).wrap_socket(raw, server_hostname='localhost'))

    def ask(self, srv, path='/', ctx=None, **kw):
        conn = self.tls_connect(srv, ctx)
        try:
            conn.send(build_request('GET', path, close=True, **kw))
            return conn.read_response('GET')
        finally:
            conn.close()

    def test_https_request_and_scheme(self):
        srv = self.serve()
        resp = self.ask(srv, '/hello')
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body.split()[:2], [b'https', b'/hello'])
        self.assertIn('Listening at: https://127.0.0.1:%d' % srv.port, srv.log_text())

    def test_keep_alive_and_pipelining(self):
        srv = self.serve()
        conn = self.tls_connect(srv)
        try:
            for i in range(30):
                conn.send(build_request('GET', '/k%d' % i))
                resp = conn.read_response('GET')
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body.split()[1], b'/k%d' % i)
            conn.send(b''.join(build_request('GET', '/p%d' % i) for i in range(5)))
            for i in range(5):
                resp = conn.read_response('GET')
                self.assertEqual(resp.body.split()[1], b'/p%d' % i)
        finally:
            conn.close()

    def test_large_response_and_file_wrapper(self):
        srv = self.serve()
        big = self.ask(srv, '/big')
        self.assertEqual(big.status, 200)
        self.assertEqual(big.body, bytes(range(256)) * 4096 * 5)
        f = self.ask(srv, '/file')
        self.assertEqual(f.status, 200)
        self.assertEqual(len(f.body), len(BLOB))
        self.assertEqual(hashlib.sha256(f.body).hexdigest(), hashlib.sha256(BLOB).hexdigest())

    def test_uploads_content_length_and_chunked(self):
        srv = self.serve()
        data = os.urandom(6 * 1024 * 1024 + 7)
        want = ('%d %s' % (len(data), hashlib.sha256(data).hexdigest())).encode()
        conn = self.tls_connect(srv)
        try:
            conn.send(build_request('POST', '/echo-sha', body=data))
            self.assertEqual(conn.read_response('POST').body, want)
            pieces = [data[i:i + 70000] for i in range(0, len(data), 70000)]
            conn.send(build_request('POST', '/echo-sha', [('Transfer-Encoding', 'chunked')],
                                    body=chunked(pieces), close=True))
            self.assertEqual(conn.read_response('POST').body, want)
        finally:
            conn.close()

    @unittest.skipUnless(shutil.which('curl'), 'curl not installed')
    def test_curl(self):
        srv = self.serve()
        url = 'https://localhost:%d/curl' % srv.port
        out = subprocess.run(['curl', '-sS', '--cacert', self.cert, url], capture_output=True,
                             timeout=60 * server.SLOW)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split()[:2], [b'https', b'/curl'])
        big = subprocess.run(['curl', '-sS', '--cacert', self.cert, url.replace('/curl', '/file')],
                             capture_output=True, timeout=60 * server.SLOW)
        self.assertEqual(big.stdout, BLOB)
        # Without the CA the client refuses the certificate: it is the server's own.
        bad = subprocess.run(['curl', '-sS', url], capture_output=True, timeout=60 * server.SLOW)
        self.assertNotEqual(bad.returncode, 0)

    def test_plain_http_to_tls_port_gets_a_readable_400(self):
        srv = self.serve()
        resp = srv.request('GET', '/')
        self.assertEqual(resp.status, 400)
        self.assertIn(b'HTTPS', resp.body)
        self.assertEqual(self.ask(srv).status, 200)  # the worker is unharmed

    def test_garbage_and_aborted_handshakes_do_not_hurt(self):
        srv = self.serve('-w', '1')
        for payload in (b'\x16\x03\x01\x00\x05hello', os.urandom(300), b'', b'\x16\x03'):
            s = socket.create_connection(('127.0.0.1', srv.port), timeout=30)
            if payload:
                s.sendall(payload)
            s.close()
        self.assertEqual(self.ask(srv).status, 200)

    def test_close_notify_ends_a_closed_connection(self):
        srv = self.serve()
        raw = socket.create_connection(('127.0.0.1', srv.port), timeout=30 * server.SLOW)
        s = self.client_context().wrap_socket(raw, server_hostname='localhost',
                                              suppress_ragged_eofs=False)
        try:
            s.sendall(build_request('GET', '/', version='HTTP/1.0'))
            # SSLEOFError here would mean no close_notify was sent.
            data = server.read_until_closed(s)
        finally:
            s.close()
        self.assertTrue(data.startswith(server.http10_ok()), data)

    def test_slow_tls_client_does_not_hold_the_worker(self):
        srv = self.serve('-w', '1')
        slow = self.tls_connect(srv)
        try:
            slow.send(b'GET /slow HTTP/1.1\r\nHost: x\r\n')  # the head never ends
            start = time.monotonic()
            self.assertEqual(self.ask(srv, '/other').status, 200)
            self.assertLess(time.monotonic() - start, 20 * server.SLOW)
        finally:
            slow.close()

    def test_client_certificates_required(self):
        ca_cert, ca_key = make_cert(self.dir, 'ca', cn='test CA')
        client_cert, client_key = make_cert(self.dir, 'client', cn='client', ca=(ca_cert, ca_key))
        srv = self.serve('--cert-reqs', '2', '--ca-certs', ca_cert)
        ctx = self.client_context()
        ctx.load_cert_chain(client_cert, client_key)
        self.assertEqual(self.ask(srv, ctx=ctx).status, 200)
        # Without a client certificate the handshake (or, in TLS 1.3, the
        # first read after it) fails.
        with self.assertRaises((ssl.SSLError, ConnectionError, server.ProtocolError)):
            self.ask(srv)

    def test_ssl_context_hook(self):
        hook = (
            "import ssl\n"
            "def ssl_context(config, default_ssl_context_factory):\n"
            "    ctx = default_ssl_context_factory()\n"
            "    ctx.minimum_version = ssl.TLSVersion.TLSv1_3\n"
            "    open(%r, 'a').write('called %%s\\n' %% config.certfile)\n"
            "    return ctx\n"
            "def when_ready(server):\n"
            "    open(%r, 'a').write('listening %%s\\n' %% server.LISTENERS[0])\n")
        marker = os.path.join(tempfile.mkdtemp(prefix='cunicorn-tls-'), 'hook.txt')
        self.addCleanup(shutil.rmtree, os.path.dirname(marker), True)
        srv = self.serve('-c', 'conf.py', files={'conf.py': hook % (marker, marker)})
        self.assertEqual(self.ask(srv).status, 200)
        old = self.client_context()
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with self.assertRaises((ssl.SSLError, ConnectionError, server.ProtocolError)):
            self.ask(srv, ctx=old)
        self.assertTrue(server.wait_for(lambda: 'listening' in server.read_text(marker), 30 * server.SLOW))
        # Called once, when the configuration was loaded; the listener
        # objects hooks see say https, as Gunicorn's do.
        self.assertEqual(sorted(server.read_text(marker).splitlines()),
                         ['called %s' % self.cert, 'listening https://127.0.0.1:%d' % srv.port])

    def test_suppress_ragged_eofs(self):
        # A client that drops the connection mid-body without close_notify.
        # By default (suppress_ragged_eofs) that is the body's end: the app
        # runs and reads a short body. With it False the EOF is an error
        # and the request is abandoned before the app runs.
        for setting in (True, False):
            srv = self.serve('-w', '1', '-c', 'conf.py',
                             files={'conf.py': 'suppress_ragged_eofs = %s\n' % setting})
            conn = self.tls_connect(srv)
            # A whole exchange first: the client has read everything the
            # server sent (TLS 1.3 session tickets too), so its close is a
            # FIN, not a reset.
            conn.send(build_request('GET', '/'))
            self.assertEqual(conn.read_response('GET').status, 200)
            conn.send(b'POST /body-status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello')
            time.sleep(0.2)
            conn.close()  # Python's SSLSocket.close() sends no close_notify
            status = srv.path('body-status.txt')
            if setting:
                self.assertTrue(server.wait_for(lambda: server.read_text(status), 20 * server.SLOW))
                self.assertEqual(server.read_text(status), 'short 5')
            else:
                # The single worker answers a later request, so it has
                # handled the EOF by now: the app never saw that request.
                self.assertEqual(self.ask(srv).status, 200)
                self.assertFalse(os.path.exists(status))
            srv.stop()

    def test_hup_loads_a_renewed_certificate(self):
        d = tempfile.mkdtemp(prefix='cunicorn-tls-')
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, 'live.pem'), os.path.join(d, 'live.key')
        first = make_cert(d, 'first', cn='first')
        second = make_cert(d, 'second', cn='second')
        shutil.copy(first[0], cert)
        shutil.copy(first[1], key)
        srv = self.serve(cert=cert, key=key)
        ctx = ssl.create_default_context(cafile=first[0])
        ctx.check_hostname = False
        self.assertEqual(self.ask(srv, ctx=ctx).status, 200)
        shutil.copy(second[0], cert)
        shutil.copy(second[1], key)
        mark = srv.log_mark()
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(server.wait_for(lambda: 'Reloaded' in srv.log_since(mark), 60 * server.SLOW),
                        srv.log_since(mark))
        ctx2 = ssl.create_default_context(cafile=second[0])
        ctx2.check_hostname = False

        def renewed():
            # The old generation serves until the new one has booted.
            try:
                return self.ask(srv, ctx=ctx2).status == 200
            except ssl.SSLError:
                return False
        self.assertTrue(server.wait_for(renewed, 60 * server.SLOW))
        # A renewed certificate that does not load keeps the running one.
        server.write_file(cert, 'not a certificate\n')
        mark = srv.log_mark()
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(server.wait_for(lambda: 'Reload failed' in srv.log_since(mark), 60 * server.SLOW))
        self.assertIn('certfile', srv.log_since(mark))
        self.assertEqual(self.ask(srv, ctx=ctx2).status, 200)

    def test_configuration_errors_name_the_setting(self):
        other_cert, other_key = make_cert(self.dir, 'other', cn='other')
        cases = [
            (['--certfile', '/nonexistent/cert.pem', '--keyfile', self.key], 'does not exist'),
            (['--certfile', self.cert, '--keyfile', other_key], 'certfile'),
            (['--certfile', self.cert, '--keyfile', self.key, '--cert-reqs', '3'], 'cert_reqs'),
            (['--certfile', self.cert, '--keyfile', self.key, '--ciphers', 'NO-SUCH-CIPHER'], 'ciphers'),
            (['--keyfile', self.key], 'certfile'),
        ]
        tmp = tempfile.mkdtemp(prefix='cunicorn-tls-')
        self.addCleanup(shutil.rmtree, tmp, True)
        server.write_file(os.path.join(tmp, 'app.py'), APP)
        for args, word in cases:
            out = subprocess.run([server.binary(), '--chdir', tmp, '-b', '127.0.0.1:%d' % server.free_port()]
                                 + args + ['app:app'], capture_output=True, text=True,
                                 timeout=60 * server.SLOW, stdin=subprocess.DEVNULL)
            self.assertEqual(out.returncode, 1, (args, out.stderr))
            self.assertIn(word, out.stderr, args)
            self.assertEqual(out.stderr.strip().count('\n'), 0, out.stderr)  # one line, no traceback
        # --check-config loads the certificate too.
        ok = subprocess.run([server.binary(), '--chdir', tmp, '--check-config', '--certfile', self.cert,
                             '--keyfile', other_key, 'app:app'], capture_output=True, text=True,
                            timeout=60 * server.SLOW)
        self.assertEqual(ok.returncode, 1)
        self.assertIn('certfile', ok.stderr)


if __name__ == '__main__':
    unittest.main()
