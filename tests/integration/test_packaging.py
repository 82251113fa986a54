"""Packaging: make install / uninstall, the service scripts in etc/.

* `make install DESTDIR=<tmp> PREFIX=/usr/local`, with GNU make and again
  with bmake, from the repository (the cunicorn target is already built):
  exactly the expected files with their modes, the installed binary serves
  the installed example app on 127.0.0.1, `man -l` renders the installed
  pages; `make uninstall` leaves no file behind.
* shellcheck finds nothing in the rc.d, init.d and conf.d scripts.
* systemd: systemd-analyze verify accepts both units; the binary under
  Debian's systemd-socket-activate answers through the passed socket and
  reports READY=1, RELOADING=1 and STOPPING=1 on a NOTIFY_SOCKET the test
  binds.
* FreeBSD: the rc.d script under a small stand-in for rc.subr (the real
  one is FreeBSD's only): start, reload, upgrade, stop with the binary,
  and a refused start with a broken app.
* OpenRC: the init.d script and conf.d file are run by Debian's openrc
  package, which `make deps` unpacks (without installing it) into
  $CUNICORN_TEST_DEPS/openrc, put under an overlay of / in a private mount
  namespace and entered with chroot: start, status, reload, upgrade, stop
  and a refused start with a broken app. Nothing on the machine changes;
  the mounts vanish with the namespace.

Nothing is installed or downloaded here: every tool comes from `make deps`
(tests/install-deps.sh), and a test whose tool is missing is skipped with
the reason.

The server binary is server.binary() (CUNICORN_TEST_BINARY, else
./cunicorn); make install installs ./cunicorn. Run alone with

    /usr/bin/python3 -m unittest tests/integration/test_packaging.py -v
"""

import filecmp
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import server  # noqa: E402  (needs the path above when run on its own)

ROOT = server.ROOT
PREFIX = '/usr/local'
TOOL_TIMEOUT = 60

# What `make install PREFIX=/usr/local` puts under DESTDIR on Linux, with modes.
INSTALLED = {
    'usr/local/bin/cunicorn': ('cunicorn', 0o755),
    'usr/local/share/man/man1/cunicorn.1': ('man/cunicorn.1', 0o644),
    'usr/local/share/man/man5/cunicorn.conf.5': ('man/cunicorn.conf.5', 0o644),
    'usr/local/etc/cunicorn/gunicorn.conf.py.sample': ('etc/examples/gunicorn.conf.py', 0o644),
    'usr/local/share/examples/cunicorn/hello.py': ('etc/examples/hello.py', 0o644),
    'usr/local/share/examples/cunicorn/gunicorn.conf.py': ('etc/examples/gunicorn.conf.py', 0o644),
    'usr/local/share/examples/cunicorn/rc.d/cunicorn': ('etc/rc.d/cunicorn', 0o755),
    'usr/local/share/examples/cunicorn/init.d/cunicorn': ('etc/init.d/cunicorn', 0o755),
    'usr/local/share/examples/cunicorn/conf.d/cunicorn': ('etc/conf.d/cunicorn', 0o644),
    'usr/local/share/examples/cunicorn/systemd/cunicorn.service':
        ('etc/systemd/cunicorn.service', 0o644),
    'usr/local/share/examples/cunicorn/systemd/cunicorn.socket':
        ('etc/systemd/cunicorn.socket', 0o644),
}

SHELL_SCRIPTS = ['etc/rc.d/cunicorn', 'etc/init.d/cunicorn', 'etc/conf.d/cunicorn']


def skip(test, reason):
    # Printed as well: the runner's one-line summary may cut it.
    print('skipped %s: %s' % (test.id(), reason), file=sys.stderr)
    test.skipTest(reason)


def run(argv, timeout=TOOL_TIMEOUT, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=timeout, **kw)


def out(p):
    return p.stdout.decode('utf-8', 'replace')


def files_under(top):
    found = []
    for d, _, names in os.walk(top):
        found += [os.path.relpath(os.path.join(d, n), top) for n in names]
    return sorted(found)


def http_get(port, path='/', timeout=10):
    """(status, body) of one HTTP/1.0 GET to 127.0.0.1:port."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout * server.SLOW)
    try:
        s.sendall(('GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' % path).encode())
        data = server.read_until_closed(s)
    finally:
        s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return int(head.split()[1]), body


def get_when_ready(port, path='/', timeout=20, proc=None):
    """Retries http_get until the server answers (or proc exits)."""
    deadline = time.monotonic() + timeout * server.SLOW
    while True:
        try:
            return http_get(port, path)
        except (OSError, IndexError, ValueError):
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise
            time.sleep(0.1)


class Spawned:
    """A process group the test starts, its stdout and stderr in `output`;
    stopped (TERM, then KILL) at exit."""

    def __init__(self, argv, output, **kw):
        self.output = output
        with open(output, 'ab') as f:
            self.proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=f, **kw)
        server._note_registry('start %d %s' % (self.proc.pid, argv[0]))

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(server.STOP_TIMEOUT * server.SLOW)
            except subprocess.TimeoutExpired:
                pass
        server.kill_group(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.wait()
        server._note_registry('stop %d' % self.proc.pid)
        text = server.read_text(self.output)
        if server.SANITIZED and server.SANITIZER_RE.search(text):
            server._sanitizer_reports.append(text[-8000:])
        return self.proc.returncode


# --------------------------------------------------------------------------
# make install / make uninstall

class MakeInstall(unittest.TestCase):

    def setUp(self):
        if server.is_gunicorn():
            skip(self, 'installs cunicorn itself; nothing to check against gunicorn')
        # make install must not start compiling (slow, and racy next to a
        # build in progress): ./cunicorn has to be up to date.
        if not os.path.exists(os.path.join(ROOT, 'cunicorn')):
            self.fail('./cunicorn is not built: run make first')
        if shutil.which('make'):
            q = run(['make', '-q', 'cunicorn'], cwd=ROOT)
            if q.returncode != 0:
                skip(self, './cunicorn is older than its sources (make -q cunicorn); '
                           'run make, then this test')
        self.tmp = tempfile.mkdtemp(prefix='cunicorn-install-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.destdir = os.path.join(self.tmp, 'dest')

    def make(self, tool, target):
        p = run([tool, target, 'DESTDIR=' + self.destdir, 'PREFIX=' + PREFIX], cwd=ROOT)
        self.assertEqual(p.returncode, 0, '%s %s failed:\n%s' % (tool, target, out(p)))
        self.assertNotIn('.cpp', out(p), '%s %s compiled something:\n%s' % (tool, target, out(p)))
        return out(p)

    def check_install(self, tool):
        if not shutil.which(tool):
            skip(self, '%s is missing (make deps installs it)' % tool)
        self.make(tool, 'install')

        self.assertEqual(files_under(self.destdir), sorted(INSTALLED))
        for rel, (src, mode) in INSTALLED.items():
            path = os.path.join(self.destdir, rel)
            self.assertEqual(os.stat(path).st_mode & 0o7777, mode, rel)
            self.assertTrue(filecmp.cmp(path, os.path.join(ROOT, src), shallow=False),
                            '%s differs from %s' % (rel, src))

        self.serve_installed()
        self.render_man_pages()

        self.make(tool, 'uninstall')
        self.assertEqual(files_under(self.destdir), [], 'left behind by %s uninstall' % tool)

    def serve_installed(self):
        """The installed binary serves the installed example app with the
        installed sample gunicorn.conf.py."""
        binary = os.path.join(self.destdir, 'usr/local/bin/cunicorn')
        examples = os.path.join(self.destdir, 'usr/local/share/examples/cunicorn')
        port = server.free_port()
        log = os.path.join(self.tmp, 'output.txt')     # the error log is stderr
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        for k in ('GUNICORN_CMD_ARGS', 'LISTEN_FDS', 'LISTEN_PID', 'NOTIFY_SOCKET'):
            env.pop(k, None)
        srv = Spawned([binary, '-c', os.path.join(examples, 'gunicorn.conf.py'),
                       '--chdir', examples, '-b', '127.0.0.1:%d' % port,
                       '--access-logfile', '/dev/null', 'hello:app'],
                      log, env=env, cwd=self.tmp)
        try:
            status, body = get_when_ready(port, '/installed', proc=srv.proc)
            # The sample config was read from there: workers = min(2, cores).
            n = min(2, os.cpu_count() or 1)
            workers = server.wait_for(lambda: len(server.children(srv.proc.pid)) == n, 10)
        except OSError as e:
            srv.stop()
            self.fail('installed binary did not answer (%s):\n%s' % (e, server.tail(server.read_text(log))))
        rc = srv.stop()
        self.assertEqual(status, 200, body)
        self.assertIn(b'path: /installed', body)
        self.assertTrue(workers, 'not %d workers: was the sample config read?\n%s' % (
            n, server.tail(server.read_text(log))))
        self.assertEqual(rc, 0, server.tail(server.read_text(log)))

    def render_man_pages(self):
        if not shutil.which('man'):
            print('man is missing: the installed pages were not rendered', file=sys.stderr)
            return
        mandir = os.path.join(self.destdir, 'usr/local/share/man')
        for page, name in (('man1/cunicorn.1', 'cunicorn'),
                           ('man5/cunicorn.conf.5', 'cunicorn.conf')):
            p = run(['man', '-l', os.path.join(mandir, page)],
                    env=dict(os.environ, MANWIDTH='80', MANPAGER='cat', PAGER='cat'))
            text = out(p)
            self.assertEqual(p.returncode, 0, text)
            self.assertIn('NAME', text)
            self.assertIn(name, text)
            self.assertGreater(len(text.splitlines()), 50, text)

    @server.timeout(60)
    def test_install_uninstall_gnu_make(self):
        self.check_install('make')

    @server.timeout(60)
    def test_install_uninstall_bmake(self):
        self.check_install('bmake')


class ManPageFiles(unittest.TestCase):

    def test_files_section_names_what_install_puts_in_place(self):
        # Every installed file but the binary and the pages themselves has
        # its own entry, with the path make install gives it.
        with open(os.path.join(ROOT, 'man', 'cunicorn.1'), encoding='utf-8') as f:
            page = f.read()
        files = page.partition('\n.Sh FILES\n')[2].partition('\n.Sh ')[0]
        entries = {line[len('.It Pa '):].strip() for line in files.splitlines()
                   if line.startswith('.It Pa /')}
        expected = {'/' + rel for rel in INSTALLED
                    if not rel.startswith(('usr/local/bin/', 'usr/local/share/man/'))}
        self.assertEqual(sorted(expected - entries), [], 'installed but not in FILES')
        self.assertEqual(sorted(p for p in entries - expected if p.startswith(PREFIX + '/')), [],
                         'in FILES but not installed')


# --------------------------------------------------------------------------
# shell scripts

class ShellScripts(unittest.TestCase):

    def test_shellcheck(self):
        if not shutil.which('shellcheck'):
            skip(self, 'shellcheck is missing (make deps installs it)')
        paths = [os.path.join(ROOT, s) for s in SHELL_SCRIPTS]
        p = run(['shellcheck', '--format=gcc'] + paths)
        self.assertEqual(p.returncode, 0, out(p))

    def test_sh_syntax(self):
        for s in SHELL_SCRIPTS:
            p = run(['sh', '-n', os.path.join(ROOT, s)])
            self.assertEqual(p.returncode, 0, '%s: %s' % (s, out(p)))

    def test_every_script_is_checked(self):
        # A script added under etc/ must be added to SHELL_SCRIPTS too.
        found = set()
        for d in ('rc.d', 'init.d', 'conf.d'):
            for path in glob.glob(os.path.join(ROOT, 'etc', d, '*')):
                found.add(os.path.relpath(path, ROOT))
        self.assertEqual(found, set(SHELL_SCRIPTS))


# --------------------------------------------------------------------------
# what the tests need comes from make deps

def test_sources():
    paths = glob.glob(os.path.join(ROOT, 'tests', 'integration', '*.py'))
    return {os.path.relpath(p, ROOT): server.read_text(p) for p in paths + [os.path.join(ROOT, 'tests', 'run.py')]}


class TestDependencies(unittest.TestCase):

    def test_tests_install_nothing(self):
        # A package manager run from a test makes the outcome depend on the
        # network and on whoever runs it; make deps does it once.
        pattern = re.compile(r"""['"](apt-get|apt|pip3?|dpkg)['"]\s*,\s*['"](install|download|update|-i)['"]""")
        found = ['%s: %s' % (path, m.group(0)) for path, text in test_sources().items()
                 for m in pattern.finditer(text)]
        self.assertEqual(found, [])

    def test_every_tool_looked_up_is_installed_by_make_deps(self):
        if not shutil.which('dpkg-query'):
            skip(self, 'not a Debian system: dpkg-query tells which package has a tool')
        tools = set()
        for text in test_sources().values():
            tools.update(re.findall(r"which\('([\w.+-]+)'\)", text))
            for group in re.findall(r"for tool in \(([^)]*)\)", text):
                tools.update(re.findall(r"'([\w.+-]+)'", group))
        script = server.read_text(os.path.join(ROOT, 'tests', 'install-deps.sh'))
        listed = set(re.search(r'(?m)^DEBIAN_PKGS="([^"]*)"', script).group(1).split())
        for tool in sorted(tools):
            path = shutil.which(tool)
            self.assertIsNotNone(path, '%s is not installed: run make deps' % tool)
            # Merged /usr: dpkg may know the file by its /bin or /sbin name.
            for name in (path, os.path.realpath(path), re.sub(r'^/usr/', '/', path)):
                p = run(['dpkg-query', '-S', name])
                if p.returncode == 0:
                    break
            packages = {name.split(':')[0] for name in out(p).split(': ')[0].split(', ')} if p.returncode == 0 else set()
            self.assertTrue(packages & listed, '%s (package %s) is not in install-deps.sh DEBIAN_PKGS'
                            % (tool, ', '.join(sorted(packages))))


# --------------------------------------------------------------------------
# FreeBSD rc.d, under a stand-in rc.subr

# Just enough of FreeBSD's rc.subr (libexec/rc/rc.subr) to drive the script:
# ${name}_program, ${name}_flags, rc_pid from the pid file, *_precmd and
# *_cmd, the default start, stop and reload. It proves the script's own
# logic (the command line it builds, checkconfig, upgrade), not that the
# real rc.subr accepts it: only FreeBSD can show that.
RC_SUBR_STAND_IN = r"""
load_rc_config() { . "$RC_CONF"; }
err() { shift; echo "err: $*" >&2; exit 1; }
warn() { echo "warn: $*" >&2; }
checkyesno() { eval "case \$$1 in [Yy][Ee][Ss]) return 0;; *) return 1;; esac"; }
run_rc_command() {
	rc_arg=$1
	checkyesno "$rcvar" || { echo "disabled"; return 0; }
	eval _prog=\$${name}_program
	command=${_prog:-$command}
	eval rc_flags=\$${name}_flags
	eval _user=\$${name}_user
	[ -z "$_user" ] || { echo "su to $_user" >&2; return 1; }
	rc_pid=
	if [ -f "$pidfile" ]; then
		read -r _pid < "$pidfile"
		kill -0 "$_pid" 2>/dev/null && rc_pid=$_pid
	fi
	eval _cmd=\$${rc_arg}_cmd _precmd=\$${rc_arg}_precmd
	if [ -n "$_precmd" ]; then eval "$_precmd" || return 1; fi
	if [ -n "$_cmd" ]; then eval "$_cmd"; return; fi
	case $rc_arg in
	start) eval "$command $rc_flags $command_args" ;;
	stop) kill -TERM "$rc_pid" && while kill -0 "$rc_pid" 2>/dev/null; do sleep 0.1; done ;;
	reload) kill -"${sig_reload:-HUP}" "$rc_pid" ;;
	esac
}
"""


class FreeBSDRcScript(unittest.TestCase):

    def setUp(self):
        if server.is_gunicorn():
            skip(self, 'the script drives cunicorn')
        self.tmp = tempfile.mkdtemp(prefix='cunicorn-rcd-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.masters = []
        self.addCleanup(self.kill_leftovers)

    def kill_leftovers(self):
        for pid in self.masters:
            server.kill_group(pid)
            if server.pid_alive(pid):
                server._kill_quietly(pid, signal.SIGKILL)

    def rc(self, cmd):
        p = run(['sh', self.script, cmd], env=self.env, cwd=self.tmp)
        return p.returncode, out(p)

    @server.timeout(90)
    def test_start_reload_upgrade_stop(self):
        stand_in = server.write_file(os.path.join(self.tmp, 'rc.subr'), RC_SUBR_STAND_IN)
        with open(os.path.join(ROOT, 'etc', 'rc.d', 'cunicorn')) as f:
            text = f.read()
        self.assertIn('\n. /etc/rc.subr\n', text)
        self.script = server.write_file(os.path.join(self.tmp, 'cunicorn'),
                                        text.replace('\n. /etc/rc.subr\n', '\n. %s\n' % stand_in))
        app = os.path.join(self.tmp, 'app')
        os.mkdir(app)
        shutil.copy(os.path.join(ROOT, 'etc', 'examples', 'hello.py'), app)
        os.chmod(self.tmp, 0o755)
        os.chmod(app, 0o755)
        pidfile = os.path.join(self.tmp, 'cunicorn.pid')
        log = os.path.join(self.tmp, 'error.log')
        port = server.free_port()
        conf = server.write_file(os.path.join(self.tmp, 'rc.conf'), '\n'.join([
            'cunicorn_enable=YES', 'cunicorn_app=hello:app', 'cunicorn_config=""',
            'cunicorn_chdir=%s' % app, 'cunicorn_user=nobody', 'cunicorn_group=nogroup',
            'cunicorn_pidfile=%s' % pidfile, 'cunicorn_program=%s' % server.binary(),
            'cunicorn_upgrade_timeout=20',
            'cunicorn_flags="-b 127.0.0.1:%d --error-logfile %s"' % (port, log), '']))
        self.env = dict(os.environ, RC_CONF=conf, PYTHONDONTWRITEBYTECODE='1')

        def pid():
            text = server.read_text(pidfile).strip()
            return int(text) if text.isdigit() else None

        rc, text = self.rc('start')
        self.assertEqual(rc, 0, text + server.read_text(log))
        self.assertIn('the configuration and the application load', text)
        self.assertTrue(server.wait_for(pid, 10), text + server.read_text(log))
        old = pid()
        self.masters.append(old)
        self.assertEqual(get_when_ready(port, '/rc.d')[0], 200)
        workers = server.children(old)
        rc, text = self.rc('reload')
        self.assertEqual(rc, 0, text)
        self.assertTrue(server.wait_for(
            lambda: server.children(old) and not set(workers) & set(server.children(old)), 20),
            server.tail(server.read_text(log)))
        rc, text = self.rc('upgrade')
        self.assertEqual(rc, 0, text + server.tail(server.read_text(log)))
        new = pid()
        self.masters.append(new)
        self.assertNotEqual(new, old)
        self.assertIn('upgraded: master %d' % new, text)
        self.assertFalse(os.path.exists(pidfile + '.2'))
        self.assertEqual(http_get(port, '/upgraded')[0], 200)
        rc, text = self.rc('stop')
        self.assertEqual(rc, 0, text)
        self.assertFalse(server.pid_alive(new))
        self.assertIsNone(pid())

        # A broken app: checkconfig and start refuse, nothing is started.
        with open(conf, 'a') as f:
            f.write('cunicorn_app=no_such_module:app\n')
        rc, text = self.rc('start')
        self.assertNotEqual(rc, 0, text)
        self.assertIn('--check-config failed', text)
        self.assertIsNone(pid())


# --------------------------------------------------------------------------
# systemd

class Systemd(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='cunicorn-systemd-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_units_verify(self):
        tool = shutil.which('systemd-analyze')
        if not tool:
            skip(self, 'systemd-analyze is missing (make deps installs Debian package systemd)')
        # The units name /usr/local/bin/cunicorn and the man pages: point
        # them at the binary under test and the pages in the repository.
        units = []
        for name in ('cunicorn.service', 'cunicorn.socket'):
            with open(os.path.join(ROOT, 'etc', 'systemd', name)) as f:
                text = f.read().replace('/usr/local/bin/cunicorn', server.binary())
            units.append(server.write_file(os.path.join(self.tmp, name), text))
        for sec, page in (('1', 'cunicorn.1'), ('5', 'cunicorn.conf.5')):
            os.makedirs(os.path.join(self.tmp, 'man', 'man' + sec))
            os.symlink(os.path.join(ROOT, 'man', page),
                       os.path.join(self.tmp, 'man', 'man' + sec, page))
        env = dict(os.environ, MANPATH=os.path.join(self.tmp, 'man'), SYSTEMD_LOG_COLOR='0')
        p = run([tool, 'verify'] + units, env=env)
        self.assertEqual(p.returncode, 0, out(p))
        self.assertEqual(out(p).strip(), '')

    def test_socket_activation_and_notify(self):
        tool = shutil.which('systemd-socket-activate')
        if not tool:
            skip(self, 'systemd-socket-activate is missing (make deps installs Debian package systemd)')
        notify_path = os.path.join(self.tmp, 'notify')
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(notify_path)
        log = os.path.join(self.tmp, 'output.txt')     # the error log is stderr
        unused = os.path.join(self.tmp, 'unused.sock')
        env = dict(os.environ)
        for k in ('GUNICORN_CMD_ARGS', 'LISTEN_FDS', 'LISTEN_PID', 'NOTIFY_SOCKET', 'GUNICORN_FD'):
            env.pop(k, None)
        # systemd-socket-activate passes on only TERM, PATH, HOME and -E.
        passed = ['-E', 'NOTIFY_SOCKET=' + notify_path, '-E', 'PYTHONDONTWRITEBYTECODE=1']
        for k in ('ASAN_OPTIONS', 'UBSAN_OPTIONS'):
            if k in env:
                passed += ['-E', k]
        for attempt in range(3):
            port = server.free_port()
            # The -b address must be ignored: the master adopts fd 3.
            argv = [tool, '-l', '127.0.0.1:%d' % port] + passed + [
                server.binary(), '-b', 'unix:' + unused,
                '--chdir', os.path.join(ROOT, 'etc', 'examples'), 'hello:app']
            srv = Spawned(argv, log, env=env, cwd=self.tmp)
            self.addCleanup(srv.stop)
            try:
                # The first connection makes systemd-socket-activate exec the
                # server in its own process, with LISTEN_FDS=1.
                status, body = get_when_ready(port, '/activated', proc=srv.proc)
                break
            except OSError:
                srv.stop()
                if attempt == 2:
                    raise
        self.assertEqual(status, 200, body)
        self.assertIn(b'path: /activated', body)
        self.assertFalse(os.path.exists(unused), 'the server bound its -b address')
        self.assertEqual(http_get(port, '/again')[0], 200)

        def messages(until, timeout=20):
            got = []
            notify.settimeout(timeout * server.SLOW)
            while not any(until in m for m in got):
                try:
                    got.append(notify.recv(4096).decode())
                except socket.timeout:
                    self.fail('no %r on NOTIFY_SOCKET; got %r\n%s' % (
                        until, got, server.tail(server.read_text(log))))
            return got

        if server.is_gunicorn():
            # Debian's Gunicorn 20.1 sends no sd_notify messages.
            return
        self.assertIn('READY=1', messages('READY=1')[0].splitlines())
        pid = srv.proc.pid      # systemd-socket-activate execs the server
        os.kill(pid, signal.SIGHUP)
        got = messages('READY=1')
        self.assertTrue(any('RELOADING=1' in m.splitlines() for m in got), got)
        self.assertEqual(get_when_ready(port, '/reloaded')[0], 200)
        os.kill(pid, signal.SIGTERM)
        messages('STOPPING=1')
        self.assertEqual(srv.proc.wait(server.STOP_TIMEOUT * server.SLOW), 0,
                         server.tail(server.read_text(log)))


# --------------------------------------------------------------------------
# OpenRC

# Runs inside `unshare -m` with the test directory and the OpenRC tree make
# deps unpacked as arguments: an overlay of / with that tree on
# top (merged-/usr layout), private /run and /etc/{init.d,conf.d,runlevels},
# and the test's directory bound in. Then one openrc-run call per line read.
OPENRC_DRIVER = r'''
set -eu
W=$1
X=$2
T=$W/ns
mount -t tmpfs tmpfs "$T"
mkdir -p "$T/l/usr" "$T/l/etc" "$T/u" "$T/w" "$T/root"
for d in bin sbin lib; do
	if [ -d "$X/$d" ]; then cp -a "$X/$d/." "$T/l/usr/$d/"; fi
done
cp -a "$X/usr/." "$T/l/usr/"
cp -a "$X/etc/." "$T/l/etc/"
rm -rf "$T/l/etc/init.d"
# openrc-run passes services only the variables rc.conf allows.
echo 'rc_env_allow="ASAN_OPTIONS UBSAN_OPTIONS"' >> "$T/l/etc/rc.conf"
# Lower layers may not overlap, so the unpacked files sit on the tmpfs.
mount -t overlay overlay -o "lowerdir=$T/l:/,upperdir=$T/u,workdir=$T/w" "$T/root"
R=$T/root
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
for d in etc/init.d etc/conf.d etc/runlevels; do
	mkdir -p "$R/$d"
	mount -t tmpfs tmpfs "$R/$d"
done
mount --bind "$W" "$R$W"
# What "openrc sysinit" would have made; softlevel says OpenRC booted.
for d in daemons exclusive failed hotplugged inactive options scheduled \
    started starting stopping tmp wasinactive; do
	mkdir -p "$R/run/openrc/$d"
done
touch "$R/run/openrc/softlevel"
install -m 755 "$W/init.d" "$R/etc/init.d/cunicorn"
# depend() needs net: a stand-in that provides it.
printf '#!/sbin/openrc-run\nstart() { return 0; }\n' > "$R/etc/init.d/net"
chmod 755 "$R/etc/init.d/net"
echo "ready"
while read -r cmd; do
	cp "$W/conf.d" "$R/etc/conf.d/cunicorn"
	set +e
	chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin RC_NOCOLOR=yes \
		ASAN_OPTIONS="${ASAN_OPTIONS-}" UBSAN_OPTIONS="${UBSAN_OPTIONS-}" \
		/sbin/openrc-run /etc/init.d/cunicorn "$cmd" 2>&1
	echo "rc=$?"
	set -e
done
'''

# Where tests/install-deps.sh (make deps) unpacks Debian's OpenRC packages.
OPENRC_TREE = os.path.join(os.environ.get('CUNICORN_TEST_DEPS') or '/var/cache/cunicorn-tests', 'openrc')


class OpenRC(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='cunicorn-openrc-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.driver = None

    def command(self, cmd, timeout=60):
        """One openrc-run command in the throwaway root: (rc, output)."""
        self.driver.stdin.write(cmd + '\n')
        self.driver.stdin.flush()
        lines = []
        deadline = time.monotonic() + timeout * server.SLOW
        while time.monotonic() < deadline:
            line = self.driver.stdout.readline()
            if not line:
                self.fail('the OpenRC driver exited during %r:\n%s' % (cmd, ''.join(lines)))
            if line.startswith('rc='):
                return int(line[3:]), ''.join(lines)
            lines.append(line)
        self.fail('openrc-run %s did not finish' % cmd)

    def write_conf(self, **settings):
        with open(os.path.join(ROOT, 'etc', 'conf.d', 'cunicorn')) as f:
            text = f.read()
        text += '\n# test settings\n' + ''.join('%s="%s"\n' % kv for kv in settings.items())
        server.write_file(os.path.join(self.tmp, 'conf.d'), text)

    def pidfile_pid(self):
        text = server.read_text(self.pidfile).strip()
        return int(text) if text.isdigit() else None

    def kill_leftovers(self, pids):
        # A master leads its process group, which an upgraded master
        # (its child) stays in after the old one exited.
        for pid in pids:
            if pid:
                server.kill_group(pid)
                if server.pid_alive(pid):
                    server._kill_quietly(pid, signal.SIGKILL)

    @server.timeout(150)
    def test_openrc_run(self):
        if server.is_gunicorn():
            skip(self, "start-stop-daemon --exec matches a native binary's /proc/PID/exe; "
                       '/usr/bin/gunicorn is a Python script')
        if os.geteuid() != 0:
            skip(self, 'needs root for a private mount namespace; the script was only '
                       'checked with sh -n and shellcheck')
        for tool in ('unshare', 'chroot', 'start-stop-daemon'):
            if not shutil.which(tool):
                skip(self, '%s is missing (make deps installs it); the script was only checked '
                           'with sh -n and shellcheck' % tool)
        if not any(os.access(os.path.join(OPENRC_TREE, d, 'openrc-run'), os.X_OK)
                   for d in ('sbin', 'usr/sbin')):
            skip(self, "OpenRC is not unpacked in %s (make deps does it); the script was only "
                       "checked with sh -n and shellcheck" % OPENRC_TREE)
        os.mkdir(os.path.join(self.tmp, 'ns'))
        app = os.path.join(self.tmp, 'app')
        os.mkdir(app)
        shutil.copy(os.path.join(ROOT, 'etc', 'examples', 'hello.py'), app)
        # The workers run as nobody: they must reach the app.
        os.chmod(self.tmp, 0o755)
        os.chmod(app, 0o755)
        shutil.copy(os.path.join(ROOT, 'etc', 'init.d', 'cunicorn'), os.path.join(self.tmp, 'init.d'))
        driver = server.write_file(os.path.join(self.tmp, 'driver.sh'), OPENRC_DRIVER)
        self.pidfile = os.path.join(self.tmp, 'cunicorn.pid')
        log = os.path.join(self.tmp, 'error.log')
        port = server.free_port()
        conf = dict(cunicorn_app='hello:app', cunicorn_chdir=app, cunicorn_config='',
                    cunicorn_flags='-b 127.0.0.1:%d --error-logfile %s' % (port, log),
                    cunicorn_pidfile=self.pidfile, cunicorn_program=server.binary(),
                    cunicorn_stop_timeout='10', cunicorn_upgrade_timeout='20')
        self.write_conf(**conf)

        self.driver = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private', 'sh', driver, self.tmp, OPENRC_TREE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True, start_new_session=True)
        server._note_registry('start %d unshare' % self.driver.pid)
        masters = []

        def cleanup():
            if self.driver.poll() is None:
                self.driver.stdin.close()
                try:
                    self.driver.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill_group(self.driver.pid)
                    self.driver.wait()
            server._note_registry('stop %d' % self.driver.pid)
            self.kill_leftovers(masters + [self.pidfile_pid()])
        self.addCleanup(cleanup)
        first = self.driver.stdout.readline()
        if first.strip() != 'ready':
            rest = first + self.driver.stdout.read()
            if 'mount' in rest and ('permission' in rest.lower() or 'not permitted' in rest):
                skip(self, 'no private mount namespace here (%s); the script was only '
                           'checked with sh -n and shellcheck' % rest.strip().splitlines()[-1])
            self.fail('could not set up the OpenRC root:\n' + rest)

        def check(cmd, expect=0):
            rc, text = self.command(cmd)
            self.assertEqual(rc, expect, 'openrc-run cunicorn %s:\n%s\n%s' % (
                cmd, text, server.tail(server.read_text(log))))
            return text

        # start: --check-config first, then the daemon, its pid file.
        text = check('start')
        self.assertIn('Checking the configuration', text)
        old = self.pidfile_pid()
        self.assertIsNotNone(old, text)
        masters.append(old)
        self.assertEqual(get_when_ready(port, '/openrc')[0], 200)
        self.assertIn('started', check('status'))
        # cunicorn_user/cunicorn_group defaults: the workers run as nobody.
        workers = server.children(old)
        self.assertTrue(workers)
        with open('/proc/%d/status' % workers[0]) as f:
            uid = [l.split()[1] for l in f if l.startswith('Uid:')][0]
        self.assertEqual(int(uid), pwd.getpwnam('nobody').pw_uid)

        # reload: HUP, same master, a new generation of workers.
        check('reload')
        self.assertTrue(server.wait_for(
            lambda: workers[0] not in server.children(old) and server.children(old), 20),
            server.tail(server.read_text(log)))
        self.assertIn('Hang up: Master', server.read_text(log))
        self.assertEqual(self.pidfile_pid(), old)
        self.assertEqual(http_get(port, '/reloaded')[0], 200)

        # upgrade: USR2, <pidfile>.2, TERM to the old master, pid file renamed.
        text = check('upgrade')
        new = self.pidfile_pid()
        masters.append(new)
        self.assertNotEqual(new, old, text)
        self.assertTrue(server.wait_for(lambda: not server.pid_alive(old), 10))
        self.assertFalse(os.path.exists(self.pidfile + '.2'))
        self.assertEqual(http_get(port, '/upgraded')[0], 200)

        # stop: TERM, graceful; the master removes its pid file, and the
        # stop is over once it has (start-stop-daemon reads the pid file):
        # the process itself ends a moment later, after its exit handlers
        # (LeakSanitizer's check, in the sanitizer build).
        check('stop')
        self.assertTrue(server.wait_for(lambda: not server.pid_alive(new), 30))
        self.assertFalse(os.path.exists(self.pidfile))
        self.assertEqual(check('status', expect=3).strip().splitlines()[-1].split()[-1], 'stopped')

        # A broken application: checkconfig and start refuse, nothing runs.
        conf['cunicorn_app'] = 'no_such_module:app'
        self.write_conf(**conf)
        self.assertNotEqual(self.command('checkconfig')[0], 0)
        rc, text = self.command('start')
        self.assertNotEqual(rc, 0, text)
        self.assertIn('--check-config failed', text)
        self.assertIsNone(self.pidfile_pid())
        with self.assertRaises(OSError):
            http_get(port, '/', timeout=2)


if __name__ == '__main__':
    unittest.main()
