"""A team's own documentation as a knowledge source: plain Markdown cut into passages.

Most teams already have docs (a `docs/` folder of Markdown, no front matter). Each
file is cut at its headings into passages of at most a few paragraphs; a passage keeps
its file and heading so the brief and the draft can cite where it came from. Passages
become `Article`s without variants, so the same ranking index serves both and a
passage can never write a draft body on its own: it is quoted, with its source.
"""

from __future__ import annotations

import re
from pathlib import Path

from nlp.drafting.articles import Article, KbError

DOCS_PREFIX = "docs:"
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
MAX_PASSAGE_CHARS = 1200
MAX_FILE_BYTES = 2 * 1024 * 1024


def split_passages(text: str, *, source: str) -> list[Article]:
    """Passages of one Markdown file: one per heading section, long ones cut at blank
    lines; the text before the first heading is a passage titled by the file name."""
    sections: list[tuple[str, list[str]]] = [(Path(source).stem.replace("-", " "), [])]
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            sections.append((match.group(2).strip(), []))
        else:
            sections[-1][1].append(line)
    passages: list[Article] = []
    for heading, lines in sections:
        for n, chunk in enumerate(_chunks("\n".join(lines).strip())):
            suffix = f" ({n + 1})" if n else ""
            passages.append(
                Article(
                    id=f"{DOCS_PREFIX}{source}#{heading}{suffix}",
                    title=heading,
                    intents=(),
                    tags=(),
                    entities=(),
                    body=chunk,
                    path=source,
                )
            )
    return passages


def _chunks(text: str) -> list[str]:
    if not text:
        return []
    out: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if current and len(current) + len(para) > MAX_PASSAGE_CHARS:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        out.append(current)
    return out


def load_docs(directory: str | Path) -> tuple[Article, ...]:
    """Every `*.md` / `*.markdown` file under `directory` (recursively), as passages."""
    root = Path(directory)
    if not root.is_dir():
        raise KbError(f"docs directory {root} does not exist")
    passages: list[Article] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".md", ".markdown")):
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        passages.extend(split_passages(text, source=path.relative_to(root).as_posix()))
    return tuple(passages)


def first_sentences(text: str, *, limit: int = 320) -> str:
    """The opening of a passage, cut at a sentence end, for quoting in a reply."""
    flat = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > limit // 3 else cut.rstrip() + "…"
