"""Helpers for tests that interrupt a child process."""

import signal


def restore_sigint() -> None:
    """``preexec_fn`` giving the child the default SIGINT action; a shell that starts the tests in the background
    ignores SIGINT, the child would inherit that, and a Ctrl-C test would then see the command finish instead."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
