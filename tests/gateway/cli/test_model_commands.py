"""`supportgate train | eval | export-labels` through the real CLI entry point."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.inbound.ingest import ingest
from nlp.intent.train import read_labelled
from storage.db import init_db, make_engine, session_scope
from storage.models import LabelCorrection

ROWS = [
    ("I was charged twice this month, please refund one payment", "billing"),
    ("The invoice lists a server we deleted, please correct it", "billing"),
    ("How do I change the credit card you bill us on?", "billing"),
    ("Please add our VAT number to the invoice", "billing"),
    ("Our bill is much higher than usual, what are these charges?", "billing"),
    ("Refund the unused days after we cancelled please", "billing"),
    ("Everything is down, the database refuses all connections", "outage"),
    ("All requests to the API return 503, production offline", "outage"),
    ("The cluster is unreachable and kubectl times out", "outage"),
    ("Our website is offline, every backend unhealthy", "outage"),
    ("DNS stopped resolving, nothing works at all", "outage"),
    ("Is there an incident? none of our servers respond", "outage"),
]


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "q.sqlite3"}"\n')
    return config


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def trained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    config = write_config(tmp_path)
    data = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": lb} for t, lb in ROWS])
    out = tmp_path / "model"
    code = main(["--config", str(config), "train", "--data", str(data), "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert f"model written to {out}" in text
    assert "labels       2: billing, outage" in text
    assert "temperature" in text and "heldout" in text and "ECE" in text
    assert "10 train, 2 held out for calibration, then refitted on all 12" in text
    return config, out


def test_train_then_eval_as_a_table_and_as_json(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, model = trained
    meta = json.loads((model / "meta.json").read_text())
    test = write_jsonl(
        tmp_path / "test.csv.jsonl",
        [
            {"text": "please refund the double charge on my invoice", "label": "billing"},
            {"text": "the whole site is down, database unreachable", "label": "outage"},
            {"text": "what time does the bakery open", "label": "oos"},
        ],
    )
    args = ["--config", str(config), "eval", "--model", str(model), "--data", str(test)]
    assert main([*args, "--oos-label", "oos", "--threshold", "0.3"]) == 0
    table = capsys.readouterr().out
    assert f"model {meta['version']}  rows 3  threshold 0.30" in table
    assert "oos recall" in table and "in-scope accuracy" in table
    assert "label    precision  recall     f1  support" in table
    assert "billing" in table and "outage" in table

    assert main([*args, "--json", "--oos-label", "oos", "--threshold", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_version"] == meta["version"]
    assert report["n"] == 3 and report["n_oos"] == 1
    assert report["oos_recall"] == 1.0 and report["in_scope_accuracy"] == 0.0
    assert set(report["per_label"]) == {"billing", "outage"}

    # Without --oos-label, a label the model does not know by a common name is found.
    assert main([*args, "--json", "--threshold", "1"]) == 0
    captured = capsys.readouterr()
    assert "treating 'oos' rows as out of scope" in captured.err
    assert json.loads(captured.out)["n_oos"] == 1


def test_eval_without_model_uses_the_shipped_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"text": "We were billed twice for November, please refund", "label": "billing"},
            {"text": "Please raise our cluster limit, we hit the quota", "label": "quota_limits"},
        ],
    )
    assert main(["--config", str(config), "eval", "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_version"].startswith("intent-")
    assert report["threshold"] == 0.5  # the [nlp] abstain_threshold default
    assert report["accuracy"] == 1.0


def test_eval_and_train_errors_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"text": "b"}])
    missing = tmp_path / "no-model"
    assert (
        main(["--config", str(config), "eval", "--model", str(missing), "--data", str(data)]) == 2
    )
    assert f"intent model directory {missing} does not exist" in capsys.readouterr().err
    out = tmp_path / "m"
    assert main(["--config", str(config), "train", "--data", str(data), "--out", str(out)]) == 2
    assert "d.jsonl:2: missing column 'label'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["--config", str(config), "eval", "--data", str(data), "--threshold", "2"]) == 2
    assert "--threshold must be between 0 and 1" in capsys.readouterr().err


def test_export_labels_writes_the_latest_correction_per_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    init_db(engine)
    pks = [
        ingest(
            engine,
            f"From: c{n}@customer.example\nMessage-ID: <m{n}@customer.example>\n"
            f"Subject: s{n}\n\nbody {n}\n".encode(),
            source="test",
        ).message_pk
        for n in range(3)
    ]
    t0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with session_scope(engine) as session:
        session.add_all(
            [
                LabelCorrection(
                    message_pk=pks[0],
                    text="we were charged twice",
                    old_label="bug_report",
                    new_label="performance",
                    actor="rep1",
                    at=t0,
                ),
                LabelCorrection(
                    message_pk=pks[0],
                    text="we were charged twice",
                    old_label="performance",
                    new_label="billing",
                    actor="rep2",
                    at=t0 + timedelta(minutes=5),
                ),
                LabelCorrection(
                    message_pk=pks[1],
                    text="site is down",
                    old_label=None,
                    new_label="outage_report",
                    actor="rep1",
                    at=t0 + timedelta(minutes=1),
                ),
                LabelCorrection(
                    message_pk=pks[2],
                    text="",
                    old_label=None,
                    new_label="billing",
                    actor="rep1",
                    at=t0 + timedelta(minutes=2),
                ),
            ]
        )
    engine.dispose()
    out = tmp_path / "exports" / "labels.jsonl"
    assert main(["--config", str(config), "export-labels", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"exported 2 labelled rows to {out}" in err
    assert "1 superseded by a later correction, 1 without text skipped" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["text"], r["label"], r["actor"]) for r in rows] == [
        ("site is down", "outage_report", "rep1"),
        ("we were charged twice", "billing", "rep2"),
    ]
    assert rows[1]["message_pk"] == pks[0]
    assert datetime.fromisoformat(rows[1]["at"]) == t0 + timedelta(minutes=5)
    # The export is valid training input as it stands.
    assert read_labelled(out) == [
        ("site is down", "outage_report"),
        ("we were charged twice", "billing"),
    ]

    assert main(["--config", str(config), "export-labels"]) == 0
    streamed = capsys.readouterr()
    assert [json.loads(line) for line in streamed.out.splitlines()] == rows
    assert "to stdout" in streamed.err


def test_train_flags_are_shared_and_cost_nothing_at_start_up() -> None:
    import subprocess
    import sys

    from gateway.cli.main import build_parser

    args = build_parser().parse_args(
        ["train", "--data", "d.jsonl", "--out", "m", "--min-textcat-weight", "0.25"]
    )
    assert args.min_textcat_weight == 0.25 and args.test_split == "test"
    code = (
        "import sys, gateway.cli.main; gateway.cli.main.build_parser(); "
        "print(sorted(m for m in ('sklearn', 'spacy', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"
