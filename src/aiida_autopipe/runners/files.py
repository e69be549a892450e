"""What the runner scripts share: reading the input file, writing results.json, the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

RESULTS_FILE = "results.json"
EXIT_INVALID_INPUT = 2


def read_config(path: Path) -> dict:
    """The runner's settings from a YAML or JSON file."""
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def finish(workdir: Path, code: int, results: dict) -> tuple[int, dict]:
    """Write results.json (always, so the parser can say what went wrong) and pass the exit status on."""
    (workdir / RESULTS_FILE).write_text(json.dumps(results, indent=1))
    return code, results


def command_line(
    prog: str,
    description: str,
    default_input: str,
    run: Callable[[dict, Path], tuple[int, dict]],
    summary: Callable[[dict], str],
    argv: list[str] | None = None,
) -> int:
    """Read the input file named on the command line, run, print one summary line, return the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("input", nargs="?", default=default_input, help="YAML or JSON input file")
    path = Path(parser.parse_args(argv).input)
    try:
        config = read_config(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"{prog}: cannot read {path}: {exc}", file=sys.stderr)
        finish(path.parent, EXIT_INVALID_INPUT, {"status": "invalid_input", "message": str(exc)})
        return EXIT_INVALID_INPUT
    code, results = run(config or {}, path.parent)
    print(f"{prog}: {summary(results)}".rstrip())
    return code
