"""kdl.text.Tokenizer on the shipped fine-food reviews: a vocabulary fitted on the training split
only, reserved ids, padding and truncation, decoding, saving, and clear errors."""

from __future__ import annotations

import json
from collections import Counter

import keras
import numpy as np
import pytest

from kdl.datasets import load_fine_food_reviews
from kdl.text import Tokenizer


@pytest.fixture(scope="module")
def reviews():
    data = load_fine_food_reviews()
    return data[data.split == "train"].text.tolist(), data[data.split == "test"].text.tolist()


def test_vocabulary_is_fitted_on_training_reviews_only(reviews):
    train, test = reviews
    tok = Tokenizer(max_tokens=5000).fit(train)
    assert tok.vocabulary_size == 5000 and tok.vocabulary[:2] == ["", "[UNK]"]
    counts = Counter(t for text in train for t in tok.tokenize(text))
    words = tok.vocabulary[2:]
    kept = set(words)
    assert words[:3] == [w for w, _ in counts.most_common(3)]
    frequencies = [counts[w] for w in words]
    assert frequencies == sorted(frequencies, reverse=True)  # most frequent first
    assert min(frequencies) >= max(c for w, c in counts.items() if w not in kept)
    test_only = {t for text in test for t in tok.tokenize(text)} - set(counts)
    assert test_only and not test_only & kept
    encoded = tok.encode(test, max_length=100)
    ids = {w: i for i, w in enumerate(tok.vocabulary)}
    first = tok.tokenize(test[0])[:100]
    assert encoded[0, : len(first)].tolist() == [ids.get(t, 1) for t in first]
    assert (encoded[0, len(first) :] == 0).all()
    assert Tokenizer(min_count=5).fit(train).vocabulary_size == 2 + sum(
        c >= 5 for c in counts.values()
    )


def test_encode_pads_truncates_and_decodes(reviews):
    train, _ = reviews
    tok = Tokenizer().fit(train)
    text = "This coffee is great, and the price isn't bad at all"
    tokens = tok.tokenize(text)
    assert tokens[:4] == ["this", "coffee", "is", "great"] and "isn't" in tokens
    full = tok.encode([text])[0]
    assert len(full) == len(tokens) and 1 not in full
    assert tok.decode([full]) == [" ".join(tokens)]
    post = tok.encode([text, "great"], max_length=5)
    assert post.shape == (2, 5) and post.dtype == np.int32
    assert post[0].tolist() == full[:5].tolist() and post[1].tolist()[1:] == [0, 0, 0, 0]
    pre = tok.encode([text, "great"], max_length=5, truncating="pre", padding="pre")
    assert pre[0].tolist() == full[-5:].tolist() and pre[1].tolist()[:4] == [0, 0, 0, 0]
    assert tok.encode(["zzzqqq unknownword"]).tolist() == [[1, 1]]
    assert tok.encode([]).shape == (0, 0)
    batch = tok.encode(train[:8], max_length=50)
    model = keras.Sequential(
        [
            keras.Input((50,), dtype="int32"),
            keras.layers.Embedding(tok.vocabulary_size, 4, mask_zero=True),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    assert model.predict(batch, verbose=0).shape == (8, 1)


def test_saved_vocabulary_round_trips(reviews, tmp_path):
    train, test = reviews
    tok = Tokenizer(max_tokens=2000, min_count=2, lowercase=False).fit(train[:500])
    tok.save(tmp_path / "vocab.json")
    loaded = Tokenizer.load(tmp_path / "vocab.json")
    assert loaded.get_config() == tok.get_config()
    np.testing.assert_array_equal(loaded.encode(test[:20], 80), tok.encode(test[:20], 80))
    config = json.loads((tmp_path / "vocab.json").read_text())
    assert config["vocabulary"][:2] == ["", "[UNK]"] and config["max_tokens"] == 2000
    assert Tokenizer.from_config(Tokenizer().get_config()).get_config()["vocabulary"] is None


def test_bad_arguments_and_use_before_fit_are_clear_errors():
    for kwargs, message in [
        ({"max_tokens": 2}, "max_tokens=2"),
        ({"max_tokens": 10.0}, "max_tokens=10.0"),
        ({"min_count": 0}, "min_count=0"),
        ({"lowercase": "yes"}, "lowercase='yes'"),
        ({"pattern": "("}, "pattern='\\('"),
    ]:
        with pytest.raises(ValueError, match=message):
            Tokenizer(**kwargs)
    tok = Tokenizer()
    for use in (lambda: tok.encode(["a b"]), lambda: tok.decode([[2]]), lambda: tok.vocabulary):
        with pytest.raises(RuntimeError, match="before fit"):
            use()
    with pytest.raises(ValueError, match="single string"):
        tok.fit("a single review")
    with pytest.raises(ValueError, match="strings only.*position 1"):
        tok.fit(["fine", 3])
    tok.fit(["a b c"])
    for kwargs, message in [
        ({"max_length": 0}, "max_length=0"),
        ({"truncating": "end"}, "truncating='end'"),
        ({"padding": "left"}, "padding='left'"),
    ]:
        with pytest.raises(ValueError, match=message):
            tok.encode(["a"], **kwargs)
    with pytest.raises(ValueError, match="outside 0..4"):
        tok.decode([[7]])
    with pytest.raises(ValueError, match="vocabulary"):
        Tokenizer.from_config({**tok.get_config(), "vocabulary": ["a", "b"]})
