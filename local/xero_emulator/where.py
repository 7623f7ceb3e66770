"""Xero's `where` and `order` query parameters.

Supports what Xero documents for filtering: comparisons (== != > >= < <=) of fields (dotted paths such as
Contact.ContactID) with strings, numbers, booleans, null, DateTime(y,m,d[,h,m,s]) and Guid("..."); the string methods
Contains/StartsWith/EndsWith/ToLower/ToUpper; AND/OR/NOT (also && || !) and parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.xero_emulator.dates import parse_ms_date


class QueryError(ValueError):
    """An unreadable where/order expression (Xero answers 400)."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<op>==|!=|>=|<=|&&|\|\||=|>|<|!|\(|\)|,|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    value: Any


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"unexpected character at position {pos} in where clause")
        pos = match.end()
        if match.group("str") is not None:
            raw = match.group("str")[1:-1]
            tokens.append(_Tok("str", re.sub(r"\\(.)", r"\1", raw)))
        elif match.group("num") is not None:
            num = match.group("num")
            tokens.append(_Tok("num", float(num) if "." in num else int(num)))
        elif match.group("op") is not None:
            tokens.append(_Tok("op", match.group("op")))
        else:
            tokens.append(_Tok("ident", match.group("ident")))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


Predicate = Callable[[dict[str, Any]], bool]
Getter = Callable[[dict[str, Any]], Any]

_KEYWORDS_AND = {"AND", "&&"}
_KEYWORDS_OR = {"OR", "||"}
_METHODS = {"contains", "startswith", "endswith", "tolower", "toupper", "hasvalue"}


def lookup(record: dict[str, Any], path: list[str]) -> Any:
    """Case-insensitive dotted lookup; missing fields are None."""
    value: Any = record
    for part in path:
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
            continue
        lowered = part.lower()
        for key, item in value.items():
            if key.lower() == lowered:
                value = item
                break
        else:
            return None
    return value


def _normalise(value: Any) -> Any:
    """Make stored values comparable with literals: MS dates become epoch ms, strings compare case-insensitively."""
    if isinstance(value, str):
        ms = parse_ms_date(value)
        if ms is not None:
            return ms
        return value.lower()
    return value


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise QueryError("unexpected end of where clause")
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok.value != value:
            raise QueryError(f"expected {value!r} in where clause, found {tok.value!r}")

    def _is_word(self, tok: _Tok | None, words: set[str]) -> bool:
        return tok is not None and tok.kind in ("ident", "op") and str(tok.value).upper() in words

    def parse(self) -> Predicate:
        pred = self.parse_or()
        if self.peek() is not None:
            raise QueryError(f"unexpected {self.peek().value!r} in where clause")  # type: ignore[union-attr]
        return pred

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self._is_word(self.peek(), _KEYWORDS_OR):
            self.take()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda r: any(p(r) for p in parts)

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while self._is_word(self.peek(), _KEYWORDS_AND):
            self.take()
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        return lambda r: all(p(r) for p in parts)

    def parse_not(self) -> Predicate:
        if self._is_word(self.peek(), {"NOT", "!"}):
            self.take()
            inner = self.parse_not()
            return lambda r: not inner(r)
        return self.parse_comparison()

    def parse_comparison(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.value == "(":
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        left = self.parse_operand()
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.value in ("==", "=", "!=", ">", ">=", "<", "<="):
            op = self.take().value
            right = self.parse_operand()
            return _compare(left, op, right)
        return lambda r: bool(left(r))

    def parse_operand(self) -> Getter:
        tok = self.take()
        if tok.kind == "str":
            value = tok.value.lower()
            return lambda r: value
        if tok.kind == "num":
            num = tok.value
            return lambda r: num
        if tok.kind == "op" and tok.value == "(":
            inner = self.parse_operand()
            self.expect(")")
            return inner
        if tok.kind != "ident":
            raise QueryError(f"unexpected {tok.value!r} in where clause")
        word = tok.value
        upper = word.upper()
        if upper in ("TRUE", "FALSE"):
            flag = upper == "TRUE"
            return lambda r: flag
        if upper == "NULL":
            return lambda r: None
        if upper in ("DATETIME", "DATETIMEOFFSET", "DATE") and self._next_is("("):
            return self.parse_datetime()
        if upper == "GUID" and self._next_is("("):
            self.expect("(")
            arg = self.take()
            if arg.kind != "str":
                raise QueryError("Guid() takes a quoted string")
            self.expect(")")
            guid = arg.value.lower()
            return lambda r: guid
        path = [word]
        methods: list[tuple[str, Getter | None]] = []
        while self._next_is("."):
            self.take()
            name_tok = self.take()
            if name_tok.kind != "ident":
                raise QueryError("expected a field or method name after '.'")
            if self._next_is("("):
                if name_tok.value.lower() not in _METHODS:
                    raise QueryError(f"unsupported method {name_tok.value}()")
                self.take()
                arg: Getter | None = None
                if not self._next_is(")"):
                    arg = self.parse_operand()
                self.expect(")")
                methods.append((name_tok.value.lower(), arg))
            elif methods:
                raise QueryError("field access after a method call is not supported")
            else:
                path.append(name_tok.value)

        def getter(r: dict[str, Any]) -> Any:
            value = _normalise(lookup(r, path))
            for name, arg in methods:
                if name in ("tolower", "toupper"):
                    continue  # values are already compared case-insensitively
                if name == "hasvalue":
                    value = value is not None
                    continue
                needle = arg(r) if arg else None
                if not isinstance(value, str) or not isinstance(needle, str):
                    value = False
                elif name == "contains":
                    value = needle in value
                elif name == "startswith":
                    value = value.startswith(needle)
                else:
                    value = value.endswith(needle)
            return value

        return getter

    def parse_datetime(self) -> Getter:
        self.expect("(")
        parts: list[int] = []
        while True:
            tok = self.take()
            if tok.kind != "num" or not isinstance(tok.value, int):
                raise QueryError("DateTime() takes integers: DateTime(2024,01,31[,h,m,s])")
            parts.append(tok.value)
            sep = self.take()
            if sep.value == ")":
                break
            if sep.value != ",":
                raise QueryError("DateTime() arguments are separated by commas")
        if len(parts) not in (3, 6):
            raise QueryError("DateTime() takes 3 or 6 numbers")
        try:
            ms = int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]
        except ValueError as exc:
            raise QueryError(f"invalid DateTime: {exc}") from exc
        return lambda r: ms

    def _next_is(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.value == value


def _compare(left: Getter, op: str, right: Getter) -> Predicate:
    def pred(r: dict[str, Any]) -> bool:
        a, b = left(r), right(r)
        if op in ("==", "="):
            return a == b
        if op == "!=":
            return a != b
        if a is None or b is None:
            return False
        try:
            if op == ">":
                return a > b
            if op == ">=":
                return a >= b
            if op == "<":
                return a < b
            return a <= b
        except TypeError:
            return False

    return pred


def compile_where(text: str) -> Predicate:
    tokens = _tokenize(text)
    if not tokens:
        return lambda r: True
    return _Parser(tokens).parse()


def compile_order(text: str) -> list[tuple[list[str], bool]]:
    """`Name ASC, UpdatedDateUTC DESC` -> [(path, descending)]."""
    keys: list[tuple[list[str], bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise QueryError(f"unreadable order clause: {part.strip()!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", words[0]):
            raise QueryError(f"unreadable order field: {words[0]!r}")
        keys.append((words[0].split("."), len(words) == 2 and words[1].upper() == "DESC"))
    return keys


def order_key(value: Any) -> tuple[int, Any]:
    """Sort key that tolerates missing values and mixed types (missing sorts first)."""
    value = _normalise(value)
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))
