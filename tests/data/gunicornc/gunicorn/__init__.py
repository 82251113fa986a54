#
# This file is part of gunicorn released under the MIT license.
# See the NOTICE for more information.
#
# Gunicorn 26.1's control client (gunicornc), copied unchanged from
# gunicorn/ctl/{protocol,client,cli}.py; this file and config.py keep only
# what those modules import. See LICENSE.

version_info = (26, 1, 0)
__version__ = ".".join([str(v) for v in version_info])
