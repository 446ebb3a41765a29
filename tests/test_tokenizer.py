"""The item vocabulary (lsrec.tokenizer.vocab), its Hugging Face files and the prompt format."""

from __future__ import annotations

import re

import pytest

from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.prompts import CONTEXT_LENGTH, answer_rule, prompt_ids
from lsrec.tokenizer.vocab import ItemTokenizer, Vocabulary

SPECIALS = ["[PAD]", "[BOS]", "[EOS]", "[TASK]", "[ARGUMENTS]", "[START]"]
TASK_TOKENS = ["[RECOMMEND]", "[RECOMMEND_GENRE]", "[RATE_MOVIE]", "[MOVIE_BY_GENRE]", "[RECOMMEND_RATING]"]


@pytest.fixture(scope="module")
def hf_tok(prepared_ml100k):
    from transformers import AutoTokenizer

    _, data = prepared_ml100k
    return AutoTokenizer.from_pretrained(str(data.folder))


def _expected_vocab(synthetic):
    seqs = synthetic.expected_sequences()
    items = {i for items, _ in seqs.values() for i in items}
    genres = {g for i in items for g in synthetic.genres[int(i)]}
    ratings = {r for _, ratings in seqs.values() for r in ratings}
    return items, genres, ratings


def test_vocabulary_has_one_token_per_value(prepared_ml100k):
    synthetic, data = prepared_ml100k
    items, genres, ratings = _expected_vocab(synthetic)
    tokens = data.vocab.tokens
    assert len(tokens) == len(set(tokens)) == len(data.vocab)
    assert len(tokens) == 6 + 5 + len(genres) + len(ratings) + len(items)
    assert sorted(t for t in tokens if t.startswith("item_")) == sorted(f"item_{i}" for i in items)
    assert sorted(t for t in tokens if t.startswith("genre_")) == sorted(
        "genre_" + g.replace(" ", "_") for g in genres)
    assert sorted(t for t in tokens if t.startswith("rating_")) == sorted(f"rating_{r:g}" for r in ratings)
    assert ratings == {1.0, 2.0, 3.0, 4.0, 5.0}  # the fixture uses every star
    assert "rating_4" in tokens
    assert tokens[:6] == SPECIALS
    assert tokens[6:11] == TASK_TOKENS
    # Items in numeric order.
    assert data.vocab.items == sorted(items, key=int)


def test_families_are_contiguous_and_cover_the_vocabulary(prepared_ml100k):
    synthetic, data = prepared_ml100k
    items, genres, ratings = _expected_vocab(synthetic)
    fam = data.vocab.families
    assert list(fam) == ["special", "tasks", "genres", "ratings", "items"]
    assert fam["special"] == [0, 6]
    assert fam["tasks"] == [6, 11]
    assert fam["genres"] == [11, 11 + len(genres)]
    assert fam["ratings"] == [11 + len(genres), 11 + len(genres) + len(ratings)]
    assert fam["items"] == [fam["ratings"][1], len(data.vocab)]
    ranges = list(fam.values())
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert end == start
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data.vocab.tokens)
    prefix = {"special": "[", "tasks": "[", "genres": "genre_", "ratings": "rating_", "items": "item_"}
    for name, (start, end) in fam.items():
        assert all(t.startswith(prefix[name]) for t in data.vocab.tokens[start:end]), name
    assert data.manifest["vocabulary"]["families"] == fam


def test_autotokenizer_loads_prepared_folder(prepared_ml100k, hf_tok):
    _, data = prepared_ml100k
    assert len(hf_tok) == len(data.vocab)
    assert hf_tok.get_vocab() == {t: i for i, t in enumerate(data.vocab.tokens)}
    assert (hf_tok.pad_token, hf_tok.bos_token, hf_tok.eos_token) == ("[PAD]", "[BOS]", "[EOS]")
    assert (hf_tok.pad_token_id, hf_tok.bos_token_id, hf_tok.eos_token_id) == (0, 1, 2)
    assert hf_tok.model_max_length == CONTEXT_LENGTH


def test_encode_decode_round_trip(prepared_ml100k, hf_tok):
    _, data = prepared_ml100k
    tok = data.tokenizer
    a, b, c = data.vocab.items[:3]
    prompt = f"[BOS] [TASK] [RECOMMEND] [ARGUMENTS] item_{a} item_{b} item_{c} [START]"
    ids = hf_tok.encode(prompt, add_special_tokens=False)
    expected = [tok.bos_id, tok.task_marker_id, tok.task_id("RECOMMEND"), tok.arguments_id,
                tok.item_id(a), tok.item_id(b), tok.item_id(c), tok.start_id]
    assert ids == expected
    assert ids == [1, 3, 6, 4, *(data.vocab.families["items"][0] + k for k in range(3)), 5]
    assert hf_tok.encode(prompt) == expected  # no extra BOS/EOS added by default
    assert hf_tok.decode(ids) == prompt
    assert prompt_ids(tok, "RECOMMEND", expected[4:7]) == expected


def test_hf_and_item_tokenizer_ids_agree(prepared_ml100k, hf_tok):
    _, data = prepared_ml100k
    tok = data.tokenizer
    for item in data.vocab.items:
        assert hf_tok.convert_tokens_to_ids(f"item_{item}") == tok.item_id(item)
        assert tok.item_of(tok.item_id(item)) == item
    for genre in data.vocab.genres:
        assert hf_tok.convert_tokens_to_ids("genre_" + genre.replace(" ", "_")) == tok.genre_id(genre)
        assert tok.genre_of(tok.genre_id(genre)) == genre
    for rating in data.vocab.ratings:
        assert hf_tok.convert_tokens_to_ids(f"rating_{rating:g}") == tok.rating_id(rating)
        assert tok.rating_of(tok.rating_id(rating)) == rating
    assert tok.rating_id(4) == tok.rating_id("4") == tok.rating_id(4.0)
    text = " ".join(["[BOS]", "[TASK]", "[RATE_MOVIE]", "[ARGUMENTS]", f"item_{data.vocab.items[-1]}",
                     f"genre_{data.vocab.genres[0]}", "rating_5", "[START]", "[EOS]", "[PAD]"])
    assert hf_tok.encode(text, add_special_tokens=False) == [
        tok.bos_id, tok.task_marker_id, tok.task_id("RATE_MOVIE"), tok.arguments_id,
        tok.item_id(data.vocab.items[-1]), tok.genre_id(data.vocab.genres[0]), tok.rating_id(5.0),
        tok.start_id, tok.eos_id, tok.pad_id]


def test_item_of_rejects_non_item_ids(prepared_ml100k):
    _, data = prepared_ml100k
    tok = data.tokenizer
    with pytest.raises(LSRecError, match="not an item token"):
        tok.item_of(tok.bos_id)


def test_unknown_item_raises_with_the_id(prepared_ml100k):
    _, data = prepared_ml100k
    tok = data.tokenizer
    unknown = "987654"
    assert f"item_{unknown}" not in data.vocab.tokens
    with pytest.raises(LSRecError) as err:
        tok.item_id(unknown)
    assert "987654" in str(err.value)
    with pytest.raises(LSRecError, match="987654"):
        tok.item_id(987654)


def test_unknown_genre_rating_task_raise(prepared_ml100k):
    tok = prepared_ml100k[1].tokenizer
    with pytest.raises(LSRecError, match="'Polka'"):
        tok.genre_id("Polka")
    with pytest.raises(LSRecError, match="2.5"):
        tok.rating_id(2.5)
    with pytest.raises(LSRecError, match="known ratings: 1, 2, 3, 4, 5"):
        tok.rating_id("lots")
    with pytest.raises(LSRecError, match="'DANCE'"):
        tok.task_id("DANCE")


def test_vocabulary_json_round_trip():
    vocab = Vocabulary(items=["3", "10", "x"], genres=["Film-Noir", "Sci Fi"], ratings=[0.5, 4.0])
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    tok = ItemTokenizer(vocab)
    assert vocab.tokens[11:] == ["genre_Film-Noir", "genre_Sci_Fi", "rating_0.5", "rating_4",
                                 "item_3", "item_10", "item_x"]
    assert tok.genre_id("Sci Fi") == 12
    assert tok.item_id("x") == 17 and tok.item_id(10) == 16
    assert list(tok.item_range) == [15, 16, 17]


# ---------------------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("with_argument", [False, True])
@pytest.mark.parametrize("n_history", [0, 1, 150, 192, 193, 194, 500])
def test_prompt_keeps_most_recent_history_within_context(prepared_ml100k, with_argument, n_history):
    tok = prepared_ml100k[1].tokenizer
    start = tok.item_range.start
    n_items = len(tok.item_range)
    history = [start + k % n_items for k in range(n_history)]
    argument = tok.genre_range.start if with_argument else None
    ids = prompt_ids(tok, "MOVIE_BY_GENRE" if with_argument else "RECOMMEND", history, argument)
    budget = CONTEXT_LENGTH - 2  # answer + [EOS] follow the prompt
    assert len(ids) <= budget
    kept = ids[4 : len(ids) - 1 - int(with_argument)]
    assert ids[:4] == [tok.bos_id, tok.task_marker_id, ids[2], tok.arguments_id]
    assert ids[-1] == tok.start_id
    if with_argument:
        assert ids[-2] == argument
    max_kept = 192 if with_argument else 193  # the whole context is used, not one token less
    if n_history <= max_kept:
        assert kept == history
    else:
        assert kept == history[-max_kept:]  # the most recent items, oldest first
        assert len(ids) + 2 == CONTEXT_LENGTH


def test_prompt_truncation_with_smaller_context(prepared_ml100k):
    tok = prepared_ml100k[1].tokenizer
    history = list(tok.item_range)[:20]
    ids = prompt_ids(tok, "RECOMMEND", history, context=12)
    assert len(ids) + 2 == 12
    assert ids[4:-1] == history[-5:]


def test_answer_rule_by_family(prepared_ml100k):
    tok = prepared_ml100k[1].tokenizer
    fam = tok.vocab.families
    history = [tok.item_range.start, tok.item_range.start + 2]
    extra = tok.item_range.start + 5
    genre, rating = fam["genres"][0], fam["ratings"][0]
    family, banned = answer_rule(tok, prompt_ids(tok, "RECOMMEND", history), [extra])
    assert family == range(*fam["items"]) and banned == {*history, extra}
    assert answer_rule(tok, prompt_ids(tok, "RECOMMEND_GENRE", history)) == (range(*fam["genres"]), set())
    assert answer_rule(tok, prompt_ids(tok, "RATE_MOVIE", history, extra)) == (range(*fam["ratings"]), set())
    family, banned = answer_rule(tok, prompt_ids(tok, "MOVIE_BY_GENRE", history, genre))
    assert family == range(*fam["items"]) and banned == set(history)
    family, banned = answer_rule(tok, prompt_ids(tok, "RECOMMEND_RATING", history, rating))
    assert family == range(*fam["items"]) and banned == set(history)



# ------------------------------------------------------------------------------- prompt layouts


def test_history_first_prompts_read_as_paper_table_2(prepared_ml100k):
    """`BOS m_1 ... m_n TASK <task> [ARGUMENTS <arg>] START`, for each of the five tasks."""
    from lsrec.tokenizer.vocab import ItemTokenizer

    tok = ItemTokenizer(prepared_ml100k[1].vocab, "history-first")
    history = [tok.item_range.start, tok.item_range.start + 1]
    movie, genre, rating = tok.item_range.start + 2, tok.genre_range.start, tok.rating_range.start
    read = {
        "RECOMMEND": (None, []),
        "RECOMMEND_GENRE": (None, []),
        "RATE_MOVIE": (movie, [tok.arguments_id, movie]),
        "MOVIE_BY_GENRE": (genre, [tok.arguments_id, genre]),
        "RECOMMEND_RATING": (rating, [tok.arguments_id, rating]),
    }
    for task, (argument, tail) in read.items():
        expected = [tok.bos_id, *history, tok.task_marker_id, tok.task_id(task), *tail, tok.start_id]
        assert prompt_ids(tok, task, history, argument) == expected, task
        # the same family rule whichever layout
        task_first = prompt_ids(ItemTokenizer(tok.vocab, "task-first"), task, history, argument)
        assert answer_rule(tok, expected, [movie]) == answer_rule(tok, task_first, [movie])


@pytest.mark.parametrize("with_argument", [False, True])
def test_history_first_keeps_most_recent_items_within_context(prepared_ml100k, with_argument):
    from lsrec.tokenizer.vocab import ItemTokenizer

    tok = ItemTokenizer(prepared_ml100k[1].vocab, "history-first")
    history = [tok.item_range.start + k % len(tok.item_range) for k in range(500)]
    argument = tok.genre_range.start if with_argument else None
    ids = prompt_ids(tok, "MOVIE_BY_GENRE" if with_argument else "RECOMMEND", history, argument)
    assert len(ids) + 2 == CONTEXT_LENGTH  # the whole context, answer and [EOS] included
    kept = 192 if with_argument else 194
    assert ids[1:1 + kept] == history[-kept:] and ids[1 + kept] == tok.task_marker_id


@pytest.mark.parametrize("model_layout", ["history-first", "task-first"])
@pytest.mark.parametrize("sent_layout", ["history-first", "task-first"])
def test_a_prompt_in_either_layout_is_read_in_the_models(prepared_ml100k, model_layout, sent_layout):
    """What the server's guard does: any well-formed prompt comes out in the model's own layout,
    fitted to the context, the items that did not fit named."""
    from lsrec.serve.query import Query
    from lsrec.tokenizer.prompts import parse_prompt
    from lsrec.tokenizer.vocab import ItemTokenizer

    vocab = prepared_ml100k[1].vocab
    tok = ItemTokenizer(vocab, model_layout)
    items = (vocab.items * 3)[:250]
    for task, argument in (("RECOMMEND", {}), ("RECOMMEND_GENRE", {}), ("MOVIE_BY_GENRE", {"genre": vocab.genres[2]}),
                           ("RATE_MOVIE", {"item": vocab.items[5]}), ("RECOMMEND_RATING", {"rating": vocab.ratings[-1]})):
        for history in (items[:7], items):
            query = Query.make(history, 10, task, **argument)
            parsed = parse_prompt(tok, query.prompt_text(sent_layout))
            assert parsed.task == task
            assert parsed.ids == query.prompt_ids(tok)
            assert parsed.ids[-1] == tok.start_id
            assert (parsed.ids[1] == tok.task_marker_id) == (model_layout == "task-first")
            n_kept = sum(i in tok.item_range for i in parsed.ids) - int(task == "RATE_MOVIE")
            assert parsed.dropped_items == history[: len(history) - n_kept]


def test_malformed_history_first_prompts_name_the_problem(prepared_ml100k):
    from lsrec.tokenizer.errors import LSRecError
    from lsrec.tokenizer.prompts import parse_prompt
    from lsrec.tokenizer.vocab import ItemTokenizer

    vocab = prepared_ml100k[1].vocab
    tok = ItemTokenizer(vocab, "history-first")
    item = f"item_{vocab.items[0]}"
    cases = {
        f"[BOS] {item} [START]": "a prompt must read",
        f"[BOS] {item} [TASK] [START]": "a prompt must read",
        "[BOS] [TASK] [RECOMMEND] [START]": "history is empty",
        f"[BOS] {item} [TASK] [MOVIE_BY_GENRE] [START]": "needs [ARGUMENTS] and one genre",
        f"[BOS] {item} [TASK] [RATE_MOVIE] [ARGUMENTS] genre_{vocab.genres[0]} [START]": "needs [ARGUMENTS] and one item",
        f"[BOS] {item} [TASK] [RECOMMEND] [ARGUMENTS] {item} [START]": "takes no argument",
        f"[BOS] genre_{vocab.genres[0]} {item} [TASK] [RECOMMEND] [START]": "is not an item",
    }
    for prompt, message in cases.items():
        with pytest.raises(LSRecError, match=re.escape(message)):
            parse_prompt(tok, prompt)


def test_checkpoints_carry_their_prompt_layout(prepared_ml100k, tmp_path):
    from lsrec.tokenizer.checkpoint import CheckpointMeta
    from lsrec.tokenizer.errors import LSRecError
    from lsrec.tokenizer.vocab import ItemTokenizer

    raw = {"vocabulary": prepared_ml100k[1].vocab.to_json()}
    assert CheckpointMeta(tmp_path, raw).tokenizer.layout == "task-first"  # written before the field
    assert CheckpointMeta(tmp_path, {**raw, "prompt_layout": "history-first"}).tokenizer.layout == "history-first"
    with pytest.raises(LSRecError, match="prompt layout: unknown 'sideways'"):
        ItemTokenizer(prepared_ml100k[1].vocab, "sideways")
