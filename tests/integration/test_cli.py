"""Command line, configuration sources and application loading, as Gunicorn
does them (reference sections a.3, a.4 and b.4)."""

import os
import shutil
import signal
import tempfile
import unittest

import server
from server import Server, run_binary, write_file

HELLO = server.HELLO_APP

URI_APP = r'''
def _make(text):
    body = text.encode()

    def wsgi(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    return wsgi


application = _make('default application')
other = _make('named attribute')


def factory():
    return _make('factory without arguments')


def factory_arg(word, n=1):
    return _make('factory with %s x%d' % (word, n))
'''


class Case(unittest.TestCase):
    def tmpdir(self):
        d = tempfile.mkdtemp(prefix='cunicorn-cli-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def start(self, srv):
        srv.start()
        self.addCleanup(srv.stop)
        return srv


class Informational(Case):
    def test_version(self):
        status, out, err = run_binary(['-v'], timeout=30)
        self.assertEqual(status, 0, err)
        self.assertRegex(out + err, r'\(version \d+\.\d+(\.\d+)?\)')

    def test_version_long(self):
        status, out, err = run_binary(['--version'], timeout=30)
        self.assertEqual(status, 0, err)
        self.assertRegex(out + err, r'\d+\.\d+')

    def test_help(self):
        status, out, err = run_binary(['-h'], timeout=30)
        self.assertEqual(status, 0, err)
        for opt in ('--bind', '--workers', '--config', '--keep-alive', '--error-logfile'):
            self.assertIn(opt, out)

    def test_no_app_module(self):
        status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port()],
                                      timeout=30, cwd=self.tmpdir())
        self.assertEqual(status, 1, out + err)
        self.assertIn('No application module specified', out + err)


class InvalidValues(Case):
    """A bad value: a short error naming the setting and the value, no
    traceback, no server. Exit 1 (argparse type errors may exit 2, as
    Gunicorn's own argparse does); an unknown option exits 2."""

    def check(self, args, names, value, statuses=(1,)):
        d = self.tmpdir()
        write_file(os.path.join(d, 'app.py'), HELLO)
        status, out, err = run_binary(args + ['app:app'], timeout=20, cwd=d)
        text = out + err
        self.assertIn(status, statuses, 'exit status %s\n%s' % (status, text))
        self.assertNotIn('Traceback', text)
        lines = [l for l in text.splitlines() if l.strip()]
        self.assertTrue(lines, 'no error message')
        self.assertLessEqual(len(lines), 3, text)
        hits = [l for l in lines if value in l and any(n in l for n in names)]
        self.assertTrue(hits, 'no line names the setting %s and the value %r:\n%s'
                        % (names[0], value, text))

    def test_negative_workers(self):
        self.check(['--workers=-1'], ('workers', '-w'), '-1')

    def test_non_numeric_workers(self):
        self.check(['-w', 'abc'], ('workers', '-w'), 'abc', statuses=(1, 2))

    def test_bad_port(self):
        self.check(['--bind', 'host:notaport'], ('bind', '-b'), 'notaport')

    def test_non_numeric_limit_request_line(self):
        self.check(['--limit-request-line', 'x'], ('limit-request-line', 'limit_request_line'),
                   "x", statuses=(1, 2))

    def test_unknown_option(self):
        self.check(['--frobnicate'], ('frobnicate',), '--frobnicate', statuses=(2,))


class ConfigSources(Case):
    def test_gunicorn_cmd_args(self):
        port = server.free_port()
        srv = self.start(Server(HELLO, bind=None, port=port, env={
            'GUNICORN_CMD_ARGS': '--bind=127.0.0.1:%d --workers=2' % port}))
        self.assertEqual(srv.get('/x').body, b'hello /x')
        srv.wait_workers(2)

    def test_config_file(self):
        port = server.free_port()
        srv = Server(HELLO, bind=None, port=port, files={'conf.py': '''
            workers = 2
            bind = '127.0.0.1:%d'
            ''' % port})
        srv._prepare()
        srv.args = ['-c', srv.path('conf.py')]
        self.start(srv)
        self.assertEqual(srv.get('/c').body, b'hello /c')
        srv.wait_workers(2)

    def test_config_file_without_py_extension(self):
        port = server.free_port()
        srv = Server(HELLO, bind=None, port=port, files={'config/gunicorn.conf': '''
            bind = ['127.0.0.1:%d']
            workers = 1
            ''' % port})
        srv._prepare()
        srv.args = ['-c', './config/gunicorn.conf']
        self.start(srv)
        self.assertEqual(srv.get('/d').body, b'hello /d')

    def test_command_line_overrides_config_file(self):
        port = server.free_port()
        srv = Server(HELLO, bind=None, port=port, files={'conf.py': '''
            workers = 3
            bind = '127.0.0.1:%d'
            ''' % port})
        srv._prepare()
        srv.args = ['-c', srv.path('conf.py'), '--workers', '1']
        self.start(srv)
        self.assertEqual(srv.get('/').status, 200)
        srv.wait_workers(1)

    def test_config_file_that_raises(self):
        d = self.tmpdir()
        write_file(os.path.join(d, 'app.py'), HELLO)
        write_file(os.path.join(d, 'bad.conf.py'), '''
            workers = 1
            raise RuntimeError('config-file-boom')
            ''')
        status, out, err = run_binary(['-c', 'bad.conf.py', '-b', '127.0.0.1:%d'
                                       % server.free_port(), 'app:app'], timeout=30, cwd=d)
        self.assertEqual(status, 1, out + err)
        self.assertIn('Traceback', out + err)
        self.assertIn('config-file-boom', out + err)

    def test_missing_config_file(self):
        d = self.tmpdir()
        status, out, err = run_binary(['-c', 'nope.py', 'app:app'], timeout=30, cwd=d)
        self.assertEqual(status, 1, out + err)
        self.assertIn('nope.py', out + err)

    def test_web_concurrency(self):
        srv = self.start(Server(HELLO, env={'WEB_CONCURRENCY': '3'}))
        self.assertEqual(srv.get('/').status, 200)
        srv.wait_workers(3)

    def test_default_config_file_in_cwd(self):
        port = server.free_port()
        srv = self.start(Server(HELLO, bind=None, port=port, files={'gunicorn.conf.py': '''
            bind = '127.0.0.1:%d'
            workers = 2
            ''' % port}))
        self.assertEqual(srv.get('/').status, 200)
        srv.wait_workers(2)

    def test_check_config_ok(self):
        d = self.tmpdir()
        write_file(os.path.join(d, 'app.py'), HELLO)
        status, out, err = run_binary(['--check-config', 'app:app'], timeout=30, cwd=d)
        self.assertEqual(status, 0, out + err)

    def test_check_config_bad_app(self):
        d = self.tmpdir()
        status, out, err = run_binary(['--check-config', 'nosuchmodule:app'], timeout=30, cwd=d)
        self.assertEqual(status, 1, out + err)


class AppURI(Case):
    def serve(self, uri):
        srv = self.start(Server(URI_APP, module='uriapp', appname=uri))
        r = srv.get('/')
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    def test_module_only(self):
        self.assertEqual(self.serve('uriapp'), 'default application')

    def test_module_and_name(self):
        self.assertEqual(self.serve('uriapp:other'), 'named attribute')

    def test_factory_call(self):
        self.assertEqual(self.serve('uriapp:factory()'), 'factory without arguments')

    def test_factory_with_literal_args(self):
        self.assertEqual(self.serve("uriapp:factory_arg('word')"), 'factory with word x1')

    def test_factory_with_keyword_arg(self):
        self.assertEqual(self.serve("uriapp:factory_arg('kw', n=3)"), 'factory with kw x3')


class AppLoadFailures(Case):
    """The master gives up with the worker's boot status (no fork loop)."""

    def run_app(self, uri):
        d = self.tmpdir()
        write_file(os.path.join(d, 'uriapp.py'), URI_APP)
        return run_binary(['-b', '127.0.0.1:%d' % server.free_port(), '--chdir', d,
                           '--error-logfile', os.path.join(d, 'error.log'), uri],
                          timeout=60, cwd=d)

    def test_missing_module_exit_3(self):
        status, out, err = self.run_app('nosuchmodule:app')
        self.assertEqual(status, 3, out + err)

    def test_missing_attribute_exit_4(self):
        status, out, err = self.run_app('uriapp:nosuchname')
        self.assertEqual(status, 4, out + err)

    def test_non_literal_factory_args_exit_4(self):
        status, out, err = self.run_app('uriapp:factory_arg(other)')
        self.assertEqual(status, 4, out + err)

    def test_import_error_in_module_exit_3(self):
        d = self.tmpdir()
        write_file(os.path.join(d, 'broken.py'), 'import no_such_dependency_xyz\n')
        status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port(),
                                       '--chdir', d, 'broken:app'], timeout=60, cwd=d)
        self.assertEqual(status, 3, out + err)
        self.assertIn('no_such_dependency_xyz', out + err)
        if not server.is_gunicorn():
            # The loader's frame names its file in the source tree and shows
            # its line, though the file is built into the binary.
            path = os.path.join(server.ROOT, 'src', 'py', 'import_app.py')
            with open(path) as f:
                lineno = next(n for n, line in enumerate(f, 1)
                              if 'importlib.import_module(module)' in line)
            self.assertIn('File "src/py/import_app.py", line %d, in import_app\n'
                          '    mod = importlib.import_module(module)\n' % lineno, out + err)



ENV_APP = r'''
import os

def app(environ, start_response):
    body = ('%s|%s|%s' % (os.environ.get('GREETING'), os.getenv('GREETING'),
                          os.environ.get('SERVER_SOFTWARE'))).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


class RawEnv(unittest.TestCase):
    """raw_env (-e KEY=VALUE) reaches the app's os.environ, as Gunicorn sets
    it there, and a HUP with a new value reaches the new workers."""

    def test_cli_env_reaches_os_environ(self):
        srv = Server(ENV_APP, ['-e', 'GREETING=hello', '-c', 'conf.py'],
                     files={'conf.py': 'raw_env = ["GREETING=from-file"]\n'})
        srv.start()
        self.addCleanup(srv.stop)
        greeting, from_getenv, software = srv.get('/').text.split('|')
        self.assertEqual((greeting, from_getenv), ('hello', 'hello'))  # the CLI wins over the file
        if not server.is_gunicorn():
            self.assertTrue(software.startswith('cunicorn/'), software)

    def test_hup_applies_a_changed_raw_env(self):
        srv = Server(ENV_APP, ['-c', 'conf.py'], files={'conf.py': 'raw_env = ["GREETING=one"]\n'})
        srv.start()
        self.addCleanup(srv.stop)
        self.assertTrue(srv.get('/').text.startswith('one|one|'))
        write_file(srv.path('conf.py'), 'raw_env = ["GREETING=two"]\n')
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(server.wait_for(lambda: srv.get('/').text.startswith('two|two|'), 60 * server.SLOW))


ASGI_APPS = r'''
import functools


async def coroutine_function(scope, receive, send):
    pass


class AsyncCall:
    async def __call__(self, scope, receive, send):
        pass


async_call = AsyncCall()
partial = functools.partial(coroutine_function, {'type': 'http'})


def returns_coroutine(scope, receive=None, send=None):
    # Not async def itself: only calling it shows a coroutine.
    return coroutine_function(scope, receive, send)
'''


class AsgiApplication(Case):
    """An ASGI application under a WSGI worker: refused when loaded, with
    one log line that says so and the master's APP_LOAD_ERROR status (4),
    not a 500 for every request. cunicorn's own check: Gunicorn's sync
    worker calls the app and fails each request."""

    def setUp(self):
        if server.is_gunicorn():
            self.skipTest("cunicorn's check; Gunicorn answers 500 to each request")

    def refused(self, attr, extra=()):
        d = self.tmpdir()
        write_file(os.path.join(d, 'asgiapp.py'), ASGI_APPS)
        log = os.path.join(d, 'error.log')
        status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port(), '--chdir', d,
                                       '--error-logfile', log] + list(extra) + ['asgiapp:' + attr],
                                      timeout=60, cwd=d)
        text = server.read_text(log)
        self.assertEqual(status, 4, out + err + text)
        lines = [ln for ln in text.splitlines() if 'ASGI' in ln]
        self.assertEqual(len(lines), 1, text)
        self.assertRegex(lines[0], r"\[ERROR\] Application object 'asgiapp:%s' is an ASGI application "
                                   r"\(.*\); cunicorn serves WSGI applications only" % attr)
        self.assertNotIn('Traceback', text)
        self.assertIn('Reason: App failed to load.', text)
        return lines[0]

    def test_async_def_function(self):
        self.assertIn('(an async def callable)', self.refused('coroutine_function'))

    def test_object_with_async_call(self):
        self.assertIn('(its __call__ is async def)', self.refused('async_call'))

    def test_partial_of_async_def(self):
        self.refused('partial')

    def test_preloaded_in_the_master(self):
        self.refused('coroutine_function', ['--preload'])

    def test_check_config(self):
        d = self.tmpdir()
        write_file(os.path.join(d, 'asgiapp.py'), ASGI_APPS)
        status, out, err = run_binary(['--check-config', 'asgiapp:async_call'], timeout=30, cwd=d)
        self.assertEqual(status, 1, out + err)
        self.assertIn("'asgiapp:async_call' is an ASGI application", err)

    def test_coroutine_returned_by_a_plain_function(self):
        # Known only once called: each request gets a 500 and one line
        # that names the cause, and the worker goes on serving.
        srv = self.start(Server(ASGI_APPS, module='asgiapp', appname='asgiapp:returns_coroutine'))
        for _ in range(2):
            r = srv.get('/')
            self.assertEqual(r.status, 500, r)
        srv.stop()
        text = srv.log_text()
        lines = [ln for ln in text.splitlines() if 'ASGI' in ln]
        self.assertEqual(len(lines), 2, text)
        self.assertEqual(lines[0], "TypeError: the application returned a coroutine object, not a WSGI response: "
                                   "it is an ASGI application, and cunicorn serves WSGI applications only")
        self.assertNotIn('never awaited', text)
        self.assertNotIn('Traceback', text)


class RemovedWorkerClass(Case):
    """-k eventlet: the worker was removed in Gunicorn 26.0 and 26.1 has no
    such name. util.load_class's RuntimeError, printed by Application.run:
    blank line, "Error: class uri ... invalid or not found: ", the failed
    entry-point lookup in brackets; exit 1, nothing started."""

    def test_eventlet_refused(self):
        d = self.tmpdir()
        write_file(os.path.join(d, 'app.py'), HELLO)
        status, out, err = run_binary(['-k', 'eventlet', '-b', '127.0.0.1:%d' % server.free_port(),
                                       'app:app'], timeout=30, cwd=d)
        self.assertEqual(status, 1, out + err)
        self.assertTrue(err.startswith("\nError: class uri 'eventlet' invalid or not found: \n\n["), err)
        self.assertIn("ImportError: Entry point ('gunicorn.workers', 'eventlet') not found\n]\n", err)
        self.assertNotIn('Listening at', out + err)


if __name__ == '__main__':
    unittest.main()
