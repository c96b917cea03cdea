"""Test helpers that use real parts: network-namespace hosts with sshd, a stand-in ``xl``.

``TestBed`` builds N hosts on one Linux machine (needs root, ``openssh-server`` and
``iproute2``); ``python -m tune.testbed up 3`` does it from a shell.  The pytest fixtures live in
:mod:`tune.testbed.pytest_plugin`.
"""

from .netns import SKIP_REASON, TestBed, TestBedError, TestHost, testbed_missing_reason

__all__ = ["TestBed", "TestHost", "TestBedError", "testbed_missing_reason", "SKIP_REASON"]
