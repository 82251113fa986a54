"""Configuration sources and the deployment guides' configurations
(issue 4: "Config sources layered as Gunicorn does", "Real configs from the
field"; reference section a.3).

Precedence: settings of each type (int, bool flag, string, list, comma
list, choice) are given a different value in the config file, in
GUNICORN_CMD_ARGS and on the command line, and each combination of
sources is checked with --print-config: default < file < env < command
line, setting by setting.

Field configs: tests/data/configs/ (see the README there) must either run
as under Gunicorn (checked with --check-config and the guide's Flask app)
or fail with a message naming the setting and the path.
"""

import difflib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest

import server
from server import run_binary, write_file

CONFIGS = os.path.join(server.ROOT, 'tests', 'data', 'configs')

TINY_APP = r'''
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '0')])
    return [b'']
'''


class Setting:
    """One setting fed through every source.

    default: how --print-config shows the default; file: (Python source of
    the value, shown); env and cli: (options, shown)."""

    def __init__(self, name, default, file, env, cli):
        self.name = name
        self.default = default
        self.file = file
        self.env = env
        self.cli = cli

    def expected(self, sources):
        for source in ('cli', 'env', 'file'):
            if source in sources:
                return getattr(self, source)[1]
        return self.default


SETTINGS = [
    # int
    Setting('workers', '1', ('2', '2'), (['--workers=3'], '3'), (['-w', '4'], '4')),
    Setting('timeout', '30', ('31', '31'), (['--timeout', '32'], '32'), (['-t', '33'], '33')),
    Setting('keepalive', '2', ('"5"', '5'), (['--keep-alive=6'], '6'), (['--keep-alive', '7'], '7')),
    Setting('backlog', '2048', ('0x64', '100'), (['--backlog', '200'], '200'), (['--backlog=300'], '300')),
    Setting('limit_request_line', '4094', ('1000', '1000'), (['--limit-request-line', '2000'], '2000'),
            (['--limit-request-line=3000'], '3000')),
    Setting('max_requests', '0', ('10', '10'), (['--max-requests', '20'], '20'),
            (['--max-requests', '30'], '30')),
    # bool flags: the options can only turn them on (--no-sendfile: off),
    # so the file gives the other value.
    Setting('preload_app', 'False', ("'false'", 'False'), (['--preload'], 'True'), (['--preload'], 'True')),
    Setting('reuse_port', 'False', ('False', 'False'), (['--reuse-port'], 'True'), (['--reuse-port'], 'True')),
    Setting('sendfile', 'None', ('True', 'True'), (['--no-sendfile'], 'False'), (['--no-sendfile'], 'False')),
    Setting('capture_output', 'False', ("'TRUE'", 'True'), (['--capture-output'], 'True'),
            (['--capture-output'], 'True')),
    # strings
    Setting('loglevel', 'info', ("'warning'", 'warning'), (['--log-level', 'error'], 'error'),
            (['--log-level=debug'], 'debug')),
    Setting('proc_name', 'None', ("'  fromfile '", 'fromfile'), (['-n', 'fromenv'], 'fromenv'),
            (['--name', 'fromcli'], 'fromcli')),
    # lists (repeatable options)
    Setting('bind', "['127.0.0.1:8000']", ("'127.0.0.1:8001'", "['127.0.0.1:8001']"),
            (['-b', '127.0.0.1:8002', '-b', 'unix:/tmp/x.sock'], "['127.0.0.1:8002', 'unix:/tmp/x.sock']"),
            (['--bind=127.0.0.1:8003'], "['127.0.0.1:8003']")),
    Setting('raw_env', '[]', ("['A=file', 'B=file']", "['A=file', 'B=file']"), (['-e', 'A=env'], "['A=env']"),
            (['--env', 'A=cli', '-e', 'C=cli'], "['A=cli', 'C=cli']")),
    # comma lists
    Setting('forwarded_allow_ips', "['127.0.0.1', '::1']", ("'10.0.0.1'", "['10.0.0.1']"),
            (['--forwarded-allow-ips', '10.0.0.2, 10.0.0.0/8'], "['10.0.0.2', '10.0.0.0/8']"),
            (['--forwarded-allow-ips=*'], "['*']")),
    # choices
    Setting('header_map', 'drop', ("'REFUSE'", 'refuse'), (['--header-map', 'dangerous'], 'dangerous'),
            (['--header-map=refuse'], 'refuse')),
    Setting('proxy_protocol', 'off', ("'v1'", 'v1'), (['--proxy-protocol', 'v2'], 'v2'),
            (['--proxy-protocol'], 'auto')),
]

# Every combination of sources.
RUNS = [set(), {'file'}, {'env'}, {'cli'}, {'file', 'env'}, {'file', 'cli'}, {'env', 'cli'},
        {'file', 'env', 'cli'}]


def parse_print_config(text):
    values = {}
    for line in text.splitlines():
        m = re.match(r'^([a-z_][a-z0-9_]*)\s*= (.*)$', line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


class Case(unittest.TestCase):
    def tmpdir(self):
        d = tempfile.mkdtemp(prefix='cunicorn-sources-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def cunicorn_only(self, why):
        if server.is_gunicorn():
            self.skipTest(why)


class Precedence(Case):
    @server.timeout(180)
    def test_default_file_env_cli(self):
        d = self.tmpdir()
        write_file(os.path.join(d, 'tiny.py'), TINY_APP)
        conf = os.path.join(d, 'conf.py')
        settings = SETTINGS
        for sources in RUNS:
            args, env = [], {}
            if 'file' in sources:
                write_file(conf, ''.join('%s = %s\n' % (s.name, s.file[0]) for s in settings))
                args += ['-c', conf]
            if 'env' in sources:
                env['GUNICORN_CMD_ARGS'] = shlex.join(a for s in settings for a in s.env[0])
            if 'cli' in sources:
                args += [a for s in settings for a in s.cli[0]]
            # The app first: a bare --proxy-protocol would take it as its value.
            status, out, err = run_binary(['--print-config', 'tiny:app', '--chdir', d] + args,
                                          env=env, cwd=d, timeout=60)
            label = '+'.join(sorted(sources)) or 'defaults'
            self.assertEqual(status, 0, '%s: exit %s\n%s%s' % (label, status, out, err))
            values = parse_print_config(out)
            if not sources and server.is_gunicorn():
                # Only the settings this Gunicorn version has as 26.1 does
                # (Debian's 20.1 lacks header_map, and its proxy_protocol
                # is a boolean).
                settings = [s for s in SETTINGS if values.get(s.name) == s.default]
            for s in settings:
                with self.subTest(sources=label, setting=s.name):
                    self.assertIn(s.name, values, out)
                    self.assertEqual(values[s.name], s.expected(sources))

    def test_config_file_named_in_env_and_on_command_line(self):
        d = self.tmpdir()
        write_file(os.path.join(d, 'tiny.py'), TINY_APP)
        write_file(os.path.join(d, 'env.conf.py'), 'workers = 5\ntimeout = 50\n')
        write_file(os.path.join(d, 'cli.conf.py'), 'workers = 6\n')
        write_file(os.path.join(d, 'gunicorn.conf.py'), 'workers = 7\nkeepalive = 70\n')

        def values(args, env=None):
            status, out, err = run_binary(['--print-config'] + args + ['tiny:app'], env=env, cwd=d)
            self.assertEqual(status, 0, out + err)
            return parse_print_config(out)

        # ./gunicorn.conf.py when no -c is given anywhere.
        v = values([])
        self.assertEqual((v['workers'], v['keepalive']), ('7', '70'))
        # -c in GUNICORN_CMD_ARGS replaces it; -c on the command line wins.
        v = values([], {'GUNICORN_CMD_ARGS': '-c env.conf.py'})
        self.assertEqual((v['workers'], v['timeout'], v['keepalive']), ('5', '50', '2'))
        v = values(['-c', 'cli.conf.py'], {'GUNICORN_CMD_ARGS': '-c env.conf.py'})
        self.assertEqual((v['workers'], v['timeout']), ('6', '30'))


class FieldConfigs(Case):
    """tests/data/configs/*.conf.py with the guides' Flask app."""

    def setUp(self):
        if not server.module_available('flask'):
            self.skipTest('Flask is not installed for /usr/bin/python3 (Debian python3-flask)')
        self.dir = self.tmpdir()
        for name in os.listdir(CONFIGS):
            shutil.copy(os.path.join(CONFIGS, name), self.dir)

    def check(self, config, *args):
        return run_binary(['--check-config', '-c', config] + list(args) + ['guide_flask_app:app'],
                          cwd=self.dir, timeout=60)

    def print_config(self, config, *args):
        status, out, err = run_binary(['--print-config', '-c', config] + list(args) + ['guide_flask_app:app'],
                                      cwd=self.dir, timeout=60)
        self.assertEqual(status, 0, out + err)
        return parse_print_config(out), err

    def assert_refused(self, status, out, err, setting, path):
        text = out + err
        self.assertEqual(status, 1, text)
        self.assertNotIn('Traceback', text)
        lines = [l for l in text.splitlines() if setting in l and path in l]
        self.assertTrue(lines, 'no line names %s and %s:\n%s' % (setting, path, text))

    def test_guide_a_pidfile_directory_missing(self):
        self.cunicorn_only('Gunicorn finds a missing directory only when it starts')
        if os.path.exists('/home/your_path'):
            self.skipTest('/home/your_path exists here')
        status, out, err = self.check('guide-a.conf.py')
        self.assert_refused(status, out, err, 'pidfile', '/home/your_path/gunicorn.pid')

    def test_guide_a_otherwise_as_gunicorn(self):
        # With the three paths moved somewhere that exists, the rest of the
        # file is accepted, with Gunicorn's readings of its oddities.
        logs = self.tmpdir()
        paths = ['-p', os.path.join(logs, 'g.pid'), '--access-logfile', os.path.join(logs, 'a.log'),
                 '--error-logfile', os.path.join(logs, 'e.log')]
        status, out, err = self.check('guide-a.conf.py', *paths)
        self.assertEqual(status, 0, out + err)
        self.assertEqual(os.listdir(logs), [], '--check-config created files')
        v, err = self.print_config('guide-a.conf.py', *paths)
        self.assertEqual(v['workers'], str((os.cpu_count() or 1) * 2 + 1))
        self.assertEqual(v['daemon'], 'False')                        # 'false' is a boolean string
        self.assertEqual(v['raw_env'], "['APE_API_ENV=DEV']")         # one string, wrapped
        self.assertEqual(v['pythonpath'], '/home/your_path/venv/bin/python3')  # just a path
        self.assertEqual(v['bind'], "['0.0.0.0:5000']")
        self.assertEqual(v['threads'], '3')
        self.assertEqual(v['worker_connections'], '2000')
        self.assertEqual(v['max_requests'], '2000')
        self.assertEqual(v['backlog'], '512')
        self.assertEqual(v['proc_name'], 'gunicorn_process')
        self.assertEqual(v['timeout'], '120')
        self.assertEqual(v['graceful_timeout'], '300')
        self.assertEqual(v['keepalive'], '3')
        self.assertEqual(v['limit_request_line'], '5120')
        self.assertEqual(v['limit_request_fields'], '101')
        self.assertEqual(v['limit_request_field_size'], '8190')
        self.assertEqual(v['loglevel'], 'info')
        self.assertEqual(v['pidfile'], os.path.join(logs, 'g.pid'))   # the command line wins
        if not server.is_gunicorn():
            # gevent runs; threads does not apply to it, as in Gunicorn.
            self.assertNotIn('worker_class', err)
            self.assertNotIn('threads = 3', err)

    def test_guide_b_relative_log_directory_missing(self):
        self.cunicorn_only('Gunicorn finds a missing directory only when it starts')
        status, out, err = self.check('guide-b.conf.py')
        self.assert_refused(status, out, err, 'accesslog', 'log/access.log')
        # The error log's directory is the same one; with it made, the
        # file runs, the last loglevel assignment winning.
        os.mkdir(os.path.join(self.dir, 'log'))
        status, out, err = self.check('guide-b.conf.py')
        if not os.path.isdir('/var/run'):
            self.assert_refused(status, out, err, 'pidfile', '/var/run/gunicorn.pid')
            return
        self.assertEqual(status, 0, out + err)
        self.assertEqual(os.listdir(os.path.join(self.dir, 'log')), [], '--check-config created log files')
        v, _ = self.print_config('guide-b.conf.py')
        self.assertEqual(v['loglevel'], 'warning')
        self.assertEqual(v['accesslog'], 'log/access.log')
        self.assertEqual(v['errorlog'], 'log/debug.log')

    def test_guide_c_runs(self):
        for d in ('/var/run', '/var/log'):
            if not os.path.isdir(d):
                self.skipTest('%s does not exist here' % d)
        before = {p: os.path.exists(p) for p in ('/var/log/gunicorn_acess.log', '/var/log/gunicorn_error.log',
                                                  '/var/run/gunicorn.pid')}
        status, out, err = self.check('guide-c.conf.py')
        self.assertEqual(status, 0, out + err)
        for p, existed in before.items():
            if not existed:
                self.assertFalse(os.path.exists(p), '--check-config created %s' % p)
        v, _ = self.print_config('guide-c.conf.py')
        self.assertEqual(v['bind'], "['127.0.0.1:5000']")
        self.assertEqual(v['loglevel'], 'warning')
        self.assertEqual(v['daemon'], 'False')


class FieldCommandLines(Case):
    """The command lines of the guides' README, with --check-config."""

    def setUp(self):
        if not server.module_available('flask'):
            self.skipTest('Flask is not installed for /usr/bin/python3 (Debian python3-flask)')
        self.dir = self.tmpdir()
        for module in ('app', 'test', 'main', 'start', 'manager'):
            shutil.copy(os.path.join(CONFIGS, 'guide_flask_app.py'), os.path.join(self.dir, module + '.py'))
        write_file(os.path.join(self.dir, 'gunicorn_config.py'), 'workers = 2\nbind = "127.0.0.1:8000"\n')
        os.mkdir(os.path.join(self.dir, 'config'))
        write_file(os.path.join(self.dir, 'config', 'gunicorn.conf'), 'workers = 2\nloglevel = "debug"\n')

    def run_line(self, line, env=None):
        return run_binary(['--check-config'] + line.split(), cwd=self.dir, env=env, timeout=60)

    def test_command_lines_work(self):
        for line in ('-w 4 -b 0.0.0.0:8000 app:app',
                     '-c gunicorn_config.py test:app',
                     '-c ./config/gunicorn.conf main:app',
                     '-k gevent -w 8 -b 0.0.0.0:5000 start:app',
                     '-b 127.0.0.1:8000 -b [::1]:9000 manager:app',
                     '-b 127.0.0.1:8000 -e abc=123 manager:app',
                     '-w 4 -b 0.0.0.0:9019 main:app --log-level=debug'):
            with self.subTest(line=line):
                status, out, err = self.run_line(line)
                self.assertEqual(status, 0, out + err)
        status, out, err = self.run_line('app:app', env={'GUNICORN_CMD_ARGS': '--bind=127.0.0.1 --workers=3'})
        self.assertEqual(status, 0, out + err)

    def test_access_log_in_missing_directory(self):
        self.cunicorn_only('Gunicorn finds a missing directory only when it starts')
        if os.path.exists('/log'):
            self.skipTest('/log exists here')
        status, out, err = self.run_line('-w 4 -b 127.0.0.1:5000 --access-logfile /log/flask.log app:app')
        self.assertEqual(status, 1, out + err)
        self.assertRegex(out + err, r'accesslog.*/log/flask\.log')


class MissingDirectoriesAtStart(Case):
    """Without --check-config too: the server refuses to start, naming the
    setting and the path, and binds nothing."""

    def test_pidfile_and_logs(self):
        self.cunicorn_only('Gunicorn words these differently')
        d = self.tmpdir()
        write_file(os.path.join(d, 'tiny.py'), TINY_APP)
        missing = os.path.join(d, 'no-such-dir')
        for setting, option in (('pidfile', '--pid'), ('accesslog', '--access-logfile'),
                                ('errorlog', '--error-logfile')):
            with self.subTest(setting=setting):
                path = os.path.join(missing, 'x')
                status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port(), option, path,
                                               'tiny:app'], cwd=d, timeout=30)
                self.assertEqual(status, 1, out + err)
                self.assertIn("%s: cannot write '%s': directory '%s' does not exist" % (setting, path, missing), err)


class WarningsOnReload(Case):
    """Warnings about the configuration go to stderr each time it is read,
    at start-up and on every HUP, as gunicorn's own (util.warn for a config
    file without a .py extension, validator warnings) do; never to the
    error log file."""

    BANNER = 'WARNING: configuration file should have a valid Python extension.'
    NO_EFFECT = 'Warning: tmp_upload_dir = x has no effect'

    def counts(self, srv):
        err = server.read_text(srv.path('stderr.txt'))
        return err.count(self.BANNER), err.count(self.NO_EFFECT)

    def expected(self, n):
        return (n, 0 if server.is_gunicorn() else n)

    def test_printed_on_stderr_at_start_and_on_each_hup(self):
        srv = server.Server(TINY_APP, ['-c', 'settings.conf'], module='tiny',
                            files={'settings.conf': "tmp_upload_dir = 'x'\n"})
        srv.start()
        self.addCleanup(srv.stop)
        self.assertEqual(self.counts(srv), self.expected(1), server.tail(srv.log_text()))
        for n in (2, 3):
            old = set(srv.wait_workers(1))
            srv.send_signal(signal.SIGHUP)
            replaced = server.wait_for(lambda: server.children(srv.pid) and
                                       not old & set(server.children(srv.pid)), 30)
            self.assertTrue(replaced, server.tail(srv.log_text()))
            self.assertTrue(server.wait_for(lambda: self.counts(srv) == self.expected(n), 10),
                            (self.counts(srv), server.tail(srv.log_text())))
        log = srv.error_text()
        self.assertNotIn(self.BANNER, log)
        self.assertNotIn('has no effect', log)


SPEW_APP = r'''
def app(environ, start_response):
    body = b'traced ' + environ['PATH_INFO'].encode('latin-1')
    headers = [('Content-Length', str(len(body)))]
    start_response('200 OK', headers)
    return [body]
'''


class Spew(Case):
    """--spew: every line of Python run, as "module:lineno: line" on stdout
    (gunicorn/debug.py), in the workers too (they inherit the tracer)."""

    def test_request_lines_traced_with_module_and_line_number(self):
        srv = server.Server(SPEW_APP, ['--spew'], module='spewapp')
        srv.start()
        self.addCleanup(srv.stop)
        resp = srv.get('/spew-me')
        self.assertEqual((resp.status, resp.body), (200, b'traced /spew-me'))
        srv.stop()  # the workers flush stdout as they exit
        text = srv.log_text()
        source = SPEW_APP.splitlines()
        # The body of app() runs only for the request, in a worker.
        for n in range(3, 7):
            self.assertRegex(text, r'(?m)^spewapp:%d: %s$' % (n, re.escape(source[n - 1].rstrip())),
                             server.tail(text))

    def test_nothing_traced_without_spew(self):
        srv = server.Server(SPEW_APP, [], module='spewapp')
        srv.start()
        self.addCleanup(srv.stop)
        self.assertEqual(srv.get('/').status, 200)
        srv.stop()
        self.assertNotRegex(srv.log_text(), r'(?m)^spewapp:\d+: ')


# Two requests to one worker: /first waits (up to ?SECONDS) for /second,
# which is sent once /first has begun (it touches first-started).
OVERLAP_APP = r'''
import threading

second_seen = threading.Event()


def app(environ, start_response):
    if environ['PATH_INFO'] == '/first':
        open('first-started', 'w').close()
        body = b'together' if second_seen.wait(float(environ['QUERY_STRING'])) else b'alone'
    else:
        second_seen.set()
        body = b'second'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
'''


def overlap(srv, seconds):
    """'together' when /second ran while /first waited, else 'alone'."""
    result = {}

    def first():
        result['first'] = srv.get('/first?%d' % seconds, timeout=seconds + 60 * server.SLOW).body.decode()
    t = threading.Thread(target=first, daemon=True)
    t.start()
    assert server.wait_for(lambda: os.path.exists(srv.path('first-started')), 60), 'the first request never ran'
    assert srv.get('/second', timeout=seconds + 60 * server.SLOW).status == 200
    t.join(seconds + 60 * server.SLOW)
    return result.get('first')


class SettingsSupportTable(Case):
    """The README's settings table is the one in the binary, as
    tests/unit/unit-tests --settings-support prints it, and it names every
    setting --print-config shows."""

    def unit_binary(self):
        names = ['unit-tests-asan', 'unit-tests'] if server.SANITIZED else ['unit-tests', 'unit-tests-asan']
        for name in names:
            path = os.path.join(server.ROOT, 'tests', 'unit', name)
            if os.access(path, os.X_OK):
                return path
        self.fail('tests/unit/unit-tests is not built (make tests/unit/unit-tests)')

    def test_readme_table_is_the_binary_table(self):
        self.cunicorn_only("the table describes cunicorn's support")
        p = subprocess.run([self.unit_binary(), '--settings-support'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * server.SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        table = p.stdout.decode('utf-8')
        self.assertTrue(table.startswith('  Config File\n'), table[:200])
        readme = server.read_text(os.path.join(server.ROOT, 'README'))
        if table not in readme:
            start = readme.find('\n  Config File\n') + 1
            end = readme.find('\n\n', start)
            shown = readme[start:end + 1] if start > 0 else ''
            diff = ''.join(difflib.unified_diff(shown.splitlines(True), table.splitlines(True),
                                                'README', 'unit-tests --settings-support'))
            self.fail('README settings table differs from the binary (paste the new one in):\n' + diff)
        d = self.tmpdir()
        write_file(os.path.join(d, 'tiny.py'), TINY_APP)
        status, out, err = run_binary(['--print-config', 'tiny:app'], cwd=d)
        self.assertEqual(status, 0, err)
        printed = set(parse_print_config(out))
        tabled = set(re.findall(r'(?m)^    ([a-z_0-9]+) ', table))
        self.assertEqual(tabled, printed)

    def test_every_listed_value_does_what_the_table_says(self):
        """--settings-samples: each value the table lists one by one, with
        what the settings code says of it. The server is started with each
        from a config file: a refused value stops the start; a value with
        no effect is warned about and changes nothing (requests still run
        one at a time); an implemented one is not warned about, and runs
        requests concurrently when it is a concurrent worker class."""
        self.cunicorn_only("the table describes cunicorn's support")
        p = subprocess.run([self.unit_binary(), '--settings-samples'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * server.SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        samples = [line.split('\t') for line in p.stdout.decode('utf-8').splitlines()]
        self.assertIn(['worker_class', 'sync', 'implemented'], samples)
        for name, value, status in samples:
            with self.subTest(setting=name, value=value):
                self.check_sample(name, value, status)

    def check_sample(self, name, value, status):
        d = self.tmpdir()
        literal = value if value.isdigit() else repr(value)
        conf = write_file(os.path.join(d, 'sample.conf.py'), '%s = %s\n' % (name, literal))
        warning = 'Warning: %s = %s has no effect' % (name, value)
        if status == 'refused':
            code, out, err = run_binary(['-c', conf, '-b', '127.0.0.1:%d' % server.free_port(), 'app:app'],
                                        timeout=30, cwd=d)
            self.assertEqual(code, 1, out + err)
            self.assertNotIn('Listening at', out + err)
            return
        self.assertIn(status, ('implemented', 'no-effect'))
        if name == 'worker_class' and value.startswith('gevent') and server.gevent_runs():
            self.skipTest(server.gevent_runs())
        srv = server.Server(OVERLAP_APP, ['-c', conf, '--workers', '1'])
        srv.start()
        self.addCleanup(srv.stop)
        # gthread with its default of 1 thread runs one request at a time too.
        concurrent = status == 'implemented' and (
            (name == 'threads' and int(value) > 1) or
            (name == 'worker_class' and value in ('gevent', 'gevent_wsgi', 'gevent_pywsgi')))
        # Waiting a second proves nothing about a concurrent server, but
        # one that runs requests one at a time always waits it out.
        self.assertEqual(overlap(srv, 60 if concurrent else 1), 'together' if concurrent else 'alone')
        if status == 'no-effect':
            self.assertIn(warning, srv.log_text())
        else:
            self.assertNotIn('Warning: %s = ' % name, srv.log_text())


if __name__ == '__main__':
    unittest.main()
