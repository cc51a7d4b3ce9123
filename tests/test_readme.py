"""The README and docs/ say what is true: its examples run, its commands parse, its links and
the results files its numbers come from exist, and it stays a short page for users."""
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
HISTORY = re.compile(r"\b(session|issue\s*#?\d+|the review)\b", re.I)


def readme_block(heading: str, lang: str = "python") -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def command_lines(text: str, program: str) -> list[list[str]]:
    """Every command line starting with ``program`` in the code blocks of ``text``, with
    backslash continuations joined and trailing comments removed, split like a shell."""
    out = []
    for block in code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith(program + " "):
                out.append(shlex.split(line)[1:])
    return out


def links(page: Path) -> list[str]:
    return re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())


def test_plug_in_your_own_closure_example_runs():
    code = readme_block("### The closure hook")
    assert len(code.strip().splitlines()) <= 30
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    s, clo = ns["s"], ns["s"].closure
    assert s.step_count == 200 and clo.every == 5
    assert s.closure_calls == 40
    assert np.all(np.isfinite(s.vorticity))
    # it is registered under its name, and the damping term removes energy on balance
    from closures import get_closure
    assert isinstance(get_closure("backscatter"), ns["StochasticBackscatter"])
    assert np.all(s.budget_summary()["energy_closure"] < 0)


def test_python_api_example_runs_on_a_small_grid(capsys):
    """The API block as written, on 32² and for a fraction of the time (same calls)."""
    code = readme_block("## Python API")
    small = code
    for a, b in (("n=256", "n=32"), ("t_end=5.0", "t_end=0.5"), ("every=0.5", "every=0.25"),
                 ("b.step(1000)", "b.step(10)")):
        assert a in small, a
        small = small.replace(a, b)
    ns: dict = {}
    exec(compile(small, "README.md", "exec"), ns)
    s, b = ns["s"], ns["b"]
    assert s.vorticity.shape == (8, 32, 32) and abs(s.t - 0.5) <= s.dt / 2   # run's contract
    times = [float(t) for t in re.findall(r"^(\d\S*) \[", capsys.readouterr().out, re.M)]
    np.testing.assert_allclose(times, [0, 0.25, 0.5], atol=s.dt)   # one callback per 'every'
    assert b.zonal_mean_u().shape == (4, 64)


def test_every_hybrid_command_shown_parses():
    from hybrid.cli import build_parser
    parser = build_parser()
    lines = [cmd for page in PAGES for cmd in command_lines(page.read_text(), "hybrid")]
    assert len(lines) >= 12
    for argv in lines:
        if argv[-1] == "...":
            continue
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"'hybrid {' '.join(argv)}' shown in the docs does not parse")
    # and the command table lists exactly the parser's commands
    table = set(re.findall(r"^\| `hybrid (\w+)", README.read_text(), re.M))
    sub = next(a for a in parser._actions if a.dest == "command" or a.choices)
    assert table == set(sub.choices)


def test_make_targets_and_python_version_are_real():
    text = README.read_text()
    make = (ROOT / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", "\n".join(code_blocks(text)), re.M):
        assert re.search(rf"^{target}:", make, re.M), target
    setup = (ROOT / "setup.py").read_text()
    version = re.search(r'python_requires=">=(3\.\d+)"', setup).group(1)
    assert f"Python ≥ {version}" in text
    assert (ROOT / "LICENSE").is_file() and 'license_files=["LICENSE"]' in setup


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_stay_inside_the_repository_and_exist(page):
    text = page.read_text()
    assert "http://" not in text and "https://" not in text
    for target in links(page):
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_project_history_words(page):
    found = HISTORY.findall(page.read_text())
    assert not found, found


def test_readme_is_short_and_each_study_page_names_its_results_files():
    assert len(README.read_text().splitlines()) <= 250
    studies = [p for p in DOCS if "benchmarks/results/" in p.read_text()]
    assert len(studies) >= 4
    for page in studies:
        text = page.read_text()
        assert "Command" in text or "command" in text
        files = [t for t in links(page) if "benchmarks/results/" in t]
        assert files, page.name
        assert all((page.parent / t).exists() for t in files)


def test_results_headlines_are_the_numbers_of_the_pages_they_link():
    """Each number in the README's results table appears on the page that row links to."""
    text = README.read_text()
    section = text[text.index("## Results"):]
    rows = re.findall(r"^\| [^|]+ \| ([^|]+) \| \[[^]]+\]\(([^)]+)\) \|$", section, re.M)
    assert len(rows) >= 5
    for headline, target in rows:
        page = (ROOT / target).read_text()
        for number in re.findall(r"\d+\.\d+", headline):
            assert number in page, (number, target)
