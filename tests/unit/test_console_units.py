"""Pure parts of the console: page cursors, the filter form, the token and CSRF checks."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from kafka_reliable.console.actions import parse_selection
from kafka_reliable.console.auth import SESSION_COOKIE, Auth, Refused
from kafka_reliable.console.filters import FilterForm
from kafka_reliable.console.paging import ConsoleInputError, format_cursor, parse_cursor
from kafka_reliable.dlq.reader import DlqFilter


def _request(cookie: str | None = None) -> Request:
    headers = [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


def test_cursor_round_trip_and_bad_cursors() -> None:
    assert parse_cursor(format_cursor({1: 98, 0: 120})) == {0: 120, 1: 98}
    assert parse_cursor("") is None
    for bad in ("0", "a:1", "0:-1", "0:1,", ":5"):
        with pytest.raises(ConsoleInputError, match="bad page position"):
            parse_cursor(bad)


def test_filter_form_builds_the_filter_and_names_a_bad_field() -> None:
    form = FilterForm.from_fields({"error": "A, B", "key": " k1 ", "text": "Boom", "junk": "x"})
    assert form.values == {"error": "A, B", "key": "k1", "text": "Boom"}
    assert form.to_filter() == DlqFilter(errors=("A", "B"), key="k1", text="Boom")
    assert FilterForm.from_fields({}).to_filter() is None
    assert "key=k1" in form.query(order="oldest") and "order=oldest" in form.query(order="oldest")
    with pytest.raises(ConsoleInputError, match="filter until: not a time"):
        FilterForm.from_fields({"until": "later"}).to_filter()
    with pytest.raises(ConsoleInputError, match="longer than"):
        FilterForm.from_fields({"text": "x" * 1001})


def test_selection_parsing() -> None:
    assert parse_selection(["0:1", "2:30", "0:1"]) == frozenset({(0, 1), (2, 30)})
    with pytest.raises(ConsoleInputError, match="bad record selection"):
        parse_selection(["0-1"])
    with pytest.raises(ConsoleInputError, match="no record selected"):
        parse_selection([])


def test_auth_needs_token_session_and_csrf() -> None:
    with pytest.raises(Refused, match="read-only") as ro:
        Auth(None).require(_request(), "x")
    assert ro.value.status == 403
    assert Auth(None).login("") is None
    auth = Auth("t0ken")
    assert auth.login("wrong") is None
    sid = auth.login("t0ken")
    assert sid is not None and "t0ken" not in sid
    with pytest.raises(Refused, match="not logged in") as anon:
        auth.require(_request(), None)
    assert anon.value.status == 401
    req = _request(sid)
    with pytest.raises(Refused, match="CSRF"):
        auth.require(req, "forged")
    auth.require(req, auth.csrf(req))  # passes
    assert auth.csrf(_request("other")) == ""
    assert Auth("t0ken").csrf(req) != auth.csrf(req)  # a per-process secret


def test_filter_selection_narrows_replay_ranges() -> None:
    flt = DlqFilter(coordinates=frozenset({(0, 5), (0, 9), (2, 1)}))
    assert flt.ranges({0: (0, 100), 1: (0, 10), 2: (3, 8)}) == {0: (5, 10), 1: (10, 10), 2: (8, 8)}
    assert DlqFilter().ranges({0: (1, 2)}) == {0: (1, 2)}
    assert "coordinates" not in DlqFilter().identity()  # old replay groups keep their names
