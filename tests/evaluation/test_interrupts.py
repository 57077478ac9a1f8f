import os
import signal
import threading

import pytest

from positronic.evaluation.interrupts import DeferredInterrupt


def test_the_first_ctrl_c_is_deferred_to_check_and_a_second_one_interrupts_at_once():
    before = signal.getsignal(signal.SIGINT)
    with DeferredInterrupt() as ctrl_c:
        ctrl_c.check()
        os.kill(os.getpid(), signal.SIGINT)
        assert ctrl_c.requested
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_it_leaves_sigint_alone():
    seen = []

    def run():
        with DeferredInterrupt() as ctrl_c:
            seen.append((signal.getsignal(signal.SIGINT), ctrl_c.requested))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [(signal.getsignal(signal.SIGINT), False)]
