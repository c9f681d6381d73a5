"""Training on any labelled file: reading rows, fitting, calibrating, evaluating."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nlp.intent.model import NEEDS_TRIAGE, IntentModel
from nlp.intent.train import (
    LabelledDataError,
    TrainSettings,
    evaluate,
    main,
    read_labelled,
    stratified_split,
    train_from_file,
    train_model,
)

BILLING = [
    "I was charged twice for my subscription this month, please refund one payment",
    "The invoice lists a server we deleted weeks ago, can you correct it?",
    "How do I change the credit card you bill us on?",
    "Please add our VAT number to the next invoice",
    "Our payment failed although the card is valid, why?",
    "Can we pay yearly by bank transfer instead of by card?",
    "The bill for October is much higher than usual, what are these charges?",
    "We need a refund for the unused days after we cancelled",
]
OUTAGE = [
    "Everything is down, our database refuses all connections",
    "All requests to the API return 503 since ten minutes",
    "The cluster is unreachable, kubectl times out, production is offline",
    "Our website is offline, the load balancer marks every backend unhealthy",
    "DNS stopped resolving for our zone, nothing works",
    "Is there an incident? None of our servers respond",
    "Storage returns errors for every upload and download, site broken",
    "Production outage: all nodes went NotReady at once",
]
LOGIN = [
    "I cannot log in, the password reset email never arrives",
    "My account is locked after too many login attempts",
    "Lost my phone with the two-factor app, how do I sign in?",
    "The SSO login keeps redirecting in a loop",
    "Login says invalid credentials although the password is right",
    "The magic sign-in link is always expired",
    "I changed my email and now I cannot log in with either address",
    "The CLI asks me to log in again every few minutes",
]
ROWS = (
    [(t, "billing") for t in BILLING]
    + [(t, "outage") for t in OUTAGE]
    + [(t, "login") for t in LOGIN]
)
FAST = TrainSettings(epochs=4, spacy_weights=(0.5,), bow_length=2**12)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("models") / "tiny"
    report = train_model(ROWS, out_dir=out, seed=1, progress=False, settings=FAST)
    return out, report


def test_tiny_model_loads_and_predicts_the_obvious(trained: tuple[Path, object]) -> None:
    out, report = trained
    model = IntentModel.load(out)
    assert model.labels == ("billing", "login", "outage")
    assert model.version == report.version  # type: ignore[attr-defined]
    assert (out / "textcat").is_dir() and model.spacy_weight == 0.5
    texts = {
        "billing": "please refund the double charge on our invoice",
        "outage": "the whole site is down and the database is unreachable",
        "login": "I am locked out and cannot log in to my account",
    }
    for label, text in texts.items():
        assert model.predict(text, threshold=0.0).label == label


def test_meta_records_calibration_and_heldout_metrics(trained: tuple[Path, object]) -> None:
    out, report = trained
    meta = json.loads((out / "meta.json").read_text())
    assert meta["labels"] == ["billing", "login", "outage"]
    assert meta["temperature"] > 0 and meta["n_heldout"] == 3
    assert meta["refit_on_all_rows"] is True
    assert meta["metrics"]["heldout"]["n"] == 3
    assert report.n_train + report.n_heldout == len(ROWS)  # type: ignore[attr-defined]


def test_same_data_and_seed_give_the_same_version(tmp_path: Path) -> None:
    settings = TrainSettings(use_textcat=False)
    a = train_model(ROWS, out_dir=tmp_path / "a", progress=False, settings=settings)
    b = train_model(ROWS, out_dir=tmp_path / "b", progress=False, settings=settings)
    c = train_model(ROWS[:-1], out_dir=tmp_path / "c", progress=False, settings=settings)
    assert a.version == b.version != c.version
    assert not (tmp_path / "a" / "textcat").exists()


def test_retraining_replaces_a_model_but_never_other_data(tmp_path: Path) -> None:
    settings = TrainSettings(use_textcat=False)
    out = tmp_path / "model"
    train_model(ROWS, out_dir=out, progress=False, settings=settings)
    second = train_model(ROWS[1:], out_dir=out, progress=False, settings=settings)
    assert IntentModel.load(out).version == second.version
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(LabelledDataError, match="refusing to replace"):
        train_model(ROWS, out_dir=precious, progress=False, settings=settings)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_without_refit_the_model_is_the_calibrated_one(tmp_path: Path) -> None:
    settings = TrainSettings(use_textcat=False, refit=False)
    report = train_model(ROWS, out_dir=tmp_path / "m", progress=False, settings=settings)
    model = IntentModel.load(tmp_path / "m")
    assert model.meta["refit_on_all_rows"] is False
    _, held = stratified_split(ROWS, 0.15, seed=0)
    again = evaluate(model, held, threshold=0.5)
    assert again.accuracy == pytest.approx(report.metrics["heldout"]["accuracy"], abs=1e-4)


def test_training_needs_two_labels(tmp_path: Path) -> None:
    with pytest.raises(LabelledDataError, match="at least two labels"):
        train_model([(t, "billing") for t in BILLING], out_dir=tmp_path / "m", progress=False)
    with pytest.raises(LabelledDataError, match="no training rows"):
        train_model([], out_dir=tmp_path / "m", progress=False)


def test_texts_without_words_are_a_clear_error(tmp_path: Path) -> None:
    rows = [("?", "x"), ("!", "y"), ("-", "x"), (".", "y")]
    with pytest.raises(LabelledDataError, match="cannot build features"):
        train_model(rows, out_dir=tmp_path / "m", progress=False)
    assert not (tmp_path / "m").exists()


def test_stratified_split_holds_out_every_label() -> None:
    fit, held = stratified_split(ROWS, 0.15, seed=0)
    assert {label for _, label in held} == {"billing", "outage", "login"}
    assert sorted(fit + held) == sorted(ROWS)
    few = [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "y")]
    fit, held = stratified_split(few, 0.34, seed=0)
    assert [label for _, label in held] == ["y"]


def test_evaluate_reports_oos_recall_and_in_scope_accuracy(
    trained: tuple[Path, object],
) -> None:
    model = IntentModel.load(trained[0])
    rows = [
        ("refund the duplicate payment on my card please", "billing"),
        ("production database is down, everything offline", "outage"),
        ("cannot log in, password reset mail missing", "login"),
        ("what's the weather like in Lisbon tomorrow", "oos"),
    ]
    everything = evaluate(model, rows, threshold=1.0, oos_label="oos")
    assert everything.oos_recall == 1.0 and everything.in_scope_accuracy == 0.0
    assert everything.n_oos == 1 and everything.coverage == 0.0
    nothing = evaluate(model, rows, threshold=0.0, oos_label="oos")
    assert nothing.oos_recall == 0.0
    assert nothing.accuracy == nothing.in_scope_accuracy == 1.0
    assert set(nothing.per_label) == {"billing", "outage", "login"}
    assert nothing.per_label["billing"].support == 1
    assert nothing.macro_f1 == 1.0
    plain = evaluate(model, rows[:3], threshold=0.5)
    assert plain.oos_recall is None and plain.in_scope_accuracy is None
    assert model.predict(rows[3][0], threshold=1.0).label == NEEDS_TRIAGE


def test_unknown_gold_labels_count_as_errors(trained: tuple[Path, object]) -> None:
    model = IntentModel.load(trained[0])
    report = evaluate(
        model, [("refund my invoice", "billing"), ("hello", "smalltalk")], threshold=0
    )
    assert report.accuracy == 0.5
    assert report.per_label["smalltalk"].recall == 0.0


# --- reading labelled files --------------------------------------------------------------


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_csv_and_jsonl_with_custom_fields(tmp_path: Path) -> None:
    csv_path = tmp_path / "rows.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["body", "intent", "note"])
        writer.writerow(["line one,\nwith a newline", "billing", ""])
        writer.writerow(["second", "outage", "x"])
    rows = read_labelled(csv_path, text_field="body", label_field="intent")
    assert rows == [("line one,\nwith a newline", "billing"), ("second", "outage")]
    jsonl = _jsonl(
        tmp_path / "rows.jsonl",
        ['{"text": "a", "label": "billing"}', "", '{"text": "b", "label": "login"}'],
    )
    assert read_labelled(jsonl) == [("a", "billing"), ("b", "login")]


def test_read_missing_column_names_it_and_the_line(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "rows.jsonl", ['{"text": "a", "label": "x"}', '{"text": "b"}'])
    with pytest.raises(LabelledDataError, match=r"rows.jsonl:2: missing column 'label'"):
        read_labelled(path)
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("message,label\nhello,x\n")
    with pytest.raises(LabelledDataError, match=r"missing column 'text'.*message"):
        read_labelled(csv_path)


def test_read_empty_file(tmp_path: Path) -> None:
    for name in ("empty.jsonl", "empty.csv"):
        path = tmp_path / name
        path.write_text("")
        with pytest.raises(LabelledDataError, match="no rows"):
            read_labelled(path)


def test_read_single_label(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "one.jsonl", ['{"text": "a", "label": "x"}'] * 3)
    with pytest.raises(LabelledDataError, match=r"only the label.*'x'.*at least 2"):
        read_labelled(path)


def test_read_bad_json_line_reports_its_number(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "bad.jsonl",
        ['{"text": "a", "label": "x"}', '{"text": "b", "label": "y"}', '{"text": "c", label'],
    )
    with pytest.raises(LabelledDataError, match=r"bad.jsonl:3: invalid JSON"):
        read_labelled(path)


def test_read_other_bad_input(tmp_path: Path) -> None:
    with pytest.raises(LabelledDataError, match="no such file"):
        read_labelled(tmp_path / "missing.csv")
    txt = tmp_path / "rows.txt"
    txt.write_text("x")
    with pytest.raises(LabelledDataError, match=r"unknown extension \.txt"):
        read_labelled(txt)
    blank = _jsonl(tmp_path / "blank.jsonl", ['{"text": "  ", "label": "x"}'])
    with pytest.raises(LabelledDataError, match=r"blank.jsonl:1: 'text' is empty"):
        read_labelled(blank)
    number = _jsonl(tmp_path / "num.jsonl", ['{"text": 5, "label": "x"}'])
    with pytest.raises(LabelledDataError, match="must be text"):
        read_labelled(number)
    array = _jsonl(tmp_path / "arr.jsonl", ['["a", "x"]'])
    with pytest.raises(LabelledDataError, match=r"arr.jsonl:1: expected a JSON object"):
        read_labelled(array)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\na,x,extra\n")
    with pytest.raises(LabelledDataError, match=r"ragged.csv:2: more cells"):
        read_labelled(ragged)


def test_train_from_file_keeps_the_test_split_for_evaluation(tmp_path: Path) -> None:
    lines = []
    for i, (text, label) in enumerate(ROWS):
        split = "test" if i % 8 == 0 else "train"
        lines.append(json.dumps({"text": text, "label": label, "split": split}))
    data = _jsonl(tmp_path / "data.jsonl", lines)
    report = train_from_file(
        data, out_dir=tmp_path / "m", progress=False, settings=TrainSettings(use_textcat=False)
    )
    assert report.n_train + report.n_heldout == len(ROWS) - 3
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["metrics"]["test"]["n"] == 3


def test_module_entry_point_trains_and_reports_bad_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _jsonl(tmp_path / "d.jsonl", [json.dumps({"text": t, "label": lb}) for t, lb in ROWS])
    assert main(["--data", str(data), "--out", str(tmp_path / "m")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == IntentModel.load(tmp_path / "m").version
    bad = _jsonl(tmp_path / "bad.jsonl", ["{"])
    assert main(["--data", str(bad), "--out", str(tmp_path / "m2")]) == 2
    assert "bad.jsonl:1: invalid JSON" in capsys.readouterr().err


def test_linear_svm_weight_is_chosen_on_heldout_and_kept_after_refit(tmp_path: Path) -> None:
    forced = TrainSettings(use_textcat=False, svm_weights=(0.5,))
    report = train_model(ROWS, out_dir=tmp_path / "svm", progress=False, settings=forced)
    model = IntentModel.load(tmp_path / "svm")
    meta = json.loads((tmp_path / "svm" / "meta.json").read_text())
    assert report.svm_weight == model.linear.svm_weight == meta["svm_weight"] == 0.5
    assert model.linear.svm_coef is not None and model.linear.svm_scale > 0
    assert meta["preprocess"] == model.preprocess == 2
    assert {t["svm_weight"] for t in meta["metrics"]["weights_tried"]} == {0.5}
    assert model.predict("please refund the double charge", threshold=0.0).label == "billing"
    off = TrainSettings(use_textcat=False, svm_weights=())
    train_model(ROWS, out_dir=tmp_path / "plain", progress=False, settings=off)
    plain = IntentModel.load(tmp_path / "plain")
    assert plain.linear.svm_coef is None and plain.linear.svm_weight == 0.0


def test_guess_oos_label_only_takes_unknown_common_names() -> None:
    from nlp.intent.evaluate import guess_oos_label

    assert guess_oos_label(["billing", "outage"], ["billing", "OOS"]) == "OOS"
    assert guess_oos_label(["billing", "out_of_scope"], ["out_of_scope"]) is None  # a real label
    assert guess_oos_label(["billing"], ["billing", "weather"]) is None


def test_training_progress_bar_counts_its_steps() -> None:
    from nlp.intent.train import TrainSettings, _planned_steps, textcat_epochs

    settings = TrainSettings()
    with_textcat = _planned_steps(settings, 100, 120, refit=True)
    assert with_textcat == 2 + textcat_epochs(settings, 100) + 2 + textcat_epochs(settings, 120)
    no_refit = _planned_steps(settings, 100, 120, refit=False)
    assert no_refit == 2 + textcat_epochs(settings, 100)
