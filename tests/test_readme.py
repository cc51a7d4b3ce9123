"""The README's closure example runs as written and does what it says."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_plug_in_your_own_closure_example_runs():
    code = readme_block("## Plug in your own closure")
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
