"""kdl.datasets: the shipped files match their recorded checksums, the loaders return what their
docstrings promise, and a missing or altered file gives an error that says how to restore it."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kdl
from kdl import datasets
from kdl.datasets import (
    BASIC_MOTIONS_CHANNEL_NAMES,
    BASIC_MOTIONS_CLASS_NAMES,
    FASHION_MNIST_CLASS_NAMES,
    SHA256,
    DataChecksumError,
)

DATA = Path(kdl.__file__).resolve().parent.parent / "data"


def test_checksums_agree_between_files_sources_md_and_code(monkeypatch):
    monkeypatch.delenv("KDL_DATA_DIR", raising=False)
    assert datasets.data_dir() == DATA  # found next to the installed package
    table = (DATA / "SOURCES.md").read_text()
    rows = re.findall(r"^\| `([\w.]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", table, re.M)
    recorded = {name: digest for name, _, digest in rows}
    sizes = {name: int(size.replace(",", "")) for name, size, _ in rows}
    assert recorded == SHA256
    for name, digest in SHA256.items():
        content = (DATA / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == digest, name
        assert len(content) == sizes[name], name
    assert sum(sizes.values()) < 5_000_000


def test_missing_or_altered_file_error_names_it_and_how_to_restore(tmp_path, monkeypatch):
    for name in SHA256:
        shutil.copy(DATA / name, tmp_path / name)
    monkeypatch.setenv("KDL_DATA_DIR", str(tmp_path))
    assert datasets.load_basic_motions()[0][0].shape == (40, 100, 6)  # the copy is found

    content = bytearray((tmp_path / "basic_motions.npz").read_bytes())
    content[1000] ^= 0xFF
    (tmp_path / "basic_motions.npz").write_bytes(bytes(content))
    with pytest.raises(DataChecksumError) as error:
        datasets.load_basic_motions()
    message = str(error.value)
    assert "basic_motions.npz" in message and str(tmp_path) in message
    assert "git checkout -- data/basic_motions.npz" in message
    assert "python tools/build_data.py" in message

    (tmp_path / "fine_foods_reviews.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="fine_foods_reviews.csv.gz.*git checkout --"):
        datasets.load_fine_food_reviews()
    monkeypatch.delenv("KDL_DATA_DIR")
    with pytest.raises(FileNotFoundError, match="nyc_weather_2013.csv.gz"):
        datasets.load_nyc_weather(data_dir=tmp_path / "nowhere")


def test_nyc_weather_is_a_regular_hourly_series_per_station():
    raw = pd.read_csv(DATA / "nyc_weather_2013.csv.gz")
    weather = datasets.load_nyc_weather()
    assert weather.index.name == "time" and str(weather.index.tz) == "America/New_York"
    assert list(weather.columns) == [
        "station",
        "temp",
        "dewp",
        "humid",
        "wind_dir",
        "wind_speed",
        "wind_gust",
        "precip",
        "pressure",
        "visib",
        "gap",
    ]
    assert weather.groupby("station").size().to_dict() == {"EWR": 8730, "JFK": 8730, "LGA": 8730}
    assert (~weather.gap).sum() == len(raw) and not weather.drop(
        columns="station"
    ).isna().any().any()
    assert weather.wind_speed.max() < 100  # the 1048 mph recording error is gone
    for name, station in weather.groupby("station"):
        assert station.index.is_monotonic_increasing and station.index.is_unique
        steps = station.index[1:] - station.index[:-1]
        assert (steps == pd.Timedelta(hours=1)).all()  # one hour apart, across DST changes too
        source = raw[raw.origin == name].set_index(
            pd.to_datetime(raw[raw.origin == name].time_hour)
        )
        kept = station[~station.gap]
        np.testing.assert_array_equal(kept.temp.to_numpy()[:100], source.temp.to_numpy()[:100])
    assert weather.index[0] == pd.Timestamp("2013-01-01 01:00", tz="America/New_York")

    jfk = datasets.load_nyc_weather("jfk")
    assert jfk.index.freqstr == "h" and set(jfk.station) == {"JFK"} and len(jfk) == 8730
    raw_jfk = datasets.load_nyc_weather("JFK", fill=False)
    assert raw_jfk.pressure.isna().sum() > 800 and raw_jfk.temp.isna().sum() == raw_jfk.gap.sum()

    wide = datasets.load_nyc_weather(["LGA", "EWR"], wide=True)
    assert wide.shape == (8730, 18) and wide.index.freqstr == "h"
    assert list(wide.columns[:2]) == ["temp_LGA", "dewp_LGA"] and wide.columns[9] == "temp_EWR"
    np.testing.assert_array_equal(
        wide.temp_EWR.to_numpy(), weather[weather.station == "EWR"].temp.to_numpy()
    )

    for bad in ("ORD", ["JFK", "SFO"], [], 3):
        with pytest.raises(ValueError, match="`station`"):
            datasets.load_nyc_weather(bad)
    with pytest.raises(ValueError, match="'SFO'"):
        datasets.load_nyc_weather(["JFK", "SFO"])


def test_fashion_mnist_small_is_stratified_like_keras_datasets():
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist_small()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == x_test.dtype == y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    assert x_train.max() == 255 and x_train.min() == 0
    stored = np.load(DATA / "fashion_mnist_small.npz")
    assert tuple(stored["class_names"]) == FASHION_MNIST_CLASS_NAMES


def test_fine_food_reviews_have_text_label_and_fixed_split():
    reviews = datasets.load_fine_food_reviews()
    assert list(reviews.columns) == ["text", "label", "split", "product"]
    counts = reviews.groupby("split").label.value_counts().to_dict()
    assert counts == {("test", 1): 658, ("test", 0): 342, ("train", 1): 2600, ("train", 0): 1400}
    assert (reviews.split.iloc[:4000] == "train").all() and (
        reviews.split.iloc[4000:] == "test"
    ).all()
    assert not reviews.text.str.contains("<br", regex=False).any()
    assert reviews.text.str.len().min() > 0


def test_basic_motions_is_channels_last_with_named_classes():
    (x_train, y_train), (x_test, y_test) = datasets.load_basic_motions()
    assert x_train.shape == x_test.shape == (40, 100, 6) and x_train.dtype == np.float32
    assert np.bincount(y_train).tolist() == np.bincount(y_test).tolist() == [10, 10, 10, 10]
    stored = np.load(DATA / "basic_motions.npz")
    assert tuple(stored["class_names"]) == BASIC_MOTIONS_CLASS_NAMES
    assert tuple(stored["channel_names"]) == BASIC_MOTIONS_CHANNEL_NAMES
    standing = x_train[y_train == BASIC_MOTIONS_CLASS_NAMES.index("standing")]
    running = x_train[y_train == BASIC_MOTIONS_CLASS_NAMES.index("running")]
    assert standing[..., :3].std() < running[..., :3].std()  # running shakes the accelerometer
