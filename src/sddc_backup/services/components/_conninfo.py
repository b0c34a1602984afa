"""PostgreSQL connection strings read by libpq's own parser, loaded with ctypes: no database driver.

The server and a backup's upload process parse DSNs (to keep the password off command lines) long
before, or without ever, connecting with a driver. Importing psycopg for that costs a process about
9 MB that it keeps (ADR 0022). libpq is what ``pg_dump`` and ``psql`` run on, so a machine that can
back up a database has it; where it cannot be loaded, psycopg's parser (the same libpq function,
bundled with psycopg) is used instead.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Mapping
from functools import cache

_LIBPQ = "libpq.so.5"  # the soname since PostgreSQL 8.0
_ESCAPED = re.compile(r"([\\'])")
_SPACE = re.compile(r"\s")


class ConninfoError(ValueError):
    """A connection string that does not parse. Its message never quotes the string: it may hold a
    password."""


class _Option(ctypes.Structure):  # libpq-fe.h: PQconninfoOption
    _fields_ = (
        ("keyword", ctypes.c_char_p),
        ("envvar", ctypes.c_char_p),
        ("compiled", ctypes.c_char_p),
        ("val", ctypes.c_char_p),
        ("label", ctypes.c_char_p),
        ("dispchar", ctypes.c_char_p),
        ("dispsize", ctypes.c_int),
    )


@cache
def _libpq() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(_LIBPQ)
    except OSError:
        return None
    lib.PQconninfoParse.restype = ctypes.POINTER(_Option)
    lib.PQconninfoParse.argtypes = (ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p))
    lib.PQconninfoFree.argtypes = (ctypes.POINTER(_Option),)
    lib.PQconninfoFree.restype = None
    lib.PQfreemem.argtypes = (ctypes.c_void_p,)
    lib.PQfreemem.restype = None
    return lib


def parse_conninfo(dsn: str) -> dict[str, str]:
    """The parameters that ``dsn`` (``key=value`` pairs or a ``postgresql://`` URL) sets, as libpq
    reads them: what psycopg's ``conninfo_to_dict`` returns, with every value a string."""
    lib = _libpq()
    if lib is None:
        return _parse_with_psycopg(dsn)
    message = ctypes.c_void_p()
    options = lib.PQconninfoParse(dsn.encode(), ctypes.byref(message))
    if message.value:
        lib.PQfreemem(message)
    if not options:
        raise ConninfoError("not a valid PostgreSQL connection string")
    try:
        found: dict[str, str] = {}
        index = 0
        while (keyword := options[index].keyword) is not None:
            value = options[index].val
            if value is not None:
                found[keyword.decode()] = value.decode()
            index += 1
        return found
    finally:
        lib.PQconninfoFree(options)


def _parse_with_psycopg(dsn: str) -> dict[str, str]:
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        parsed = conninfo_to_dict(dsn)
    except Error:
        parsed = None
    if parsed is None:  # raised outside the handler: the parser's message quotes the string
        raise ConninfoError("not a valid PostgreSQL connection string")
    return {key: str(value) for key, value in parsed.items() if value is not None}


def make_conninfo(params: Mapping[str, str]) -> str:
    """A ``key=value`` connection string that sets ``params``, quoted as libpq reads it (and as
    psycopg's ``make_conninfo`` writes it)."""
    return " ".join(f"{key}={_quote(value)}" for key, value in params.items())


def _quote(value: str) -> str:
    if not value:
        return "''"
    escaped = _ESCAPED.sub(r"\\\1", value)
    return f"'{escaped}'" if _SPACE.search(value) else escaped
