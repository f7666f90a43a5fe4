"""The page's WAV reader (``decodeWav`` of web/assets/events.js, the self-test's input), run in node.

Its samples are held to libsndfile's (soundfile) on the same files: cut off,
WAVE_FORMAT_EXTENSIBLE, stereo. Skips with the reason where node is missing
(it comes with npm, which bin/setup uses to install ONNX Runtime Web).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import noise
from wakebuilder.web import build

NODE = shutil.which("node")
EVENTS_JS = Path(build.__file__).with_name("assets") / "events.js"
needs_node = pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install npm brings it)")

DECODE = """
import { readFileSync } from "node:fs";
import { decodeWav } from %s;
const bytes = readFileSync(process.argv[1]);
try {
  const { samples, rate } = decodeWav(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  console.log(JSON.stringify({ rate, samples: Array.from(samples) }));
} catch (err) {
  console.log(JSON.stringify({ error: `${err.name}: ${err.message}` }));
}
"""


def decode_in_node(data: bytes, tmp_path: Path) -> dict[str, Any]:
    """``decodeWav`` of the file holding ``data``: {rate, samples} or {error: 'Name: message'}."""
    path = tmp_path / "in.wav"
    path.write_bytes(data)
    script = DECODE % json.dumps(EVENTS_JS.as_uri())
    done = subprocess.run([str(NODE), "--input-type=module", "-e", script, str(path)], capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def wav(audio: np.ndarray, *, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, 16000, format=fmt, subtype=subtype)
    return buffer.getvalue()


def libsndfile_mono(data: bytes) -> np.ndarray:
    samples, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1)


@needs_node
@pytest.mark.parametrize(("channels", "cut"), [(1, 1001), (2, 3), (2, 4000)])
def test_a_file_cut_off_before_its_data_size_reads_what_it_holds(channels: int, cut: int, tmp_path: Path) -> None:
    """A data chunk whose size runs past the file's end (a copy or recording cut off, even mid-sample) gave a raw
    DataView RangeError; the page reads the whole frames the file holds, as libsndfile does."""
    audio = np.stack([noise(0.5, seed=c) for c in range(channels)], axis=1)
    data = wav(audio)[:-cut]
    got = decode_in_node(data, tmp_path)
    assert "error" not in got, got
    want = libsndfile_mono(data)
    assert got["rate"] == 16000 and 0 < want.size < audio.shape[0]
    np.testing.assert_allclose(got["samples"], want, atol=1e-6, rtol=0)


@needs_node
@pytest.mark.parametrize(("data", "message"), [
    (wav(noise(0.1))[:44], "no samples"),  # a header and nothing after it
    (wav(noise(0.1))[:30], "fmt chunk cut off"),
    (wav(noise(0.1), fmt="WAVEX")[:50], "fmt chunk cut off"),
    (b"RIFF\x00\x00", "not a WAV file")])
def test_a_file_cut_off_too_soon_is_one_line(data: bytes, message: str, tmp_path: Path) -> None:
    got = decode_in_node(data, tmp_path)
    assert got.get("error", "").startswith("Error: ") and message in got["error"], got


@needs_node
@pytest.mark.parametrize(("channels", "subtype"), [(1, "PCM_16"), (2, "PCM_16"), (1, "FLOAT"), (2, "FLOAT")])
def test_wave_format_extensible_is_read_by_its_sub_format(channels: int, subtype: str, tmp_path: Path) -> None:
    """A WAVE_FORMAT_EXTENSIBLE file (format tag 0xFFFE, as many recorders and editors write) of 16-bit PCM or
    32-bit float was refused as format 65534; it is read by the sub-format its GUID names."""
    audio = np.stack([noise(0.3, seed=c) for c in range(channels)], axis=1)
    data = wav(audio, fmt="WAVEX", subtype=subtype)
    assert data[20:22] == b"\xfe\xff"
    got = decode_in_node(data, tmp_path)
    assert "error" not in got, got
    assert got["rate"] == 16000
    np.testing.assert_allclose(got["samples"], libsndfile_mono(data), atol=1e-6, rtol=0)


@needs_node
def test_extensible_sub_formats_the_page_cannot_read_are_refused_in_one_line(tmp_path: Path) -> None:
    """24-bit PCM in an extensible file, and a sub-format GUID outside the standard family, are named and refused."""
    pcm24 = wav(noise(0.1), fmt="WAVEX", subtype="PCM_24")
    assert decode_in_node(pcm24, tmp_path) == {"error": "Error: WAV format 1/24 bits: use 16-bit PCM or 32-bit float"}
    foreign = bytearray(wav(noise(0.1), fmt="WAVEX"))
    foreign[44:60] = bytes(range(1, 17))  # the sub-format GUID
    got = decode_in_node(bytes(foreign), tmp_path)
    assert got["error"].startswith("Error: WAV format 65534/16 bits") and "use 16-bit PCM" in got["error"], got
