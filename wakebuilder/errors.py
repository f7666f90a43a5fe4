"""One error hierarchy for the library; the CLI turns each into a one-line message.

Every error names the bad file or value and, where there is one, the fix.
"""

from __future__ import annotations


class WakebuilderError(Exception):
    """Base of every error wakebuilder raises on purpose."""

    exit_code = 1


class ConfigError(WakebuilderError):
    """An option or config value is invalid."""

    exit_code = 2


class BadAudioError(WakebuilderError):
    """An audio file cannot be used (unreadable, empty, NaN, silent, too long...)."""


class ManifestError(WakebuilderError):
    """A clip manifest is malformed or points outside its root."""


class StoreError(WakebuilderError):
    """The embedding store is missing, corrupt or unusable."""


class StoreMismatchError(StoreError):
    """A store was built with another backbone, window or config."""


class ArtifactExistsError(WakebuilderError):
    """An output exists already and ``--overwrite`` was not given."""


class LockedError(WakebuilderError):
    """Another process is writing the same artifact."""


class BackboneError(WakebuilderError):
    """The pretrained backbone cannot be loaded or run."""


class EngineUnavailableError(WakebuilderError):
    """A TTS engine is not installed or cannot run here (offline, missing voice)."""


class TrainingError(WakebuilderError):
    """The training data cannot train a head (empty, one class, NaN...)."""


class ModelFileError(WakebuilderError):
    """A model directory or exported file is missing, corrupt or inconsistent."""


class ExportParityError(WakebuilderError):
    """onnxruntime disagrees with torch on the exported model."""


class WebRuntimeMissingError(WakebuilderError):
    """ONNX Runtime Web (from the npm registry, installed by bin/setup) is not installed."""


class SourceUnavailableError(WakebuilderError):
    """An audio source cannot be fetched here (no apt-get, no network to the archive)."""
