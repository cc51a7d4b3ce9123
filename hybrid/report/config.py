"""What a ``hybrid bench`` report runs: its sizes (:class:`ReportConfig`) and its LES rows, each a
closure name with an optional refresh interval and options (:func:`parse_entry`)."""
from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["ReportConfig", "parse_entry", "row_label", "CLOSURES", "LEARNED", "STOCHASTIC",
           "SHIPPED_MODELS", "DEFAULT_ROWS", "DEMO_ROWS"]

CLOSURES = ("none", "smagorinsky", "leith", "dynamic-smagorinsky", "oracle", "ldm-mean", "ldm",
            "pcdm", "slt-closure")
LEARNED = ("ldm-mean", "ldm", "pcdm", "slt-closure")   # closures with a model card (training data)
STOCHASTIC = ("ldm", "pcdm", "slt-closure")
SHIPPED_MODELS = {"ldm-mean": "ldm-kolmogorov", "ldm": "ldm-kolmogorov", "pcdm": "pcdm-kolmogorov",
                  "slt-closure": "slt-closure-kolmogorov"}
DEFAULT_ROWS = ("none", "smagorinsky", "leith", "dynamic-smagorinsky", "oracle", "ldm-mean",
                "ldm@1", "ldm@5", "ldm@10", "ldm@5/steps=5/precision=bfloat16", "pcdm@5",
                "slt-closure@10")
DEMO_ROWS = ("none", "smagorinsky", "leith", "dynamic-smagorinsky", "oracle", "ldm-mean", "ldm",
             "slt-closure@10")


def parse_entry(entry: str, every: int, names: tuple[str, ...] = CLOSURES
                ) -> tuple[str, int, tuple]:
    """``'name'`` → (name, every, ()); ``'name@k'`` → (name, k, ()); options of the closure
    follow after slashes, ``'ldm@5/steps=5/precision=bfloat16'`` → (…, (('precision',
    'bfloat16'), ('steps', 5))), values read as JSON when they parse. Raises ValueError naming
    the entry; ``names``: the closures allowed. A ``path=`` option comes last and keeps its
    slashes: ``'ldm/steps=5/path=runs/m'`` → (…, (('path', 'runs/m'), ('steps', 5)))."""
    text, sep, path = str(entry).partition("/path=")
    head, *opts = text.split("/")
    if sep:
        opts.append("path=" + path)
    name, _, k = head.partition("@")
    if name not in names:
        raise ValueError(f"closures: {entry!r} is not among {names} (optionally '@k', the "
                         f"refresh interval in LES steps, and '/key=value' options)")
    kw = {}
    for o in opts:
        key, sep, value = o.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"closures: options of {entry!r} must be '/key=value', got {o!r}")
        try:
            v = json.loads(value)
        except json.JSONDecodeError:
            v = value
        kw[key] = v if v is None or isinstance(v, (bool, int, float, str)) else value
    options = tuple(sorted(kw.items()))
    if not k and not head.endswith("@"):
        return name, int(every), options
    if not k.isdigit() or int(k) < 1:
        raise ValueError(f"closures: the refresh interval of {entry!r} must be an integer ≥ 1")
    return name, int(k), options


def row_label(name: str, k: int, options: tuple, every: int, entries) -> str:
    """'ldm' alone, or 'ldm every 5' when the row's closure appears with several intervals or
    options; options are appended, 'ldm every 5 steps=5 precision=bfloat16'."""
    several = sum(str(e).partition("@")[0].partition("/")[0] == name for e in entries) > 1
    label = f"{name} every {k}" if several or k != every else name
    return " ".join([label] + [f"{key}={v}" for key, v in options])


@dataclass
class ReportConfig:
    """Sizes of a report. ``demo`` and ``default`` are the two shipped sizes."""
    preset: str = "kolmogorov"
    dns_n: tuple = (256, 512)
    dns_dt: tuple = (1e-3, 1e-3)
    les_n: int = 64
    les_dt: float = 5e-3
    every: int = 5
    members: int = 4
    seed: int = 1
    spinup: float = 5.0
    t: float = 5.0
    output_every: float = 0.25
    cost_t: float = 0.2
    closures: tuple = DEFAULT_ROWS
    ensemble_members: int = 16
    ensemble_rows: tuple = ("ldm", "slt-closure@10")

    @classmethod
    def size(cls, name: str) -> "ReportConfig":
        if name == "demo":
            return cls(dns_n=(256,), dns_dt=(1e-3,), members=2, spinup=2.0, t=2.0,
                       closures=DEMO_ROWS, ensemble_members=8)
        if name == "default":
            return cls()
        raise ValueError(f"size must be 'demo' or 'default', got {name!r}")

    def check(self) -> None:
        if len(self.dns_n) != len(self.dns_dt) or not self.dns_n:
            raise ValueError("dns_n and dns_dt must be non-empty and of equal length")
        for name in ("spinup", "t", "output_every", "cost_t", "les_dt"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for entry in self.closures:
            name, k, options = parse_entry(entry, self.every)
            if options and name not in LEARNED:
                raise ValueError(f"closures: options are for the learned closures "
                                 f"({', '.join(LEARNED)}), got {entry!r}")
            ratio = self.les_dt * k / self.dns_dt[0]
            if name == "oracle" and abs(ratio - round(ratio)) > 1e-9:
                raise ValueError(f"the oracle's refresh interval les_dt·every = "
                                 f"{self.les_dt * k:g} must be a multiple of the reference DNS "
                                 f"dt {self.dns_dt[0]:g}")
        if len({parse_entry(e, self.every) for e in self.closures}) != len(self.closures):
            raise ValueError(f"closures lists a row twice: {self.closures}")
        if sum(parse_entry(e, self.every)[0] == "oracle" for e in self.closures) > 1:
            raise ValueError(f"closures: one oracle row at most (the DNS records the exact term "
                             f"at one refresh interval), got {self.closures}")
        if isinstance(self.ensemble_members, bool) or not isinstance(self.ensemble_members, int) \
                or self.ensemble_members < 2:
            raise ValueError(f"ensemble_members must be an integer ≥ 2, got "
                             f"{self.ensemble_members!r}")
        for e in self.ensemble_rows:
            if parse_entry(e, self.every)[0] not in STOCHASTIC:
                raise ValueError(f"ensemble_rows: {e!r} is not a stochastic closure "
                                 f"({', '.join(STOCHASTIC)}): its members would all be equal")
        for name, k, options in {parse_entry(e, self.every) for e in self.closures}:
            if name == "slt-closure":                # its history means the data's interval
                from closures.slt.closure import check_refresh
                from closures.slt.closure_files import read_closure_card
                card = read_closure_card(dict(options).get("path") or SHIPPED_MODELS[name])
                try:
                    check_refresh(card.get("refresh"), k, self.les_dt)
                except ValueError as e:
                    raise ValueError(f"closures: {e}") from None
        for card in self.training_cards():
            gen = card.get("data", {}).get("generation", {})
            if gen.get("seed") == self.seed and card.get("data", {}).get("preset") == self.preset:
                raise ValueError(f"seed {self.seed}: model {card.get('name')} was trained on "
                                 f"{self.preset} DNS data made with this seed, so the online runs "
                                 f"would start from its training states; pick another seed")

    def ensemble_entries(self) -> list[str]:
        """The entries of ``ensemble_rows`` whose closure is also a row of the table."""
        names = {parse_entry(e, self.every)[0] for e in self.closures}
        return [e for e in self.ensemble_rows if parse_entry(e, self.every)[0] in names]

    def training_cards(self) -> list[dict]:
        """The model cards of the learned closures among the rows (default models)."""
        names = {parse_entry(e, self.every)[0] for e in self.closures}
        if not names & set(LEARNED):
            return []
        from closures.slt.closure_files import read_closure_card
        return [read_closure_card(m)
                for m in sorted({SHIPPED_MODELS[n] for n in names & set(LEARNED)})]

    def rows(self) -> list[tuple[str, int, str, dict]]:
        """(closure name, refresh interval, row label, closure options) per LES row."""
        out = []
        for e in self.closures:
            name, k, options = parse_entry(e, self.every)
            out.append((name, k, row_label(name, k, options, self.every, self.closures),
                        dict(options)))
        return out

    def oracle_every(self) -> int | None:
        """The oracle's refresh interval in LES steps (None: no oracle row)."""
        ks = [k for name, k, _, _ in self.rows() if name == "oracle"]
        return ks[0] if ks else None

