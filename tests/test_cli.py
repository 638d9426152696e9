"""The command line, run as users run it: ``python -m bot …`` in a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env

CONTRACT_KEYS = {"question", "action", "entry", "answer", "score", "candidates", "reason"}


def faqbot(*args: str, stdin: str | None = None, cwd: Path | None = None, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=cli_env(**env),
        timeout=60,
    )


class TestAsk:
    def test_json_output_follows_the_contract(self, small_kb_path):
        """`ask --json` prints one object with exactly the contract's keys and types."""
        result = faqbot("ask", "--json", "--knowledge", str(small_kb_path), "review eta?")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 1
        obj = json.loads(lines[0])
        assert set(obj) == CONTRACT_KEYS
        assert obj["action"] == "answer" and obj["entry"] == "review-time"
        assert obj["answer"].startswith("App review may take")
        assert 0 <= obj["score"] <= 100 and obj["reason"] is None
        assert all(set(c) == {"entry", "question", "score"} for c in obj["candidates"])

    def test_cap_request_is_a_ticket_that_also_answers(self, small_kb_path):
        """An entry marked ticket: answers and opens a ticket (action ticket, entry filled)."""
        result = faqbot("ask", "--json", "--knowledge", str(small_kb_path),
                        "please raise the user limit for our app")
        obj = json.loads(result.stdout)
        assert (obj["action"], obj["entry"], obj["reason"]) == ("ticket", "cap", "cap_increase")
        assert "active user cap" in obj["answer"]

    def test_unrelated_question_opens_a_ticket(self, small_kb_path):
        """A question the knowledge knows nothing about is a no_match ticket."""
        result = faqbot("ask", "--json", "--knowledge", str(small_kb_path),
                        "how do I get a refund for coins")
        obj = json.loads(result.stdout)
        assert (obj["action"], obj["entry"], obj["reason"]) == ("ticket", None, "no_match")

    def test_asking_for_a_human_opens_a_requested_ticket(self, small_kb_path):
        """A handoff phrasing is a ticket with reason requested."""
        result = faqbot("ask", "--json", "--knowledge", str(small_kb_path),
                        "can I talk to a human about my review")
        assert json.loads(result.stdout)["reason"] == "requested"

    def test_batch_from_stdin_answers_each_line_in_order(self, small_kb_path):
        """Without a QUESTION, each stdin line gets one output line, in order."""
        questions = ["review eta?", "app rejected", "refund my coins", "does it work with rn?"]
        result = faqbot("ask", "--json", "--knowledge", str(small_kb_path),
                        stdin="\n".join(questions) + "\n")
        objs = [json.loads(line) for line in result.stdout.splitlines()]
        assert [o["question"] for o in objs] == questions
        assert [o["entry"] for o in objs] == ["review-time", "not-approved", None, "react-native"]
        human = faqbot("ask", "--knowledge", str(small_kb_path), stdin="\n".join(questions))
        assert len(human.stdout.splitlines()) == len(questions)

    def test_human_output_and_explain(self, small_kb_path):
        """Human output shows decision, answer and candidates; --explain shows the words."""
        result = faqbot("ask", "--explain", "--knowledge", str(small_kb_path),
                        "how lnog is the reveiw for refunds")
        assert result.returncode == 0
        out = result.stdout
        assert "candidates:" in out and "review-time" in out
        assert "typos:" in out and "reveiw→review" in out
        assert "unknown:   refund" in out
        assert "answers at ≥ 60 (an unfamiliar word: answer)" in out

    def test_explain_names_the_not_covered_question_without_the_model(self, tmp_path):
        from tests.conftest import SMALL_KB

        path = tmp_path / "kb.yaml"
        path.write_text(SMALL_KB.replace(
            "handoff:", "not_covered:\n  - how long does the apple app store review take\nhandoff:"))
        result = faqbot("ask", "--explain", "--knowledge", str(path),
                        "how long is the review at apple", FAQBOT_SEMANTIC="off")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ticket  -") and "reason no_match" in result.stdout
        assert re.search(r"not answered: the not_covered questions score [\d.]+ \(via 'how long "
                         r"does the apple app store review take'\), review-time [\d.]+",
                         result.stdout)

    def test_explain_names_a_number_the_entry_never_gives(self, small_kb_path):
        """--explain says why a confident topic match was not answered."""
        result = faqbot("ask", "--explain", "--knowledge", str(small_kb_path),
                        "how many apps are rejected")
        assert result.returncode == 0
        assert result.stdout.startswith("ticket")
        assert ("not answered: asks 'how many', which no phrasing of not-approved asks"
                in result.stdout)

    def test_python_dash_m_and_console_script_agree(self, small_kb_path):
        """`faqbot` and `python -m bot` are the same program."""
        script = Path(sys.executable).with_name("faqbot")
        if not script.exists():
            pytest.fail("the faqbot console script is not installed next to the interpreter")
        a = subprocess.run([str(script), "ask", "--json", "--knowledge", str(small_kb_path),
                            "review eta"], capture_output=True, text=True, env=cli_env())
        b = faqbot("ask", "--json", "--knowledge", str(small_kb_path), "review eta")
        assert a.stdout == b.stdout and a.returncode == b.returncode == 0

    def test_broken_knowledge_is_reported_with_lines(self, tmp_path):
        """A command that loads broken knowledge prints PATH:LINE: messages and exits 1."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("entries:\n  - id: x\n    question: Q?\n")
        result = faqbot("ask", "--knowledge", str(bad), "hello")
        assert result.returncode == 1
        assert f"{bad}:2: entry 'x'" in result.stderr or f"{bad}:2: entry:" in result.stderr


class TestKbCheck:
    def test_valid_file(self, small_kb_path):
        """A valid file: exit 0 and a summary."""
        result = faqbot("kb", "check", str(small_kb_path))
        assert result.returncode == 0
        assert "ok (4 entries" in result.stdout

    def test_invalid_file_lists_every_problem(self, tmp_path):
        """An invalid file: exit 1 and one PATH:LINE: message per problem on stdout."""
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            "thresholds: {answer: 101}\nentries:\n  - id: a\n    question: Q?\n"
            "  - id: a\n    question: Q?\n    answer: A\n"
        )
        result = faqbot("kb", "check", str(bad))
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert f"{bad}:1: thresholds.answer must be between 0 and 100, got 101" in lines
        assert f"{bad}:3: entry 'a': missing required key 'answer'" in [
            line.replace("entry:", "entry 'a':") for line in lines
        ]
        assert "2 problems" in result.stderr

    def test_not_yaml_at_all(self, tmp_path):
        """Binary junk or broken syntax is reported as not valid YAML with a line."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("entries: [\n  {id: a,\n")
        result = faqbot("kb", "check", str(bad))
        assert result.returncode == 1
        assert result.stdout.startswith(f"{bad}:") and "not valid YAML" in result.stdout


class TestKbEval:
    CASES = """\
- q: review eta please
  expect: review-time
- q: my app got declined, why
  expect: not-approved
- q: how do I bake bread
  expect: none
- q: raise the user limit for us
  expect: cap
"""

    def test_figures_and_thresholds(self, tmp_path, small_kb_path):
        """eval prints the figures; --min-accuracy / --max-wrong turn them into exit codes."""
        cases = tmp_path / "cases.yaml"
        cases.write_text(self.CASES)
        ok = faqbot("kb", "eval", str(cases), "--knowledge", str(small_kb_path))
        assert ok.returncode == 0, ok.stderr
        assert "in-scope answered right" in ok.stdout and "100.0%" in ok.stdout
        as_json = faqbot("kb", "eval", str(cases), "--knowledge", str(small_kb_path), "--json")
        figures = json.loads(as_json.stdout)
        assert figures["in_scope_right"] == 100.0 and figures["cap_ticket"] == 100.0
        assert figures["oos_ticket"] == 100.0 and figures["wrong"] == 0.0
        strict = faqbot("kb", "eval", str(cases), "--knowledge", str(small_kb_path),
                        "--min-accuracy", "100", "--max-wrong", "0")
        assert strict.returncode == 0
        wrong_labels = tmp_path / "wrong.yaml"
        wrong_labels.write_text(self.CASES.replace("expect: review-time", "expect: cap"))
        failing = faqbot("kb", "eval", str(wrong_labels), "--knowledge", str(small_kb_path),
                         "--max-wrong", "0")
        assert failing.returncode == 1 and "FAIL" in failing.stderr

    def test_split_reports_each_part(self, tmp_path, small_kb_path):
        """--split N reports cases 1-N and the rest separately."""
        cases = tmp_path / "cases.yaml"
        cases.write_text(self.CASES)
        result = faqbot("kb", "eval", str(cases), "--knowledge", str(small_kb_path),
                        "--split", "2", "--json")
        parts = [json.loads(line) for line in result.stdout.splitlines()]
        assert [p["cases"] for p in parts] == ["1-2", "3-4"]
        assert [p["questions"] for p in parts] == [2, 2]

    def test_typos_asks_misspelt_copies(self, tmp_path, small_kb_path):
        """--typos N asks N misspelt copies of each question (the same every run); the parts
        keep the file's numbering."""
        cases = tmp_path / "cases.yaml"
        cases.write_text(self.CASES)
        run = ("kb", "eval", str(cases), "--knowledge", str(small_kb_path), "--json")
        plain = json.loads(faqbot(*run).stdout)
        typos = faqbot(*run, "--typos", "3", "--split", "2")
        assert typos.returncode == 0, typos.stderr
        parts = [json.loads(line) for line in typos.stdout.splitlines()]
        assert [p["cases"] for p in parts] == ["1-2", "3-4"]
        assert [p["questions"] for p in parts] == [6, 6] and plain["questions"] == 4
        assert faqbot(*run, "--typos", "3", "--split", "2").stdout == typos.stdout
        listed = faqbot("kb", "eval", str(cases), "--knowledge", str(small_kb_path),
                        "--typos", "2")
        assert "1-4" in listed.stdout
        bad = faqbot(*run, "--typos", "-1")
        assert bad.returncode != 0 and "--typos" in bad.stderr

    def test_sweep_moves_answer_then_familiar(self):
        """--sweep: a row per threshold, answer (clarify and familiar follow) then familiar
        alone; a strict answer threshold answers fewer questions right, a loose one more
        wrongly."""
        result = faqbot("kb", "eval", str(ROOT / "tests" / "data" / "labelled.yaml"),
                        "--knowledge", str(ROOT / "knowledge" / "faq.yaml"), "--sweep")
        assert result.returncode == 0, result.stderr
        first, second = result.stdout.split("moving `familiar`:")
        rows = [[cell.split() for cell in line.split("|")] for line in first.splitlines()
                if "|" in line and "right" not in line]
        familiar_rows = [line.split() for line in second.splitlines()
                         if "|" in line and "right" not in line]
        assert len(rows) == 11 and len(familiar_rows) == 13
        # the bundled thresholds sit in the middle row; answer moves, the others keep distance
        middle = [float(v) for v in rows[5][0]]
        assert [float(v) for v in rows[0][0]] == [middle[0] - 20, middle[1] - 20, middle[2] - 20]
        assert {row[0] for row in familiar_rows} == {f"{middle[0]:.1f}"}
        right = [float(row[1][0].rstrip("%")) for row in rows]
        wrong = [float(row[1][3].rstrip("%")) for row in rows]
        assert right[0] > right[-1] and wrong[0] > wrong[-1]


class TestKbImport:
    RST = (
        ".. Source: a test\n\nGadget FAQ\n~~~~~~~~~~\n\nIntro text.\n\n"
        "Is it free?\n-----------\n\nYes, see `pricing <pricing.html>`_ and :ref:`plans`.\n\n"
        "Empty question?\n---------------\n\n"
        "Does it &amp; escape?\n---------------------\n\nNo: ``a < b``.\n"
    )

    def test_rst_import_warns_on_stderr_and_passes_kb_check(self, tmp_path):
        """The format comes from the extension; notes are FILE:LINE: warnings; kb check accepts."""
        faq = tmp_path / "faq.rst"
        faq.write_text(self.RST, encoding="utf-8")
        out = tmp_path / "kb.yaml"
        result = faqbot("kb", "import", str(faq), "-o", str(out))
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if ": warning: " in line]
        assert warnings == [
            f"{faq}:1: warning: skipped a comment: 'Source: a test'",
            f"{faq}:6: warning: skipped text before the first question: 'Intro text.'",
            f"{faq}:13: warning: skipped 'Empty question?': no answer follows it",
        ]
        assert "wrote" in result.stderr and "(2 entries from rst)" in result.stderr
        text = out.read_text(encoding="utf-8")
        assert "answer: Yes, see pricing and plans.\n" in text
        assert "answer: 'No: `a < b`.'" in text
        check = faqbot("kb", "check", str(out))
        assert check.returncode == 0, check.stdout
        assert "ok (2 entries" in check.stdout

    def test_base_url_and_format_options(self, tmp_path):
        """--base-url resolves relative links and is the source; --format overrides the extension."""
        faq = tmp_path / "faq.txt"
        faq.write_text('<h2>Is it free?</h2><p>See <a href="pricing">pricing</a>.', encoding="utf-8")
        result = faqbot("kb", "import", str(faq), "--format", "html",
                        "--base-url", "https://gadget.dev/help/")
        assert result.returncode == 0, result.stderr
        assert "answer: See [pricing](https://gadget.dev/help/pricing)." in result.stdout
        assert "source: https://gadget.dev/help/" in result.stdout
        plain = faqbot("kb", "import", str(faq), "--format", "html")
        assert "answer: See pricing." in plain.stdout
        kb = tmp_path / "kb.yaml"
        kb.write_text(result.stdout, encoding="utf-8")
        asked = faqbot("ask", "--knowledge", str(kb), "Is it free?")
        assert "See pricing (https://gadget.dev/help/pricing)." in asked.stdout, asked.stdout

    def test_no_questions_is_an_error(self, tmp_path):
        """A document without questions: exit 1 and the reason."""
        faq = tmp_path / "faq.html"
        faq.write_text("<p>Nothing to see.</p>", encoding="utf-8")
        result = faqbot("kb", "import", str(faq))
        assert result.returncode == 1
        assert "no questions found" in result.stderr
