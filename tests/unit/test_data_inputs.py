"""Datasets for models with any number of inputs: npz arrays per input, seeded synthetic arrays,
text through a real tokenizer, images for non-square inputs (fit crop / stretch / pad), and the
dict-of-arrays helpers (batches, rows, synthetic_feeds). Image kinds on square inputs and the
single-input npz rules are in test_datasets.py."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from optbuild.data import (
    DatasetRequest,
    batches,
    fingerprint,
    image_input,
    load,
    load_labeled,
    rows,
    synthetic_feeds,
)
from optbuild.errors import OptbuildError

PRE = {"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
MEAN, STD = np.array(PRE["mean"], np.float32), np.array(PRE["std"], np.float32)
WIDE = [1, 3, 48, 192]  # N, C, H, W: an OCR-line-like input, four times wider than high


def spec(name, dtype, shape, low=None, high=None):
    return {"name": name, "dtype": dtype, "shape": list(shape), "low": low, "high": high}


def request(kind, path=None, n=4, seed=0, inputs=None, key=None, preprocess=PRE, tokenizer=None):
    return DatasetRequest(kind=kind, path=None if path is None else str(path), num_samples=n,
                          seed=seed, key=key, preprocess=preprocess,
                          inputs=inputs or [image_input()], tokenizer=tokenizer)


# --- npz with several inputs ------------------------------------------------------------------

SEQ = 16
TOKEN_INPUTS = [spec("input_ids", "int64", [1, SEQ]), spec("attention_mask", "int64", [1, SEQ]),
                spec("extra", "float32", [1, 4])]


def token_arrays(count=10):
    """Rows that name themselves: row i of every array can be traced back to i."""
    index = np.arange(count)
    return {
        "input_ids": (index[:, None] * 100 + np.arange(SEQ)).astype(np.int32),
        "attention_mask": np.arange(SEQ)[None, :] <= index[:, None],  # bool: i + 1 leading ones
        "extra": index[:, None] + 0.25 * np.arange(4, dtype=np.float64),
    }


def test_npz_several_inputs_cast_and_share_one_seeded_order(tmp_path):
    arrays = token_arrays(10)
    np.savez(tmp_path / "tokens.npz", labels=np.arange(10), **arrays)  # extra arrays are ignored
    feeds = load(request("npz", tmp_path / "tokens.npz", n=6, seed=3, inputs=TOKEN_INPUTS))
    assert list(feeds) == ["input_ids", "attention_mask", "extra"]
    assert {name: a.dtype for name, a in feeds.items()} == {
        "input_ids": np.int64, "attention_mask": np.int64, "extra": np.float32}
    assert feeds["input_ids"].shape == (6, SEQ) and feeds["extra"].shape == (6, 4)
    assert all(a.flags["C_CONTIGUOUS"] for a in feeds.values())
    order = np.random.default_rng(3).permutation(10)[:6]
    np.testing.assert_array_equal(feeds["input_ids"], arrays["input_ids"][order])
    np.testing.assert_array_equal(feeds["attention_mask"], arrays["attention_mask"][order])
    np.testing.assert_array_equal(feeds["extra"], arrays["extra"][order].astype(np.float32))
    # Every input got the same rows: the ids' row number matches the mask's and extra's.
    picked = feeds["input_ids"][:, 0] // 100
    assert picked.tolist() == order.tolist()
    assert (feeds["attention_mask"].sum(axis=1) - 1).tolist() == picked.tolist()
    assert feeds["extra"][:, 0].tolist() == picked.tolist()

    again = load(request("npz", tmp_path / "tokens.npz", n=6, seed=3, inputs=TOKEN_INPUTS))
    assert all(again[name].tobytes() == feeds[name].tobytes() for name in feeds)
    other = load(request("npz", tmp_path / "tokens.npz", n=6, seed=4, inputs=TOKEN_INPUTS))
    assert not np.array_equal(other["input_ids"], feeds["input_ids"])
    labeled = load_labeled(request("npz", tmp_path / "tokens.npz", n=6, seed=3, inputs=TOKEN_INPUTS))
    assert labeled.labels is None and labeled.classes is None
    assert labeled.samples["extra"].tobytes() == feeds["extra"].tobytes()


def test_npz_missing_array_names_the_input_and_lists_the_arrays(tmp_path):
    arrays = token_arrays(5)
    del arrays["attention_mask"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(OptbuildError, match=r"npz '.*partial\.npz' has no array 'attention_mask': "
                                            r"its arrays are \['input_ids', 'extra'\]") as err:
        load(request("npz", tmp_path / "partial.npz", n=2, inputs=TOKEN_INPUTS))
    assert "\n" not in str(err.value)


def test_npz_unequal_row_counts_is_one_clear_error(tmp_path):
    arrays = token_arrays(10)
    arrays["attention_mask"] = arrays["attention_mask"][:8]
    np.savez(tmp_path / "ragged.npz", **arrays)
    message = (r"npz '.*ragged\.npz' arrays have different numbers of rows \(input_ids: 10, "
               r"attention_mask: 8, extra: 10\): give every input as many")
    with pytest.raises(OptbuildError, match=message) as err:
        load(request("npz", tmp_path / "ragged.npz", n=4, inputs=TOKEN_INPUTS))
    assert "\n" not in str(err.value)


def test_npz_wrong_shape_names_the_input(tmp_path):
    arrays = token_arrays(5)
    arrays["extra"] = arrays["extra"][:, :3]
    np.savez(tmp_path / "narrow.npz", **arrays)
    with pytest.raises(OptbuildError, match=r"array 'extra' has shape \[5, 3\], expected "
                                            r"\['N', 4\] for input 'extra'"):
        load(request("npz", tmp_path / "narrow.npz", n=2, inputs=TOKEN_INPUTS))


def test_npz_single_input_by_key_or_by_its_name(tmp_path):
    one = [spec("features", "float32", [1, 3])]
    first, second = np.zeros((4, 3)), np.arange(12.0).reshape(4, 3)
    np.savez(tmp_path / "keyed.npz", first=first, second=second)
    by_key = load(request("npz", tmp_path / "keyed.npz", n=4, inputs=one, key="second"))
    assert list(by_key) == ["features"] and by_key["features"].dtype == np.float32
    order = np.random.default_rng(0).permutation(4)
    np.testing.assert_array_equal(by_key["features"], second[order].astype(np.float32))
    with pytest.raises(OptbuildError, match=r"has arrays \['first', 'second'\]: set 'key'"):
        load(request("npz", tmp_path / "keyed.npz", n=4, inputs=one))

    # Several arrays, one named after the input: that one, without a key.
    np.savez(tmp_path / "named.npz", other=first, features=second)
    by_name = load(request("npz", tmp_path / "named.npz", n=4, inputs=one))
    np.testing.assert_array_equal(by_name["features"], second[order].astype(np.float32))
    # An explicit key still wins over the input's name.
    keyed = load(request("npz", tmp_path / "named.npz", n=4, inputs=one, key="other"))
    np.testing.assert_array_equal(keyed["features"], np.zeros((4, 3), np.float32))


# --- synthetic --------------------------------------------------------------------------------

SYNTHETIC = [
    spec("pixel_values", "float32", [2, 3, 8, 8]),
    spec("half", "float16", [2, 5]),
    spec("input_ids", "int64", [2, 12], low=5, high=9),
    spec("attention_mask", "int64", [2, 12]),
    spec("token_type_ids", "int64", [2, 12]),
    spec("segment_ids", "int32", [2, 12]),
    spec("raw_image", "uint8", [2, 3, 8, 8]),
    spec("flags", "bool", [2, 6]),
    spec("position", "int32", [2, 12]),
    spec("ids_below", "int64", [2, 12], high=3),
    spec("ids_above", "int64", [2, 12], low=1000),
]


def synthetic(n=64, seed=0, inputs=SYNTHETIC):
    return load(request("synthetic", n=n, seed=seed, inputs=inputs))


def test_synthetic_dtypes_and_shapes():
    feeds = synthetic(n=7)
    assert list(feeds) == [s["name"] for s in SYNTHETIC]
    for item in SYNTHETIC:
        array = feeds[item["name"]]
        assert array.dtype == np.dtype(item["dtype"]), item["name"]
        assert array.shape == (7, *item["shape"][1:]), item["name"]
    data = load_labeled(request("synthetic", n=3, inputs=SYNTHETIC))
    assert data.labels is None and data.classes is None and rows(data.samples) == 3


def test_synthetic_is_seeded():
    first, again, other = synthetic(seed=0), synthetic(seed=0), synthetic(seed=1)
    assert all(first[name].tobytes() == again[name].tobytes() for name in first)
    for name in ("pixel_values", "half", "input_ids", "raw_image", "position", "ids_below"):
        assert not np.array_equal(first[name], other[name]), name


def test_synthetic_value_rules():
    feeds = synthetic(n=64)
    floats = feeds["pixel_values"].astype(np.float64)
    assert abs(floats.mean()) < 0.05 and abs(floats.std() - 1) < 0.05  # standard normal
    assert floats.min() < -2.5 and floats.max() > 2.5
    assert len(np.unique(floats)) > 0.99 * floats.size
    assert abs(feeds["half"].astype(np.float64).mean()) < 0.3 and feeds["half"].std() > 0.5
    ids = feeds["input_ids"]
    assert ids.min() >= 5 and ids.max() < 9 and set(np.unique(ids)) == {5, 6, 7, 8}  # [low, high)
    assert set(np.unique(feeds["ids_below"])) == {0, 1, 2}  # high alone: [0, high)
    assert feeds["ids_above"].min() >= 1000  # low alone: from low up
    assert np.all(feeds["attention_mask"] == 1)
    assert np.all(feeds["token_type_ids"] == 0) and np.all(feeds["segment_ids"] == 0)
    raw = feeds["raw_image"]
    assert raw.min() < 10 and raw.max() > 245 and len(np.unique(raw)) > 200  # [0, 256)
    assert np.all(feeds["flags"])
    assert set(np.unique(feeds["position"])) == {0, 1}  # other integers: [0, 2)


def test_synthetic_fingerprint():
    inputs = SYNTHETIC[:3]
    base = fingerprint(request("synthetic", n=8, inputs=inputs))
    assert base["synthetic"] is True and base["kind"] == "synthetic"
    assert base["inputs"] == inputs
    assert json.loads(json.dumps(base)) == base == fingerprint(request("synthetic", n=8, inputs=inputs))
    changed = [
        fingerprint(request("synthetic", n=8, seed=1, inputs=inputs)),
        fingerprint(request("synthetic", n=9, inputs=inputs)),
        fingerprint(request("synthetic", n=8, inputs=[*inputs[:2], {**inputs[2], "high": 10}])),
        fingerprint(request("synthetic", n=8, inputs=[{**inputs[0], "shape": [2, 3, 9, 9]}])),
    ]
    assert all(other != base for other in changed)


# --- text -------------------------------------------------------------------------------------

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "bird", "flew", "high", "over",
         "sea"]
VOCAB = {"[UNK]": 0, "[PAD]": 1, **{word: i + 2 for i, word in enumerate(WORDS)}}
PAD = VOCAB["[PAD]"]  # not 0: padding must use the tokenizer's own [PAD]
SENTENCES = [
    "the cat sat on a mat",
    "a dog ran far away",
    "the bird flew",
    "bird flew high over the sea and far away from the cat",  # "and", "from": unknown
    "dog",
    "the sea",
]
LENGTH = 8
ALL = len(SENTENCES)


def text_inputs(length=LENGTH, dtype="int64", names=("input_ids", "attention_mask", "token_type_ids")):
    return [spec(name, dtype, [1, length]) for name in names]


def word_ids(text, length=LENGTH):
    ids = [VOCAB.get(word, VOCAB["[UNK]"]) for word in text.split()][:length]
    return ids + [PAD] * (length - len(ids))


def make_tokenizer(path, vocab=VOCAB):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))
    return path


@pytest.fixture
def tokenizer_json(tmp_path):
    (tmp_path / "tok").mkdir()
    return make_tokenizer(tmp_path / "tok" / "tokenizer.json")


@pytest.fixture
def lines_file(tmp_path):
    """One text per line; blank lines and surrounding spaces do not count."""
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(["  " + SENTENCES[0] + "  ", "", *SENTENCES[1:4], "   ", *SENTENCES[4:]])
                    + "\n")
    return path


def text(path, tokenizer, n=ALL, seed=0, inputs=None):
    return load(request("text", path, n=n, seed=seed, inputs=inputs or text_inputs(),
                        tokenizer=None if tokenizer is None else str(tokenizer)))


def test_text_one_per_line_padded_and_truncated(lines_file, tokenizer_json):
    feeds = text(lines_file, tokenizer_json)
    assert list(feeds) == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(a.shape == (6, LENGTH) and a.dtype == np.int64 for a in feeds.values())
    chosen = [SENTENCES[i] for i in np.random.default_rng(0).permutation(len(SENTENCES))]
    assert feeds["input_ids"].tolist() == [word_ids(s) for s in chosen]
    lengths = [min(len(s.split()), LENGTH) for s in chosen]
    assert feeds["attention_mask"].tolist() == [[1] * k + [0] * (LENGTH - k) for k in lengths]
    assert np.all(feeds["input_ids"][feeds["attention_mask"] == 0] == PAD)
    assert np.all(feeds["input_ids"][feeds["attention_mask"] == 1] != PAD)
    assert np.all(feeds["token_type_ids"] == 0)
    long = chosen.index(SENTENCES[3])
    assert feeds["attention_mask"][long].sum() == LENGTH  # truncated, not padded
    assert feeds["input_ids"][long].tolist() == word_ids(SENTENCES[3])  # its first 8 words
    assert load_labeled(request("text", lines_file, n=2, inputs=text_inputs(),
                                tokenizer=str(tokenizer_json))).labels is None


def test_text_seeded_subset_and_input_dtype(lines_file, tokenizer_json):
    subset = text(lines_file, tokenizer_json, n=3, seed=5, inputs=text_inputs(4, "int32"))
    order = np.random.default_rng(5).permutation(len(SENTENCES))[:3]
    assert subset["input_ids"].dtype == np.int32 and subset["input_ids"].shape == (3, 4)
    assert subset["input_ids"].tolist() == [word_ids(SENTENCES[i], 4) for i in order]
    again = text(lines_file, tokenizer_json, n=3, seed=5, inputs=text_inputs(4, "int32"))
    assert again["input_ids"].tobytes() == subset["input_ids"].tobytes()
    orders = {text(lines_file, tokenizer_json, n=3, seed=s)["input_ids"].tobytes() for s in range(4)}
    assert len(orders) > 1
    # Only the inputs the model has are fed.
    ids_only = text(lines_file, tokenizer_json, n=3, seed=5, inputs=text_inputs(4, names=("input_ids",)))
    assert list(ids_only) == ["input_ids"]
    assert ids_only["input_ids"].tolist() == subset["input_ids"].tolist()


def test_text_fortune_format(tmp_path, tokenizer_json):
    path = tmp_path / "fortunes"
    path.write_text("the cat sat\non a mat\n%\na dog ran\n\nfar away\n%\nthe sea\n")
    feeds = text(path, tokenizer_json, n=3)
    entries = ["the cat sat on a mat", "a dog ran far away", "the sea"]
    order = np.random.default_rng(0).permutation(3)
    assert feeds["input_ids"].tolist() == [word_ids(entries[i]) for i in order]
    with pytest.raises(OptbuildError, match="has 3 texts but num_samples is 4"):
        text(path, tokenizer_json, n=4)


def test_text_fortune_file_ending_with_separator(tmp_path, tokenizer_json):
    """fortune-mod's data files end with a '%' line; it ends the last entry, not a text."""
    path = tmp_path / "fortunes"
    path.write_text("the cat sat\n%\nthe sea\n%\n")
    feeds = text(path, tokenizer_json, n=2)
    got = sorted(feeds["input_ids"].tolist())
    assert got == sorted([word_ids("the cat sat"), word_ids("the sea")])


def test_text_folder_of_txt_files(tmp_path, tokenizer_json):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("the cat sat\na dog ran\n")
    (root / "sub" / "b.txt").write_text("the sea\n%\nbird flew\nhigh\n")  # fortune format
    (root / "notes.md").write_text("far away far away\n")  # not .txt: ignored
    feeds = text(root, tokenizer_json, n=4, seed=2)
    texts = ["the cat sat", "a dog ran", "the sea", "bird flew high"]  # sorted files, in order
    order = np.random.default_rng(2).permutation(4)
    assert feeds["input_ids"].tolist() == [word_ids(texts[i]) for i in order]
    with pytest.raises(OptbuildError, match="has 4 texts but num_samples is 5: lower num_samples "
                                            "to at most 4"):
        text(root, tokenizer_json, n=5)


def test_text_tokenizer_as_file_folder_or_zip(tmp_path, lines_file, tokenizer_json):
    from_file = text(lines_file, tokenizer_json)
    from_folder = text(lines_file, tokenizer_json.parent)
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as archive:
        archive.writestr("model/config.json", "{}")
        archive.write(tokenizer_json, "model/tokenizer.json")
    from_zip = text(lines_file, tmp_path / "model.zip")
    for name in from_file:
        assert from_folder[name].tobytes() == from_file[name].tobytes()
        assert from_zip[name].tobytes() == from_file[name].tobytes()


def test_text_real_bert_tokenizer_from_a_model_zip(lines_file):
    """all-MiniLM-L6-v2's tokenizer.json, read from inside the zip its pip package ships."""
    package = pytest.importorskip("all_minilm_l6_v2")
    from tokenizers import Tokenizer

    model_zip = package.get_model_zip_path()
    with zipfile.ZipFile(model_zip) as archive:
        reference = Tokenizer.from_str(archive.read("tokenizer.json").decode())
    assert reference.padding["length"] == 128  # the file's own settings: the input's length wins
    reference.no_padding()
    reference.no_truncation()
    feeds = text(lines_file, model_zip, inputs=text_inputs(12))
    chosen = [SENTENCES[i] for i in np.random.default_rng(0).permutation(len(SENTENCES))]
    cls, sep, pad = (reference.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    assert (cls, sep, pad) == (101, 102, 0)
    for row, sentence in enumerate(chosen):
        ids, mask = feeds["input_ids"][row].tolist(), feeds["attention_mask"][row].tolist()
        real = sum(mask)
        assert mask == [1] * real + [0] * (12 - real)
        assert ids[0] == cls and ids[real - 1] == sep and ids[real:] == [pad] * (12 - real)
        words = reference.encode(sentence, add_special_tokens=False).ids
        assert ids[1:real - 1] == words[:10]  # truncated to fit [CLS] ... [SEP] in 12
    assert feeds["attention_mask"][chosen.index(SENTENCES[3])].sum() == 12
    assert np.all(feeds["token_type_ids"] == 0)


def test_text_errors(tmp_path, lines_file, tokenizer_json):
    with pytest.raises(OptbuildError, match="needs the model's tokenizer: set the dataset's "
                                            "'tokenizer'") as err:
        text(lines_file, None)
    assert "\n" not in str(err.value)
    with pytest.raises(OptbuildError, match="needs the model's tokenizer"):
        fingerprint(request("text", lines_file, inputs=text_inputs()))
    with pytest.raises(OptbuildError, match=r"no readable tokenizer\.json at '.*nowhere\.json'"):
        text(lines_file, tmp_path / "nowhere.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptbuildError, match=r"no readable tokenizer\.json at '.*empty'"):
        text(lines_file, tmp_path / "empty")
    with zipfile.ZipFile(tmp_path / "bare.zip", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(OptbuildError, match=r"no readable tokenizer\.json at '.*bare\.zip'"):
        text(lines_file, tmp_path / "bare.zip")
    with pytest.raises(OptbuildError, match=r"text path '.*missing\.txt' does not exist"):
        text(tmp_path / "missing.txt", tokenizer_json)
    with pytest.raises(OptbuildError, match=r"text path '.*missing\.txt' does not exist"):
        fingerprint(request("text", tmp_path / "missing.txt", inputs=text_inputs(),
                            tokenizer=str(tokenizer_json)))
    with pytest.raises(OptbuildError, match=r"text folder '.*empty' has no \.txt files"):
        text(tmp_path / "empty", tokenizer_json)
    with pytest.raises(OptbuildError, match="a text dataset feeds input_ids, attention_mask, "
                                            "token_type_ids; input.s. pixel_values need other data"):
        text(lines_file, tokenizer_json, inputs=[*text_inputs(), spec("pixel_values", "float32", [1, 8])])
    with pytest.raises(OptbuildError, match=r"text at '.*sentences\.txt' has 6 texts but num_samples "
                                            r"is 7: lower num_samples to at most 6"):
        text(lines_file, tokenizer_json, n=7)


def test_text_fingerprint_follows_tokenizer_and_text_not_path(tmp_path, lines_file, tokenizer_json):
    def of(path, tokenizer):
        return fingerprint(request("text", path, n=4, inputs=text_inputs(), tokenizer=str(tokenizer)))

    base = of(lines_file, tokenizer_json)
    assert json.loads(json.dumps(base)) == base and "tokenizers" in base["versions"]
    assert str(tmp_path) not in json.dumps(base)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved_text = shutil.copy(lines_file, elsewhere / "renamed.txt")
    moved_tokenizer = shutil.copytree(tokenizer_json.parent, elsewhere / "tokenizer")
    assert of(moved_text, moved_tokenizer) == base  # a folder holding the same tokenizer.json

    other_vocab = {**VOCAB, "zebra": len(VOCAB)}
    make_tokenizer(moved_tokenizer / "tokenizer.json", other_vocab)
    assert of(moved_text, moved_tokenizer) != base
    with open(moved_text, "a") as f:
        f.write("the cat ran\n")
    assert of(moved_text, tokenizer_json) != base
    assert fingerprint(request("text", lines_file, n=4, inputs=text_inputs(9),
                               tokenizer=str(tokenizer_json))) != base


# --- images for non-square inputs -------------------------------------------------------------


def normalised(rgb):
    return (np.asarray(rgb, np.float32) / 255.0 - MEAN) / STD


def image_folder(path, shape, fit=None, n=1, name="input"):
    preprocess = PRE if fit is None else {**PRE, "fit": fit}
    feeds = load(request("image_folder", path, n=n, inputs=[image_input(name, shape)],
                         preprocess=preprocess))
    assert list(feeds) == [name]
    return feeds[name]


@pytest.fixture
def bands(tmp_path):
    """400x300 (W x H): red, green and blue horizontal bands of 100 rows each."""
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:100] = (255, 0, 0)
    pixels[100:200] = (0, 255, 0)
    pixels[200:] = (0, 0, 255)
    root = tmp_path / "bands"
    root.mkdir()
    Image.fromarray(pixels).save(root / "bands.png")
    return root


RED, GREEN, BLUE = normalised((255, 0, 0)), normalised((0, 255, 0)), normalised((0, 0, 255))


def rows_are(sample, colour):
    """Every pixel of `sample` ([C, h, w]) is `colour`."""
    return np.allclose(sample, colour[:, None, None], atol=1e-5)


@pytest.mark.parametrize("fit", ["crop", "stretch", "pad"])
def test_non_square_input_shape(bands, fit, chelsea_dir):
    out = image_folder(chelsea_dir, WIDE, fit, n=2)
    assert out.shape == (2, 3, 48, 192) and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert np.isfinite(out).all()
    gray = image_folder(bands, [1, 1, 48, 192], fit)
    assert gray.shape == (1, 1, 48, 192) and gray.dtype == np.float32


def test_fit_crop_covers_then_cuts_the_centre(bands):
    (sample,) = image_folder(bands, WIDE, "crop")
    # Scaled by 0.48 to 192x144, the central 48 rows are the green band.
    assert rows_are(sample[:, 2:46], GREEN)
    np.testing.assert_allclose(sample.mean(axis=(1, 2)), GREEN, atol=0.05)
    (default,) = image_folder(bands, WIDE)  # crop is the default fit
    assert default.tobytes() == sample.tobytes()


def test_fit_stretch_resizes_to_exactly_the_input(bands, tmp_path):
    (sample,) = image_folder(bands, WIDE, "stretch")
    # Each 100-row band becomes 16 rows.
    assert rows_are(sample[:, :14], RED)
    assert rows_are(sample[:, 18:30], GREEN)
    assert rows_are(sample[:, 34:], BLUE)
    solid_dir = tmp_path / "solid"
    solid_dir.mkdir()
    Image.new("RGB", (100, 100), (30, 120, 200)).save(solid_dir / "solid.png")
    (solid,) = image_folder(solid_dir, WIDE, "stretch")
    assert rows_are(solid, normalised((30, 120, 200)))


def test_fit_pad_keeps_the_ratio_and_pads_with_the_mean(bands):
    (sample,) = image_folder(bands, WIDE, "pad")
    # Scaled by 0.16 to 64x48 and centred: columns 64..127 hold the image, the rest is padding.
    assert np.all(np.abs(sample[:, :, :64]) < 0.01) and np.all(np.abs(sample[:, :, 128:]) < 0.01)
    image = sample[:, :, 66:126]
    assert rows_are(image[:, :14], RED) and rows_are(image[:, 18:30], GREEN)
    assert rows_are(image[:, 34:], BLUE)
    (crop,) = image_folder(bands, WIDE, "crop")
    assert not np.allclose(crop, sample, atol=0.1)
    (gray,) = image_folder(bands, [1, 1, 48, 192], "pad")  # one channel: the first mean
    assert np.all(np.abs(gray[:, :, :64]) < 0.01) and np.all(np.abs(gray[:, :, 128:]) < 0.01)
    luma = (np.array([76, 150, 29]) / 255 - PRE["mean"][0]) / PRE["std"][0]  # PIL "L" of R, G, B
    for band, (top, bottom) in enumerate(((0, 14), (18, 30), (34, 48))):
        np.testing.assert_allclose(gray[0, top:bottom, 66:126], luma[band], atol=1e-5)


def test_fit_pad_of_a_tall_image_pads_left_and_right_of_it(tmp_path):
    root = tmp_path / "tall"
    root.mkdir()
    Image.new("RGB", (40, 400), (255, 255, 255)).save(root / "tall.png")
    (sample,) = image_folder(root, [1, 3, 100, 60], "pad")  # 40x400 -> 10x100, centred at x=25
    white = normalised((255, 255, 255))
    assert rows_are(sample[:, :, 26:34], white)
    assert np.all(np.abs(sample[:, :, :24]) < 0.01) and np.all(np.abs(sample[:, :, 36:]) < 0.01)


# --- square inputs: unchanged ----------------------------------------------------------------


@pytest.fixture(scope="module")
def chelsea_image():
    import skimage.data

    return Image.fromarray(skimage.data.chelsea())  # 451x300: wider than high


@pytest.fixture
def chelsea_dir(tmp_path, chelsea_image):
    root = tmp_path / "chelsea"
    root.mkdir()
    chelsea_image.save(root / "a.png")
    chelsea_image.transpose(Image.Transpose.ROTATE_90).save(root / "b.png")  # higher than wide
    return root


def torchvision_style(image, preprocess, size):
    """Resize the shorter side to `resize`, center-crop `crop`, resize to the input, normalise:
    torchvision's Resize + CenterCrop + ToTensor + Normalize, written with PIL and numpy."""
    resize, crop = preprocess["resize"], preprocess["crop"]
    image = image.convert("RGB")
    w, h = image.size
    new = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    image = image.resize(new, Image.Resampling.BILINEAR)
    left, top = round((new[0] - crop) / 2.0), round((new[1] - crop) / 2.0)
    image = image.crop((left, top, left + crop, top + crop))
    if crop != size:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)


@pytest.mark.parametrize("size", [224, 160])
def test_square_inputs_keep_the_torchvision_path(chelsea_dir, chelsea_image, size):
    expected = np.stack([torchvision_style(chelsea_image, PRE, size),
                         torchvision_style(chelsea_image.transpose(Image.Transpose.ROTATE_90), PRE, size)])
    order = np.random.default_rng(0).permutation(2)  # files sorted: a.png, b.png
    results = {fit: image_folder(chelsea_dir, [1, 3, size, size], fit, n=2)
               for fit in (None, "crop", "stretch", "pad")}
    for fit, out in results.items():
        assert out.tobytes() == expected[order].tobytes(), fit  # fit never applies to a square


def test_square_input_matches_torchvision(chelsea_dir, chelsea_image):
    transforms = pytest.importorskip("torchvision.transforms")
    pipeline = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                                   transforms.ToTensor(), transforms.Normalize(PRE["mean"], PRE["std"])])
    feeds = load(request("image_folder", chelsea_dir, n=2, inputs=[image_input("input", [1, 3, 224, 224])]))
    order = np.random.default_rng(0).permutation(2)
    images = [chelsea_image, chelsea_image.transpose(Image.Transpose.ROTATE_90)]
    expected = np.stack([pipeline(images[i]).numpy() for i in order])
    assert feeds["input"].tobytes() == expected.tobytes()


def test_image_kinds_feed_the_image_input_of_a_multi_input_model(chelsea_dir):
    inputs = [spec("input_ids", "int64", [2, 16]), spec("pixel_values", "float32", [2, 3, 64, 64]),
              spec("pixel_mask", "float32", [2, 64, 64])]
    req = request("image_folder", chelsea_dir, n=2, inputs=inputs)
    assert req.image == inputs[1] and req.input_shape == [2, 3, 64, 64] and req.batch == 2
    feeds = load(req)
    assert list(feeds) == ["pixel_values"] and feeds["pixel_values"].shape == (2, 3, 64, 64)
    alone = image_folder(chelsea_dir, [1, 3, 64, 64], n=2, name="pixel_values")
    assert feeds["pixel_values"].tobytes() == alone.tobytes()
    half = load(request("image_folder", chelsea_dir, n=2,
                        inputs=[{**image_input("x", [1, 3, 64, 64]), "dtype": "float16"}]))
    assert half["x"].dtype == np.float16
    np.testing.assert_allclose(half["x"], alone, atol=1e-2)


def test_fit_is_part_of_the_fingerprint(chelsea_dir):
    def of(fit):
        return fingerprint(request("image_folder", chelsea_dir, n=2, inputs=[image_input("input", WIDE)],
                                   preprocess={**PRE, "fit": fit}))

    assert of("crop")["preprocess"]["fit"] == "crop"
    assert len({json.dumps(of(fit), sort_keys=True) for fit in ("crop", "stretch", "pad")}) == 3
    default = fingerprint(request("image_folder", chelsea_dir, n=2, inputs=[image_input("input", WIDE)]))
    assert default == of("crop")  # no fit given means crop


def test_fit_given_as_the_config_enum_acts_as_its_value(bands):
    from optbuild.config.choices import Fit

    (as_enum,) = image_folder(bands, WIDE, Fit.stretch)
    (as_text,) = image_folder(bands, WIDE, "stretch")
    assert as_enum.tobytes() == as_text.tobytes()


# --- batches, rows and synthetic_feeds -------------------------------------------------------


def test_batches_of_two_inputs_stay_aligned():
    samples = {"input_ids": np.arange(7 * 3).reshape(7, 3), "mask": np.arange(7)}
    assert rows(samples) == 7 and rows({}) == 0
    split = batches(samples, 3)
    assert len(split) == 2 and all(list(b) == ["input_ids", "mask"] for b in split)
    for i, batch in enumerate(split):
        np.testing.assert_array_equal(batch["input_ids"], samples["input_ids"][3 * i:3 * i + 3])
        np.testing.assert_array_equal(batch["mask"], samples["mask"][3 * i:3 * i + 3])
    assert [rows(b) for b in batches(samples, 2)] == [2, 2, 2]
    assert batches(samples, 8) == []


def test_synthetic_feeds_with_a_batch_override():
    inputs = [spec("input_ids", "int64", [4, 12], low=0, high=30522),
              spec("attention_mask", "int64", [4, 12]), spec("pixel_values", "float32", [4, 3, 8, 8])]
    default = synthetic_feeds(inputs)
    assert {name: a.shape for name, a in default.items()} == {
        "input_ids": (4, 12), "attention_mask": (4, 12), "pixel_values": (4, 3, 8, 8)}
    wide = synthetic_feeds(inputs, batch=9, seed=2)
    assert {name: a.shape[0] for name, a in wide.items()} == {name: 9 for name in wide}
    assert wide["input_ids"].dtype == np.int64 and wide["pixel_values"].dtype == np.float32
    assert 0 <= wide["input_ids"].min() and wide["input_ids"].max() < 30522
    assert np.all(wide["attention_mask"] == 1)
    again, other = synthetic_feeds(inputs, batch=9, seed=2), synthetic_feeds(inputs, batch=9, seed=3)
    assert all(again[name].tobytes() == wide[name].tobytes() for name in wide)
    assert not np.array_equal(other["pixel_values"], wide["pixel_values"])
    # The synthetic kind's very values.
    kind = load(request("synthetic", n=9, seed=2, inputs=inputs))
    assert all(kind[name].tobytes() == wide[name].tobytes() for name in wide)
