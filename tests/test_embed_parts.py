"""Sharded ``wb embed``: local, processes:N and a Dask LocalCluster write what one process writes, bitwise."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_embed import SE, count_embedded, make_manifest
from wakebuilder.embed import EmbedSummary, embed_manifests
from wakebuilder.embed_parts import SHARD_CLIPS, ShardedRun, embed_with_executor, make_shards
from wakebuilder.embed_shards import ShardTask, backbone_spec, cached_backbone, run_shard
from wakebuilder.errors import ConfigError, StoreError
from wakebuilder.executors import parse_executor, worker_threads
from wakebuilder.manifest import read_manifest
from wakebuilder.store import open_store, spec_fingerprint
from wakebuilder.store.parts import PartedStore, is_parted, read_index

pytest.importorskip("fsspec", reason="sharded wb embed needs the [dask] extra (pip install 'wakebuilder[dask]')")
FIELDS = ("id", "label", "kind", "group", "pooled", "sequence")


def embed(
    manifests: list[Path], store: Path | str, config: object = SE, *, executor: str = "local",
    shard_clips: int | None = None, batch_size: int = 16,
) -> EmbedSummary:
    """What ``wb embed --executor EXECUTOR [--shard-clips N]`` runs."""
    run = ShardedRun(executor=executor, shard_clips=shard_clips or SHARD_CLIPS, batch_size=batch_size,
                     progress=False)
    return embed_with_executor(manifests, store_path=store, config=config, run=run,  # type: ignore[arg-type]
                               shard=shard_clips is not None)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """48 one-second clips and the store one ``wb embed`` process makes of them."""
    root = tmp_path_factory.mktemp("clips")
    manifest = make_manifest(root / "clips", 48)
    embed_manifests([manifest], store_path=root / "single.zarr", config=SE, batch_size=4, progress=False)
    return manifest, root / "single.zarr"


def by_id(store: Path | str) -> dict[str, np.ndarray]:
    with open_store(store) as reader:
        arrays = reader.load()
        assert len(reader.ids()) == len(reader)  # no clip twice
    order = np.argsort(arrays.id.astype(str))
    return {field: getattr(arrays, field)[order] for field in FIELDS}


def assert_bitwise_equal(store: Path | str, reference: Path) -> None:
    got, want = by_id(store), by_id(reference)
    for field in FIELDS:
        assert got[field].dtype == want[field].dtype and np.array_equal(got[field], want[field]), field
    assert got["pooled"].tobytes() == want["pooled"].tobytes()
    assert got["sequence"].tobytes() == want["sequence"].tobytes()


def test_parse_executor_and_threads() -> None:
    assert parse_executor("local") == ("local", 1) and parse_executor("processes:3") == ("processes", 3)
    assert parse_executor("tcp://10.0.0.1:8786") == ("dask", "tcp://10.0.0.1:8786")
    for bad in ("processes:0", "processes:x", "threads", ""):
        with pytest.raises(ConfigError, match="--executor"):
            parse_executor(bad)
    assert worker_threads("processes:2", 3) == 3 and worker_threads("local", 0) == 0
    assert worker_threads("processes:2", 0) == max(1, (os.cpu_count() or 1) // 2)


def test_shards_depend_on_clip_ids_only(clips: tuple[Path, Path]) -> None:
    manifest = clips[0]
    todo = [(manifest, r) for r in read_manifest(manifest)]
    shards = make_shards(todo, 10)
    assert len(shards) == 5 and sum(len(s) for s in shards.values()) == 48
    assert make_shards(todo[::-1], 10).keys() == shards.keys()
    reordered = {name: sorted(r.id for _, r in s) for name, s in make_shards(todo[::-1], 10).items()}
    assert reordered == {name: sorted(r.id for _, r in s) for name, s in shards.items()}


@pytest.mark.parametrize("executor", ["local", "processes:2"])
def test_sharded_embed_equals_one_process_bitwise(clips: tuple[Path, Path], tmp_path: Path, executor: str) -> None:
    manifest, single = clips
    store = tmp_path / "parted"
    summary = embed([manifest], store, batch_size=4, executor=executor, shard_clips=10)
    assert summary.embedded == 48 and summary.tasks == 5 and summary.parts == 5
    assert len(summary.workers_used) == (2 if executor == "processes:2" else 1)
    assert is_parted(store) and len(read_index(store)["parts"]) == 5
    assert_bitwise_equal(store, single)
    again = embed([manifest], store, executor=executor)
    assert again.embedded == 0 and again.skipped_existing == 48 and again.clips_in_store == 48


def test_a_dead_coordinators_parts_are_adopted_not_embedded_again(
    clips: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, single = clips
    store = tmp_path / "parted"
    records = read_manifest(manifest)
    first = embed([manifest], store, shard_clips=100, executor="local")  # makes the index
    assert first.embedded == 48
    spec = backbone_spec(cached_backbone(SE, 1.0, "cpu", 0))
    more = make_manifest(tmp_path / "more", 6, start=100)
    extra = [(str(more), r) for r in read_manifest(more)]
    task = ShardTask(store=str(store), part="left-unlisted", clips=tuple(extra[:4]), config=SE, longest_s=1.0,
                     fingerprint=spec_fingerprint(spec))
    assert run_shard(task).rows == 4  # a worker finished; its coordinator died before listing the part
    calls = count_embedded(monkeypatch)
    summary = embed([manifest, more], store)
    assert summary.embedded == 2 and sum(calls) == 2 and summary.clips_in_store == 54
    assert "left-unlisted" in read_index(store)["parts"] and len(records) == 48


def test_a_store_at_a_memory_url(clips: tuple[Path, Path], tmp_path: Path) -> None:
    from wakebuilder.store import store_info
    from wakebuilder.store.merge import merge_store

    manifest, single = clips
    url = f"memory://wb-test-{os.getpid()}-{time.monotonic_ns()}/store"
    summary = embed([manifest], url, batch_size=8)
    assert summary.embedded == 48 and summary.executor == "local"
    with open_store(url) as store:
        assert isinstance(store, PartedStore)
    assert_bitwise_equal(url, single)
    assert store_info(url)["clips"] == 48
    merge_store(url, tmp_path / "merged.h5")
    assert_bitwise_equal(tmp_path / "merged.h5", single)


def test_a_memory_store_needs_workers_in_this_process(clips: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="lives in one process"):
        embed([clips[0]], "memory://x/s", executor="processes:2")
    with pytest.raises(ConfigError, match="lives in one process"):
        embed([clips[0]], "memory://x/s", executor="tcp://127.0.0.1:1")


def test_a_single_part_store_is_not_written_in_parts(clips: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, _ = clips
    with pytest.raises(StoreError, match="single-part"):
        embed([manifest], clips[1], executor="processes:2")


# --- Dask ----------------------------------------------------------------------------------------

def kill_on_third_embed(marker: str) -> None:
    """Run on one Dask worker: its third backbone call SIGKILLs the worker's process."""
    from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone

    original, calls = SpeechEmbeddingBackbone.embed, []

    def embed(self: SpeechEmbeddingBackbone, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        if len(calls) == 3:
            time.sleep(1.0)  # let the writer thread commit the first batches
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, waveforms)

    SpeechEmbeddingBackbone.embed = embed  # type: ignore[method-assign]


def test_dask_local_cluster_equals_one_process_bitwise(clips: tuple[Path, Path], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="needs the [dask] extra (dask.distributed)")
    manifest, single = clips
    store = tmp_path / "parted"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        summary = embed([manifest], store, batch_size=4, executor=cluster.scheduler_address, shard_clips=8)
        assert summary.embedded == 48 and summary.tasks == summary.parts == 6
        assert_bitwise_equal(store, single)
        again = embed([manifest], store, executor=cluster.scheduler_address)
        assert again.embedded == 0 and again.tasks == 0


def test_killing_a_dask_worker_mid_run_loses_and_duplicates_nothing(
    clips: tuple[Path, Path], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed", reason="needs the [dask] extra (dask.distributed)")
    manifest, single = clips
    store, marker = tmp_path / "parted", tmp_path / "killed"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        victim = sorted(client.scheduler_info()["workers"])[0]
        client.run(kill_on_third_embed, str(marker), workers=[victim])
        summary = embed([manifest], store, batch_size=4, executor=cluster.scheduler_address, shard_clips=24)
        assert marker.exists(), "the worker was not killed"
        assert summary.resumed > 0  # the retried task found the killed worker's committed rows
        assert summary.resumed + summary.embedded == 48
        assert_bitwise_equal(store, single)
        again = embed([manifest], store, executor=cluster.scheduler_address)
        assert again.embedded == 0 and again.clips_in_store == 48


def test_tiny_ast_in_shards_equals_one_process_with_the_widened_window(tmp_path: Path, tiny_ast_dir: Path) -> None:
    from wakebuilder.embed import EmbedConfig

    config = EmbedConfig(backbone=str(tiny_ast_dir))
    manifest = make_manifest(tmp_path / "clips", 10, duration_s=1.5)  # wider than the 1.28 s window
    embed_manifests([manifest], store_path=tmp_path / "single.zarr", config=config, batch_size=4, progress=False)
    summary = embed([manifest], tmp_path / "parted", config, batch_size=4, shard_clips=3)
    assert summary.tasks >= 3 and summary.backbone["window_s"] == 1.5
    assert_bitwise_equal(tmp_path / "parted", tmp_path / "single.zarr")


def test_rejected_clips_are_listed_and_a_part_of_rejects_only_is_dropped(tmp_path: Path) -> None:
    from wakebuilder.store import rejects_path

    manifest = make_manifest(tmp_path / "clips", 6)
    shards = make_shards([(manifest, r) for r in read_manifest(manifest)], 1)
    alone = next(s[0][1] for s in shards.values() if len(s) == 1)  # a shard of one clip
    (tmp_path / "clips" / alone.path).write_bytes(b"not audio")
    store = tmp_path / "parted"
    summary = embed([manifest], store, shard_clips=1)
    assert summary.embedded == 5 and summary.rejected == 1 and summary.tasks == len(shards)
    assert summary.parts == len(shards) - 1 == len(read_index(store)["parts"])
    assert len([p for p in (store / "parts").iterdir() if p.is_dir()]) == len(shards) - 1
    lines = rejects_path(store).read_text().splitlines()
    assert len(lines) == 1 and alone.path in lines[0]


def test_a_sharded_run_whose_every_clip_is_rejected_fails(tmp_path: Path) -> None:
    from wakebuilder.errors import BadAudioError
    from wakebuilder.store import rejects_path

    manifest = make_manifest(tmp_path / "clips", 2)
    for record in read_manifest(manifest):
        (tmp_path / "clips" / record.path).write_bytes(b"not audio")
    store = tmp_path / "parted"
    with pytest.raises(BadAudioError, match=f"none of the 2 clip.*{rejects_path(store)}"):
        embed([manifest], store, shard_clips=1)
    assert len(rejects_path(store).read_text().splitlines()) == 2


def test_parts_keep_the_precision_the_store_was_begun_at(tmp_path: Path, tiny_ast_dir: Path) -> None:
    """Parts embedded on different machines (bf16 on a GPU worker, fp32 on a CPU one) mixed precisions in one
    store; the index now records the first run's, later runs without --dtype adopt it, and another is refused."""
    from wakebuilder.embed import EmbedConfig
    from wakebuilder.errors import StoreMismatchError

    store = tmp_path / "parted"
    embed([make_manifest(tmp_path / "a", 3)], store, EmbedConfig(backbone=str(tiny_ast_dir), dtype="bf16"),
          shard_clips=2)
    assert read_index(store)["attrs"]["compute_dtype"] == "bf16"
    summary = embed([make_manifest(tmp_path / "b", 3, start=10)], store, EmbedConfig(backbone=str(tiny_ast_dir)),
                    shard_clips=2)
    assert summary.embedded == 3 and summary.compute_dtype == "bf16"
    with PartedStore(store) as reader:
        assert reader.spec.compute_dtype == "bf16"
        assert {part.attrs["compute_dtype"] for part in reader.parts} == {"bf16"}
    with pytest.raises(StoreMismatchError, match=r"bf16.*fp32.*--dtype bf16"):
        embed([make_manifest(tmp_path / "c", 2, start=20)], store,
              EmbedConfig(backbone=str(tiny_ast_dir), dtype="fp32"), shard_clips=2)
    from wakebuilder.store.merge import merge_store

    merge_store(store, tmp_path / "merged.zarr")
    with open_store(tmp_path / "merged.zarr") as merged:
        assert len(merged) == 6 and merged.attrs["compute_dtype"] == "bf16"


@pytest.mark.parametrize("shard_clips", [None, 2])
def test_a_run_into_a_store_opens_it_once_for_its_settings(
    tmp_path: Path, tiny_ast_dir: Path, monkeypatch: pytest.MonkeyPatch, shard_clips: int | None
) -> None:
    """wb embed into a store opened it once for its window and again for its precision
    (``with_store_dtype``); both now come of one opening, and the run embeds at the store's window and precision."""
    import wakebuilder.embed_settings as settings
    from wakebuilder.embed import EmbedConfig

    store = tmp_path / "store"
    first = make_manifest(tmp_path / "a", 3, duration_s=1.5)  # widens the 1.28 s window to 1.5 s
    embed([first], store, EmbedConfig(backbone=str(tiny_ast_dir), dtype="bf16"), shard_clips=shard_clips)
    opened = []
    open_store = settings.open_store

    def counted(*args, **kwargs):
        opened.append(args)
        return open_store(*args, **kwargs)

    monkeypatch.setattr(settings, "open_store", counted)
    summary = embed([make_manifest(tmp_path / "b", 2, start=10)], store, EmbedConfig(backbone=str(tiny_ast_dir)),
                    shard_clips=shard_clips)
    assert len(opened) == 1
    assert summary.embedded == 2 and summary.compute_dtype == "bf16" and summary.backbone["window_s"] == 1.5
