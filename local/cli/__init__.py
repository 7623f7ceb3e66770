"""The developer CLI, `python -m local COMMAND` (main.py builds the parser; commands.py the commands that reach a
running stack through its API; demo.py `make demo`)."""
