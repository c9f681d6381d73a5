"""The shipped intent model: loads offline, classifies clear mail, abstains, fails clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp.intent.model import (
    DEFAULT_MODEL_DIR,
    NEEDS_TRIAGE,
    IntentModel,
    IntentModelError,
    LinearTextModel,
    normalise,
)

TAXONOMY = {
    "access_permissions",
    "account_login",
    "outage_report",
    "performance",
    "bug_report",
    "config_help",
    "billing",
    "quota_limits",
    "data_request",
    "security_report",
    "feature_request",
}

# Written for this test; none of them is a row of the training data.
CLEAR = {
    "access_permissions": "Hi, our new developer Anna can log in fine but gets 'permission "
    "denied' whenever she opens the production project. Which role should we give her so "
    "she can read the cluster logs?",
    "account_login": "Hello, I reset my password twice today and I still cannot sign in to "
    "the console. It says my credentials are invalid. Can you unlock my account?",
    "outage_report": "URGENT - all of our sites behind your load balancer are down since "
    "10:15 UTC, every request fails with 503. Nothing was deployed on our side.",
    "performance": "Since Monday our Postgres queries have become very slow, simple lookups "
    "take two seconds instead of 20 ms. The instance is up, it is just sluggish.",
    "config_help": "How do I set up a custom domain with HTTPS for our CDN distribution? "
    "Which DNS record should I create and where do I upload the certificate?",
    "billing": "Hello, the invoice for October charges us for two database instances, but we "
    "deleted one of them on the 2nd. Could you correct the invoice and refund the difference?",
    "quota_limits": "We need to run more than 3 Kubernetes clusters, the console says the "
    "limit is reached. Can you raise our cluster quota to 8?",
    "data_request": "We are closing our account next month. Please provide a complete export "
    "of our databases and stored files before deletion.",
    "security_report": "We just noticed an admin user in our organisation that nobody here "
    "created, and a login from an IP in a country where we have no staff. We think our "
    "account was compromised.",
    "feature_request": "It would be really nice if you added support for IPv6 on the load "
    "balancers. Is that on your roadmap?",
}


@pytest.fixture(scope="module")
def shipped() -> IntentModel:
    return IntentModel.load()


def test_shipped_model_is_self_describing_and_small(shipped: IntentModel) -> None:
    assert set(shipped.labels) == TAXONOMY
    assert shipped.version.startswith("intent-") and len(shipped.version) > len("intent-") + 8
    meta = json.loads((DEFAULT_MODEL_DIR / "meta.json").read_text())
    assert meta["version"] == shipped.version
    assert meta["temperature"] == pytest.approx(shipped.temperature)
    for key in ("trained_at", "labels", "metrics", "spacy_weight"):
        assert key in meta
    assert meta["metrics"]["test"]["accuracy"] >= 0.85
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024


@pytest.mark.parametrize("label", sorted(CLEAR))
def test_shipped_model_classifies_clear_mail(shipped: IntentModel, label: str) -> None:
    prediction = shipped.predict(CLEAR[label], threshold=0.5)
    assert prediction.label == label
    assert not prediction.abstained
    assert prediction.confidence == pytest.approx(prediction.scores[label], abs=1e-5)


def test_none_and_empty_string_load_the_shipped_model(shipped: IntentModel) -> None:
    assert IntentModel.load("").version == shipped.version
    assert IntentModel.load(None).labels == shipped.labels


def test_below_threshold_abstains_as_needs_triage_but_keeps_scores(
    shipped: IntentModel,
) -> None:
    text = CLEAR["billing"]
    sure = shipped.predict(text, threshold=0.0)
    unsure = shipped.predict(text, threshold=min(1.0, sure.confidence + 1e-6))
    assert unsure.abstained and unsure.label == NEEDS_TRIAGE
    assert unsure.scores == sure.scores
    assert sum(sure.scores.values()) == pytest.approx(1.0, abs=1e-4)
    at_threshold = shipped.predict(text, threshold=sure.confidence)
    assert at_threshold.label == "billing" and not at_threshold.abstained


def test_vague_mail_is_less_confident_than_clear_mail(shipped: IntentModel) -> None:
    vague = shipped.predict("Hi, quick question, can someone call me back? Thanks", threshold=0.5)
    clear = shipped.predict(CLEAR["quota_limits"], threshold=0.5)
    assert vague.confidence < clear.confidence


def test_predict_many_matches_predict(shipped: IntentModel) -> None:
    texts = list(CLEAR.values())
    batch = shipped.predict_many(texts, threshold=0.5)
    single = [shipped.predict(t, threshold=0.5) for t in texts]
    assert [b.label for b in batch] == [s.label for s in single]
    for b, s in zip(batch, single, strict=True):
        assert b.confidence == pytest.approx(s.confidence)
    assert shipped.predict_many([], threshold=0.5) == []


def test_linear_features_match_scikit_learn_tfidf() -> None:
    texts = [normalise(t) for t in CLEAR.values()]
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(texts)
    vocab = sorted(word.vocabulary_, key=word.vocabulary_.__getitem__)
    cvocab = sorted(char.vocabulary_, key=char.vocabulary_.__getitem__)
    model = LinearTextModel(
        word_vocab=vocab,
        word_idf=word.idf_,
        char_vocab=cvocab,
        char_idf=char.idf_,
        coef=np.zeros((2, len(vocab) + len(cvocab))),
        intercept=np.zeros(2),
    )
    ours = model.features(texts).toarray()
    expected = np.hstack([word.transform(texts).toarray(), char.transform(texts).toarray()])
    assert np.allclose(ours, expected)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(IntentModelError, match=f"{missing}.*does not exist"):
        IntentModel.load(missing)


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, target)
    return target


def test_missing_meta_is_a_clear_error(model_copy: Path) -> None:
    (model_copy / "meta.json").unlink()
    with pytest.raises(IntentModelError, match=f"{model_copy} has no meta.json"):
        IntentModel.load(model_copy)


def test_corrupt_meta_is_a_clear_error(model_copy: Path) -> None:
    (model_copy / "meta.json").write_text("{not json")
    with pytest.raises(IntentModelError, match=f"{model_copy} is unreadable or corrupt"):
        IntentModel.load(model_copy)


def test_truncated_weights_are_a_clear_error(model_copy: Path) -> None:
    weights = model_copy / "linear.npz"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(IntentModelError, match=str(model_copy)):
        IntentModel.load(model_copy)


def test_label_mismatch_is_a_clear_error(model_copy: Path) -> None:
    meta = json.loads((model_copy / "meta.json").read_text())
    meta["labels"] = meta["labels"][:-1]
    (model_copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IntentModelError, match="label count mismatch"):
        IntentModel.load(model_copy)


def test_unknown_format_is_a_clear_error(model_copy: Path) -> None:
    meta = json.loads((model_copy / "meta.json").read_text())
    meta["format"] = 99
    (model_copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IntentModelError, match="unsupported format 99"):
        IntentModel.load(model_copy)


def test_out_of_range_calibration_is_a_clear_error(model_copy: Path) -> None:
    meta = json.loads((model_copy / "meta.json").read_text())
    meta["temperature"] = 0
    (model_copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IntentModelError, match="temperature or weight out of range"):
        IntentModel.load(model_copy)


def test_normalise_drops_markup_but_keeps_the_words() -> None:
    text = (
        "### Describe the bug\n<!-- Please fill in the template -->\nThe app crashes on "
        "save, see https://example.com/issue/42 and `save()`.\n```\nTraceback 123\n```\n"
        "---\n**Expected** it saves"
    )
    clean = normalise(text)
    assert "Describe the bug" in clean and "The app crashes on save" in clean
    assert "Expected" in clean and "it saves" in clean
    for gone in ("<!--", "template", "https", "example.com", "Traceback", "```", "###", "**"):
        assert gone not in clean
    assert "url" in clean and "codeblock" in clean
    # Preprocess 1 (models trained before markup stripping) only collapses digits.
    assert normalise(text, preprocess=1) == text.replace("42", "0").replace("123", "0")


def test_normalise_is_fast_on_unclosed_markup() -> None:
    import time

    started = time.perf_counter()
    for evil in ("<!--" * 50_000, "```" * 50_001, "`a" * 100_000, "-" * 200_000):
        assert len(normalise(evil)) <= 1500
    assert time.perf_counter() - started < 1.0


def test_model_without_preprocess_in_meta_predicts_with_the_old_preprocessing(
    model_copy: Path,
) -> None:
    meta = json.loads((model_copy / "meta.json").read_text())
    meta.pop("preprocess", None)
    (model_copy / "meta.json").write_text(json.dumps(meta))
    assert IntentModel.load(model_copy).preprocess == 1
    meta["preprocess"] = 2
    (model_copy / "meta.json").write_text(json.dumps(meta))
    assert IntentModel.load(model_copy).preprocess == 2


def _tiny_linear(**svm: object) -> LinearTextModel:
    texts = ["refund my invoice", "the site is down", "cannot log in"]
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(texts)
    width = len(word.vocabulary_) + len(char.vocabulary_)
    rng = np.random.default_rng(0)
    return LinearTextModel(
        word_vocab=sorted(word.vocabulary_, key=word.vocabulary_.__getitem__),
        word_idf=word.idf_,
        char_vocab=sorted(char.vocabulary_, key=char.vocabulary_.__getitem__),
        char_idf=char.idf_,
        coef=rng.normal(size=(3, width)),
        intercept=np.zeros(3),
        **svm,  # type: ignore[arg-type]
    )


def test_linear_svm_part_is_mixed_saved_and_loaded(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    plain = _tiny_linear()
    width = plain.coef.shape[1]
    mixed = _tiny_linear(
        svm_coef=rng.normal(size=(3, width)),
        svm_intercept=np.zeros(3),
        svm_scale=3.0,
        svm_weight=0.25,
    )
    texts = ["please refund", "down again"]
    lr_p, svm_p = mixed.parts(mixed.features(texts))
    assert svm_p is not None and np.allclose(svm_p.sum(axis=1), 1.0)
    assert np.allclose(mixed.proba(texts), 0.75 * lr_p + 0.25 * svm_p)
    assert np.allclose(plain.proba(texts), lr_p)
    mixed.save(tmp_path)
    loaded = LinearTextModel.load(tmp_path)
    assert loaded.svm_weight == 0.25 and loaded.svm_scale == 3.0
    assert np.allclose(loaded.proba(texts), mixed.proba(texts), atol=1e-5)
    # An SVM with weight 0 is not worth its bytes: it is not written.
    mixed.svm_weight = 0.0
    mixed.save(tmp_path)
    assert LinearTextModel.load(tmp_path).svm_coef is None
