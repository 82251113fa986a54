"""What src/tls.cpp calls in Python: the context factory gunicorn's
sslcontext() builds (each failure names the setting), the ssl_context hook
call, and the per-connection objects (SSLObject over memory BIOs; the
sockets stay with the C++ event loop).
"""
import ssl

def default_context(certfile, keyfile, ca_certs, cert_reqs, ciphers):
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_certs)
    except Exception as e:
        raise ValueError("ca_certs %r: %s" % (ca_certs, e)) from None
    if certfile is None:
        raise ValueError("keyfile %r is set but certfile is not" % (keyfile,))
    try:
        ctx.load_cert_chain(certfile=certfile, keyfile=keyfile)
    except Exception as e:
        raise ValueError("certfile %r, keyfile %r: %s" % (certfile, keyfile, e)) from None
    ctx.verify_mode = cert_reqs
    if ciphers:
        try:
            ctx.set_ciphers(ciphers)
        except Exception as e:
            raise ValueError("ciphers %r: %s" % (ciphers, e)) from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx

def build(hook, config, suppress_ragged_eofs, *args):
    def default_ssl_context_factory():
        return default_context(*args)
    if hook is None:
        ctx = default_ssl_context_factory()
    else:
        ctx = hook(config, default_ssl_context_factory)
        if not isinstance(ctx, ssl.SSLContext):
            raise TypeError("the ssl_context hook returned %s, not an ssl.SSLContext" % type(ctx).__name__)
    if not suppress_ragged_eofs:
        # OpenSSL 3 reports an EOF without close_notify as a clean end
        # under this option, which Python sets by default.
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx

def session(ctx):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=True)
    # ssl.SSLObject is a Python class whose read/write/do_handshake only
    # forward to the _ssl object it wraps; calling that directly saves a
    # Python frame per call on the hot path.
    return getattr(obj, "_sslobj", obj), incoming, outgoing
