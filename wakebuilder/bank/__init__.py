"""The negative bank: phrase-independent negatives embedded once per backbone and window.

``location`` says where banks live (the platform's cache folder), ``build``
embeds manifests into one (growing it: clips already stored are skipped),
``exclude`` leaves out of a phrase's fit the bank rows that say the phrase or
a sound-alike of it, ``retired`` the rows of voices replaced; readers hold the
``reading`` lock, and ``reclaim`` removes what the bank keeps for nothing (``audio_folders``: its audio no
recipe needs; ``stream_passes``: the cached passes over held-out streams gone).
"""
