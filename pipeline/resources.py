"""Heavy per-process models — jieba's dictionary, OpenCC, the tag model, jieba's POS tables:
each loaded once per process on first use, and all released together when a process is done with
the per-document stages (the season-level combines then reuse the ~200 MiB they held).

A stage marks its loader with :func:`process_model` instead of ``functools.cache``; the run calls
:func:`release_models` after tagging files in its own process. A released model is loaded again if
it is ever needed again."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_LOADERS: list[Any] = []
#: set in the warm server (pipeline/server.py): its children share the models' pages with it, so
#: releasing them would only copy and free pages nobody else gets back
_PINNED = False


def process_model(load: F) -> F:
    """``functools.cache`` for a model loader, registered for :func:`release_models`."""
    cached = functools.cache(load)
    _LOADERS.append(cached)
    return cached  # type: ignore[return-value]


def models_loaded() -> bool:
    """Whether any model is held in this process."""
    return any(cached.cache_info().currsize for cached in _LOADERS)


def pin_models() -> None:
    """Keep every model this process loads for its lifetime: :func:`release_models` does nothing."""
    global _PINNED
    _PINNED = True


def release_models() -> None:
    """Forget every model loaded so far in this process, and free their memory now (unless pinned)."""
    if _PINNED:
        return
    for cached in _LOADERS:
        cached.cache_clear()
    gc.collect()
