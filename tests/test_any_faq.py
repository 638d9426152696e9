"""Any FAQ, no hand edits: real FAQs imported with the importer and asked labelled chat
questions, as ``../shared/eval/faqs/run.sh`` does, with floors a little under today's figures
(docs/matching.md, *Where it stands*).

The FAQ folders (``FAQ.*``, ``keys.yaml``, ``questions.yaml``) live outside the repository;
``FAQBOT_FAQ_SETS`` names their parent folder (CI sets it when the shared folder is beside the
checkout). An answer is right when it contains one of the key's anchor phrases.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from bot.importer import faq_to_yaml
from bot.knowledge import KnowledgeBase, parse_knowledge
from bot.matching import decide
from bot.semantic import attach, encoder_for

FAQ_SETS_ENV = "FAQBOT_FAQ_SETS"
FAQS = ("minikube", "asf-faq", "syncthing", "whatwg-faq")
# right (in-scope answered with the right entry) >=, out-of-scope withheld >=, wrong (of all) <=
FLOORS = {"model": (58.0, 85.0, 5.0), "lexical": (33.0, 85.0, 5.0)}

pytestmark = pytest.mark.skipif(
    not os.environ.get(FAQ_SETS_ENV), reason=f"needs {FAQ_SETS_ENV} (the shared FAQ sets)")


def imported(folder: Path, *, model: bool) -> KnowledgeBase:
    faq = next(folder.glob("FAQ.*"))
    kb = parse_knowledge(faq_to_yaml(faq.read_text(encoding="utf-8"), filename=faq.name),
                         f"{folder.name}.yaml")
    if model:
        encoder = encoder_for("auto")
        assert encoder is not None, "the semantic model is not installed (scripts/_venv.sh)"
        kb = attach(kb, encoder)
    return kb


def score(folder: Path, *, model: bool) -> tuple[float, float, float]:
    kb = imported(folder, model=model)
    keys = yaml.safe_load((folder / "keys.yaml").read_text(encoding="utf-8"))
    cases = yaml.safe_load((folder / "questions.yaml").read_text(encoding="utf-8"))

    def key_of(answer: str) -> str | None:
        text = answer.lower()
        return next((k for k, v in keys.items() if any(a.lower() in text for a in v["anchors"])),
                    None)

    right = withheld = wrong = in_scope = out = 0
    for case in cases:
        d = decide(case["q"].replace("\n", " "), kb)
        answered = d.action in ("answer", "ticket") and d.entry is not None
        got = key_of(d.entry.answer) if answered else None
        if case["expect"] == "none":
            out += 1
            withheld += not answered
            wrong += answered
        else:
            in_scope += 1
            right += answered and got == case["expect"]
            wrong += answered and got != case["expect"]
    return 100 * right / in_scope, 100 * withheld / out, 100 * wrong / len(cases)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["model", "lexical"])
@pytest.mark.parametrize("name", FAQS)
def test_an_imported_faq_answers_well_with_no_edits(name, mode):
    folder = Path(os.environ[FAQ_SETS_ENV]) / name
    assert folder.is_dir(), folder
    right, withheld, wrong = score(folder, model=mode == "model")
    low_right, low_withheld, high_wrong = FLOORS[mode]
    figures = f"{name} ({mode}): right {right:.1f}, withheld {withheld:.1f}, wrong {wrong:.1f}"
    assert right >= low_right and withheld >= low_withheld and wrong <= high_wrong, figures


@pytest.mark.parametrize("mode", ["model", "lexical"])
@pytest.mark.parametrize("name", FAQS)
def test_each_entry_answers_its_own_question(name, mode):
    """The FAQ's own question, pasted as it is, gets that entry's answer ("What is
    Syncthing?" against an FAQ whose every entry is about Syncthing)."""
    kb = imported(Path(os.environ[FAQ_SETS_ENV]) / name, model=mode == "model")
    missed = {e.id: (d.action, d.entry and d.entry.id) for e in kb
              if (d := decide(e.question, kb)).action != "answer" or d.entry is not e}
    assert missed == {}
