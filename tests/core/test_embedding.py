"""The sentence-embedding stage: the numpy transformer and its content cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.core.embedding import (
    EmbeddingCache,
    Encoder,
    Projection,
    default_encoder,
    default_projection,
    default_words,
)
from tests.conftest import ROOT

REFERENCE = json.loads((ROOT / "tests" / "data" / "tuned_reference.json").read_text())


def test_vectors_match_the_tuned_model_s_own() -> None:
    """The reference vectors were recorded by scripts/fine_tune.py from the fine-tuned float32
    weights on torch (tests/data/tuned_reference.json; the same script first checks its torch
    model against sentence-transformers' own vectors for the original weights,
    tests/data/minilm_reference.json). The numpy forward pass on the shipped int8 weights gives
    the same to rounding: 0.9994 at worst (0.9996 for the packaged model's int8 build against
    sentence-transformers'; a wrong layer or tokenizer gives well under 0.99)."""
    vectors = default_encoder().encode(REFERENCE["texts"])
    expected = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    cosines = (vectors * expected).sum(axis=1)
    assert cosines.min() > 0.999, cosines


def test_vectors_are_unit_length_and_independent_of_the_batch() -> None:
    encoder = default_encoder()
    texts = ["short", "a much longer question about what happened and why it happened at all", "hi"]
    together = encoder.encode(texts)
    apart = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, apart, atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dims)


def test_paraphrases_are_closer_than_other_topics() -> None:
    a, b, c = default_encoder().encode(
        [
            "How far did they push the cart?",
            "What distance did they cover pushing the trolley?",
            "Who won the football?",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


class CountingEncoder(Encoder):
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self) -> None:
        base = default_encoder()
        self.__dict__.update(base.__dict__)
        self.encoded = 0

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.encoded += len(texts)
        return super().encode(texts)


@pytest.fixture
def counting(tmp_path: Path) -> tuple[CountingEncoder, Path]:
    EmbeddingCache._memo.clear()
    return CountingEncoder(), tmp_path / "cache"


def test_an_unchanged_list_is_read_back_not_encoded(counting: tuple[CountingEncoder, Path]) -> None:
    encoder, folder = counting
    texts = ["one text", "another text", "a third"]
    first = EmbeddingCache(encoder, folder).vectors(texts)
    EmbeddingCache._memo.clear()  # as a new process would
    second = EmbeddingCache(encoder, folder).vectors(texts)
    assert encoder.encoded == 3
    assert np.array_equal(first, second)


def test_an_edit_encodes_only_the_texts_it_changed(counting: tuple[CountingEncoder, Path]) -> None:
    encoder, folder = counting
    EmbeddingCache(encoder, folder).vectors(["a", "b", "c", "d"])
    EmbeddingCache._memo.clear()
    EmbeddingCache(encoder, folder).vectors(["a", "b", "c", "d changed", "e"])
    assert encoder.encoded == 4 + 2


def test_a_torn_cache_file_is_encoded_again(counting: tuple[CountingEncoder, Path]) -> None:
    encoder, folder = counting
    cache = EmbeddingCache(encoder, folder)
    good = cache.vectors(["x", "y"])
    for path in folder.glob("*.npz"):
        path.write_bytes(path.read_bytes()[:50])
    EmbeddingCache._memo.clear()
    again = EmbeddingCache(encoder, folder).vectors(["x", "y"])
    assert np.array_equal(good, again)
    assert encoder.encoded == 4


def test_another_base_s_file_is_read_no_further_than_its_keys(counting: tuple[CountingEncoder, Path]) -> None:
    """Looking for a changed base's texts in the other cache files reads each file's keys, and
    its vectors only when it holds some of the texts: a 10k-entry base's file is not loaded for a
    small base's edit. A file whose keys match none is skipped even when its vectors are bad."""
    encoder, folder = counting
    folder.mkdir(parents=True)
    unrelated = folder / "unrelated.npz"
    with unrelated.open("wb") as handle:  # keys of other texts; vectors of the wrong shape
        np.savez(
            handle, keys=np.array(["0" * 32, "1" * 32], dtype="U32"), vectors=np.zeros((1, 3), np.float16)
        )
    cache = EmbeddingCache(encoder, folder)
    keys, vectors = cache._read(unrelated, wanted={cache.text_key("mine")})  # type: ignore[misc]
    assert len(keys) == 0 and vectors.shape == (0, encoder.dims)
    assert cache._read(unrelated) is None  # read whole, the bad vectors are noticed
    # And the rows wanted are the only ones taken from a file that has them.
    EmbeddingCache(encoder, folder).vectors(["a", "b", "c"])
    [full] = [p for p in folder.glob("*.npz") if p != unrelated]
    keys, vectors = cache._read(full, wanted={cache.text_key("b")})  # type: ignore[misc]
    assert list(keys) == [cache.text_key("b")] and vectors.shape == (1, encoder.dims)


def test_an_unwritable_cache_folder_still_answers(
    counting: tuple[CountingEncoder, Path], tmp_path: Path
) -> None:
    encoder, _ = counting
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    vectors = EmbeddingCache(encoder, blocked / "cache").vectors(["x"])
    assert vectors.shape == (1, encoder.dims)


def test_warm_and_cold_caches_give_the_same_vectors(counting: tuple[CountingEncoder, Path]) -> None:
    """Both are rounded through float16, so no answer depends on whether the cache was warm."""
    encoder, folder = counting
    cold = EmbeddingCache(encoder, folder).vectors(["the same text"])
    EmbeddingCache._memo.clear()
    warm = EmbeddingCache(encoder, folder).vectors(["the same text"])
    assert cold.dtype == warm.dtype == np.float32
    assert np.array_equal(cold, warm)


def test_the_cache_folder_keeps_only_the_newest_files(counting: tuple[CountingEncoder, Path]) -> None:
    from bot.core.embedding import KEPT_FILES

    encoder, folder = counting
    for n in range(KEPT_FILES + 5):
        EmbeddingCache(encoder, folder).vectors([f"text {n}"])
    assert len(list(folder.glob("*.npz"))) == KEPT_FILES


def test_an_edit_after_a_warm_start_encodes_only_its_texts_whatever_else_is_cached(
    counting: tuple[CountingEncoder, Path],
) -> None:
    encoder, folder = counting
    EmbeddingCache(encoder, folder).vectors(["a", "b", "c", "d"])  # the served base, cached earlier
    for n in range(6):  # other bases cached since (other stories, benchmarks): newer files
        EmbeddingCache(encoder, folder).vectors([f"other {n}"])
    EmbeddingCache._memo.clear()  # a new process: its base is read back from the cache
    EmbeddingCache(encoder, folder).vectors(["a", "b", "c", "d"])
    encoder.encoded = 0
    EmbeddingCache(encoder, folder).vectors(["a", "b", "c", "d", "e"])  # a curator adds an entry
    assert encoder.encoded == 1


def test_the_word_table_is_the_shipped_model_reading_each_word() -> None:
    """bot/core/data/words.npz (scripts/build_words.py): re-encoding a sample of its words gives
    the stored vectors to int8 rounding, from this very model."""
    table = default_words()
    encoder = default_encoder()
    assert table.model == encoder.fingerprint
    assert len(table.index) == 20_000
    sample = sorted(table.index)[::997]
    fresh = encoder.encode(sample)
    for word, vector in zip(sample, fresh, strict=True):
        stored = table.get(word)
        assert stored is not None
        assert float(stored @ vector) > 0.999, word
    assert table.get("qwzxv") is None
    # What it is for: a word and its everyday paraphrase sit closer than unrelated words.
    tall, height, colour = (table.get(w) for w in ("tall", "height", "colour"))
    assert tall is not None and height is not None and colour is not None
    assert float(tall @ height) > float(tall @ colour) + 0.2


def test_no_projection_file_means_the_model_s_own_vectors(tmp_path: Path) -> None:
    vectors = default_encoder().encode(["Where did they go?", "How many were there?"])
    same = Projection.load(tmp_path / "absent.npz")
    assert same.matrix is None
    assert np.array_equal(same(vectors), vectors)


def test_a_projection_keeps_vectors_unit_length_and_reads_back_as_saved(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    projection = Projection(np.eye(384) + 0.1 * rng.standard_normal((384, 384)), name="random")
    vectors = default_encoder().encode(["Where did they go?", "How many were there?", "hi"])
    mapped = projection(vectors)
    assert np.allclose(np.linalg.norm(mapped, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(mapped, vectors, atol=1e-3)
    projection.save(tmp_path / "p.npz")
    again = Projection.load(tmp_path / "p.npz")
    assert again.name == "random"
    assert float((again(vectors) * mapped).sum(axis=1).min()) > 0.9999  # stored as float16


def test_the_shipped_projection_stays_close_to_the_model() -> None:
    """Fitted with a pull towards the identity (scripts/fit_projection.py): it bends the model's
    sense of meaning, it does not replace it. A sentence and its projection stay close, and a
    paraphrase stays closer than another topic."""
    projection = default_projection()
    assert projection.matrix is not None, "bot/core/data/projection.npz is missing"
    texts = [
        "How far did they push the cart?",
        "What distance did they cover pushing the trolley?",
        "Who won the football?",
    ]
    raw = default_encoder().encode(texts)
    a, b, c = projection(raw)
    assert float((projection(raw) * raw).sum(axis=1).min()) > 0.6
    assert float(a @ b) > float(a @ c) + 0.2


def test_the_projection_gradient_is_the_loss_s_own() -> None:
    """The hand-written gradient of scripts/fit_projection.py agrees with finite differences."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from fit_projection import Story, loss_and_gradient

    rng = np.random.default_rng(1)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 6))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    story = Story(unit(5), np.array([0, 0, 1, 2, 2]), unit(4), [[0], [2], [], [1, 2]])
    theta = np.concatenate([0.2 * rng.standard_normal(36), [0.3]])
    stories = [(story, story.right_phrasings())]
    _, grad = loss_and_gradient(theta, stories, 0.01, 0.5)
    step = 1e-3
    for k in range(0, len(theta), 5):
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        numeric = (
            loss_and_gradient(up, stories, 0.01, 0.5)[0] - loss_and_gradient(down, stories, 0.01, 0.5)[0]
        ) / (2 * step)
        assert abs(numeric - grad[k]) < 2e-3 * max(1.0, abs(numeric)), (k, numeric, grad[k])
