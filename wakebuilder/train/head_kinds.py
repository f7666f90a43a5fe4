"""The kinds of head: ``wb fit --head``, ``FitConfig.head`` and ``HeadConfig.kind`` all read this one tuple.

It lives apart from ``fit_config`` (importable without torch) and ``head`` (torch) because ``fit_config`` builds a
``HeadConfig`` and so imports ``head``: ``head`` importing ``fit_config`` back would be a cycle.
"""

from __future__ import annotations

HEAD_KINDS = ("network", "centroids")  # the first is the default
