"""``python -m jmod.port SRC.py [-o OUT.py] [--diff] [--check]``."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from jmod.port import port_source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jmod.port",
        description="Port a torch model file to jmod: rewrites what docs/porting.md's table lists and marks "
        "what it cannot translate with '# jmod.port: <why>'.",
    )
    parser.add_argument("src", help="the torch source file")
    parser.add_argument("-o", "--output", help="write the ported file here (default: print it)")
    parser.add_argument("--diff", action="store_true", help="print a unified diff instead of the file")
    parser.add_argument("--check", action="store_true", help="exit with status 1 if any line is left for a human")
    args = parser.parse_args(argv)
    src = Path(args.src)
    result = port_source(src.read_text())
    if args.diff:
        sys.stdout.writelines(
            difflib.unified_diff(
                src.read_text().splitlines(keepends=True),
                result.code.splitlines(keepends=True),
                fromfile=str(src),
                tofile=args.output or f"{src.stem}_jmod.py",
            )
        )
    if args.output:
        Path(args.output).write_text(result.code)
    elif not args.diff:
        sys.stdout.write(result.code)
    print(result.summary(), file=sys.stderr)
    return 1 if (args.check and result.left) else 0


if __name__ == "__main__":
    sys.exit(main())
