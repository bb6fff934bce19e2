"""A tiny PNG bar-chart rasteriser (zlib + struct): matplotlib is not a dependency of this project.

Text uses a built-in 5x7 bitmap font (lowercase, digits, a little punctuation), scaled up for legibility.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

Color = tuple[int, int, int]

_FONT_ROWS = {
    "a": "00000 00000 01110 00001 01111 10001 01111", "b": "10000 10000 11110 10001 10001 10001 11110",
    "c": "00000 00000 01110 10000 10000 10001 01110", "d": "00001 00001 01111 10001 10001 10001 01111",
    "e": "00000 00000 01110 10001 11111 10000 01110", "f": "00110 01001 01000 11100 01000 01000 01000",
    "g": "00000 01111 10001 10001 01111 00001 01110", "h": "10000 10000 10110 11001 10001 10001 10001",
    "i": "00100 00000 01100 00100 00100 00100 01110", "j": "00010 00000 00110 00010 00010 10010 01100",
    "k": "10000 10000 10010 10100 11000 10100 10010", "l": "01100 00100 00100 00100 00100 00100 01110",
    "m": "00000 00000 11010 10101 10101 10001 10001", "n": "00000 00000 10110 11001 10001 10001 10001",
    "o": "00000 00000 01110 10001 10001 10001 01110", "p": "00000 00000 11110 10001 11110 10000 10000",
    "q": "00000 00000 01111 10001 01111 00001 00001", "r": "00000 00000 10110 11001 10000 10000 10000",
    "s": "00000 00000 01111 10000 01110 00001 11110", "t": "01000 01000 11100 01000 01000 01001 00110",
    "u": "00000 00000 10001 10001 10001 10011 01101", "v": "00000 00000 10001 10001 10001 01010 00100",
    "w": "00000 00000 10001 10001 10101 10101 01010", "x": "00000 00000 10001 01010 00100 01010 10001",
    "y": "00000 00000 10001 10001 01111 00001 01110", "z": "00000 00000 11111 00010 00100 01000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    " ": "00000 00000 00000 00000 00000 00000 00000", "_": "00000 00000 00000 00000 00000 00000 11111",
    ".": "00000 00000 00000 00000 00000 01100 01100", ",": "00000 00000 00000 00000 01100 00100 01000",
    "/": "00001 00001 00010 00100 01000 10000 10000", "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000", "-": "00000 00000 00000 11111 00000 00000 00000",
    "%": "11000 11001 00010 00100 01000 10011 00011", ":": "00000 01100 01100 00000 01100 01100 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000", "@": "01110 10001 00001 01101 10101 10101 01110",
}
FONT = {ch: [[c == "1" for c in row] for row in rows.split()] for ch, rows in _FONT_ROWS.items()}


class Canvas:
    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.width, self.height = width, height
        self.pixels = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        run = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            self.pixels[y][3 * x0:3 * x1] = run

    def text(self, x: int, y: int, text: str, scale: int = 2, color: Color = (0, 0, 0)) -> None:
        for i, ch in enumerate(text.lower()):
            glyph = FONT.get(ch, FONT[" "])
            for gy, row in enumerate(glyph):
                for gx, on in enumerate(row):
                    if on:
                        px = x + (i * 6 + gx) * scale
                        self.rect(px, y + gy * scale, px + scale, y + (gy + 1) * scale, color)

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        return len(text) * 6 * scale

    def save(self, path: Path) -> None:
        raw = b"".join(b"\x00" + bytes(row) for row in self.pixels)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                         + chunk(b"IEND", b""))


PALETTE: Sequence[Color] = ((46, 125, 50), (21, 101, 192), (239, 108, 0), (120, 120, 120), (142, 36, 170),
                            (0, 131, 143))


def bar_chart(path: Path, title: str, bars: Sequence[tuple[str, float, str]], width: int = 900) -> None:
    """Horizontal bars: (label, value, annotation); one colour per bar, value axis from zero."""
    label_w = max(Canvas.text_width(label) for label, _, _ in bars) + 30
    bar_h, gap, top = 40, 18, 70
    height = top + len(bars) * (bar_h + gap) + 30
    canvas = Canvas(width, height)
    canvas.text(20, 20, title, scale=3)
    longest = max(v for _, v, _ in bars) or 1.0
    room = width - label_w - 20 - max(Canvas.text_width(a) for _, _, a in bars) - 20
    for i, (label, value, note) in enumerate(bars):
        y = top + i * (bar_h + gap)
        canvas.text(20, y + bar_h // 2 - 7, label)
        length = max(2, int(room * value / longest))
        canvas.rect(label_w, y, label_w + length, y + bar_h, PALETTE[i % len(PALETTE)])
        canvas.text(label_w + length + 10, y + bar_h // 2 - 7, note)
    canvas.rect(label_w - 2, top - 8, label_w, height - 22, (0, 0, 0))
    canvas.save(path)
