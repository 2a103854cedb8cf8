"""A small word tokenizer that runs on every backend.

``keras.layers.TextVectorization`` needs TensorFlow (on the JAX and PyTorch backends it raises an
ImportError), so the text chapters use ``Tokenizer``: a regular expression splits texts into
words, a ``collections.Counter`` fitted on the *training* texts builds the vocabulary, and
``encode`` turns texts into padded integer NumPy arrays for a ``keras.layers.Embedding``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["Tokenizer"]

PAD, OOV = "", "[UNK]"


class Tokenizer:
    """Map texts to sequences of integer word ids, with a vocabulary fitted on training texts.

    Id 0 is reserved for padding and id 1 for out-of-vocabulary words (as in Keras's
    ``TextVectorization``, whose ``get_vocabulary()`` also starts ``["", "[UNK]"]``); the words
    of the vocabulary get ids 2, 3, ... in order of decreasing count in the fitted texts, ties
    broken alphabetically, so a fit is deterministic.

    A text is standardised (lower-cased if ``lowercase``, HTML line breaks ``<br />`` replaced by
    spaces) and split into the matches of ``pattern``: by default runs of letters and digits, with
    inner apostrophes kept (``"don't"`` is one word), so punctuation is dropped.

    Args:
        max_tokens: the largest vocabulary size, *including* the two reserved ids (as in
            ``TextVectorization``), or None for no limit. The most frequent words are kept.
        min_count: a word needs at least this many occurrences in the fitted texts.
        lowercase: lower-case texts before splitting.
        pattern: regular expression whose matches are the tokens.

    Example:
    >>> tok = Tokenizer().fit(["the cat sat", "the dog sat down", "The end"])
    >>> tok.vocabulary
    ['', '[UNK]', 'the', 'sat', 'cat', 'dog', 'down', 'end']
    >>> tok.encode(["The cat sat down!", "a bird"], max_length=4)
    array([[2, 4, 3, 6],
           [1, 1, 0, 0]], dtype=int32)
    >>> tok.encode(["the cat sat down"], max_length=2, truncating="pre")
    array([[3, 6]], dtype=int32)
    >>> tok.decode([[2, 4, 3, 6], [1, 1, 0, 0]])
    ['the cat sat down', '[UNK] [UNK]']
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        min_count: int = 1,
        lowercase: bool = True,
        pattern: str = r"[^\W_]+(?:'[^\W_]+)*",
    ) -> None:
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 3
        ):
            raise ValueError(
                "`max_tokens` must be None or an integer >= 3 (it counts the padding and "
                f"out-of-vocabulary ids), got max_tokens={max_tokens!r}"
            )
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"`min_count` must be an integer >= 1, got min_count={min_count!r}")
        if not isinstance(lowercase, bool):
            raise ValueError(f"`lowercase` must be True or False, got lowercase={lowercase!r}")
        try:
            self._regex = re.compile(pattern)
        except (TypeError, re.error) as error:
            raise ValueError(
                f"`pattern` must be a regular expression, got pattern={pattern!r}: {error}"
            ) from None
        self.max_tokens, self.min_count = max_tokens, min_count
        self.lowercase, self.pattern = lowercase, pattern
        self._vocabulary: list[str] | None = None
        self._ids: dict[str, int] = {}

    @staticmethod
    def _texts(texts: Any, name: str = "texts") -> list[str]:
        """Return ``texts`` as a list of str; a lone string is an error (it would be split into
        characters)."""
        if isinstance(texts, (str, bytes)):
            raise ValueError(
                f"`{name}` must be a list of strings, not a single string; "
                f"wrap it in a list: [{texts[:30]!r}...]"
            )
        if not isinstance(texts, Iterable):
            raise ValueError(f"`{name}` must be a list of strings, got {type(texts).__name__}")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"`{name}` must hold strings only, got {text!r} at position {i}")
        return texts

    def tokenize(self, text: str) -> list[str]:
        """Return the tokens of one text, standardised as described in the class docstring.

        Example:
        >>> Tokenizer().tokenize("Great<br />coffee, isn't it?")
        ['great', 'coffee', "isn't", 'it']
        """
        text = re.sub(r"<br\s*/?>", " ", text)
        return self._regex.findall(text.lower() if self.lowercase else text)

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        """Build the vocabulary from ``texts`` (the training texts only) and return ``self``.

        Refitting replaces the vocabulary.
        """
        counts = Counter(token for text in self._texts(texts) for token in self.tokenize(text))
        words = sorted(
            (w for w, c in counts.items() if c >= self.min_count), key=lambda w: (-counts[w], w)
        )
        if self.max_tokens is not None:
            words = words[: self.max_tokens - 2]
        self._set_vocabulary([PAD, OOV, *words])
        return self

    def _set_vocabulary(self, vocabulary: list[str]) -> None:
        self._vocabulary = list(vocabulary)
        self._ids = {word: i for i, word in enumerate(self._vocabulary)}

    def _require_fitted(self, method: str) -> list[str]:
        if self._vocabulary is None:
            raise RuntimeError(
                f"Tokenizer.{method} was used before fit(): call tokenizer.fit(training_texts) "
                "first, or Tokenizer.load(path)"
            )
        return self._vocabulary

    @property
    def vocabulary(self) -> list[str]:
        """The words by id: ``vocabulary[i]`` is the word of id ``i``; 0 is padding, 1 unknown."""
        return list(self._require_fitted("vocabulary"))

    @property
    def vocabulary_size(self) -> int:
        """Number of ids, reserved ones included: the ``input_dim`` of an ``Embedding``."""
        return len(self._require_fitted("vocabulary_size"))

    def encode(
        self,
        texts: Iterable[str],
        max_length: int | None = None,
        *,
        truncating: str = "post",
        padding: str = "post",
    ) -> np.ndarray:
        """Return the word ids of ``texts`` as an int32 array of shape ``(len(texts), max_length)``.

        A text longer than ``max_length`` tokens is cut: ``truncating="post"`` (the default, as in
        ``TextVectorization``) keeps its first ``max_length`` tokens, ``"pre"`` its last ones. A
        shorter text is filled with the padding id 0 after its tokens (``padding="post"``, the
        default) or before them (``"pre"``, which puts the words next to the final state of a
        recurrent layer that reads left to right without a mask). Words not in the vocabulary get
        id 1. ``max_length=None`` pads to the longest text given.
        """
        self._require_fitted("encode")
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise ValueError(
                f"`max_length` must be None or an integer >= 1, got max_length={max_length!r}"
            )
        for name, value in (("truncating", truncating), ("padding", padding)):
            if value not in ("pre", "post"):
                raise ValueError(f'`{name}` must be "pre" or "post", got {name}={value!r}')
        sequences = [
            [self._ids.get(t, 1) for t in self.tokenize(text)] for text in self._texts(texts)
        ]
        if max_length is None:
            max_length = max((len(s) for s in sequences), default=0)
        out = np.zeros((len(sequences), max_length), dtype="int32")
        for row, ids in zip(out, sequences, strict=True):
            ids = ids[:max_length] if truncating == "post" else ids[len(ids) - max_length :]
            if ids:
                if padding == "post":
                    row[: len(ids)] = ids
                else:
                    row[max_length - len(ids) :] = ids
        return out

    def decode(self, sequences: Any) -> list[str]:
        """Return the texts of rows of ids, words joined by spaces, padding (id 0) left out."""
        vocabulary = self._require_fitted("decode")
        rows = np.asarray(sequences)
        if rows.ndim == 1:
            rows = rows[None]
        if rows.ndim != 2 or rows.dtype.kind not in "iu":
            raise ValueError(
                f"`sequences` must be a 2-D array of integer ids, got "
                f"shape={rows.shape}, dtype={rows.dtype}"
            )
        if rows.size and (rows.min() < 0 or rows.max() >= len(vocabulary)):
            raise ValueError(
                f"`sequences` holds ids outside 0..{len(vocabulary) - 1}: "
                f"min {rows.min()}, max {rows.max()}"
            )
        return [" ".join(vocabulary[i] for i in row if i != 0) for row in rows.tolist()]

    def get_config(self) -> dict[str, Any]:
        """Return the arguments and the fitted vocabulary (None before ``fit``), JSON-ready."""
        vocabulary = None if self._vocabulary is None else list(self._vocabulary)
        return {
            "max_tokens": self.max_tokens,
            "min_count": self.min_count,
            "lowercase": self.lowercase,
            "pattern": self.pattern,
            "vocabulary": vocabulary,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Tokenizer:
        """Rebuild a tokenizer from ``get_config()``."""
        config = dict(config)
        vocabulary = config.pop("vocabulary", None)
        tokenizer = cls(**config)
        if vocabulary is not None:
            if vocabulary[:2] != [PAD, OOV] or len(set(vocabulary)) != len(vocabulary):
                raise ValueError(
                    "`vocabulary` must start with '' and '[UNK]' and have no duplicate words"
                )
            tokenizer._set_vocabulary(vocabulary)
        return tokenizer

    def save(self, path: str | os.PathLike) -> None:
        """Write the configuration and vocabulary to a JSON file."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.get_config(), f, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer written by ``save``.

        Example:
        >>> import tempfile, pathlib
        >>> tok = Tokenizer(max_tokens=4).fit(["b a a", "c b a"])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "vocab.json"
        >>> tok.save(path)
        >>> Tokenizer.load(path).vocabulary
        ['', '[UNK]', 'a', 'b']
        """
        with open(path, encoding="utf-8") as f:
            return cls.from_config(json.load(f))
