"""Connection strings read by libpq through ctypes: the same answers as psycopg's parser, no driver."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from sddc_backup.services.components import _conninfo
from sddc_backup.services.components._conninfo import ConninfoError, make_conninfo, parse_conninfo

SECRET = "s3cr3t Pa'55\\word"

DSNS = [
    "postgresql://backup:p%40ss%20word@db.example.com:6543/sddc?sslmode=verify-full&application_name=x",
    "postgres://u@[::1]:5432/d",
    "postgresql:///db?host=/var/run/postgresql",
    "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write",
    "host=127.0.0.1 port=5432 dbname=sddc user=backup",
    "host = 'a b'   dbname='x y' password='it\\'s \\\\ here'",
    "dbname=db options='-c statement_timeout=0'",
    "",
]


def psycopg_reads(dsn: str) -> dict[str, str]:
    return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}


@pytest.mark.parametrize("dsn", DSNS)
def test_libpq_reads_each_form_as_psycopg_does(dsn: str) -> None:
    assert _conninfo._libpq() is not None  # the machines we run on have libpq: this is its parser
    assert parse_conninfo(dsn) == psycopg_reads(dsn)


@pytest.mark.parametrize("dsn", DSNS)
def test_without_libpq_psycopg_reads_them(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_conninfo, "_libpq", lambda: None)
    assert parse_conninfo(dsn) == psycopg_reads(dsn)


@pytest.mark.parametrize("without_libpq", [False, True])
@pytest.mark.parametrize("dsn", [f"postgresql://u:{SECRET}@[::1", f"host=h password='{SECRET}", "nokey"])
def test_a_string_that_does_not_parse_is_refused_without_quoting_it(
    dsn: str, without_libpq: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if without_libpq:
        monkeypatch.setattr(_conninfo, "_libpq", lambda: None)
    with pytest.raises(ConninfoError) as caught:
        parse_conninfo(dsn)
    assert str(caught.value) == "not a valid PostgreSQL connection string"
    assert caught.value.__cause__ is None and caught.value.__context__ is None


KEYS = st.sampled_from(["host", "port", "dbname", "user", "password", "application_name", "options"])
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


@given(st.dictionaries(KEYS, VALUES, max_size=7))
def test_what_make_conninfo_writes_reads_back_the_same(params: dict[str, str]) -> None:
    written = make_conninfo(params)
    assert parse_conninfo(written) == params
    assert psycopg_reads(written) == params
