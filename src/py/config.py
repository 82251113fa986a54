"""Config-loading helpers gunicorn writes in Python: the callable and
class validators, loading gunicorn.conf.py (or a python:module), and the
PasteDeploy check for a logging section.

src/config.cpp runs this once per load, in a module of its own, and calls
these functions from its settings table.
"""
import ast
import importlib.machinery
import importlib.util
import inspect
import os
import sys


def get_arity(f):
    # util.get_arity: positional parameters only.
    sig = inspect.signature(f)
    arity = 0
    for param in sig.parameters.values():
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY,
                          inspect.Parameter.POSITIONAL_OR_KEYWORD):
            arity += 1
    return arity


def validate_callable(val, arity):
    if isinstance(val, str):
        try:
            mod_name, obj_name = val.rsplit(".", 1)
        except ValueError:
            raise TypeError("Value '%s' is not import string. "
                            "Format: module[.submodules...].object" % val)
        try:
            mod = __import__(mod_name, fromlist=[obj_name])
            val = getattr(mod, obj_name)
        except ImportError as e:
            raise TypeError(str(e))
        except AttributeError:
            raise TypeError("Can not load '%s' from '%s'" % (obj_name, mod_name))
    if not callable(val):
        raise TypeError("Value is not callable: %s" % val)
    if arity != -1 and arity != get_arity(val):
        raise TypeError("Value must have an arity of: %s" % arity)
    return val


def validate_post_request(val):
    val = validate_callable(val, -1)
    largs = get_arity(val)
    if largs == 4:
        return val
    elif largs == 3:
        return lambda worker, req, env, _r: val(worker, req, env)
    elif largs == 2:
        return lambda worker, req, _e, _r: val(worker, req)
    else:
        raise TypeError("Value must have an arity of: 4")


def call_if_function(val):
    # validate_class: a function or method is called for the class.
    if inspect.isfunction(val) or inspect.ismethod(val):
        val = val()
    return val


def shown(v):
    if callable(v):
        try:
            return "<{}()>".format(v.__qualname__)
        except AttributeError:
            return repr(v)
    return str(v)


def warn(msg):
    # util.warn
    print("!!!", file=sys.stderr)
    lines = msg.splitlines()
    for i, line in enumerate(lines):
        if i == 0:
            line = "WARNING: %s" % line
        print("!!! %s" % line, file=sys.stderr)
    print("!!!\n", file=sys.stderr)
    sys.stderr.flush()


def load_file(filename):
    # Application.get_config_from_filename
    ext = os.path.splitext(filename)[1]
    module_name = '__config__'
    if ext in [".py", ".pyc"]:
        spec = importlib.util.spec_from_file_location(module_name, filename)
    else:
        msg = "configuration file should have a valid Python extension.\n"
        warn(msg)
        loader_ = importlib.machinery.SourceFileLoader(module_name, filename)
        spec = importlib.util.spec_from_file_location(module_name, filename, loader=loader_)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = mod
    spec.loader.exec_module(mod)
    return vars(mod)


def load_module(module_name):
    return vars(importlib.import_module(module_name))


def has_logging_config(config_file):
    # pasterapp.has_logging_config
    import configparser
    parser = configparser.ConfigParser()
    parser.read([config_file])
    return parser.has_section('loggers')


def add_path(path):
    # Application.chdir
    if path not in sys.path:
        sys.path.insert(0, path)


def builtin_value(text):
    # A value src/config.cpp knows by its repr: gunicorn's no-op default
    # hooks ("<function OnStarting.on_starting>"), its default dicts, the
    # tuples of validate_statsd_address.
    if text.startswith("<function ") and text.endswith(">"):
        qualname = text[len("<function "):-1]

        def hook(*args, **kwargs):
            return None

        hook.__qualname__ = qualname
        hook.__name__ = qualname.rsplit(".", 1)[-1]
        return hook
    return ast.literal_eval(text)
