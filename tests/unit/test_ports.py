"""tests/helpers/ports.py: blocks of ports reserved by binding, never handed out twice."""

from __future__ import annotations

import socket

import pytest

from tests.helpers.ports import BLOCK, reserve_ports


def test_two_reservations_never_share_a_block() -> None:
    a = reserve_ports(21)
    try:
        b = reserve_ports(21)
        try:
            assert a.base != b.base
            assert not set(a.ports) & set(b.ports)
            assert all(p < 32768 for p in a.ports + b.ports)  # below the ephemeral range
        finally:
            b.release()
    finally:
        a.release()


def test_a_block_with_a_listening_port_is_skipped() -> None:
    with socket.socket() as busy:  # a server already on the middle port of the first block
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        got = reserve_ports(3, low=port - 1, high=port - 1 + 3 * BLOCK)
        try:
            assert got.base != port - 1 and port not in got.ports
        finally:
            got.release()


def test_a_count_outside_the_block_is_refused() -> None:
    with pytest.raises(ValueError, match="count must be 1..99"):
        reserve_ports(BLOCK)
