"""The supervisor's pure parts: the restart backoff and how a worker's exit is described."""

from __future__ import annotations

import signal

from musicgraph.serving import RestartBackoff, describe_exit, reuse_port_supported


def test_backoff_doubles_while_workers_die_young_and_resets_after_a_stable_run() -> None:
    """Replacements that keep dying young wait 0.5, 1, 2 ... seconds up to the cap; a worker that
    ran past ``stable_after`` brings the delay back to the first."""
    backoff = RestartBackoff(first=0.5, longest=4.0, stable_after=60.0)
    delays = [backoff.after_death(ran_for=1.0) for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.after_death(ran_for=61.0) == 0.5
    assert backoff.after_death(ran_for=2.0) == 1.0


def test_exits_are_described_by_signal_name_or_code() -> None:
    """A worker's exit reads as the signal that killed it, a failed start, or its exit code."""
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3).startswith("could not start (exit code 3")
    assert describe_exit(1) == "exited with code 1"


def test_reuse_port_is_supported_on_linux() -> None:
    """This Linux machine has SO_REUSEPORT (the fallback to one shared socket is for others)."""
    assert reuse_port_supported()
