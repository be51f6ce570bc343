"""`preproc explain` and the README's code list come from one source, and the examples work."""

from __future__ import annotations

import pytest

from preproc import CODES, ConfigError, check, load_config
from preproc.commands import main
from preproc.commands._catalogue import EXPLANATIONS, markdown

from conftest import ROOT


def test_every_code_is_explained():
    assert set(EXPLANATIONS) == set(CODES)


@pytest.mark.parametrize("code", sorted(c for c, e in EXPLANATIONS.items() if e.is_config))
def test_config_example_triggers_exactly_its_code(code, write_config):
    path = write_config(EXPLANATIONS[code].example)
    if code == "config-invalid":
        with pytest.raises(ConfigError, match="did you mean"):
            load_config(path)
        return
    assert check(load_config(path), sample=0).codes == {code}


def test_cli_explain(capsys):
    assert main(["explain", "range-underuse"]) == 0
    out = capsys.readouterr().out
    assert "range-underuse (default severity: warning)" in out and "1/4095" in out
    assert main(["explain", "range-undruse"]) == 2
    assert "did you mean `range-underuse`" in capsys.readouterr().err
    assert main(["explain"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(CODES)


def test_readme_lists_the_codes_from_the_same_source():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown() in readme, "regenerate with: python -m preproc.commands._catalogue --markdown"
