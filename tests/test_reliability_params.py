"""Every public parameter, every backend: a bad value is a TributeStoreError, never a raw Python error.

Hypothesis draws, for one parameter of one public method at a time, values of
every kind a caller could pass by mistake: lone surrogates and NUL in text,
integers of thousands of digits, datetimes at ``datetime.min``/``max`` with a
UTC offset, wrong types, a string where a list belongs.  Each call must either
succeed or raise a :class:`~tributestore.TributeStoreError` whose message is
one bounded line; afterwards the store still passes ``check()``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tributestore import TributeStore, TributeStoreError, open_store

GUILD = 111111111111111111
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(16))
EXAMPLES = 60

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
EDGE_TIMES = st.sampled_from(
    [
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        datetime.max,
        datetime.min,
        datetime.max.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
    ]
)
HOSTILE = st.one_of(
    st.text(st.characters() | SURROGATES, max_size=20),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "bag", "items ", "../x", "x" * 7000]),
    st.integers(),
    st.sampled_from([10**5000, -(10**5000), 2**63, -1, 0, True, 1.5, float("nan")]),
    EDGE_TIMES,
    st.none(),
    st.lists(st.text(max_size=3), max_size=3),
    st.binary(max_size=8),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

#: (label, call taking the store and one hostile value) for every public parameter.
CALLS: list[tuple[str, Callable[[TributeStore, Any], object]]] = [
    ("put_guild guild_id", lambda s, v: s.put_guild(v)),
    ("put_guild log_channel_id", lambda s, v: s.put_guild(GUILD, log_channel_id=v)),
    ("get_guild", lambda s, v: s.get_guild(v)),
    ("create_tribute guild_id", lambda s, v: s.create_tribute(v, "N1")),
    ("create_tribute id", lambda s, v: s.create_tribute(GUILD, v)),
    ("create_tribute name", lambda s, v: s.create_tribute(GUILD, "N2", name=v)),
    ("create_tribute user_id", lambda s, v: s.create_tribute(GUILD, "N3", user_id=v)),
    ("create_tribute created_at", lambda s, v: s.create_tribute(GUILD, "N4", created_at=v)),
    ("update_tribute face_claim_url", lambda s, v: s.update_tribute(GUILD, "D1F", face_claim_url=v)),
    ("update_tribute prompt_channel_id", lambda s, v: s.update_tribute(GUILD, "D1F", prompt_channel_id=v)),
    ("get_tribute id", lambda s, v: s.get_tribute(GUILD, v)),
    ("has_tribute guild", lambda s, v: s.has_tribute(v, "D1F")),
    ("list_tributes", lambda s, v: s.list_tributes(v)),
    ("add_item item", lambda s, v: s.add_item(GUILD, "D1F", v, force=True)),
    ("remove_item number", lambda s, v: s.remove_item(GUILD, "D1F", v)),
    ("remove_item slot", lambda s, v: s.remove_item(GUILD, "D1F", 1, slot=v)),
    ("equip_item number", lambda s, v: s.equip_item(GUILD, "D1F", v)),
    ("unequip_item number", lambda s, v: s.unequip_item(GUILD, "D1F", v)),
    ("set_capacity capacity", lambda s, v: s.set_capacity(GUILD, "D1F", capacity=v)),
    ("set_capacity equipped_capacity", lambda s, v: s.set_capacity(GUILD, "D1F", equipped_capacity=v)),
    ("search_items query", lambda s, v: s.search_items(v)),
    ("search_items guild_id", lambda s, v: s.search_items("knife", guild_id=v)),
    ("set_prompt message", lambda s, v: s.set_prompt(GUILD, "D1F", v)),
    ("set_prompt channel_id", lambda s, v: s.set_prompt(GUILD, "D1F", "m", channel_id=v)),
    ("set_prompt files", lambda s, v: s.set_prompt(GUILD, "D1F", "m", files=v)),
    ("add_file name", lambda s, v: s.add_file(GUILD, "D1F", v, PNG, replace=True)),
    ("add_file data", lambda s, v: s.add_file(GUILD, "D1F", "x.png", v, replace=True)),
    ("add_file kind", lambda s, v: s.add_file(GUILD, "D1F", "y.png", PNG, kind=v, replace=True)),
    ("add_file media_type", lambda s, v: s.add_file(GUILD, "D1F", "z.png", PNG, media_type=v, replace=True)),
    ("read_file name", lambda s, v: s.read_file(GUILD, "D1F", v)),
    ("delete_file name", lambda s, v: s.delete_file(GUILD, "D1F", v)),
    ("export_tribute id", lambda s, v: s.export_tribute(GUILD, v)),
    ("iter_tributes guild", lambda s, v: list(s.iter_tributes(v))),
]

BACKENDS = [
    pytest.param("json", marks=pytest.mark.backend("json")),
    pytest.param("sqlite", marks=pytest.mark.backend("sqlite")),
    pytest.param("composite", marks=pytest.mark.backend("composite")),
    pytest.param("postgres", marks=pytest.mark.backend("postgres")),
]


def url_for(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("schema_url"))
    if backend == "composite":
        open_store(f"json:///{tmp_path}/fallback").close()
        return f"composite:?primary=sqlite:///{tmp_path}/thg.db&fallback=json:///{tmp_path}/fallback"
    return {"json": f"json:///{tmp_path}/store", "sqlite": f"sqlite:///{tmp_path}/thg.db"}[backend]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_parameter_refuses_bad_values_cleanly(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    tried: dict[str, int] = {}
    with open_store(url_for(request, backend, tmp_path)) as store:
        store.create_tribute(GUILD, "D1F")

        @settings(max_examples=EXAMPLES * len(CALLS), deadline=None, suppress_health_check=list(HealthCheck))
        @given(call=st.sampled_from(CALLS), value=HOSTILE)
        def probe(call: tuple[str, Callable[[TributeStore, Any], object]], value: Any) -> None:
            label, run = call
            tried[label] = tried.get(label, 0) + 1
            try:
                run(store, value)
            except TributeStoreError as error:
                message = str(error)
                assert "\n" not in message and len(message) < 1000, (label, message[:200])
            if not store.has_tribute(GUILD, "D1F"):
                store.create_tribute(GUILD, "D1F")

        probe()
        assert store.check() == []
    assert set(tried) == {label for label, _ in CALLS}, "hypothesis skipped a parameter"
