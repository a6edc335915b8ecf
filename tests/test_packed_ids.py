"""The finished models' ids travel to each training task packed (flows.search_flow)."""

from __future__ import annotations

from flows.search_flow import pack_ids, unpack_ids


def test_packed_ids_come_back_in_their_order() -> None:
    ids = [7, 3, 0, 12_345, 2**40, 5]
    assert unpack_ids(pack_ids(ids)) == ids


def test_no_finished_models_pack_to_nothing() -> None:
    assert pack_ids([]) == b""
    assert unpack_ids(b"") == []


def test_a_large_search_packs_into_one_value_of_eight_bytes_an_id() -> None:
    ids = list(range(10_000))[::-1]
    packed = pack_ids(ids)
    assert isinstance(packed, bytes)  # one item for Prefect's parameter walk, not 10,000
    assert len(packed) == 8 * len(ids)
    assert unpack_ids(packed) == ids
