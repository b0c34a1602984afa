"""The passphrase policy: what it reports missing, and how it describes itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sddc_backup.domain.passphrase import PassphrasePolicy

UPPER = "an upper-case letter"
LOWER = "a lower-case letter"
DIGIT = "a digit"
SPECIAL = "a special character"
DEFAULT = PassphrasePolicy()
NOTHING_REQUIRED = PassphrasePolicy(
    min_length=0, require_upper=False, require_lower=False, require_digit=False, require_special=False
)


@pytest.mark.parametrize(
    "passphrase",
    ["Correct-Horse-9battery", "Aa1!Aa1!Aa1!", "Zz9 zz9 zz9 ~", "ÄÖÜ-äöü-1234"],
)
def test_the_default_policy_accepts_a_compliant_passphrase(passphrase: str) -> None:
    assert DEFAULT.problems(passphrase) == []


@pytest.mark.parametrize(
    ("passphrase", "missing"),
    [
        pytest.param("Aa1!Aa1!Aa1", ["at least 12 characters"], id="11-characters"),
        pytest.param("aa1!aa1!aa1!", [UPPER], id="no-upper-case"),
        pytest.param("AA1!AA1!AA1!", [LOWER], id="no-lower-case"),
        pytest.param("Aa!!Aa!!Aa!!", [DIGIT], id="no-digit"),
        pytest.param("Aa11Aa11Aa11", [SPECIAL], id="no-special"),
        pytest.param("Aa11 Aa11 Aa11", [SPECIAL], id="space-is-not-special"),
        pytest.param("", ["at least 12 characters", UPPER, LOWER, DIGIT, SPECIAL], id="empty"),
        pytest.param("abc", ["at least 12 characters", UPPER, DIGIT, SPECIAL], id="several"),
    ],
)
def test_the_default_policy_names_everything_a_passphrase_lacks(passphrase: str, missing: list[str]) -> None:
    assert DEFAULT.problems(passphrase) == missing


def test_exactly_the_minimum_length_is_enough() -> None:
    assert PassphrasePolicy(min_length=20).problems("Aa1!" * 5) == []
    assert PassphrasePolicy(min_length=21).problems("Aa1!" * 5) == ["at least 21 characters"]


@pytest.mark.parametrize(
    ("policy", "passphrase"),
    [
        pytest.param(PassphrasePolicy(require_upper=False), "aa1!aa1!aa1!", id="upper-off"),
        pytest.param(PassphrasePolicy(require_lower=False), "AA1!AA1!AA1!", id="lower-off"),
        pytest.param(PassphrasePolicy(require_digit=False), "Aa!!Aa!!Aa!!", id="digit-off"),
        pytest.param(PassphrasePolicy(require_special=False), "Aa11Aa11Aa11", id="special-off"),
        pytest.param(PassphrasePolicy(min_length=3), "Aa1!", id="shorter-minimum"),
        pytest.param(NOTHING_REQUIRED, "", id="everything-off-empty"),
        pytest.param(NOTHING_REQUIRED, "x", id="everything-off-one-letter"),
    ],
)
def test_a_requirement_that_is_turned_off_is_not_reported(policy: PassphrasePolicy, passphrase: str) -> None:
    assert policy.problems(passphrase) == []


@pytest.mark.parametrize(
    ("policy", "passphrase", "missing"),
    [
        pytest.param(PassphrasePolicy(require_upper=False), "aaaaaaaaaaaa", [DIGIT, SPECIAL], id="upper-off"),
        pytest.param(
            PassphrasePolicy(require_special=False), "AAAAAAAAAAAA", [LOWER, DIGIT], id="special-off"
        ),
        pytest.param(
            PassphrasePolicy(min_length=30), "Aa1!Aa1!Aa1!", ["at least 30 characters"], id="longer"
        ),
    ],
)
def test_requirements_still_on_are_reported_when_others_are_off(
    policy: PassphrasePolicy, passphrase: str, missing: list[str]
) -> None:
    assert policy.problems(passphrase) == missing


@pytest.mark.parametrize(
    ("policy", "description"),
    [
        pytest.param(
            DEFAULT,
            f"at least 12 characters, {UPPER}, {LOWER}, {DIGIT}, {SPECIAL}",
            id="default-everything-on",
        ),
        pytest.param(NOTHING_REQUIRED, "at least 0 characters", id="everything-off"),
        pytest.param(
            PassphrasePolicy(min_length=16, require_lower=False, require_special=False),
            f"at least 16 characters, {UPPER}, {DIGIT}",
            id="some-off",
        ),
    ],
)
def test_describe_lists_the_length_and_each_requirement_that_is_on(
    policy: PassphrasePolicy, description: str
) -> None:
    assert policy.describe() == description


@given(st.text(max_size=40))
def test_problems_use_only_the_fixed_vocabulary_never_the_passphrase(passphrase: str) -> None:
    vocabulary = {"at least 12 characters", UPPER, LOWER, DIGIT, SPECIAL}
    problems = DEFAULT.problems(passphrase)
    assert set(problems) <= vocabulary
    assert len(problems) == len(set(problems))
    assert (problems == []) == (
        len(passphrase) >= 12
        and any(c.isupper() for c in passphrase)
        and any(c.islower() for c in passphrase)
        and any(c.isdigit() for c in passphrase)
        and any(not c.isalnum() and not c.isspace() for c in passphrase)
    )
