"""BERT's word-piece tokenizer, as the sentence model was trained with it, in plain Python.

It reads the model's own ``tokenizer.json`` and follows what Hugging Face's ``tokenizers`` does
with that file (BertNormalizer, BertPreTokenizer, WordPiece, ``[CLS] ... [SEP]``), id for id:
tests/core/test_wordpiece.py compares the two on every text of the repository's knowledge bases
and question sets, and on random text. The one difference: characters Unicode assigned after
2015, which the library classifies with older tables (see the test). Why not ``tokenizers``
itself: it is 12 MB of compiled code and pulls in the Hugging Face Hub client with its HTTP stack
(another 25 MB the image had to uninstall), for what is here eighty lines; a question is cut in
tens of microseconds either way.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

_CONTROL_KEPT = "\t\n\r"


def _is_cjk(code: int) -> bool:
    """The CJK ideograph blocks BERT reads one character at a time."""
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _is_punctuation(char: str) -> bool:
    """ASCII punctuation (symbols such as $ + < = > ^ ` | ~ included) or any Unicode P* category."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


@lru_cache(maxsize=4096)
def _normalise_char(char: str) -> str:
    """One character as BertNormalizer leaves it: dropped, a space, padded, or lowercased."""
    if char in _CONTROL_KEPT:
        return " "
    if char in "\0\ufffd" or unicodedata.category(char).startswith("C"):
        return ""
    if char.isspace():
        return " "
    if _is_cjk(ord(char)):
        return f" {char} "
    stripped = "".join(c for c in unicodedata.normalize("NFD", char) if unicodedata.category(c) != "Mn")
    return stripped.lower()


class WordPiece:
    """Text to the model's token ids: ``[CLS]``, the text's word pieces, ``[SEP]``."""

    def __init__(self, path: Path) -> None:
        spec = json.loads(path.read_text(encoding="utf-8"))
        model = spec["model"]
        if model.get("type") != "WordPiece" or spec.get("normalizer", {}).get("type") != "BertNormalizer":
            raise ValueError(f"{path}: not a BERT word-piece tokenizer")
        self._vocab: dict[str, int] = model["vocab"]
        self._prefix: str = model.get("continuing_subword_prefix", "##")
        self._longest: int = int(model.get("max_input_chars_per_word", 100))
        self._unknown = self._vocab[model["unk_token"]]
        self._first = self._vocab["[CLS]"]
        self._last = self._vocab["[SEP]"]
        # Special tokens written in a text ("[MASK]") are read as themselves, before normalising.
        specials = sorted((t["content"] for t in spec.get("added_tokens", [])), key=len, reverse=True)
        self._specials = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None

    def encode(self, text: str, max_tokens: int) -> list[int]:
        """The ids of `text`, cut to `max_tokens` with ``[CLS]`` and ``[SEP]`` counted."""
        ids = [self._first]
        parts = self._specials.split(text) if self._specials else [text]
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self._vocab[part])
                continue
            normal = "".join(_normalise_char(c) for c in part)
            for word in normal.split():
                for piece in self._split_punctuation(word):
                    ids.extend(self._pieces(piece))
        del ids[max(max_tokens - 1, 1) :]
        ids.append(self._last)
        return ids

    @staticmethod
    def _split_punctuation(word: str) -> list[str]:
        out: list[str] = []
        start = 0
        for i, char in enumerate(word):
            if _is_punctuation(char):
                if start < i:
                    out.append(word[start:i])
                out.append(char)
                start = i + 1
        if start < len(word):
            out.append(word[start:])
        return out

    def _pieces(self, word: str) -> list[int]:
        """Greedy longest-match word pieces; a word with any unmatched part is one ``[UNK]``."""
        if len(word) > self._longest:
            return [self._unknown]
        whole = self._vocab.get(word)
        if whole is not None:
            return [whole]
        out: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self._prefix + word[start:end]
                found = self._vocab.get(piece)
                if found is not None:
                    out.append(found)
                    break
                end -= 1
            else:
                return [self._unknown]
            start = end
        return out
