"""Loaders for the small real datasets shipped in the repository's ``data/`` folder.

Nothing here downloads: every loader reads a committed file, checks its sha256 against the
checksum recorded below (and in ``data/SOURCES.md``, which also gives each file's origin, license
and how it was cut), and raises an error naming the file, with how to restore it, when the file is
missing or altered.

The files travel inside the wheel as ``kdl/_data/`` (pyproject.toml maps the repository's
``data/``, the one copy, to that package), so an installed kdl loads them from any directory; in a
clone (``pip install -e .``) they are read from the repository's ``data/``. The ``data_dir``
argument of every loader, or else the ``KDL_DATA_DIR`` environment variable, points elsewhere.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "BASIC_MOTIONS_CHANNEL_NAMES",
    "BASIC_MOTIONS_CLASS_NAMES",
    "FASHION_MNIST_CLASS_NAMES",
    "NYC_STATIONS",
    "SHA256",
    "DataChecksumError",
    "data_dir",
    "load_basic_motions",
    "load_fashion_mnist_small",
    "load_fine_food_reviews",
    "load_nyc_weather",
]

SHA256 = {
    "nyc_weather_2013.csv.gz": "f9d6ac456a80a05e25e1e11430731821b34f812c34ae0e9c8945df892b496b30",
    "fashion_mnist_small.npz": "204e7fd75bc2127578309eb8b8296a798133f9930397411ed0a468140daa0f54",
    "fine_foods_reviews.csv.gz": "56f772248ef9c7212c0f71164cb2dac959c6de46c85e2e0cd32ca4ffba74b5b8",
    "basic_motions.npz": "eb091ebcac58e95791026a2d5935e05fff9c1198ede0f64dea08e3ebb471fb62",
}

FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
BASIC_MOTIONS_CLASS_NAMES = ("badminton", "running", "standing", "walking")
BASIC_MOTIONS_CHANNEL_NAMES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
NYC_STATIONS = ("EWR", "JFK", "LGA")
_NYC_MEASUREMENTS = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)


class DataChecksumError(OSError):
    """A data file exists but its sha256 is not the recorded one (altered or corrupted)."""


def data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the folder the loaders read: ``data_dir``, else ``$KDL_DATA_DIR``, else the data
    shipped inside the installed package (``kdl/_data/``), else, in a clone of the repository,
    its ``data/`` next to the ``kdl`` package.

    Example:
    >>> data_dir("/tmp/my_data").as_posix()
    '/tmp/my_data'
    >>> (data_dir() / "basic_motions.npz").exists()
    True
    """
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("KDL_DATA_DIR"):
        return Path(os.environ["KDL_DATA_DIR"])
    package = Path(__file__).resolve().parent
    installed = package / "_data"
    return installed if installed.is_dir() else package.parent / "data"


def _read_verified(name: str, folder: str | os.PathLike | None) -> bytes:
    """Return the bytes of data file ``name`` after checking its sha256."""
    path = data_dir(folder) / name
    restore = (
        f"Reinstall kdl, restore it with `git checkout -- data/{name}` in the kdl repository, or "
        "rebuild it with `python tools/build_data.py` (see data/SOURCES.md)"
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"data file {name} not found at {path}. {restore}; or set KDL_DATA_DIR (or pass "
            "data_dir=) to the folder that holds it."
        )
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != SHA256[name]:
        raise DataChecksumError(
            f"data file {name} at {path} is altered or corrupted: its sha256 is {digest}, "
            f"expected {SHA256[name]}. {restore}."
        )
    return content


def load_nyc_weather(
    station: str | list[str] | None = None,
    wide: bool = False,
    *,
    fill: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Load hourly weather at New York's three airports in 2013 (nycflights13, CC0).

    The ASOS observations of EWR (Newark), JFK and LGA (LaGuardia), one row per station and hour,
    from 2013-01-01 01:00 to 2013-12-30 18:00 New York time: 8,730 hours per station.

    Columns: ``station``; ``temp`` and ``dewp`` (dew point) in °F; ``humid`` (relative humidity,
    %); ``wind_dir`` (degrees, 0 for calm); ``wind_speed`` and ``wind_gust`` (mph); ``precip``
    (inches in the hour); ``pressure`` (sea-level, mbar); ``visib`` (miles, at most 10); and
    ``gap`` (True for an hour the source lacks, see below).

    The index, named ``time``, is a timezone-aware (America/New_York) ``DatetimeIndex``; per
    station it is regular and hourly (``freq="h"``), so a row offset is a number of hours, which is
    what sliding windows assume. (In wall-clock time the DST change skips 2:00 on March 10 and
    repeats 1:00 on November 3; the instants are still one hour apart.)

    Gaps and missing values, with ``fill=True`` (the default):

    * The source misses 24 to 27 hours per station, in 14 to 17 gaps of up to 6 hours. Those
      hours are inserted, with ``gap=True``, so that the index has no holes.
    * Inserted hours and missing readings (``pressure`` lacks about 10 % of hours, in runs of at
      most 11; ``temp``, ``dewp``, ``humid`` and ``wind_speed`` a handful) are interpolated
      linearly in time within the station. ``wind_dir`` (missing when the wind is light and
      variable; an angle, which linear interpolation would corrupt across 360°) is carried
      forward from the last reading.
    * ``wind_gust`` is reported only when the wind gusts (about 80 % of hours are empty); an empty
      gust is filled with the hour's ``wind_speed``.
    * One ``wind_speed`` reading of 1048 mph (EWR, 2013-02-12) is a recording error; it is
      treated as missing.

    With ``fill=False`` the inserted hours and the missing readings stay NaN (the outlier is still
    removed), for chapters that show the cleaning themselves.

    Args:
        station: None for all three stations, or one of ``"EWR"``, ``"JFK"``, ``"LGA"`` (any
            case), or a list of them.
        wide: if True, return one row per hour and one column per measurement and station, named
            like ``"temp_JFK"`` (the station blocks in the order asked; no ``gap`` columns).
        fill: fill gaps and missing values as described above.
        data_dir: folder holding the data file (default: see ``data_dir()``).

    Returns:
        A DataFrame: long (tidy) with a ``station`` column by default, sorted by station and time;
        wide with a regular hourly index if ``wide=True``.

    Example:
    >>> jfk = load_nyc_weather("JFK")
    >>> jfk.shape, jfk.index.freqstr, int(jfk.isna().sum().sum()), int(jfk.gap.sum())
    ((8730, 11), 'h', 0, 24)
    >>> wide = load_nyc_weather(wide=True)
    >>> wide.shape, list(wide.columns[:3])
    ((8730, 27), ['temp_EWR', 'dewp_EWR', 'humid_EWR'])
    """
    if station is None:
        stations = list(NYC_STATIONS)
    else:
        asked = [station] if isinstance(station, str) else station
        if not isinstance(asked, (list, tuple)) or not asked:
            raise ValueError(
                f"`station` must be None, one of {NYC_STATIONS} or a non-empty list of them, "
                f"got station={station!r}"
            )
        for s in asked:
            if not isinstance(s, str) or s.upper() not in NYC_STATIONS:
                raise ValueError(f"`station`={s!r} is not one of {NYC_STATIONS} (or None)")
        stations = [s.upper() for s in asked]
    raw = pd.read_csv(
        io.BytesIO(_read_verified("nyc_weather_2013.csv.gz", data_dir)), compression="gzip"
    )
    raw["time"] = pd.to_datetime(raw.pop("time_hour"), utc=True).dt.tz_convert("America/New_York")
    raw.loc[raw["wind_speed"] > 200, "wind_speed"] = np.nan
    hours = pd.date_range(raw["time"].min(), raw["time"].max(), freq="h", name="time")
    frames = []
    for name in stations:
        part = raw[raw["origin"] == name].set_index("time")[list(_NYC_MEASUREMENTS)]
        frame = part.reindex(hours)
        frame["gap"] = ~hours.isin(part.index)
        if fill:
            frame["wind_dir"] = frame["wind_dir"].ffill().bfill()
            linear = [c for c in _NYC_MEASUREMENTS if c not in ("wind_dir", "wind_gust")]
            frame[linear] = frame[linear].interpolate(limit_direction="both")
            frame["wind_gust"] = frame["wind_gust"].fillna(frame["wind_speed"])
        frame.insert(0, "station", name)
        frames.append(frame)
    if wide:
        blocks = [
            f[list(_NYC_MEASUREMENTS)].add_suffix(f"_{s}")
            for s, f in zip(stations, frames, strict=True)
        ]
        return pd.concat(blocks, axis=1)
    return frames[0] if len(frames) == 1 else pd.concat(frames)


def load_fashion_mnist_small(
    data_dir: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load a stratified subset of Fashion-MNIST (Zalando, MIT): 4,000 training images (400 per
    class) and 1,000 test images (100 per class), 28x28 uint8 grey levels 0-255.

    Returned like ``keras.datasets.fashion_mnist.load_data()``: ``(x_train, y_train), (x_test,
    y_test)`` with ``x`` of shape ``(n, 28, 28)`` uint8 and ``y`` uint8 class ids 0-9, named by
    ``FASHION_MNIST_CLASS_NAMES``. Images keep their order in the original sets.

    Example:
    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist_small()
    >>> x_train.shape, x_train.dtype, x_test.shape, FASHION_MNIST_CLASS_NAMES[y_train[0]]
    ((4000, 28, 28), dtype('uint8'), (1000, 28, 28), 'Pullover')
    """
    arrays = np.load(io.BytesIO(_read_verified("fashion_mnist_small.npz", data_dir)))
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def load_fine_food_reviews(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load 5,000 Amazon fine-food reviews labelled for sentiment (modeldata, MIT; SNAP).

    Columns: ``text`` (the review; the ``<br />`` tags of the source are replaced by spaces),
    ``label`` (1 for a 5-star "great" review, 0 for 1-4 stars: 65 % are 1), ``split``
    (``"train"`` for the first 4,000 rows, ``"test"`` for the last 1,000: the fixed split of the
    source package; fit tokenizers and models on the training rows only) and ``product`` (an id).

    Example:
    >>> reviews = load_fine_food_reviews()
    >>> reviews.shape, list(reviews.columns)
    ((5000, 4), ['text', 'label', 'split', 'product'])
    >>> reviews.split.value_counts().to_dict()
    {'train': 4000, 'test': 1000}
    """
    raw = pd.read_csv(
        io.BytesIO(_read_verified("fine_foods_reviews.csv.gz", data_dir)), compression="gzip"
    )
    return pd.DataFrame(
        {
            "text": raw["review"].str.replace(r"<br\s*/?>", " ", regex=True),
            "label": (raw["score"] == "great").astype("int64"),
            "split": raw["split"],
            "product": raw["product"],
        }
    )


def load_basic_motions(
    data_dir: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load BasicMotions (UEA/UCR archive): 10-second smartwatch recordings at 10 Hz of four
    activities, 40 for training and 40 for testing (10 per class in each).

    ``x`` is float32 of shape ``(n, 100, 6)``, channels last (time steps, then the 3-axis
    accelerometer and 3-axis gyroscope: ``BASIC_MOTIONS_CHANNEL_NAMES``); ``y`` holds uint8 class
    ids named by ``BASIC_MOTIONS_CLASS_NAMES`` (badminton, running, standing, walking). The
    recordings are grouped by class, as in the archive: shuffle before training. Cite Bagnall et
    al. (2018), "The UEA multivariate time series classification archive".

    Example:
    >>> (x_train, y_train), (x_test, y_test) = load_basic_motions()
    >>> x_train.shape, x_train.dtype, np.bincount(y_test).tolist()
    ((40, 100, 6), dtype('float32'), [10, 10, 10, 10])
    """
    arrays = np.load(io.BytesIO(_read_verified("basic_motions.npz", data_dir)))
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
