"""Kokoro's files, read and checked: its voices (an ``.npz`` of style tables, or fetched ``.pt`` packs read without
unpickling) and its ONNX model, each refused in one line naming the file and the fix when it is not Kokoro's."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from wakebuilder.data.tts import single_thread_session
from wakebuilder.errors import EngineUnavailableError

ROWS = 510  # style rows per voice, one per utterance length in phoneme tokens
# wb synth takes --kokoro-voices; the recipe (wb quickstart) reads WB_KOKORO_VOICES alone, and goes on without Kokoro
VOICES_FIX = ("pass another with --kokoro-voices or WB_KOKORO_VOICES, or unset WB_KOKORO_VOICES for the fetched "
              "('wb voices fetch kokoro-en') or bundled voices")


def read_style_pack(path: str | os.PathLike[str]) -> np.ndarray:
    """A voice's ``(510, 256)`` style table from Kokoro's ``.pt`` file, read as raw float32 from the zip's
    tensor storage (``*/data/0``) without unpickling anything.

    Raises:
        EngineUnavailableError: not a zip holding one float32 tensor of 510 x 256 values.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            storages = [n for n in archive.namelist() if n.endswith("/data/0")]
            if len(storages) != 1:
                raise EngineUnavailableError(f"{path}: not a Kokoro voice pack (want one tensor, found {storages})")
            raw = archive.read(storages[0])
    except (OSError, zipfile.BadZipFile) as err:
        raise EngineUnavailableError(f"{path}: not a Kokoro voice pack ({err})") from err
    if len(raw) != ROWS * 256 * 4:
        raise EngineUnavailableError(f"{path}: {len(raw)} bytes, want {ROWS} x 256 float32 style rows")
    return np.frombuffer(raw, "<f4").reshape(ROWS, 256).astype(np.float32)


def load_voices(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Kokoro voices from an ``.npz`` (``voices-v1.0.bin``) of ``(510, 1, 256)`` arrays, keyed by name.

    Raises:
        EngineUnavailableError: the file is missing, not an npz, or an array has the wrong size.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # one .npy array: no voice names
            raise ValueError("one unnamed array (.npy), not named voices")
        with loaded as npz:
            arrays = {k: np.asarray(npz[k], np.float32) for k in sorted(npz.files)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # empty, cut short, damaged
        raise EngineUnavailableError(f"{path}: not a Kokoro voices file (.npz of (510, 1, 256) arrays): {err}; "
                                     f"{VOICES_FIX}") from err
    if not arrays:
        raise EngineUnavailableError(f"{path}: holds no Kokoro voices; {VOICES_FIX}")
    # Another width would reshape into rows of 256 silently: halves of two styles glued, a voice that is not one.
    odd = [f"{name} {table.shape}" for name, table in arrays.items() if not table.size or table.shape[-1:] != (256,)]
    if odd:
        raise EngineUnavailableError(f"{path}: Kokoro voice(s) {', '.join(odd)} are not style rows of 256 (want "
                                     f"(510, 1, 256) arrays); {VOICES_FIX}")
    return {name: table.reshape(-1, 256) for name, table in arrays.items()}


def model_session(model: Path, *, given: bool) -> object:
    """An onnxruntime session of Kokoro's model ``model`` (``given``: named by ``WB_KOKORO_MODEL``).

    Raises:
        EngineUnavailableError: the file is missing, not ONNX, or lacks Kokoro's inputs (tokens, style, speed).
    """
    fix = "set WB_KOKORO_MODEL to Kokoro's ONNX file or unset it" if given else "reinstall 'wakebuilder[kokoro]'"
    try:
        session = single_thread_session(str(model))
    except Exception as err:  # onnxruntime raises unrelated types (NoSuchFile, InvalidProtobuf, Fail...)
        raise EngineUnavailableError(f"{model}: not a Kokoro ONNX model ({type(err).__name__}); {fix}") from err
    inputs = {i.name for i in session.get_inputs()}  # type: ignore[attr-defined]
    if not {"tokens", "style", "speed"} <= inputs:
        raise EngineUnavailableError(f"{model}: not a Kokoro ONNX model (inputs {', '.join(sorted(inputs))}, "
                                     f"want tokens, style, speed); {fix}")
    return session
