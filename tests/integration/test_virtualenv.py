"""Virtualenvs (issue 4, item 4): a Flask app living in a virtualenv made
with `python3 -m venv --system-site-packages`, plus a module installed only
inside it, served with --virtualenv DIR, with $VIRTUAL_ENV=DIR and with
`virtualenv = DIR` in the config file; the interpreter then looks as the
venv's own bin/python does (sys.prefix, sys.exec_prefix, sys.executable,
sys.path). A venv of another Python version, and a directory that is no
venv, are refused with exit status 1 and a one-line message.

The venvs are made at test time by /usr/bin/python3 (the interpreter the
Makefile embeds), without pip; Flask is Debian's python3-flask, seen
through --system-site-packages.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import server
from server import Server, run_binary, write_file

PYTHON = '/usr/bin/python3'

FLASK_APP = r'''
import json
import os
import subprocess
import sys

import flask
import venvonly
from flask import Flask

app = Flask(__name__)


@app.route('/')
def index():
    return app.response_class(json.dumps({
        'venvonly': venvonly.WORD,
        'flask': flask.__file__,
        'prefix': sys.prefix,
        'exec_prefix': sys.exec_prefix,
        'base_prefix': sys.base_prefix,
        'executable': sys.executable,
        'path': sys.path,
        'VIRTUAL_ENV': os.environ.get('VIRTUAL_ENV'),
    }), mimetype='application/json')


@app.route('/child')
def child():
    # sys.executable must be an interpreter that runs in the same venv.
    out = subprocess.run([sys.executable, '-c', 'import sys, venvonly; print(sys.prefix, venvonly.WORD)'],
                         stdout=subprocess.PIPE, check=True, timeout=60).stdout
    return out.decode().strip()
'''

# For a venv without the system's packages: no Flask there.
PLAIN_APP = r'''
import importlib.util
import json
import sys

import venvonly


def app(environ, start_response):
    body = json.dumps({
        'venvonly': venvonly.WORD,
        'flask_visible': importlib.util.find_spec('flask') is not None,
        'prefix': sys.prefix,
        'path': sys.path,
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
'''


def make_venv(path, system_site_packages=True, word='inside the venv'):
    args = [PYTHON, '-m', 'venv', '--without-pip']
    if system_site_packages:
        args.append('--system-site-packages')
    subprocess.run(args + [path], check=True, stdin=subprocess.DEVNULL, timeout=120)
    site = glob.glob(os.path.join(path, 'lib', 'python3.*', 'site-packages'))
    assert len(site) == 1, site
    write_file(os.path.join(site[0], 'venvonly.py'), 'WORD = %r\n' % word)
    return path


def venv_version(path):
    with open(os.path.join(path, 'pyvenv.cfg')) as f:
        m = re.search(r'^version\s*=\s*(\d+\.\d+)', f.read(), re.M)
    return m.group(1)


def real(path):
    return os.path.realpath(path)


class VirtualenvCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='cunicorn-venv-')
        cls.venv = None
        if server.is_gunicorn() or not os.access(PYTHON, os.X_OK):
            return
        cls.venv = make_venv(os.path.join(cls.tmp, 'venv'))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        if server.is_gunicorn():
            self.skipTest('--virtualenv is cunicorn\'s own option')
        if self.venv is None:
            self.skipTest('%s is needed to make the virtualenvs' % PYTHON)

    def need_flask(self):
        ok = subprocess.run([PYTHON, '-c', 'import flask'], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode == 0
        if not ok:
            self.skipTest('Flask is not installed for %s (Debian python3-flask)' % PYTHON)

    def start(self, srv):
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def env_without_venv(self, **extra):
        # The harness passes its own environment on; a venv active there
        # must not decide these tests.
        env = {'VIRTUAL_ENV': ''}
        env.update(extra)
        return env

    def check_flask_in_venv(self, srv, venv):
        r = srv.get('/')
        self.assertEqual(r.status, 200, r.body[:2000])
        info = r.json()
        self.assertEqual(info['venvonly'], 'inside the venv')
        self.assertEqual(real(info['prefix']), real(venv))
        self.assertEqual(real(info['exec_prefix']), real(venv))
        self.assertEqual(info['executable'], os.path.join(venv, 'bin', 'python'))
        self.assertNotEqual(real(info['base_prefix']), real(venv))
        # Flask from the system, through --system-site-packages, after the
        # venv's own site-packages, as the venv's python orders them.
        self.assertFalse(real(info['flask']).startswith(real(venv) + os.sep), info['flask'])
        venv_site = [i for i, p in enumerate(info['path']) if real(p).startswith(real(venv) + os.sep)]
        flask_site = [i for i, p in enumerate(info['path'])
                      if p and real(info['flask']).startswith(real(p) + os.sep)]
        self.assertTrue(venv_site and flask_site, info['path'])
        self.assertLess(venv_site[0], flask_site[0], info['path'])
        child = srv.get('/child')
        self.assertEqual(child.status, 200, child.body[:2000])
        prefix, _, word = child.text.partition(' ')
        self.assertEqual(real(prefix), real(venv))
        self.assertEqual(word, 'inside the venv')
        return info

    def test_sys_path_as_the_venvs_python(self):
        # The same entries as the venv's own interpreter has (minus its
        # script directory, and cunicorn's --chdir first).
        srv = self.start(Server(PLAIN_APP, args=['--virtualenv', self.venv],
                                env=self.env_without_venv(PYTHONPATH='')))
        got = [p for p in srv.get('/').json()['path'] if p != srv.appdir]
        want = json.loads(subprocess.run(
            [os.path.join(self.venv, 'bin', 'python'), '-c', 'import sys, json; print(json.dumps(sys.path[1:]))'],
            stdout=subprocess.PIPE, check=True, timeout=60, env=dict(os.environ, PYTHONPATH='')).stdout)
        self.assertEqual(got, want)

    def test_flask_with_virtualenv_option(self):
        self.need_flask()
        srv = self.start(Server(FLASK_APP, args=['--virtualenv', self.venv], env=self.env_without_venv()))
        info = self.check_flask_in_venv(srv, self.venv)
        self.assertIn(info['VIRTUAL_ENV'], (None, ''))

    def test_flask_with_virtual_env_variable(self):
        self.need_flask()
        srv = self.start(Server(FLASK_APP, env={'VIRTUAL_ENV': self.venv}))
        self.check_flask_in_venv(srv, self.venv)

    def test_flask_with_virtualenv_in_config_file(self):
        # Read by an interpreter outside the venv, then cunicorn starts
        # again inside it.
        self.need_flask()
        srv = self.start(Server(FLASK_APP, args=['-c', 'conf.py', '-w', '2'], env=self.env_without_venv(),
                                files={'conf.py': 'virtualenv = %r\n' % self.venv}))
        info = self.check_flask_in_venv(srv, self.venv)
        self.assertEqual(info['VIRTUAL_ENV'], self.venv)
        srv.wait_workers(2)

    def test_flask_with_virtualenv_in_gunicorn_cmd_args(self):
        self.need_flask()
        srv = self.start(Server(FLASK_APP, env=self.env_without_venv(
            GUNICORN_CMD_ARGS='--virtualenv=%s' % self.venv)))
        self.check_flask_in_venv(srv, self.venv)

    def test_without_the_venv_the_module_is_missing(self):
        # The control: venvonly really lives only in the venv.
        d = tempfile.mkdtemp(dir=self.tmp)
        write_file(os.path.join(d, 'plain.py'), PLAIN_APP)
        status, out, err = run_binary(['--check-config', '--chdir', d, 'plain:app'], env=self.env_without_venv())
        self.assertEqual(status, 1, out + err)
        self.assertIn("No module named 'venvonly'", out + err)
        status, out, err = run_binary(['--check-config', '--chdir', d, '--virtualenv', self.venv, 'plain:app'],
                                      env=self.env_without_venv())
        self.assertEqual(status, 0, out + err)

    def test_without_system_site_packages(self):
        isolated = make_venv(os.path.join(self.tmp, 'isolated'), system_site_packages=False)
        srv = self.start(Server(PLAIN_APP, args=['--virtualenv', isolated], env=self.env_without_venv()))
        info = srv.get('/').json()
        self.assertEqual(info['venvonly'], 'inside the venv')
        self.assertEqual(real(info['prefix']), real(isolated))
        self.assertFalse(info['flask_visible'], info['path'])
        self.assertFalse([p for p in info['path'] if 'dist-packages' in p], info['path'])

    def test_precedence(self):
        # default ($VIRTUAL_ENV) < file < GUNICORN_CMD_ARGS < command line.
        other = os.path.join(self.tmp, 'other')
        if not os.path.isdir(other):
            make_venv(other)
        d = tempfile.mkdtemp(dir=self.tmp)
        write_file(os.path.join(d, 'hello.py'), server.HELLO_APP)
        write_file(os.path.join(d, 'conf.py'), 'virtualenv = %r\n' % other)

        def shown(args, **env):
            status, out, err = run_binary(['--print-config', '--chdir', d] + args + ['hello:app'], cwd=d,
                                          env=self.env_without_venv(**env))
            self.assertEqual(status, 0, out + err)
            return re.search(r'^virtualenv\s*= (.*)$', out, re.M).group(1)

        self.assertEqual(shown([]), 'None')
        self.assertEqual(shown([], VIRTUAL_ENV=self.venv), self.venv)
        self.assertEqual(shown(['-c', 'conf.py'], VIRTUAL_ENV=self.venv), other)
        self.assertEqual(shown(['-c', 'conf.py'], GUNICORN_CMD_ARGS='--virtualenv ' + self.venv), self.venv)
        self.assertEqual(shown(['-c', 'conf.py', '--virtualenv', self.venv],
                               GUNICORN_CMD_ARGS='--virtualenv ' + other), self.venv)

    @server.timeout(120)
    def test_changed_in_config_file_hup_warns_usr2_moves(self):
        # The interpreter cannot change venv: HUP keeps the running one and
        # says so; a USR2 upgrade starts the new master in the new one.
        other = os.path.join(self.tmp, 'other')
        if not os.path.isdir(other):
            make_venv(other)
        srv = self.start(Server(PLAIN_APP, args=['-c', 'conf.py', '-p', 'master.pid'], env=self.env_without_venv(),
                                files={'conf.py': 'virtualenv = %r\n' % self.venv}))
        self.assertEqual(real(srv.get('/').json()['prefix']), real(self.venv))
        mark = srv.log_mark()
        old_workers = set(srv.wait_workers(1))
        write_file(srv.path('conf.py'), 'virtualenv = %r  # changed by the test\n' % other)
        srv.send_signal(signal.SIGHUP)
        self.assertTrue(server.wait_for(lambda: 'needs a restart' in srv.log_since(mark), 15), srv.log_since(mark))
        self.assertIn(other, srv.log_since(mark))
        server.wait_for(lambda: set(server.children(srv.pid)) - old_workers, 15)
        self.assertEqual(real(srv.get('/').json()['prefix']), real(self.venv))

        srv.send_signal(signal.SIGUSR2)
        pidfile2 = srv.path('master.pid.2')
        self.assertTrue(server.wait_for(lambda: os.path.exists(pidfile2), 30), server.tail(srv.log_text()))
        with open(pidfile2) as f:
            new_master = int(f.read().strip())
        self.assertTrue(server.wait_for(lambda: server.children(new_master), 30), server.tail(srv.log_text()))
        srv.send_signal(signal.SIGTERM)  # the old master; the new one takes over
        self.assertEqual(srv.wait_exit(30), 0, server.tail(srv.log_text()))
        # srv.stop() (cleanup) ends the new master too: same process group.
        conn = server.connect(srv.address)
        conn.send(server.build_request('GET', '/'))
        info = json.loads(conn.read_response().body)
        conn.close()
        self.assertEqual(real(info['prefix']), real(other))

    # -- refused

    def refused(self, args, env, *parts):
        d = tempfile.mkdtemp(dir=self.tmp)
        write_file(os.path.join(d, 'plain.py'), PLAIN_APP)
        status, out, err = run_binary(['-b', '127.0.0.1:%d' % server.free_port(), '--chdir', d] + args
                                      + ['plain:app'], cwd=d, env=env, timeout=30)
        text = out + err
        self.assertEqual(status, 1, text)
        self.assertNotIn('Traceback', text)
        lines = [l for l in text.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, text)
        for part in parts:
            self.assertIn(part, lines[0])
        return lines[0]

    def fake_old_venv(self):
        old = os.path.join(self.tmp, 'old')
        if not os.path.isdir(old):
            shutil.copytree(self.venv, old, symlinks=True)
            cfg = os.path.join(old, 'pyvenv.cfg')
            with open(cfg) as f:
                text = f.read()
            write_file(cfg, re.sub(r'^version\s*=.*$', 'version = 3.9.18', text, flags=re.M))
        return old

    def test_other_python_version_refused(self):
        old = self.fake_old_venv()
        ours = venv_version(self.venv)
        for args, env in ((['--virtualenv', old], self.env_without_venv()),
                          ([], {'VIRTUAL_ENV': old}),
                          (['-c', os.path.join(self.tmp, 'old.conf.py')], self.env_without_venv())):
            write_file(os.path.join(self.tmp, 'old.conf.py'), 'virtualenv = %r\n' % old)
            with self.subTest(args=args, env=env):
                line = self.refused(args, env, 'virtualenv', old, 'Python 3.9', 'Python ' + ours)
                self.assertRegex(line, r'^Error: ')

    def test_directory_without_pyvenv_cfg_refused(self):
        plain = tempfile.mkdtemp(dir=self.tmp)
        self.refused(['--virtualenv', plain], self.env_without_venv(), 'virtualenv', plain, 'pyvenv.cfg',
                     'not a virtualenv')
        self.refused([], {'VIRTUAL_ENV': plain}, 'virtualenv', plain, '$VIRTUAL_ENV')

    def test_missing_directory_refused(self):
        missing = os.path.join(self.tmp, 'no-such-venv')
        self.refused(['--virtualenv', missing], self.env_without_venv(), 'virtualenv', missing)

    def test_stale_virtual_env_overridden_by_option(self):
        # Only the value in force must be a venv.
        old = self.fake_old_venv()
        d = tempfile.mkdtemp(dir=self.tmp)
        write_file(os.path.join(d, 'plain.py'), PLAIN_APP)
        status, out, err = run_binary(['--check-config', '--chdir', d, '--virtualenv', self.venv, 'plain:app'],
                                      env={'VIRTUAL_ENV': old})
        self.assertEqual(status, 0, out + err)


if __name__ == '__main__':
    sys.exit(unittest.main())
