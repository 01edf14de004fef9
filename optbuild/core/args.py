"""Argument parsing for the verbs: a usage error is one `optbuild: error:` line, like every
other error, not argparse's usage block and exit code 2."""

from __future__ import annotations

import argparse
from typing import NoReturn

from optbuild.errors import OptbuildError


class Parser(argparse.ArgumentParser):
    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, exit_on_error=False)

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        raise OptbuildError(f"{self.prog}: {message} (usage: {usage})")
