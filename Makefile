# cunicorn -- one Makefile for GNU make and BSD make (bmake).
#
#   make                   build ./cunicorn
#   make test              unit + integration tests ("N passed, N failed")
#   make check             the same suite against an ASan+UBSan build
#   make fuzz              libFuzzer targets (clang), FUZZ_SECONDS each
#   make install           PREFIX, DESTDIR, BINDIR, MANDIR, SHAREDIR,
#                          SYSCONFDIR honoured; make uninstall
#   make cunicorn-kqueue   the kqueue backend on Linux (tests/kqueue-shim)
#   make deps              install build/test dependencies (apt-get), or
#                          print the pkg/apk command on FreeBSD/Alpine
#
# PYTHON selects the interpreter to embed: make PYTHON=/usr/bin/python3

VERSION = 0.1.0

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
# Manual pages are under $(PREFIX)/man on the BSDs, $(PREFIX)/share/man
# elsewhere (hier(7)); both makes run `!=`, neither reads the other's .if.
MAN_SUBDIR != case "`uname -s`" in *BSD|DragonFly) echo man ;; *) echo share/man ;; esac
MANDIR ?= $(PREFIX)/$(MAN_SUBDIR)
SHAREDIR ?= $(PREFIX)/share
SYSCONFDIR ?= $(PREFIX)/etc
EXAMPLESDIR ?= $(SHAREDIR)/examples/cunicorn
DESTDIR ?=
EXAMPLES = etc/examples/hello.py etc/examples/gunicorn.conf.py

# The system interpreter first: its packages (Flask, Django from the
# distribution) are what a deployment imports.
PYTHON != for p in /usr/bin/python3 /usr/local/bin/python3; do if [ -x $$p ]; then echo $$p; exit 0; fi; done; echo python3
PYTHON_CONFIG ?= $(PYTHON)-config
PY_INCLUDES != $(PYTHON_CONFIG) --includes
PY_LIBS != $(PYTHON_CONFIG) --ldflags --embed 2>/dev/null || $(PYTHON_CONFIG) --ldflags
PY_EXECUTABLE != $(PYTHON) -c 'import sys; print(sys.executable)'

CXX ?= c++
OPT ?= -O2 -g
WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wsign-compare
PROJECT_CXXFLAGS = -std=c++17 $(OPT) $(WARN) -Iinclude $(PY_INCLUDES) \
	-DCUNICORN_VERSION='"$(VERSION)"' -DCUNICORN_PYTHON='"$(PY_EXECUTABLE)"'
ALL_CXXFLAGS = $(PROJECT_CXXFLAGS) $(CXXFLAGS)
ALL_LDFLAGS = $(LDFLAGS)
LIBS = $(PY_LIBS) -lpthread

# Sources are listed, not globbed: bmake leaves $^ empty and has no wildcard.
CORE_SRCS = src/http_parser.cpp src/http_writer.cpp src/log.cpp src/ev.cpp \
	src/ev_epoll.cpp src/ev_kqueue.cpp src/sock.cpp src/config.cpp \
	src/config_value.cpp src/config_validate.cpp src/settings.cpp src/cli.cpp \
	src/pyembed.cpp src/wsgi.cpp src/hooks.cpp src/worker.cpp \
	src/conn.cpp src/executor_sync.cpp src/executor_thread.cpp \
	src/arbiter.cpp src/platform.cpp src/reloader.cpp src/tls.cpp \
	src/statsd.cpp
CORE_OBJS = src/http_parser.o src/http_writer.o src/log.o src/ev.o \
	src/ev_epoll.o src/ev_kqueue.o src/sock.o src/config.o \
	src/config_value.o src/config_validate.o src/settings.o src/cli.o \
	src/pyembed.o src/wsgi.o src/hooks.o src/worker.o \
	src/conn.o src/executor_sync.o src/executor_thread.o \
	src/arbiter.o src/platform.o src/reloader.o src/tls.o \
	src/statsd.o
UNIT_SRCS = tests/unit/main.cpp tests/unit/test_http_parser.cpp \
	tests/unit/test_conformance.cpp tests/unit/test_http_writer.cpp \
	tests/unit/test_log.cpp tests/unit/test_config.cpp tests/unit/test_statsd.cpp
UNIT_OBJS = tests/unit/main.o tests/unit/test_http_parser.o \
	tests/unit/test_conformance.o tests/unit/test_http_writer.o \
	tests/unit/test_log.o tests/unit/test_config.o tests/unit/test_statsd.o
FUZZ_TARGETS = fuzz_http_parser fuzz_chunked fuzz_proxy
# The server's own Python code (src/py/X.py), built into the binary: each
# becomes src/py/X.inc, a C++ raw string literal the module that runs it
# includes. The text starts right after the opening delimiter, so line
# numbers in tracebacks are the file's.
PY_SRCS = src/py/config.py src/py/hooks.py src/py/import_app.py src/py/tls.py src/py/spew.py
PY_INCS = src/py/config.inc src/py/hooks.inc src/py/import_app.inc src/py/tls.inc src/py/spew.inc

SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.SUFFIXES: .cpp .o .py .inc
.cpp.o:
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@
.py.inc:
	{ printf 'R"PY('; cat $<; printf ')PY"\n'; } > $@.tmp && mv $@.tmp $@

all: cunicorn

cunicorn: $(CORE_OBJS) src/main.o
	$(CXX) $(ALL_LDFLAGS) -o $@ src/main.o $(CORE_OBJS) $(LIBS)

tests/unit/unit-tests: $(CORE_OBJS) $(UNIT_OBJS)
	$(CXX) $(ALL_LDFLAGS) -o $@ $(UNIT_OBJS) $(CORE_OBJS) $(LIBS)

$(CORE_OBJS) src/main.o $(UNIT_OBJS): include/cunicorn/*.h
src/config.o: src/py/config.inc
src/hooks.o: src/py/hooks.inc
src/pyembed.o: src/py/import_app.inc
src/tls.o: src/py/tls.inc
src/wsgi.o: src/py/spew.inc

# The sanitizer builds compile every source in one command: no object files,
# so they never mix with the normal build.
cunicorn-asan: $(CORE_SRCS) src/main.cpp include/cunicorn/*.h $(PY_INCS)
	$(CXX) $(PROJECT_CXXFLAGS) $(SANITIZE) -o $@ src/main.cpp $(CORE_SRCS) $(LIBS)

# The kqueue backend on Linux: kqueue() and kevent() emulated on epoll by a
# test-only shim (README, "BSD build"). One command, as the sanitizer builds;
# -isystem as for the real header (struct kevent and kevent() share a name).
KQUEUE_SHIM = -DCUNICORN_KQUEUE_SHIM -isystem tests/kqueue-shim
cunicorn-kqueue: $(CORE_SRCS) src/main.cpp include/cunicorn/*.h $(PY_INCS) \
		tests/kqueue-shim/kqueue_shim.cpp tests/kqueue-shim/sys/event.h
	$(CXX) $(PROJECT_CXXFLAGS) $(KQUEUE_SHIM) -o $@ src/main.cpp $(CORE_SRCS) \
		tests/kqueue-shim/kqueue_shim.cpp $(LIBS)

tests/unit/unit-tests-asan: $(CORE_SRCS) $(UNIT_SRCS) include/cunicorn/*.h $(PY_INCS)
	$(CXX) $(PROJECT_CXXFLAGS) $(SANITIZE) -o $@ $(UNIT_SRCS) $(CORE_SRCS) $(LIBS)

test: cunicorn tests/unit/unit-tests lint-py
	$(PYTHON_TEST) tests/run.py --binary ./cunicorn --unit tests/unit/unit-tests

check: cunicorn-asan tests/unit/unit-tests-asan
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(PYTHON_TEST) tests/run.py --binary ./cunicorn-asan --unit tests/unit/unit-tests-asan --sanitized

# pyflakes over the server's Python files (python3-pyflakes, make deps).
lint-py:
	$(PYTHON_TEST) -m pyflakes $(PY_SRCS)

# Integration tests need Debian's interpreter (Flask, Django come from apt).
PYTHON_TEST ?= $(PY_EXECUTABLE)

FUZZ_SECONDS ?= 180
FUZZ_CXX ?= clang++
fuzz:
	FUZZ_CXX='$(FUZZ_CXX)' FUZZ_SECONDS='$(FUZZ_SECONDS)' sh tests/fuzz/run.sh $(FUZZ_TARGETS)

deps:
	sh tests/install-deps.sh

# Serve the example app on 127.0.0.1:8000.
run: cunicorn
	./cunicorn --chdir etc/examples -b 127.0.0.1:8000 hello:app

# The service scripts are installed as examples: a package copies them to
# the init system's directory, where they would act on the host (README,
# "Installing"). The sample config never overwrites a real one.
install: cunicorn
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(SYSCONFDIR)/cunicorn $(DESTDIR)$(EXAMPLESDIR)/rc.d \
		$(DESTDIR)$(EXAMPLESDIR)/init.d $(DESTDIR)$(EXAMPLESDIR)/conf.d \
		$(DESTDIR)$(EXAMPLESDIR)/systemd
	install -m 755 cunicorn $(DESTDIR)$(BINDIR)/cunicorn
	install -m 644 man/cunicorn.1 $(DESTDIR)$(MANDIR)/man1/cunicorn.1
	install -m 644 man/cunicorn.conf.5 $(DESTDIR)$(MANDIR)/man5/cunicorn.conf.5
	install -m 644 etc/examples/gunicorn.conf.py \
		$(DESTDIR)$(SYSCONFDIR)/cunicorn/gunicorn.conf.py.sample
	install -m 644 $(EXAMPLES) $(DESTDIR)$(EXAMPLESDIR)
	install -m 755 etc/rc.d/cunicorn $(DESTDIR)$(EXAMPLESDIR)/rc.d/cunicorn
	install -m 755 etc/init.d/cunicorn $(DESTDIR)$(EXAMPLESDIR)/init.d/cunicorn
	install -m 644 etc/conf.d/cunicorn $(DESTDIR)$(EXAMPLESDIR)/conf.d/cunicorn
	install -m 644 etc/systemd/cunicorn.service etc/systemd/cunicorn.socket \
		$(DESTDIR)$(EXAMPLESDIR)/systemd

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cunicorn $(DESTDIR)$(MANDIR)/man1/cunicorn.1 \
		$(DESTDIR)$(MANDIR)/man5/cunicorn.conf.5 \
		$(DESTDIR)$(SYSCONFDIR)/cunicorn/gunicorn.conf.py.sample
	rm -rf $(DESTDIR)$(EXAMPLESDIR)
	rmdir $(DESTDIR)$(SYSCONFDIR)/cunicorn 2>/dev/null || true

clean:
	rm -f cunicorn cunicorn-asan cunicorn-kqueue src/*.o tests/unit/*.o \
		tests/unit/unit-tests tests/unit/unit-tests-asan $(PY_INCS)
	rm -rf tests/fuzz/build

.PHONY: all test lint-py check fuzz deps run install uninstall clean
