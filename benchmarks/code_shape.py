"""The shape of ``src/missrec``: modules and lines per package, the largest modules and the
longest functions. A report to read, not a rule: a long module that does one job reads
better whole than split to fit a number.

    python benchmarks/code_shape.py [--top N] [--json] [SRC]
"""

from __future__ import annotations

import argparse
import ast
import json
from dataclasses import asdict, dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "missrec"


@dataclass(frozen=True)
class Sized:
    name: str
    lines: int


def functions(name: str, text: str) -> list[Sized]:
    """Every function and method of a module (``module:line name``), with its length from
    ``def`` to its last line, docstring included."""
    return [Sized(f"{name}:{node.lineno} {node.name}()", node.end_lineno - node.lineno + 1)
            for node in ast.walk(ast.parse(text, filename=name))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def shape(src: Path = SRC, top: int = 10) -> dict:
    """Packages (modules, lines), the ``top`` largest modules and longest functions."""
    packages: dict[str, list[int]] = {}
    modules, funcs = [], []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        text = path.read_text()
        n = len(text.splitlines())
        package = rel.parts[0] if len(rel.parts) > 1 else "(top level)"
        counts = packages.setdefault(package, [0, 0])
        counts[0] += 1
        counts[1] += n
        modules.append(Sized(str(rel), n))
        funcs += functions(str(rel), text)
    by_size = sorted(modules, key=lambda s: (-s.lines, s.name))[:top]
    by_length = sorted(funcs, key=lambda s: (-s.lines, s.name))[:top]
    return {"packages": {k: {"modules": v[0], "lines": v[1]} for k, v in sorted(packages.items())},
            "total": {"modules": len(modules), "lines": sum(m.lines for m in modules)},
            "largest_modules": [asdict(s) for s in by_size], "longest_functions": [asdict(s) for s in by_length]}


def render(report: dict) -> str:
    out = ["package            modules    lines"]
    out += [f"{name:18s} {v['modules']:7d} {v['lines']:8d}" for name, v in report["packages"].items()]
    out.append(f"{'total':18s} {report['total']['modules']:7d} {report['total']['lines']:8d}")
    out += ["", "largest modules"] + [f"  {s['lines']:5d}  {s['name']}" for s in report["largest_modules"]]
    out += ["", "longest functions"] + [f"  {s['lines']:5d}  {s['name']}" for s in report["longest_functions"]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", type=Path, default=SRC)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = shape(args.src, args.top)
    print(json.dumps(report, indent=2) if args.json else render(report))


if __name__ == "__main__":
    main()
