"""The pure core imports neither Slack nor database code (the direction of imports holds)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

CORE = ["bot.knowledge", "bot.yamlcheck", "bot.normalize", "bot.matching", "bot.evaluation",
        "bot.importer", "bot.smalltalk", "bot.maintain", "bot.gaps", "bot.stats", "bot.reload",
        "bot.gcpause"]
EDGES = ("slack_bolt", "slack_sdk", "sqlalchemy", "psycopg", "gunicorn")


class TestLayers:
    @pytest.mark.parametrize("module", CORE)
    def test_core_module_stays_pure(self, module):
        """Importing a core module in a fresh interpreter loads no Slack or database package."""
        code = (f"import sys, {module}; "
                f"print(','.join(m for m in {EDGES!r} if m in sys.modules))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                cwd=ROOT, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == ""
