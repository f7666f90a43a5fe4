"""Data preparation: recordings, TTS positives, negatives, augmentation, streams."""
