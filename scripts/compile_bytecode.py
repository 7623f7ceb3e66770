"""Compiles every Python file under the given folders to bytecode a Lambda cold start can use as it is.

`sam build` ships sources alone (its pip workflow unpacks wheels without compiling them), and Lambda's code folders
are read-only: without bytecode in the package every cold start compiles each module it imports, and keeps nothing.
Bytecode checked by timestamp would not help: `sam deploy` zips every file dated 1980, so no timestamp would match.
Checked by the source's hash (PEP 552), it is used wherever the source is the one it was compiled from.

Usage: python scripts/compile_bytecode.py FOLDER...   (`make build` runs it on .aws-sam/build)
"""

import compileall
import py_compile
import sys
from pathlib import Path

LAMBDA_PYTHON = (3, 13)  # the functions' runtime (template.yaml): bytecode is read by the minor version that wrote it


def compile_folders(folders: list[Path]) -> bool:
    """Whether every file compiled (workers=0: as many processes as cores)."""
    return all(
        compileall.compile_dir(
            folder, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
        )
        for folder in folders
    )


if __name__ == "__main__":
    if sys.version_info[:2] != LAMBDA_PYTHON:
        sys.exit(f"error: run with Python {'.'.join(map(str, LAMBDA_PYTHON))}, the functions' runtime")
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(0 if compile_folders([Path(folder) for folder in sys.argv[1:]]) else 1)
