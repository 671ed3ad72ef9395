"""`up`'s restart policy on its own (pure logic, no processes): backoff, its reset, the crash-loop verdict."""

from __future__ import annotations

import signal

import pytest

from devstack.restart_policy import RestartPolicy, RestartTracker, describe_exit


def test_the_delay_doubles_from_half_a_second_to_a_ten_second_cap() -> None:
    """Deaths in quick succession wait 0.5, 1, 2, 4, 8, then 10 s for ever (the cap)."""
    tracker = RestartTracker()
    delays = [tracker.on_exit(now=float(i), uptime=0.1).delay for i in range(9)]
    assert delays == [0.5, 1, 2, 4, 8, 10, 10, 10, 10]


def test_a_stable_run_resets_the_backoff() -> None:
    """After a run of at least `stable_after` seconds the next death is a first restart again."""
    policy = RestartPolicy(stable_after=30)
    tracker = RestartTracker(policy)
    assert [tracker.on_exit(now=i, uptime=1).delay for i in range(4)] == [0.5, 1, 2, 4]
    again = tracker.on_exit(now=100, uptime=30)
    assert (again.delay, again.attempt) == (0.5, 1)
    assert tracker.on_exit(now=101, uptime=29.9).delay == 1


def test_more_restarts_than_the_limit_within_the_window_is_a_crash_loop() -> None:
    """The sixth restart within 120 s is a crash loop; the verdict lasts while restarts stay that dense."""
    tracker = RestartTracker(RestartPolicy(crash_loop_restarts=5, crash_loop_window=120))
    verdicts = [tracker.on_exit(now=10.0 * i, uptime=1).crash_loop for i in range(8)]
    assert verdicts == [False] * 5 + [True] * 3
    assert tracker.on_exit(now=80, uptime=1).recent == 9


def test_restarts_spread_beyond_the_window_are_no_crash_loop() -> None:
    """A death every 30 s never has more than four restarts within 120 s, so it is never called a loop."""
    tracker = RestartTracker(RestartPolicy(crash_loop_restarts=5, crash_loop_window=120, stable_after=60))
    decisions = [tracker.on_exit(now=30.0 * i, uptime=29) for i in range(20)]
    assert not any(d.crash_loop for d in decisions)
    assert max(d.recent for d in decisions) == 4


def test_the_exponent_stays_finite_however_long_the_loop() -> None:
    """Thousands of consecutive deaths still give the cap, not an overflow."""
    tracker = RestartTracker()
    for i in range(5000):
        decision = tracker.on_exit(now=float(i), uptime=0)
    assert decision.delay == 10
    assert decision.attempt == 5000


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_delay": 0}, {"factor": 0.5}, {"max_delay": 0.1}, {"crash_loop_restarts": 0}],
)
def test_a_policy_that_could_spin_is_refused(kwargs: dict[str, float]) -> None:
    """No zero delay, no shrinking factor, no cap below the first delay, no empty crash-loop limit."""
    with pytest.raises(ValueError, match="need"):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


def test_exit_statuses_read_as_people_say_them() -> None:
    """A negative status names its signal; a positive one is an exit status."""
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL, exit status -9"
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-200) == "killed by signal 200, exit status -200"
