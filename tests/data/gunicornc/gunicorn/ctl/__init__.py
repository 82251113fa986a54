#
# This file is part of gunicorn released under the MIT license.
# See the NOTICE for more information.

"""
Gunicorn Control Interface (the client side only).
"""

from gunicorn.ctl.client import ControlClient
from gunicorn.ctl.protocol import ControlProtocol

__all__ = ['ControlClient', 'ControlProtocol']
