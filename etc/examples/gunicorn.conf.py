# Sample configuration for cunicorn (the same file works with Gunicorn).
#
# Use it with:   cunicorn -c etc/examples/gunicorn.conf.py --chdir etc/examples hello:app
# A file named gunicorn.conf.py in the working directory (after --chdir) is
# read even without -c.  The file is Python: every module-level name that is
# a setting name is applied; command-line options override it, and
# GUNICORN_CMD_ARGS sits in between.  See cunicorn.conf(5) for every setting.

import multiprocessing

# -- Server socket -----------------------------------------------------------
# One or more addresses: "HOST:PORT", "[::1]:PORT", "unix:/path/to.sock",
# "fd://3".  Default: 127.0.0.1:8000 (or $PORT).
bind = ["127.0.0.1:8000"]
# backlog = 2048

# -- Workers -------------------------------------------------------------------
# Processes forked by the master.  Gunicorn's rule of thumb is 2 x cores + 1;
# cunicorn's workers keep connections alive and never block on slow clients,
# so fewer are usually enough.  $WEB_CONCURRENCY sets the default.
workers = min(2, multiprocessing.cpu_count())
# worker_class = "sync"      # or "gthread" with threads = 4
# threads = 1
# max_requests = 0           # restart a worker after this many requests (0 = never)
# max_requests_jitter = 0

# A worker silent for this many seconds is killed and replaced.
timeout = 30
# Seconds a worker gets to finish its requests after TERM or a reload.
graceful_timeout = 30
# Seconds an idle keep-alive connection stays open.
keepalive = 2

# -- Request limits (defaults shown) -------------------------------------------
# limit_request_line = 4094
# limit_request_fields = 100
# limit_request_field_size = 8190

# -- Logging -------------------------------------------------------------------
# "-" is standard output / standard error.
accesslog = "-"
errorlog = "-"
loglevel = "info"
# access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

# -- Process -------------------------------------------------------------------
# proc_name = "hello"
# pidfile = "/run/cunicorn/hello.pid"
# daemon = False
# raw_env = ["APP_SETTING=value"]   # set in the environment of the app
# user = "www"
# group = "www"

# -- Proxies -------------------------------------------------------------------
# Peers trusted to send X-Forwarded-Proto and friends.
# forwarded_allow_ips = "127.0.0.1,::1"
# proxy_protocol = "off"            # "v1", "v2" or "auto" behind HAProxy
# proxy_allow_ips = "127.0.0.1,::1"


# -- Hooks ---------------------------------------------------------------------
# Called in the master once the listening sockets are ready.
def when_ready(server):
    server.log.info("ready: %s worker(s)", server.num_workers)


# Called in each worker after it is forked, before the app is loaded.
def post_fork(server, worker):
    server.log.info("worker %s forked", worker.pid)
