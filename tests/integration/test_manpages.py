"""The manual pages man/cunicorn.1 and man/cunicorn.conf.5.

* mandoc -Tlint finds nothing to say about them;
* cunicorn.1 has an entry for every option that --help prints, and
  cunicorn.conf.5 one for every setting that --print-config prints (and
  neither documents an option or a setting the binary does not know);
* man -l renders both.

The binary is found as in the other modules (server.binary(): the
CUNICORN_TEST_BINARY environment variable, else ./cunicorn).  Run alone with

    /usr/bin/python3 -m unittest tests/integration/test_manpages.py -v
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import server  # noqa: E402  (needs the path above when run on its own)

MAN_DIR = os.path.join(server.ROOT, 'man')
PAGE1 = os.path.join(MAN_DIR, 'cunicorn.1')
PAGE5 = os.path.join(MAN_DIR, 'cunicorn.conf.5')
PAGES = (PAGE1, PAGE5)
TOOL_TIMEOUT = 60

# mdoc macros that may appear on a macro line; a word that is one of them
# ends the arguments of the macro before it (".Fl c Ar file").
MDOC_CALLABLE = set('''
    Ac Ad An Ao Ap Aq Ar At Bc Bo Bq Brc Bro Brq Bsx Bx Cd Cm Dc Do Dq Dv Dx
    Ec Em En Eo Er Es Ev Fa Fc Fl Fn Fo Fr Ft Fx Ic It Li Lk Ms Mt Nm No Ns
    Nx Oc Oo Op Ox Pa Pc Pf Po Pq Qc Ql Qo Qq Sc So Sq St Sx Sy Tn Ux Va Vt
    Xc Xo Xr
'''.split())


def skip(test, reason):
    # Printed as well: the runner's one-line summary may not show it.
    print('skipped %s: %s' % (test.id(), reason), file=sys.stderr)
    test.skipTest(reason)


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def page_name(path):
    """('cunicorn.conf', '5') for man/cunicorn.conf.5."""
    base = os.path.basename(path)
    name, _, section = base.rpartition('.')
    return name, section


# --------------------------------------------------------------------------
# what the binary says

def help_flags(text):
    """The option strings of argparse-style --help output: every word that
    starts with '-' in the invocation column ("  -c CONFIG, --config CONFIG"),
    not in the wrapped help text, which is indented further."""
    flags = set()
    for line in text.splitlines():
        m = re.match(r'^ {1,8}(-\S.*)$', line)
        if not m:
            continue
        invocation = re.split(r'\s{2,}', m.group(1).strip())[0]
        for part in invocation.split(','):
            words = part.split()
            if not words:
                continue
            flag = words[0].split('=')[0]
            if re.fullmatch(r'--?[A-Za-z0-9][A-Za-z0-9_-]*', flag):
                flags.add(flag)
    return flags


def print_config_names(text):
    """Setting names of --print-config output ("name<padding> = value")."""
    names = set()
    for line in text.splitlines():
        m = re.match(r'^([A-Za-z_][A-Za-z0-9_]*)\s*=(\s|$)', line)
        if m:
            names.add(m.group(1))
    return names


# --------------------------------------------------------------------------
# what the pages say

def macro_words(line):
    """The words of an mdoc macro line, without the leading dot; quoted
    arguments are one word.  Escapes are kept except \\& (zero width) and
    \\- (a minus sign)."""
    words = re.findall(r'"((?:[^"]|"")*)"|(\S+)', line.lstrip('.'))
    out = []
    for quoted, plain in words:
        word = quoted.replace('""', '"') if quoted else plain
        out.append(word.replace('\\&', '').replace('\\-', '-'))
    return out


def fl_flags(line):
    """The options an mdoc line spells with Fl: ".It Fl c Ar x , Fl -config"
    gives -c and --config (Fl prints its arguments with one more '-')."""
    flags = []
    in_fl = False
    for word in macro_words(line):
        if word in MDOC_CALLABLE:
            in_fl = word == 'Fl'
            continue
        if in_fl and re.fullmatch(r'-?[A-Za-z0-9][A-Za-z0-9_-]*', word):
            flags.append('-' + word)
    return flags


def item_lines(text):
    return [line for line in text.splitlines() if re.match(r'^\.It\s', line)]


def documented_flags(text):
    """Options that head an entry (.It line) of cunicorn.1."""
    flags = set()
    for line in item_lines(text):
        flags.update(fl_flags(line))
    return flags


def documented_settings(text):
    """Settings that head an entry of cunicorn.conf.5: ".It Ic name No = Ar
    type" for values, ".It Fn name args" for hooks."""
    names = set()
    for line in item_lines(text):
        m = re.match(r'^\.It\s+(?:Ic|Fn)\s+([A-Za-z_][A-Za-z0-9_]*)', line)
        if m:
            names.add(m.group(1))
    return names


# --------------------------------------------------------------------------

class PageFiles(unittest.TestCase):
    def test_pages_exist_with_header(self):
        for path, title, section in ((PAGE1, 'CUNICORN', '1'), (PAGE5, 'CUNICORN.CONF', '5')):
            text = read(path)
            self.assertRegex(text, r'(?m)^\.Dd November 28, 2026$', path)
            self.assertRegex(text, r'(?m)^\.Dt %s %s$' % (re.escape(title), section), path)
            self.assertRegex(text, r'(?m)^\.Os$', path)


class MandocLint(unittest.TestCase):
    """mandoc -Tlint, at its strictest level (-W all is the default for
    -Tlint), must have nothing to say about the pages themselves.

    It is run in man/, so that the two pages' references to each other
    resolve as they do once installed (mandoc looks for NAME.SECTION in the
    current directory).  The only lines tolerated are about references to
    other packages' manuals, which depend on the host and not on the pages:
    "referenced manual not found" when, say, nginx(8) is not installed, and
    "outdated mandoc.db lacks nginx(8) entry" on systems such as Debian,
    whose man(1) keeps no mandoc.db.
    """

    def host_dependent(self, line, own):
        m = re.search(r'outdated mandoc\.db lacks (\S+)\((\w+)\) entry', line)
        if m:
            return (m.group(1), m.group(2)) not in own
        m = re.search(r'STYLE: referenced manual not found: Xr (\S+) (\w+)( \(\d+ times\))?$', line)
        if m:
            return (m.group(1), m.group(2)) not in own
        return False

    def test_lint_is_silent(self):
        mandoc = shutil.which('mandoc')
        if not mandoc:
            skip(self, 'mandoc is not installed')
        own = {page_name(p) for p in PAGES}
        for path in PAGES:
            with self.subTest(page=os.path.basename(path)):
                p = subprocess.run([mandoc, '-Tlint', os.path.basename(path)], cwd=MAN_DIR,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=TOOL_TIMEOUT)
                out = p.stdout.decode('utf-8', 'replace')
                lines = [l for l in out.splitlines() if l.strip()]
                complaints = [l for l in lines if not self.host_dependent(l, own)]
                self.assertEqual(complaints, [], 'mandoc -Tlint %s:\n%s' % (path, out))
                # A missing external manual is a STYLE message: status 1.
                allowed = (0, 1) if any('STYLE: referenced manual not found' in l for l in lines) else (0,)
                self.assertIn(p.returncode, allowed, 'mandoc -Tlint %s exited %d:\n%s'
                              % (path, p.returncode, out))


class CoversBinary(unittest.TestCase):
    """The pages against what the binary prints."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='cunicorn-manpages-')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        if server.is_gunicorn():
            skip(self, 'the pages document cunicorn, not %s' % server.binary())

    def run_binary(self, *args):
        status, out, err = server.run_binary(list(args), cwd=self.tmp, timeout=TOOL_TIMEOUT)
        self.assertEqual(status, 0, '%s %s exited %r\nstdout:\n%s\nstderr:\n%s'
                         % (server.binary(), ' '.join(args), status, out, err))
        return out

    def help_flags(self):
        flags = help_flags(self.run_binary('--help'))
        # Guard the parser: an empty set would make the checks pass vacuously.
        for expected in ('-h', '--help', '-b', '--bind', '-c', '--config'):
            self.assertIn(expected, flags, 'could not parse --help; got %s' % sorted(flags))
        return flags

    def setting_names(self):
        # --print-config loads the application too, as --check-config does.
        server.write_file(os.path.join(self.tmp, 'hello.py'), server.HELLO_APP)
        names = print_config_names(self.run_binary('--print-config', '--chdir', self.tmp, 'hello:app'))
        for expected in ('bind', 'workers', 'config', 'wsgi_app', 'on_starting'):
            self.assertIn(expected, names, 'could not parse --print-config; got %s' % sorted(names))
        return names

    def test_every_option_is_in_cunicorn_1(self):
        documented = documented_flags(read(PAGE1))
        missing = sorted(self.help_flags() - documented)
        self.assertEqual(missing, [], 'options of --help without an entry in %s' % PAGE1)

    def test_cunicorn_1_documents_no_unknown_option(self):
        unknown = sorted(documented_flags(read(PAGE1)) - self.help_flags())
        self.assertEqual(unknown, [], 'entries of %s that --help does not know' % PAGE1)

    def test_every_setting_is_in_cunicorn_conf_5(self):
        documented = documented_settings(read(PAGE5))
        missing = sorted(self.setting_names() - documented)
        self.assertEqual(missing, [], 'settings of --print-config without an entry in %s' % PAGE5)

    def test_cunicorn_conf_5_documents_no_unknown_setting(self):
        unknown = sorted(documented_settings(read(PAGE5)) - self.setting_names())
        self.assertEqual(unknown, [], 'entries of %s that --print-config does not know' % PAGE5)


class ManRenders(unittest.TestCase):
    def test_man_l_renders(self):
        man = shutil.which('man')
        if not man:
            skip(self, 'man is not installed')
        env = dict(os.environ, MANPAGER='cat', PAGER='cat', MANWIDTH='80')
        env.pop('MANOPT', None)
        for path, heading in ((PAGE1, 'SIGNALS'), (PAGE5, 'SETTINGS')):
            with self.subTest(page=os.path.basename(path)):
                p = subprocess.run([man, '-l', path], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=env, timeout=TOOL_TIMEOUT)
                out = p.stdout.decode('utf-8', 'replace')
                err = p.stderr.decode('utf-8', 'replace')
                # A host without the locale in $LANG says so; not the page's fault.
                err_lines = [l for l in err.splitlines()
                             if l.strip() and "can't set the locale" not in l]
                self.assertEqual(p.returncode, 0, 'man -l %s exited %d:\n%s' % (path, p.returncode, err))
                self.assertEqual(err_lines, [], 'man -l %s:\n%s' % (path, err))
                # Bold headings may come overstruck ("S\bSI\bI..."): drop that.
                plain = re.sub(r'.\x08', '', out)
                self.assertIn('NAME', plain)
                self.assertIn(heading, plain)
                self.assertIn('cunicorn', plain)


if __name__ == '__main__':
    unittest.main()
