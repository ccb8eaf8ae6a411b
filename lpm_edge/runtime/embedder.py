"""What an embedding bundle offers (numpy only): `embed` texts into L2-normalised vectors, `index` a
corpus in memory and `search` it exactly (cosine = dot product of unit vectors, top k by
argpartition). Mixed into the loaded bundle's class; a bundle of another task refuses these
methods, naming the ones it offers."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence, overload

import numpy as np

from ..errors import ConfigError
from ..tasks.embedding import l2_normalize, top_k


class Hit(NamedTuple):
    index: int  # the text's position in what `index()` was given
    score: float  # cosine similarity to the query
    text: str


class Index:
    """Unit vectors (n, dim) of a corpus and its texts; exact nearest neighbours by cosine."""

    def __init__(self, vectors: np.ndarray, texts: Sequence[str]) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ConfigError(f"an index needs one vector per text: got {vectors.shape} for {len(texts)} texts")
        self.vectors = l2_normalize(vectors)
        self.texts = tuple(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return f"Index({len(self)} texts, dim {self.vectors.shape[1]})"

    def search_vectors(self, queries: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """Per query vector (rows of `queries`), its k most similar texts, best first."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        idx, val = top_k(l2_normalize(np.atleast_2d(queries)), self.vectors, k)
        return [[Hit(int(i), float(s), self.texts[i]) for i, s in zip(row_i, row_s)] for row_i, row_s in zip(idx, val)]


class Embeds:
    """embed / index / search on a loaded bundle (the host class provides `_offers` and `logits`)."""

    _index: Index | None = None

    def _offers(self, method: str) -> None:  # pragma: no cover - the host's
        raise NotImplementedError

    def logits(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - the host's
        raise NotImplementedError

    @overload
    def embed(self, texts: str) -> np.ndarray: ...
    @overload
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed(self, texts: str | Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, (n, dim) in input order ((dim,) for one string)."""
        self._offers("embed")
        single = isinstance(texts, str)
        v = l2_normalize(self.logits([texts] if single else texts))  # type: ignore[list-item]
        return v[0] if single else v

    def index(self, texts: Sequence[str]) -> Index:
        """Embed `texts` and keep them as the corpus `search` looks in (replacing any earlier one)."""
        self._offers("index")
        texts = list(texts) if not isinstance(texts, str) else [texts]
        built = Index(self.embed(texts) if texts else np.zeros((0, 1), np.float32), texts)
        self._index = built
        return built

    @overload
    def search(self, query: str, k: int = 10) -> list[Hit]: ...
    @overload
    def search(self, query: Sequence[str], k: int = 10) -> list[list[Hit]]: ...

    def search(self, query: str | Sequence[str], k: int = 10) -> Any:
        """The k texts of the indexed corpus most similar to `query` (cosine), best first, as
        Hit(index, score, text); a list of such lists for a list of queries."""
        self._offers("search")
        if self._index is None:
            raise ConfigError("search() needs a corpus: call index(texts) on this bundle first")
        single = isinstance(query, str)
        hits = self._index.search_vectors(self.embed([query] if single else list(query)), k)  # type: ignore[list-item]
        return hits[0] if single else hits
