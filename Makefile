# cunicorn -- one Makefile for GNU make and BSD make (bmake).
#
#   make                   build ./cunicorn
#   make test              unit + integration tests ("N passed, N failed")
#   make check             the same suite against an ASan+UBSan build, with
#                          LeakSanitizer (tests/sanitizer/lsan.cpp)
#   make fuzz              libFuzzer targets (clang), FUZZ_SECONDS each
#   make install           PREFIX, DESTDIR, BINDIR, MANDIR, SHAREDIR,
#                          SYSCONFDIR honoured; make uninstall
#   make cunicorn-kqueue   the kqueue backend on Linux (tests/kqueue-shim)
#   make deps              install build/test dependencies (apt-get), or
#                          print the pkg/apk command on FreeBSD/Alpine
#
# PYTHON selects the interpreter to embed: make PYTHON=/usr/bin/python3
#
# Reading this file runs no command: what the interpreter needs is found by
# a recipe (src/python.cflags below), the manual directory by the install
# recipes. test and check build with one job per CPU, even without -j.

VERSION = 0.1.0

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
# Empty: $(PREFIX)/man on the BSDs, $(PREFIX)/share/man elsewhere (hier(7)).
MANDIR ?=
SHAREDIR ?= $(PREFIX)/share
SYSCONFDIR ?= $(PREFIX)/etc
EXAMPLESDIR ?= $(SHAREDIR)/examples/cunicorn
DESTDIR ?=
EXAMPLES = etc/examples/hello.py etc/examples/gunicorn.conf.py

# Empty: the system interpreter first, /usr/bin/python3, else
# /usr/local/bin/python3, else python3 from PATH; its packages (Flask,
# Django from the distribution) are what a deployment imports.
# PYTHON_CONFIG empty: $(PYTHON)-config.
PYTHON =
PYTHON_CONFIG ?=
# The tests run under the embedded interpreter's sys.executable.
PYTHON_TEST ?=

CXX ?= c++
OPT ?= -O2 -g
WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wsign-compare
# The interpreter's options are read from response files (@file; gcc and
# clang both take them), made by the src/python.cflags recipe.
BASE_CXXFLAGS = -std=c++17 $(WARN) -Iinclude @src/python.cflags \
	-DCUNICORN_VERSION='"$(VERSION)"'
PROJECT_CXXFLAGS = $(BASE_CXXFLAGS) $(OPT)
ALL_CXXFLAGS = $(PROJECT_CXXFLAGS) $(CXXFLAGS)
ALL_LDFLAGS = $(LDFLAGS)
LIBS = @src/python.ldflags -lpthread

# Sources are listed, not globbed: bmake leaves $^ empty and has no
# wildcard. Object lists are derived from them, one suffix per build: .o
# normal, .ao ASan+UBSan, .ko the kqueue shim; each object is its own
# compiler call, so that -j runs them in parallel.
CORE_SRCS = src/http_parser.cpp src/http_writer.cpp src/log.cpp src/ev.cpp \
	src/ev_epoll.cpp src/ev_kqueue.cpp src/sock.cpp src/config.cpp \
	src/config_value.cpp src/config_validate.cpp src/settings.cpp src/cli.cpp \
	src/pyembed.cpp src/wsgi.cpp src/hooks.cpp src/worker.cpp \
	src/conn.cpp src/executor_sync.cpp src/executor_thread.cpp src/executor_gevent.cpp \
	src/arbiter.cpp src/platform.cpp src/reloader.cpp src/tls.cpp \
	src/statsd.cpp src/prometheus.cpp src/control.cpp src/arbiter_control.cpp \
	src/ctl_client.cpp src/pylog.cpp
UNIT_SRCS = tests/unit/main.cpp tests/unit/test_http_parser.cpp \
	tests/unit/test_conformance.cpp tests/unit/test_http_writer.cpp \
	tests/unit/test_log.cpp tests/unit/test_config.cpp tests/unit/test_statsd.cpp
CORE_OBJS = $(CORE_SRCS:.cpp=.o)
UNIT_OBJS = $(UNIT_SRCS:.cpp=.o)
ASAN_CORE_OBJS = $(CORE_SRCS:.cpp=.ao)
ASAN_OBJS = src/main.ao $(ASAN_CORE_OBJS) tests/sanitizer/lsan.ao
ASAN_UNIT_OBJS = $(UNIT_SRCS:.cpp=.ao) $(ASAN_CORE_OBJS) tests/sanitizer/lsan.ao
KQUEUE_OBJS = src/main.ko $(CORE_SRCS:.cpp=.ko) tests/kqueue-shim/kqueue_shim.ko
ALL_OBJS = src/main.o $(CORE_OBJS) $(UNIT_OBJS) $(ASAN_OBJS) \
	$(UNIT_SRCS:.cpp=.ao) $(KQUEUE_OBJS)
FUZZ_TARGETS = fuzz_http_parser fuzz_chunked fuzz_proxy

# Files made from the sources, which make clean removes. A generated file
# that objects include is added here and as a prerequisite of each of
# them (its .o, .ao and .ko).
# The server's own Python code (src/py/X.py) is built into the binary: each
# becomes src/py/X.inc, a C++ raw string literal that the module running it
# includes. The text starts right after the opening delimiter, so line
# numbers in tracebacks are the file's.
PY_SRCS = src/py/config.py src/py/hooks.py src/py/import_app.py src/py/tls.py src/py/spew.py \
	src/py/glogging.py src/py/gevent_worker.py
PY_INCS = src/py/config.inc src/py/hooks.inc src/py/import_app.inc src/py/tls.inc src/py/spew.inc \
	src/py/glogging.inc src/py/gevent_worker.inc
GENERATED = src/python.cflags src/python.ldflags src/python.path $(PY_INCS)

SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# -O1, as ASan's documentation advises and tests/fuzz/run.sh builds: it
# compiles in half the time of -O2, the sanitizer build's whole cost.
SANITIZE_OPT = -O1 -g
# LeakSanitizer checks a process at exit(); a worker leaves with _exit(),
# which tests/sanitizer/lsan.cpp makes check first.
LSAN_WRAP = -Wl,--wrap=_exit
# The kqueue backend on Linux: kqueue() and kevent() emulated on epoll by a
# test-only shim (README, "BSD build"); -isystem as for the real header
# (struct kevent and kevent() share a name).
KQUEUE_SHIM = -DCUNICORN_KQUEUE_SHIM -isystem tests/kqueue-shim

.SUFFIXES: .cpp .o .ao .ko .py .inc
.py.inc:
	{ printf 'R"PY('; cat $<; printf ')PY"\n'; } > $@.tmp && mv $@.tmp $@
.cpp.o:
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@
# The sanitizer and kqueue builds take no user CXXFLAGS.
.cpp.ao:
	$(CXX) $(BASE_CXXFLAGS) $(SANITIZE_OPT) $(SANITIZE) -c $< -o $@
.cpp.ko:
	$(CXX) $(PROJECT_CXXFLAGS) $(KQUEUE_SHIM) -c $< -o $@

all: cunicorn

cunicorn: $(CORE_OBJS) src/main.o
	$(CXX) $(ALL_LDFLAGS) -o $@ src/main.o $(CORE_OBJS) $(LIBS)

tests/unit/unit-tests: $(CORE_OBJS) $(UNIT_OBJS)
	$(CXX) $(ALL_LDFLAGS) -o $@ $(UNIT_OBJS) $(CORE_OBJS) $(LIBS)

cunicorn-asan: $(ASAN_OBJS)
	$(CXX) $(SANITIZE) $(LSAN_WRAP) -o $@ $(ASAN_OBJS) $(LIBS)

tests/unit/unit-tests-asan: $(ASAN_UNIT_OBJS)
	$(CXX) $(SANITIZE) $(LSAN_WRAP) -o $@ $(ASAN_UNIT_OBJS) $(LIBS)

cunicorn-kqueue: $(KQUEUE_OBJS)
	$(CXX) -o $@ $(KQUEUE_OBJS) $(LIBS)

$(ALL_OBJS): include/cunicorn/*.h src/python.cflags
$(KQUEUE_OBJS): tests/kqueue-shim/sys/event.h
src/config.o src/config.ao src/config.ko: src/py/config.inc
src/hooks.o src/hooks.ao src/hooks.ko: src/py/hooks.inc
src/pyembed.o src/pyembed.ao src/pyembed.ko: src/py/import_app.inc
src/tls.o src/tls.ao src/tls.ko: src/py/tls.inc
src/wsgi.o src/wsgi.ao src/wsgi.ko: src/py/spew.inc
src/executor_gevent.o src/executor_gevent.ao src/executor_gevent.ko: src/py/gevent_worker.inc
src/pylog.o src/pylog.ao src/pylog.ko: src/py/glogging.inc

# What the interpreter needs: compiler and linker options from
# $(PYTHON_CONFIG), and its sys.executable (compiled in, and the tests'
# interpreter). Every object depends on this file; the stamp's name holds
# PYTHON, so that another PYTHON remakes it, and with it everything.
PYTHON_STAMP = src/python.for/$(PYTHON).stamp
$(PYTHON_STAMP):
	rm -rf src/python.for
	mkdir -p `dirname '$(PYTHON_STAMP)'` && touch '$(PYTHON_STAMP)'

src/python.cflags: Makefile $(PYTHON_STAMP)
	@py='$(PYTHON)'; pyc='$(PYTHON_CONFIG)'; \
	if [ -z "$$py" ]; then \
		py=python3; \
		for p in /usr/bin/python3 /usr/local/bin/python3; do \
			if [ -x $$p ]; then py=$$p; break; fi; \
		done; \
	fi; \
	exe=`$$py -c 'import sys; print(sys.executable)'` && \
	inc=`$${pyc:-$$py-config} --includes` && \
	libs=`$${pyc:-$$py-config} --ldflags --embed 2>/dev/null || $${pyc:-$$py-config} --ldflags` && \
	echo "python: $$exe ($${pyc:-$$py-config})" && \
	echo "$$libs" > src/python.ldflags && \
	echo "$$exe" > src/python.path && \
	echo "$$inc '-DCUNICORN_PYTHON=\"$$exe\"'" > src/python.cflags

# pyflakes over the server's Python files (python3-pyflakes, make deps).
PYFLAKES = py='$(PYTHON_TEST)'; $${py:-`cat src/python.path`} -m pyflakes $(PY_SRCS)
lint-py: src/python.cflags
	$(PYFLAKES)

# test and check build with one job per CPU: CI runs `make test check`
# without -j. Both need src/python.cflags first, which one make makes.
BUILD = $(MAKE) -j`getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2`
RUN_TESTS = py='$(PYTHON_TEST)'; $${py:-`cat src/python.path`} tests/run.py
CHECK_BUILD = cunicorn-asan tests/unit/unit-tests-asan
# The targets named on the command line (GNU make, bmake).
GOALS = $(MAKECMDGOALS) $(.TARGETS)

# In `make test check` (without -j, which could start check's build at the
# same time), the sanitizer build runs while the tests do: they mostly
# wait on sockets and processes, and leave the CPUs to it. Its output
# follows the tests'; check builds again whatever failed, and shows why.
test: src/python.cflags
	+$(BUILD) cunicorn tests/unit/unit-tests
	@$(PYFLAKES)
	@log=; case " $(GOALS) " in *" check "*) case " $$MAKEFLAGS" in *" -j"*) ;; *) \
		log=`mktemp`; echo "# building $(CHECK_BUILD) meanwhile"; \
		$(BUILD) $(CHECK_BUILD) >$$log 2>&1 & ;; esac ;; esac; \
	$(RUN_TESTS) --binary ./cunicorn --unit tests/unit/unit-tests; status=$$?; \
	if [ -n "$$log" ]; then wait; cat $$log; rm -f $$log; fi; exit $$status

check: src/python.cflags
	+$(BUILD) $(CHECK_BUILD)
	$(RUN_TESTS) --binary ./cunicorn-asan --unit tests/unit/unit-tests-asan --sanitized

FUZZ_SECONDS ?= 180
FUZZ_CXX ?= clang++
fuzz:
	FUZZ_CXX='$(FUZZ_CXX)' FUZZ_SECONDS='$(FUZZ_SECONDS)' sh tests/fuzz/run.sh $(FUZZ_TARGETS)

deps:
	sh tests/install-deps.sh

# Serve the example app on 127.0.0.1:8000.
run: cunicorn
	./cunicorn --chdir etc/examples -b 127.0.0.1:8000 hello:app

MAN_DIR = mandir='$(MANDIR)'; [ -n "$$mandir" ] || case `uname -s` in \
	*BSD|DragonFly) mandir='$(PREFIX)/man' ;; *) mandir='$(PREFIX)/share/man' ;; esac

# The service scripts are installed as examples: a package copies them to
# the init system's directory, where they would act on the host (README,
# "Installing"). The sample config never overwrites a real one.
install: cunicorn
	$(MAN_DIR); \
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$$mandir/man1 $(DESTDIR)$$mandir/man5 \
		$(DESTDIR)$(SYSCONFDIR)/cunicorn $(DESTDIR)$(EXAMPLESDIR)/rc.d \
		$(DESTDIR)$(EXAMPLESDIR)/init.d $(DESTDIR)$(EXAMPLESDIR)/conf.d \
		$(DESTDIR)$(EXAMPLESDIR)/systemd && \
	install -m 644 man/cunicorn.1 $(DESTDIR)$$mandir/man1/cunicorn.1 && \
	install -m 644 man/cunicorn.conf.5 $(DESTDIR)$$mandir/man5/cunicorn.conf.5
	install -m 755 cunicorn $(DESTDIR)$(BINDIR)/cunicorn
	install -m 644 etc/examples/gunicorn.conf.py \
		$(DESTDIR)$(SYSCONFDIR)/cunicorn/gunicorn.conf.py.sample
	install -m 644 $(EXAMPLES) $(DESTDIR)$(EXAMPLESDIR)
	install -m 755 etc/rc.d/cunicorn $(DESTDIR)$(EXAMPLESDIR)/rc.d/cunicorn
	install -m 755 etc/init.d/cunicorn $(DESTDIR)$(EXAMPLESDIR)/init.d/cunicorn
	install -m 644 etc/conf.d/cunicorn $(DESTDIR)$(EXAMPLESDIR)/conf.d/cunicorn
	install -m 644 etc/systemd/cunicorn.service etc/systemd/cunicorn.socket \
		$(DESTDIR)$(EXAMPLESDIR)/systemd

uninstall:
	$(MAN_DIR); \
	rm -f $(DESTDIR)$(BINDIR)/cunicorn $(DESTDIR)$$mandir/man1/cunicorn.1 \
		$(DESTDIR)$$mandir/man5/cunicorn.conf.5 \
		$(DESTDIR)$(SYSCONFDIR)/cunicorn/gunicorn.conf.py.sample
	rm -rf $(DESTDIR)$(EXAMPLESDIR)
	rmdir $(DESTDIR)$(SYSCONFDIR)/cunicorn 2>/dev/null || true

clean:
	rm -f cunicorn cunicorn-asan cunicorn-kqueue tests/unit/unit-tests \
		tests/unit/unit-tests-asan $(ALL_OBJS) $(GENERATED)
	rm -rf src/python.for tests/fuzz/build

.PHONY: all test lint-py check fuzz deps run install uninstall clean
