"""Exploring predictions: attributions, minimal pairs, slices, run diffs, nearest training sentences."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workbench.core.base.layout import RunError
from workbench.core.evaluation.recorded import DiffError, read_predictions
from workbench.core.evaluation.slices import length_slices, reliability, threshold_curve
from workbench.core.explore.diff import diff_predictions
from workbench.core.explore.explain import differing_words, explain, minimal_pair
from workbench.core.explore.neighbors import MEAN_LAST_HIDDEN, NeighborIndex, embed
from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.model.predict import InputError, Predictor

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def tiny_bert(tiny_model_dir: Path) -> Any:
    """The tiny random BERT with word embeddings and classifier scaled up, so that sentences' logits
    differ by more than rounding (at random init they are all about equal)."""
    import torch

    model = load_model(str(tiny_model_dir)).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
        model.classifier.weight.mul_(200.0)
    return model


def no_embedding_layer(model: Any) -> Any:
    """The same model, but get_input_embeddings() raises: Captum has no layer to hook."""

    class Hidden(type(model)):  # type: ignore[misc]
        def get_input_embeddings(self) -> Any:
            raise NotImplementedError

    hidden = Hidden(model.config)
    hidden.load_state_dict(model.state_dict())
    return hidden.eval()


def bag_of_words(vocab_size: int, pushes: dict[int, float]) -> Any:
    """A linear classifier: log-odds of acceptable = sum of per-token pushes (0 for every other token).

    With no interactions, Integrated Gradients and occlusion must both give each token its push."""
    import torch

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = SimpleNamespace(max_position_embeddings=64)
            self.embeddings = torch.nn.Embedding(vocab_size, 2)
            torch.nn.init.zeros_(self.embeddings.weight)
            with torch.no_grad():
                for token_id, push in pushes.items():  # logits (unacceptable, acceptable)
                    self.embeddings.weight[token_id] = torch.tensor([-push / 2, push / 2])

        def get_input_embeddings(self) -> Any:
            return self.embeddings

        def forward(self, input_ids: Any = None, attention_mask: Any = None, inputs_embeds: Any = None) -> Any:
            vectors = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
            return SimpleNamespace(logits=(vectors * attention_mask.unsqueeze(-1)).sum(dim=1))

    return Model().eval()


# ---------------------------------------------------------------- explain


def test_one_attribution_per_token_as_the_tokenizer_splits(tiny_bert: Any, tokenizer: Any) -> None:
    result = explain(tiny_bert, tokenizer, "  The cats were  sleeping quietly.  ")
    ids = tokenizer("The cats were sleeping quietly.")["input_ids"]
    assert result.sentence == "The cats were sleeping quietly."
    assert result.tokens == tokenizer.convert_ids_to_tokens(ids)
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    assert len(result.attributions) == len(result.tokens)
    assert result.method == "layer_integrated_gradients" and isinstance(result.delta, float)
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert result.label == max(result.probabilities, key=result.probabilities.__getitem__)
    assert result.attributions[0] == 0.0 and result.attributions[-1] == 0.0  # kept as in the baseline
    payload = json.loads(json.dumps(result.to_dict()))
    assert {"sentence", "tokens", "attributions", "probabilities", "label", "method", "delta"} <= set(payload)


def test_probabilities_match_the_predictor(tiny_bert: Any, tokenizer: Any) -> None:
    sentence = "Who do you think that left?"
    result = explain(tiny_bert, tokenizer, sentence)
    predicted = Predictor(tiny_bert, tokenizer).predict_one(sentence)
    assert result.probabilities == pytest.approx(predicted.probabilities, abs=1e-5)
    logits = predicted.logits
    assert result.log_odds == pytest.approx(logits[1] - logits[0], abs=1e-4)


@pytest.mark.parametrize("hide_embeddings", [False, True])
def test_sign_convention_positive_means_toward_acceptable(tokenizer: Any, hide_embeddings: bool) -> None:
    good, bad = tokenizer.convert_tokens_to_ids(["good", "bad"])
    model = bag_of_words(tokenizer.vocab_size, {good: 3.0, bad: -2.0})
    if hide_embeddings:
        model.get_input_embeddings = lambda: None  # no embedding layer to attribute at: occlusion
    result = explain(model, tokenizer, "a good and bad day")
    by_token = dict(zip(result.tokens, result.attributions, strict=True))
    assert result.method == ("occlusion" if hide_embeddings else "layer_integrated_gradients")
    assert by_token["good"] == pytest.approx(3.0, abs=1e-4)
    assert by_token["bad"] == pytest.approx(-2.0, abs=1e-4)
    assert by_token["a"] == pytest.approx(0.0, abs=1e-6) and by_token["day"] == pytest.approx(0.0, abs=1e-6)
    assert result.log_odds == pytest.approx(1.0, abs=1e-5) and result.label == "acceptable"


def test_occlusion_fallback_without_an_embedding_layer(tiny_bert: Any, tokenizer: Any) -> None:
    import torch

    model = no_embedding_layer(tiny_bert)
    sentence = "The cat sat on the mat."
    result = explain(model, tokenizer, sentence)
    assert result.method == "occlusion" and result.delta is None
    assert len(result.attributions) == len(result.tokens)
    ids = tokenizer(sentence)["input_ids"]
    # token 2 ("cat") by hand: log-odds with it minus log-odds with [PAD] in its place
    occluded = list(ids)
    occluded[2] = tokenizer.pad_token_id
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids, occluded]), attention_mask=torch.ones(2, len(ids))).logits
    odds = logits[:, 1] - logits[:, 0]
    assert result.attributions[2] == pytest.approx(float(odds[0] - odds[1]), abs=1e-4)
    assert result.attributions[0] == pytest.approx(0.0, abs=1e-5)  # [CLS] stays: nothing occluded


def test_explain_leaves_a_shared_model_usable_by_other_threads(tiny_bert: Any, tokenizer: Any) -> None:
    """The Predict pane predicts while attributions run: no hook of explain() or of the neighbour
    index may reach another thread's calls."""
    import threading

    sentences = ["The cat sat on the mat.", "Who do you think that left?", "Dogs bark."]
    predictor = Predictor(tiny_bert, tokenizer)
    alone = [p.logits for p in predictor.predict(sentences)]
    alone_vectors = embed(tiny_bert, tokenizer, sentences)
    expected = explain(tiny_bert, tokenizer, "The book was written by John quite a long time ago.").attributions
    stop, failures, explained = threading.Event(), [], []

    def attribute() -> None:
        try:
            while not stop.is_set():
                result = explain(tiny_bert, tokenizer, "The book was written by John quite a long time ago.")
                explained.append(result.attributions == pytest.approx(expected, abs=1e-5))
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    worker = threading.Thread(target=attribute)
    worker.start()
    try:
        for _ in range(30):
            for sentence, logits in zip(sentences, alone, strict=True):
                assert predictor.predict_one(sentence).logits == pytest.approx(logits, abs=1e-5)
            np.testing.assert_allclose(embed(tiny_bert, tokenizer, sentences), alone_vectors, atol=1e-5)
    finally:
        stop.set()
        worker.join()
    assert not failures and explained and all(explained)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x1b", "\t\n"])
def test_explain_refuses_empty_sentences(tiny_bert: Any, tokenizer: Any, text: str) -> None:
    with pytest.raises(InputError, match="empty sentence"):
        explain(tiny_bert, tokenizer, text)


def test_explain_refuses_emoji_or_invisible_only_but_explains_emoji_among_words(tiny_bert: Any, tokenizer: Any) -> None:
    with pytest.raises(InputError, match="no word the model knows"):
        explain(tiny_bert, tokenizer, "😺🎉 🎉")
    with pytest.raises(InputError, match="nothing to explain"):
        explain(tiny_bert, tokenizer, "\u200b")  # not empty, but no token either
    result = explain(tiny_bert, tokenizer, "The cat 😺 sat\x07 down.")
    assert "[UNK]" in result.tokens and result.sentence == "The cat 😺 sat down."


def test_long_input_is_truncated_at_the_models_positions(tiny_bert: Any, tokenizer: Any) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    text = ("The cat sat. " * 800)[:10_000]
    result = explain(tiny_bert, tokenizer, text, n_steps=4)
    assert result.truncated and len(result.tokens) == len(result.attributions) == 128
    short = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
            num_labels=2,
        )
    )
    result = explain(short, tokenizer, text, n_steps=4)
    assert result.truncated and len(result.tokens) == 32 and result.tokens[-1] == "[SEP]"


# ---------------------------------------------------------------- minimal pairs


def test_differing_words_marks_what_changed() -> None:
    words_a, words_b = differing_words("John seems that is happy.", "John seems to be happy.")
    assert words_a == [("John", False), ("seems", False), ("that", True), ("is", True), ("happy.", False)]
    assert words_b == [("John", False), ("seems", False), ("to", True), ("be", True), ("happy.", False)]
    same_a, same_b = differing_words("a b c", "a b c")
    assert not any(c for _, c in same_a + same_b)


def test_minimal_pair_gives_both_probabilities_and_the_change(tiny_bert: Any, tokenizer: Any) -> None:
    pair = minimal_pair(tiny_bert, tokenizer, "The book was written by John.", "The book was written from John.")
    predictor = Predictor(tiny_bert, tokenizer)
    a, b = predictor.predict(["The book was written by John.", "The book was written from John."])
    assert pair.probabilities_a == pytest.approx(a.probabilities, abs=1e-6)
    assert pair.probabilities_b == pytest.approx(b.probabilities, abs=1e-6)
    assert pair.delta_acceptable == pytest.approx(b.probabilities["acceptable"] - a.probabilities["acceptable"])
    assert [w for w, c in pair.words_a if c] == ["by"] and [w for w, c in pair.words_b if c] == ["from"]
    with pytest.raises(InputError):
        minimal_pair(tiny_bert, tokenizer, "A sentence.", " \x00 ")


# ---------------------------------------------------------------- slices


def test_length_slices_by_hand() -> None:
    labels = [1, 0, 1, 1, 0, 1]
    p_acceptable = [0.9, 0.8, 0.3, 0.7, 0.2, 0.6]  # predicted 1, 1, 0, 1, 0, 1
    lengths = [5, 8, 10, 12, 30, 40]
    rows = {r.name: r for r in length_slices(labels, p_acceptable, lengths)}
    assert list(rows) == ["<=8", "9-12", "13-16", "17-24", "25+"]
    assert (rows["<=8"].n, rows["<=8"].errors, rows["<=8"].accuracy) == (2, 1, 0.5)
    assert (rows["9-12"].n, rows["9-12"].errors) == (2, 1)
    assert rows["13-16"].n == 0 and rows["13-16"].accuracy == 0.0 and rows["13-16"].mcc == 0.0
    assert (rows["25+"].n, rows["25+"].errors, rows["25+"].accuracy, rows["25+"].mcc) == (2, 0, 1.0, 1.0)
    with pytest.raises(ValueError, match="one length per sentence"):
        length_slices(labels, p_acceptable, lengths[:-1])


def test_reliability_and_ece_by_hand() -> None:
    labels = [1, 1, 0, 0]
    p_acceptable = [0.9, 0.9, 0.6, 0.4]  # confidences 0.9, 0.9, 0.6, 0.6; right: yes, yes, no, yes
    result = reliability(labels, p_acceptable, n_bins=5)  # bins of 0.1 over [0.5, 1]
    filled = [(b.low, b.n, b.mean_confidence, b.accuracy) for b in result.bins if b.n]
    assert filled == [
        (pytest.approx(0.6), 2, pytest.approx(0.6), 0.5),
        (pytest.approx(0.9), 2, pytest.approx(0.9), 1.0),
    ]
    # ECE = 2/4 * |0.5 - 0.6| + 2/4 * |1.0 - 0.9| = 0.1
    assert result.ece == pytest.approx(0.1)
    assert reliability([1], [1.0], n_bins=5).bins[-1].n == 1  # confidence 1.0 falls in the last bin
    with pytest.raises(ValueError, match="probabilities"):
        reliability([1, 0], [1.5, 0.2])


def test_mcc_by_threshold_finds_the_separating_threshold() -> None:
    from sklearn.metrics import matthews_corrcoef

    labels = np.array([0, 0, 0, 1, 1, 1])
    p_acceptable = np.array([0.55, 0.6, 0.62, 0.7, 0.8, 0.9])  # at 0.5 everything is acceptable: MCC 0
    curve = threshold_curve(labels, p_acceptable)
    assert curve.thresholds[0] == 0.05 and curve.thresholds[-1] == 0.95 and len(curve.thresholds) == 19
    assert curve.mcc_in_use == 0.0
    assert curve.best_threshold == 0.65 and curve.best_mcc == pytest.approx(1.0)
    at_60 = curve.mcc[curve.thresholds.index(0.6)]
    # p >= t decides, as everywhere
    assert at_60 == pytest.approx(matthews_corrcoef(labels, (p_acceptable >= 0.6).astype(int)))


# ---------------------------------------------------------------- diff


def table(sentences: list[str], labels: list[int], p_acceptable: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sentence": sentences,
            "label": labels,
            "predicted": [int(p > 0.5) for p in p_acceptable],
            "p_acceptable": p_acceptable,
            "source": ["src"] * len(sentences),
        }
    )


def test_diff_counts_by_hand() -> None:
    sentences = ["s1", "s2", "s3", "s4", "s5"]
    labels = [1, 1, 0, 0, 1]
    run_a = table(sentences, labels, [0.9, 0.8, 0.7, 0.1, 0.2])  # right, right, wrong, right, wrong
    run_b = table(sentences, labels, [0.6, 0.3, 0.4, 0.9, 0.1])  # right, wrong, right, wrong, wrong
    result = diff_predictions(run_a, run_b)
    assert (result.both_right, result.only_a, result.only_b, result.both_wrong) == (1, 2, 1, 1)
    assert result.n == 5
    assert [(d.sentence, d.right) for d in result.disagreements] == [("s4", "a"), ("s2", "a"), ("s3", "b")]
    assert result.disagreements[0].p_a == 0.1 and result.disagreements[0].p_b == 0.9
    shuffled = run_b.iloc[[4, 2, 0, 3, 1]]  # the same sentences in another order give the same counts
    assert diff_predictions(run_a, shuffled).to_dict() == result.to_dict()


def test_diff_refuses_different_sentences_or_labels() -> None:
    run_a = table(["s1", "s2", "s2"], [1, 0, 0], [0.9, 0.1, 0.2])
    with pytest.raises(DiffError, match="different sentences") as info:
        diff_predictions(run_a, table(["s1", "s2", "s3"], [1, 0, 0], [0.9, 0.1, 0.2]), "runA", "runB")
    assert isinstance(info.value, ValueError) and isinstance(info.value, RunError)
    assert "runA" in str(info.value) and "runB" in str(info.value)
    with pytest.raises(DiffError, match="different sentences"):
        diff_predictions(run_a, table(["s1", "s2"], [1, 0], [0.9, 0.1]))  # one duplicate fewer
    with pytest.raises(DiffError, match="label the same sentences differently"):
        diff_predictions(run_a, table(["s1", "s2", "s2"], [1, 1, 0], [0.9, 0.1, 0.2]))


def test_read_predictions_keeps_sentences_that_look_like_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "predictions.tsv"
    table(["NA", "null", 'He said "no".'], [1, 0, 1], [0.7, 0.2, 0.6]).to_csv(path, sep="\t", index=False)
    assert read_predictions(path)["sentence"].tolist() == ["NA", "null", 'He said "no".']
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(DiffError, match="not a predictions file"):
        read_predictions(tmp_path / "bad.tsv")


# ---------------------------------------------------------------- neighbours


def hand_mean_vectors(model: Any, tokenizer: Any, sentences: list[str]) -> np.ndarray:
    """Each sentence alone (no padding, fp32): the mean of the encoder's last hidden states over its tokens."""
    import torch

    rows = []
    with torch.no_grad():
        for sentence in sentences:
            ids = tokenizer(sentence, return_tensors="pt")
            rows.append(model.bert(**ids).last_hidden_state[0].mean(0).double().numpy())
    return np.stack(rows)


def hand_unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# The index embeds under bf16 autocast where the CPU multiplies bf16 natively: within this of fp32.
BF16_COSINE, BF16_SIMILARITY = 0.999, 0.01


def test_each_sentence_is_its_own_nearest_neighbour(tiny_bert: Any, tokenizer: Any) -> None:
    frame = pd.DataFrame(
        {
            "sentence": [
                "The cat sat on the mat.",
                "Dogs bark loudly at night.",
                "She gave him a book.",
                "Colorless green ideas sleep furiously.",
                "Who do you think left?",
                "The more, the merrier.",
                "John seems to be happy.",
                "It rained all day yesterday.",
            ],
            "label": [1, 1, 1, 1, 1, 1, 1, 0],
            "source": ["x"] * 8,
        }
    )
    index = NeighborIndex.build(tiny_bert, tokenizer, frame, batch_size=3)
    assert index.kind == "mean_last_hidden" and index.vectors.shape == (8, 32)
    # By hand: each sentence's mean hidden state, minus the mean over the 8, to unit length.
    raw = hand_mean_vectors(tiny_bert, tokenizer, frame["sentence"].tolist())
    expected = hand_unit(raw - raw.mean(axis=0))
    assert np.all(np.sum(hand_unit(index.vectors.astype(np.float64)) * expected, axis=1) > BF16_COSINE)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
    cosines = expected @ expected.T
    position = {sentence: i for i, sentence in enumerate(frame["sentence"])}
    for row in frame.itertuples():
        found = index.query(tiny_bert, tokenizer, row.sentence, k=3)
        assert len(found) == 3 and found[0].sentence == row.sentence and found[0].label == row.label
        # the next nearest are the hand computation's, with its cosines
        mine = np.argsort(-cosines[row.Index])[:3]
        assert [position[n.sentence] for n in found[1:]] == list(mine[1:]) or abs(
            cosines[row.Index, mine[1]] - cosines[row.Index, mine[2]]
        ) < BF16_SIMILARITY
        for neighbour in found:
            assert neighbour.similarity == pytest.approx(
                cosines[row.Index, position[neighbour.sentence]], abs=BF16_SIMILARITY
            )
    assert len(index.query(tiny_bert, tokenizer, "cat", k=50)) == 8


def test_neighbour_index_cache_is_reused_only_for_the_same_sentences(
    tiny_bert: Any, tokenizer: Any, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"sentence": ["One sentence.", "Another one here."], "label": [1, 0], "source": ["a", "b"]})
    cache = tmp_path / "neighbors.npz"
    built = NeighborIndex.build(tiny_bert, tokenizer, frame, cache=cache, model_key="m1")
    assert cache.is_file()
    with np.load(cache) as saved:
        np.testing.assert_array_equal(saved["vectors"], built.vectors)
    np.savez(
        cache,
        vectors=np.zeros_like(built.vectors),
        fingerprint=np.load(cache)["fingerprint"],
        kind=np.array("mean_last_hidden"),
        center=built.center,
    )  # the cache is what a second build returns
    assert not NeighborIndex.build(tiny_bert, tokenizer, frame, cache=cache, model_key="m1").vectors.any()
    rebuilt = NeighborIndex.build(tiny_bert, tokenizer, frame, cache=cache, model_key="m2")  # other weights
    np.testing.assert_allclose(rebuilt.vectors, built.vectors, atol=1e-6)


def test_neighbour_similarities_are_centred_so_they_spread(tiny_bert: Any, tokenizer: Any) -> None:
    """Raw cosines of mean hidden states all sit near 1; the index centres them on the training mean."""
    sentences = ["The cat sat.", "Dogs bark loudly.", "It rained all day.", "Who left?"]
    frame = pd.DataFrame({"sentence": sentences, "label": [1, 1, 1, 0], "source": ["a"] * 4})
    index = NeighborIndex.build(tiny_bert, tokenizer, frame)
    raw = hand_mean_vectors(tiny_bert, tokenizer, sentences)
    np.testing.assert_allclose(index.center, raw.mean(axis=0), atol=0.02 * np.abs(raw).max())
    raw_cosines = hand_unit(raw) @ hand_unit(raw).T
    centred = hand_unit(raw - raw.mean(axis=0))
    found = index.query(tiny_bert, tokenizer, "The cat sat.", k=4)
    assert found[0].sentence == "The cat sat." and found[0].similarity == pytest.approx(1.0, abs=1e-5)
    far = sentences.index(found[-1].sentence)
    assert found[-1].similarity == pytest.approx(float(centred[0] @ centred[far]), abs=BF16_SIMILARITY)
    assert raw_cosines[0, far] - found[-1].similarity > 0.3  # centring moved the far one away


def test_mean_of_last_hidden_states_without_a_classifier(tiny_model_dir: Path, tokenizer: Any) -> None:
    from transformers import BertModel

    encoder = BertModel.from_pretrained(str(tiny_model_dir)).eval()
    vectors = embed(encoder, tokenizer, ["A short one.", "A much longer sentence than the first one."])
    assert vectors.shape == (2, 32)
    index = NeighborIndex(
        pd.DataFrame({"sentence": ["A short one.", "Other."], "label": [1, 0]}), vectors[:2], MEAN_LAST_HIDDEN
    )
    assert index.nearest(vectors[0], k=1)[0].sentence == "A short one."
