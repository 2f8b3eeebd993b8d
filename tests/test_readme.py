"""The README's configuration reference is generated from the config models: keep them equal."""

from pathlib import Path

from monitor.docs import BEGIN, END, reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_config_reference_is_current() -> None:
    text = README.read_text()
    assert BEGIN in text and END in text, "README lost its generated configuration reference markers"
    current = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert current == reference().strip(), "run `make docs` (python -m monitor.docs --write README.md)"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
