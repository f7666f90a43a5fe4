"""Non-speech negatives made offline: coloured noise, music, tones, chirps, clicks, hum, room tone, babble.

``noise`` and ``music`` hold the signal generators, ``babble`` overlaps speech clips, ``generators``
draws and renders a clip by name, ``make`` writes a manifest of them (``wb negatives --nonspeech``).
"""
