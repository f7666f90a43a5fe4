"""Both storage backends implement the whole ``Backend`` protocol, creation and opening included."""

from __future__ import annotations

import inspect

import pytest

from wakebuilder.store.h5_backend import HDF5Backend
from wakebuilder.store.layout import Backend
from wakebuilder.store.remote import FsspecZarrBackend
from wakebuilder.store.zarr_backend import ZarrBackend

MEMBERS = sorted(name for name, _ in inspect.getmembers(Backend) if not name.startswith("_"))


def test_protocol_names_creation_and_opening() -> None:
    assert {"create", "open", "parts", "remove", "write", "commit", "read", "chunk_rows"} <= set(MEMBERS)


@pytest.mark.parametrize("backend", [ZarrBackend, HDF5Backend, FsspecZarrBackend])
def test_backend_has_every_member_with_the_protocol_parameters(backend: type) -> None:
    for name in MEMBERS:
        assert hasattr(backend, name), f"{backend.__name__} lacks {name}"
        expected = getattr(Backend, name)
        if callable(expected) and not isinstance(inspect.getattr_static(Backend, name), property):
            want = list(inspect.signature(expected).parameters)
            got = list(inspect.signature(getattr(backend, name)).parameters)
            assert got == want, f"{backend.__name__}.{name}{got} != {want}"
