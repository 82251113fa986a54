"""--check-config and a real start agree: every bind form and every
allow-list form is either accepted by both (and the server then binds and
serves, trusting exactly the peers the list names) or refused by both.
And the cfg object handed to hooks holds the values the loader resolved,
the new ones after a HUP."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

import server
from server import build_request
from test_sockets import ipv6_available

APP = r'''
import json

def app(environ, start_response):
    body = json.dumps({'scheme': environ['wsgi.url_scheme'],
                       'remote': environ.get('REMOTE_ADDR')}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''

ACCEPT, REFUSE = 'accepted', 'refused'

# (label, -b value, expected, where to connect when accepted). {port} is a
# free port, {dir} the app's directory, {fd} a listening socket handed to
# the process, {pipe} the read end of a pipe handed to it.
BIND_CASES = [
    ('host:port', '127.0.0.1:{port}', ACCEPT, 'tcp'),
    ('tcp://host:port', 'tcp://127.0.0.1:{port}', ACCEPT, 'tcp'),
    ('empty host', ':{port}', ACCEPT, 'tcp'),
    ('[v6]:port', '[::1]:{port}', ACCEPT, 'tcp6'),
    ('unix:PATH', 'unix:{dir}/a.sock', ACCEPT, 'unix'),
    ('unix://PATH', 'unix://{dir}/b.sock', ACCEPT, 'unix'),
    ('fd://N, a listening socket', 'fd://{fd}', ACCEPT, 'fd'),
    ('unix: with an empty path', 'unix:', REFUSE, None),
    ('unix: in a missing directory', 'unix:{dir}/missing/a.sock', REFUSE, None),
    ('unix: naming a regular file', 'unix:{dir}/app.py', REFUSE, None),
    ('unix: too long for sun_path', 'unix:{dir}/' + 'x' * 120, REFUSE, None),
    ('fd://N, not open', 'fd://1000', REFUSE, None),
    ('fd://N, a pipe', 'fd://{pipe}', REFUSE, None),
    ('fd://N, beyond any descriptor', 'fd://1234567890', REFUSE, None),
    ('fd://N, over INT_MAX', 'fd://99999999999', REFUSE, None),
    ('fd:// not a number', 'fd://x', REFUSE, None),
    # Gunicorn binds 127.0.0.1:{port} and drops ":x".
    ('two colons', '127.0.0.1:{port}:x', REFUSE, None),
    ('IPv6 without brackets', '::1', REFUSE, None),
    ('text after ]', '[::1]x', REFUSE, None),
    ('port not a number', '127.0.0.1:x', REFUSE, None),
    ('empty port', '127.0.0.1:', REFUSE, None),
    ('port over 65535', '127.0.0.1:65536', REFUSE, None),
    ('a port alone', '{port}', REFUSE, None),
]

# (list value, expected, is the 127.0.0.1 peer in it)
ALLOW_CASES = [
    ('*', ACCEPT, True),
    ('127.0.0.1', ACCEPT, True),
    ('127.0.0.0/8', ACCEPT, True),
    ('10.0.0.0/8', ACCEPT, False),
    ('127.0.0.9/8', ACCEPT, True),  # host bits masked
    ('::ffff:127.0.0.1', ACCEPT, True),
    ('::1', ACCEPT, False),
    ('2001:db8::/32', ACCEPT, False),
    ('10.0.0.1, 127.0.0.1', ACCEPT, True),
    ('', ACCEPT, False),
    ('10.0.0.0/33', REFUSE, None),
    ('::/129', REFUSE, None),
    ('10.0.0.0/x', REFUSE, None),
    ('127.0.0.1/', REFUSE, None),
    ('1.2.3', REFUSE, None),
    ('proxy.local', REFUSE, None),
]

DEADLINE = 30


def ask(family, address, raw):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(server.IO_TIMEOUT * server.SLOW)
    try:
        s.connect(address)
        s.sendall(raw)
        data = server.read_until_closed(s)
    finally:
        s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return head.split(b'\r\n')[0].split(b' ')[1].decode(), body


class Agreement(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='cunicorn-agree-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        server.write_file(os.path.join(self.dir, 'app.py'), APP)

    def run_check(self, args, fds=()):
        """--check-config's verdict, and what it printed."""
        p = subprocess.Popen([server.binary(), '--check-config', '--chdir', self.dir] + args + ['app:app'],
                             pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True, env=server.Server().environment())
        self.addCleanup(server.kill_group, p.pid)
        try:
            out = p.communicate(timeout=DEADLINE * server.SLOW)[0]
        except subprocess.TimeoutExpired:
            self.fail('--check-config %r did not finish' % args)
        return (ACCEPT if p.returncode == 0 else REFUSE), out.decode('utf-8', 'replace')

    def run_start(self, args, answer, fds=()):
        """Starts the server: REFUSE if it exits, else ACCEPT once answer()
        gives a response (its result is returned with the verdict)."""
        log = os.path.join(self.dir, 'start.log')
        p = subprocess.Popen([server.binary(), '--chdir', self.dir] + args + ['app:app'],
                             pass_fds=fds, stdin=subprocess.DEVNULL, stdout=open(log, 'wb'),
                             stderr=subprocess.STDOUT, start_new_session=True, env=server.Server().environment())
        self.addCleanup(server.kill_group, p.pid)
        got = []

        def settled():
            if p.poll() is not None:
                return True
            try:
                got.append(answer())
                return True
            except OSError:
                return False
        try:
            self.assertTrue(server.wait_for(settled, DEADLINE), 'neither served nor exited: %r\n%s'
                            % (args, server.read_text(log)))
            if got:
                return ACCEPT, got[0], server.read_text(log)
            return REFUSE, None, server.read_text(log)
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(DEADLINE * server.SLOW)
                except subprocess.TimeoutExpired:
                    server.kill_group(p.pid)
                    p.wait()

    # -- bind

    def bind_case(self, label, form, expected, target):
        port = server.free_port()
        fds = []
        listener = None
        if '{fd}' in form:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(listener.close)
            listener.bind(('127.0.0.1', 0))
            listener.listen(16)
            port = listener.getsockname()[1]
            fds.append(listener.fileno())
        pipe = None
        if '{pipe}' in form:
            pipe = os.pipe()
            self.addCleanup(os.close, pipe[0])
            self.addCleanup(os.close, pipe[1])
            fds.append(pipe[0])
        value = form.format(port=port, dir=self.dir, fd=fds[0] if listener else -1,
                            pipe=pipe[0] if pipe else -1)
        args = ['-b', value, '--error-logfile', '-']
        check, out = self.run_check(args, fds)
        self.assertEqual(check, expected, '--check-config -b %r: %s' % (value, out))

        def answer():
            raw = build_request('GET', '/', close=True)
            if target == 'unix':
                return ask(socket.AF_UNIX, value[len('unix://'):] if value.startswith('unix://') else value[len('unix:'):],
                           raw)
            if target == 'tcp6':
                return ask(socket.AF_INET6, ('::1', port), raw)
            return ask(socket.AF_INET, ('127.0.0.1', port), raw)
        start, got, log = self.run_start(args, answer, fds)
        self.assertEqual(start, check, 'a start with -b %r: %s' % (value, log))
        if start == ACCEPT:
            self.assertEqual(got[0], '200', got)
        else:
            # The same reason, in the same words, as --check-config's.
            self.assertIn('Invalid value for bind: %s (' % value, out)
            self.assertIn('Invalid value for bind: %s (' % value, log)

    @server.timeout(300)
    def test_bind_forms(self):
        for label, form, expected, target in BIND_CASES:
            if target == 'tcp6' and not ipv6_available():
                continue
            with self.subTest(label):
                self.bind_case(label, form, expected, target)

    # -- allow-lists

    @server.timeout(300)
    def test_forwarded_allow_ips_forms(self):
        for value, expected, trusted in ALLOW_CASES:
            with self.subTest(value):
                port = server.free_port()
                args = ['-b', '127.0.0.1:%d' % port, '--forwarded-allow-ips', value]
                check, out = self.run_check(args)
                self.assertEqual(check, expected, out)

                def answer():
                    return ask(socket.AF_INET, ('127.0.0.1', port),
                               build_request('GET', '/', [('X-Forwarded-Proto', 'https')], close=True))
                start, got, log = self.run_start(args, answer)
                self.assertEqual(start, check, log)
                if start == ACCEPT:
                    self.assertEqual(got[0], '200', got)
                    self.assertIn(b'"scheme": "%s"' % (b'https' if trusted else b'http'), got[1])
                else:
                    self.assertIn('Invalid value for forwarded_allow_ips', out)
                    self.assertIn('Invalid value for forwarded_allow_ips', log)

    @server.timeout(300)
    def test_proxy_allow_ips_forms(self):
        for value, expected, trusted in ALLOW_CASES:
            with self.subTest(value):
                port = server.free_port()
                args = ['-b', '127.0.0.1:%d' % port, '--proxy-protocol', 'v1', '--proxy-allow-from', value]
                check, out = self.run_check(args)
                self.assertEqual(check, expected, out)

                def answer():
                    return ask(socket.AF_INET, ('127.0.0.1', port),
                               b'PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n' + build_request('GET', '/', close=True))
                start, got, log = self.run_start(args, answer)
                self.assertEqual(start, check, log)
                if start == ACCEPT:
                    self.assertEqual(got[0], '200' if trusted else '403', got)
                    if trusted:
                        self.assertIn(b'"remote": "203.0.113.7"', got[1])
                else:
                    self.assertIn('Invalid value for proxy_allow_ips', out)
                    self.assertIn('Invalid value for proxy_allow_ips', log)


# --------------------------------------------------------------------------
# the cfg object of hooks

CFG_CONF = r'''
import os

HERE = os.path.dirname(os.path.abspath(__file__))
secure_scheme_headers = {'X-SCHEME': '%(scheme)s'}
proc_name = '%(name)s'
timeout = %(timeout)d
statsd_host = 'localhost:9125'


from gunicorn.glogging import Logger as _Base


class Logger(_Base):
    pass


logger_class = Logger


def post_worker_init(worker):
    c = worker.cfg
    with open(os.path.join(HERE, 'cfg.log'), 'a') as f:
        f.write(repr((c.proc_name, c.timeout, c.settings['timeout'].value, c.secure_scheme_headers,
                      c.forwarded_allow_ips, c.bind, c.address, c.user == os.geteuid(),
                      c.post_worker_init is post_worker_init, callable(c.on_starting),
                      c.on_starting(None), c.logconfig_dict, c.sendfile, c.statsd_host,
                      getattr(c.logger_class, '__name__', 'not a class'))) + '\n')
'''


def cfg_conf(name, timeout, scheme):
    return CFG_CONF % {'name': name, 'timeout': timeout, 'scheme': scheme}


class HookConfigObject(unittest.TestCase):
    def lines(self, srv):
        return [eval(l) for l in server.read_text(srv.path('cfg.log')).splitlines()]

    def test_cfg_holds_the_loaded_values_and_follows_a_hup(self):
        conf = cfg_conf('first', 31, 'https')
        srv = server.Server(APP, ['-c', 'conf.py', '--forwarded-allow-ips', '10.0.0.0/8, 127.0.0.1'],
                            files={'conf.py': conf})
        srv.start()
        self.addCleanup(srv.stop)
        self.assertTrue(server.wait_for(lambda: len(self.lines(srv)) == 1, 30), srv.log_text())
        bind = '127.0.0.1:%d' % srv.port
        self.assertEqual(self.lines(srv)[0],
                         ('first', 31, 31, {'X-SCHEME': 'https'}, ['10.0.0.0/8', '127.0.0.1'], [bind],
                          [('127.0.0.1', srv.port)], True, True, True, None, {}, True, ('localhost', 9125), 'Logger'))
        old = srv.worker_pid()
        server.write_file(srv.path('conf.py'), cfg_conf('second', 32, 'on'))
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(server.wait_for(lambda: len(self.lines(srv)) == 2, 30), srv.log_text())
        self.assertEqual(self.lines(srv)[1][:4], ('second', 32, 32, {'X-SCHEME': 'on'}))
        self.assertTrue(server.wait_for(lambda: old not in server.children(srv.pid), 30))


if __name__ == '__main__':
    unittest.main()
