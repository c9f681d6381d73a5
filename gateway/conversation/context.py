"""What the pipeline's steps share: the config, the engine, and the models and
knowledge sources they load once per runner (the analyser, the KB, the team's docs).

A broken KB or docs folder leaves drafts without suggestions, never mail stuck: the
error is logged and shown in every draft's evidence until it is fixed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from gateway.config import Config
from nlp.drafting.docs import load_docs
from nlp.drafting.kb import KbError, KnowledgeBase
from nlp.types import Analysis, ParsedMessage

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What the steps share: config, engine, and lazily loaded models and KB."""

    config: Config
    engine: Engine
    _analyzer: Any = field(default=None, repr=False)
    _kb: KnowledgeBase | None = field(default=None, repr=False)
    _docs: KnowledgeBase | None = field(default=None, repr=False)
    kb_error: str = ""
    _drafter: Any = field(default=None, repr=False)

    def analyse(self, parsed: ParsedMessage) -> Analysis | None:
        analyzer = self._get_analyzer()
        return None if analyzer is None else analyzer.analyse(parsed)  # type: ignore[no-any-return]

    def analyse_many(self, parsed: list[ParsedMessage]) -> list[Analysis] | None:
        """One model call for a whole batch (several times cheaper per message)."""
        analyzer = self._get_analyzer()
        return None if analyzer is None else list(analyzer.analyse_many(parsed))

    def _get_analyzer(self) -> Any:
        try:
            from nlp.analyse import Analyzer, AnalyzerSettings  # type: ignore[import-not-found]
        except ImportError:
            return None
        if self._analyzer is None:
            nlp_cfg = self.config.nlp
            model_dir = (
                str(self.config.resolve_path(nlp_cfg.model_dir)) if nlp_cfg.model_dir else ""
            )
            self._analyzer = Analyzer(
                AnalyzerSettings(
                    model_dir=model_dir,
                    abstain_threshold=nlp_cfg.abstain_threshold,
                    products=tuple(nlp_cfg.products),
                    account_id_patterns=tuple(nlp_cfg.account_id_patterns),
                    max_log_bytes=nlp_cfg.max_log_bytes,
                    max_compression_ratio=nlp_cfg.max_compression_ratio,
                )
            )
        return self._analyzer

    @property
    def kb(self) -> KnowledgeBase:
        """The KB, loaded once. A broken KB leaves drafts without suggestions, not mail
        stuck: the error is logged and shown in every draft's evidence until fixed."""
        if self._kb is None:
            try:
                self._kb = KnowledgeBase.from_dir(self.config.resolve_path(self.config.kb.dir))
                self.kb_error = ""
            except KbError as exc:
                log.error("knowledge base not loaded: %s", exc)
                self.kb_error = str(exc)
                self._kb = KnowledgeBase(())
        return self._kb

    @property
    def docs(self) -> KnowledgeBase:
        """The team's own Markdown docs as passages (`[kb] docs_dir`), loaded once."""
        if self._docs is None:
            self._docs = KnowledgeBase(())
            if self.config.kb.docs_dir:
                try:
                    self._docs = KnowledgeBase(
                        load_docs(self.config.resolve_path(self.config.kb.docs_dir))
                    )
                except KbError as exc:
                    log.error("docs not loaded: %s", exc)
                    self.kb_error = str(exc)
        return self._docs

    @property
    def drafter(self) -> Any:
        """The optional model drafter (`[draft] backend = "openai"`), else None."""
        if self._drafter is None and self.config.draft.backend == "openai":
            from gateway.conversation.llm_drafter import LlmDrafter

            self._drafter = LlmDrafter(self.config.draft)
        return self._drafter
