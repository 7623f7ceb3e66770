#!/usr/bin/env bash
# Prints the path of a working python3.13 interpreter, or explains what to install and exits 1.
set -u
if command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
  command -v python3.13; exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  for candidate in "$(pyenv root)"/versions/3.13*/bin/python3.13; do
    if [ -x "$candidate" ] && "$candidate" -c 'import sys' 2>/dev/null; then echo "$candidate"; exit 0; fi
  done
fi
cat >&2 <<'MSG'
error: Python 3.13 not found (the Lambda runtime is python3.13).
Install it with one of:
  pyenv install 3.13        (then re-run make)
  apt-get install python3.13 python3.13-venv
MSG
exit 1
