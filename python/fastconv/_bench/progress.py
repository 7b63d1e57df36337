"""A progress bar for the command line: tqdm when installed, else a plain counter on stderr.

    with progress(total=44, desc="bench") as bar:
        bar.set_postfix_str("r3x3_64@56 fwd")
        bar.update()
        bar.write("a message that does not break the bar")
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def have_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class _Counter:
    """The fallback: '\\r desc [k/total] postfix' on a terminal, a line every ~10 % otherwise."""

    def __init__(self, total: Optional[int], desc: str, file: TextIO, unit: str,
                 leave: bool = True, disable: bool = False):
        self.total, self.desc, self.file, self.unit = total, desc, file, unit
        self.leave, self.disable = leave, disable
        self.n = 0
        self.postfix = ""
        self.t0 = time.perf_counter()
        self._tty = bool(getattr(file, "isatty", lambda: False)())
        self._last_pct = -1
        self._last_draw = 0.0
        self._drawn = False

    def _line(self) -> str:
        el = time.perf_counter() - self.t0
        tot = f"/{self.total}" if self.total else ""
        rate = f" {self.n / el:.1f} {self.unit}/s" if el > 0 and self.n else ""
        post = f" {self.postfix}" if self.postfix else ""
        return f"{self.desc}: [{self.n}{tot}] {el:.1f}s{rate}{post}"

    def _draw(self, force: bool = False) -> None:
        if self.disable:
            return
        now = time.perf_counter()
        if self._tty:
            if force or now - self._last_draw > 0.1:
                self.file.write("\r" + self._line().ljust(79) + "\x1b[K")
                self.file.flush()
                self._last_draw, self._drawn = now, True
            return
        pct = int(10 * self.n / self.total) if self.total else -1
        if force or (pct != self._last_pct and pct >= 0):
            self._last_pct = pct
            self.file.write(self._line() + "\n")
            self.file.flush()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._draw(force=bool(self.total) and self.n >= self.total)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s
        if self._tty:
            self._draw()

    def write(self, msg: str) -> None:
        if self._tty and self._drawn:
            self.file.write("\r\x1b[K")
        self.file.write(msg + "\n")
        self.file.flush()
        if self._tty and self._drawn:
            self._draw(force=True)

    def close(self) -> None:
        if self.disable:
            return
        if self._tty:
            if self.leave:
                self._draw(force=True)
                self.file.write("\n")
            else:
                self.file.write("\r\x1b[K")
            self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: Optional[int] = None, desc: str = "", unit: str = "it",
             file: Optional[TextIO] = None, leave: bool = True, disable: bool = False):
    """A tqdm bar on stderr (or the fallback counter when tqdm is not installed)."""
    file = sys.stderr if file is None else file
    try:
        from tqdm import tqdm
    except ImportError:
        return _Counter(total, desc, file, unit, leave, disable)
    return tqdm(total=total, desc=desc, unit=unit, file=file, leave=leave, disable=disable,
                dynamic_ncols=True)
