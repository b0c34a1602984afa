"""Login throttling, driven by explicit times: no test waits for the clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sddc_backup.domain.throttle import LoginThrottle

T0 = datetime(2025, 11, 18, 15, 0, tzinfo=UTC)
KEY = "admin@local|10.0.0.5"


def fail_times(throttle: LoginThrottle, key: str, *offsets_seconds: float) -> None:
    for offset in offsets_seconds:
        throttle.record_failure(key, T0 + timedelta(seconds=offset))


def test_a_key_with_no_failures_may_try_now() -> None:
    assert LoginThrottle().retry_after(KEY, T0) == 0


def test_fewer_failures_than_the_maximum_do_not_lock() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 1, 2, 3)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=3)) == 0


def test_the_maximum_number_of_failures_in_the_window_locks_the_key_out() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 1, 2, 3, 4)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=4)) == 60


def test_failures_older_than_the_window_do_not_count() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 1, 2, 3)  # these four fall out of the window by the fifth failure
    fail_times(throttle, KEY, 3 + 300)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=303)) == 0


def test_a_failure_exactly_one_window_old_no_longer_counts() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 100, 100, 100, 300)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=300)) == 0
    fail_times(throttle, KEY, 301)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=301)) == 60


def test_failures_just_inside_the_window_still_count() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 1, 2, 3, 299.999)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=300)) == 60


def test_the_lockout_expires_after_its_duration() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 0, 0, 0, 0)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=59)) == 1
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=60)) == 0
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=61)) == 0


def test_after_a_lockout_the_count_starts_again() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 0, 0, 0, 0, 61)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=61)) == 0
    fail_times(throttle, KEY, 62, 63, 64, 65)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=65)) == 60


def test_a_success_forgets_earlier_failures() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 1, 2, 3)
    throttle.record_success(KEY)
    fail_times(throttle, KEY, 4)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=4)) == 0


def test_a_success_lifts_a_lockout() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 0, 0, 0, 0)
    throttle.record_success(KEY)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=1)) == 0


def test_keys_are_throttled_independently() -> None:
    throttle = LoginThrottle()
    other = "admin@local|10.0.0.6"
    fail_times(throttle, KEY, 0, 0, 0, 0)
    fail_times(throttle, other, 0, 0, 0, 0)
    fail_times(throttle, KEY, 1)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=1)) == 60
    assert throttle.retry_after(other, T0 + timedelta(seconds=1)) == 0
    throttle.record_success(other)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=1)) == 60


def test_custom_limits_are_honoured() -> None:
    throttle = LoginThrottle(max_failures=2, window=timedelta(seconds=10), lockout=timedelta(minutes=10))
    fail_times(throttle, KEY, 0, 10)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=10)) == 0
    fail_times(throttle, KEY, 11)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=11)) == 600


def test_retry_after_rounds_a_fraction_of_a_second_up() -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 0, 0, 0, 0)
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=0.5)) == 60
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=58.1)) == 2
    assert throttle.retry_after(KEY, T0 + timedelta(seconds=59, microseconds=999_999)) == 1


@given(st.integers(min_value=0, max_value=59_999_999))
def test_retry_after_is_at_least_one_and_rounded_up_while_locked(elapsed_us: int) -> None:
    throttle = LoginThrottle()
    fail_times(throttle, KEY, 0, 0, 0, 0, 0)
    remaining_us = 60_000_000 - elapsed_us
    seconds = throttle.retry_after(KEY, T0 + timedelta(microseconds=elapsed_us))
    assert seconds >= 1
    assert seconds == math.ceil(remaining_us / 1_000_000)
