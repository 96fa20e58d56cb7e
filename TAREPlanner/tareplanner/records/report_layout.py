"""Page layout of the PDF report on matplotlib: A4 pages with the patient's identity in the
header, "page i of n" and the software version in the footer, and a flow of headings,
paragraphs, ruled tables (cells wrapped to their column) and figure panels that starts a new
page when the current one is full. Text is drawn without mathtext, so '$' or '\\' in a
name prints as written."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from .identity import printable

A4_INCHES = (8.27, 11.69)
MARGIN_IN = 0.55
TOP_IN = 0.95          # below the header
BOTTOM_IN = 0.6        # above the footer
#: average glyph width of DejaVu Sans as a fraction of the font size (wrapping estimate,
#: on the wide side so that wrapped text stays inside its cell: lower-case letters and
#: warning codes measure 0.556-0.559 em, words with spaces and digits about 0.50 em)
GLYPH_EM = 0.57
HEADER_GREY = "#e8ecf2"


def wrap(text: str, width_in: float, fontsize: float) -> list[str]:
    """``text`` wrapped to lines that fit ``width_in`` inches at ``fontsize`` points."""
    chars = max(4, int(width_in * 72 / (fontsize * GLYPH_EM)))
    out = []
    for paragraph in str(text).split("\n"):
        # hyphenated codes (whole-normal-liver-limit-scaled) break at their hyphens, not
        # inside a word
        out += textwrap.wrap(paragraph, chars, break_long_words=True,
                             break_on_hyphens=True) or [""]
    return out


@dataclass
class Document:
    """Pages under construction; :meth:`finish` adds headers and footers once the number of
    pages is known."""

    plt: object
    title: str
    header_lines: list[str]
    footer: str
    pages: list = field(default_factory=list)
    y_in: float = 0.0      # distance of the cursor from the top of the page
    #: the section a table belongs to, repeated above its header on a continuation page
    section: str = ""
    #: a section heading not drawn yet: it goes on the page of what follows it, never alone
    #: at the foot of a page (text, font size)
    pending: tuple | None = None

    @property
    def fig(self):
        return self.pages[-1]

    @property
    def width_in(self) -> float:
        return A4_INCHES[0] - 2 * MARGIN_IN

    def new_page(self, heading: str | None = None):
        self.pages.append(self.plt.figure(figsize=A4_INCHES))
        self.y_in = TOP_IN
        if heading:
            self.pending = None
            self.section = heading
            self._draw_heading(heading, 13)
        return self.fig

    def room(self, height_in: float) -> None:
        """A new page unless ``height_in`` fits below the cursor (with the heading waiting
        to be drawn above it, which goes to the new page too)."""
        if self.pending is not None:
            text, size = self.pending
            self.pending = None
            if not self.pages or (self.y_in + self._heading_in(size) + height_in
                                  > A4_INCHES[1] - BOTTOM_IN):
                self.new_page()
            self._draw_heading(text, size)
        if not self.pages or self.y_in + height_in > A4_INCHES[1] - BOTTOM_IN:
            self.new_page()

    def text(self, x_in: float, y_in: float, text: str, **kwargs):
        """Text at inches from the page's left and top edge (no mathtext)."""
        w, h = A4_INCHES
        return self.fig.text(x_in / w, 1 - y_in / h, text, parse_math=False, **kwargs)

    @staticmethod
    def _heading_in(size: float) -> float:
        return 0.08 + size / 72 * 1.45

    def _draw_heading(self, text: str, size: float) -> None:
        self.y_in += 0.08
        self.text(MARGIN_IN, self.y_in, text, fontsize=size, weight="bold", va="top",
                  color="#1f3b5c")
        self.y_in += size / 72 * 1.45

    def heading(self, text: str, size: float = 11) -> None:
        """A section heading, drawn with the first thing placed after it (on that thing's
        page: a heading never stands alone at the foot of a page)."""
        if self.pending is not None:           # a heading with nothing under it
            self.room(0.0)
        self.section = text
        self.pending = (text, size)

    def paragraph(self, text: str, size: float = 8.5, *, indent_in: float = 0.0,
                  colour: str = "black", weight: str = "normal") -> None:
        line_in = size / 72 * 1.35
        for line in wrap(text, self.width_in - indent_in, size):
            self.room(line_in)
            self.text(MARGIN_IN + indent_in, self.y_in, line, fontsize=size, va="top",
                      color=colour, weight=weight)
            self.y_in += line_in
        self.y_in += 0.04

    def table(self, columns: list[str], rows: list[list], widths: list[float], *,
              size: float = 7.5, align: list[str] | None = None,
              emphasis: list[bool] | None = None, title: str | None = None) -> None:
        """A ruled table: a grey header row (repeated on a new page under "``title``
        (continued)", by default the current section's heading), cells wrapped to their
        column; ``widths`` are fractions of the text width; ``align`` 'l' or 'r' per
        column; rows flagged in ``emphasis`` are printed bold and red. No page holds a
        single row of a table: see the body."""
        from matplotlib.patches import Rectangle

        total = sum(widths)
        col_in = [w / total * self.width_in for w in widths]
        align = align or ["l"] * len(columns)
        line_in = size / 72 * 1.3
        pad_in = 0.05

        def cells(values, bold):
            wide = size * (1.1 if bold else 1.0)      # bold glyphs are wider
            wrapped = [wrap(printable(v, 2000) if v is not None else "-", c - 2 * pad_in, wide)
                       for v, c in zip(values, col_in)]
            return wrapped, max(len(w) for w in wrapped) * line_in + 2 * pad_in

        def draw(values, fill=None, bold=False, colour="black"):
            wrapped, height = cells(values, bold)
            x = MARGIN_IN
            w, h = A4_INCHES
            if fill:
                self.fig.patches.append(Rectangle(
                    (MARGIN_IN / w, 1 - (self.y_in + height) / h), self.width_in / w,
                    height / h, transform=self.fig.transFigure, facecolor=fill,
                    edgecolor="none", zorder=0))
            for lines, c, a in zip(wrapped, col_in, align):
                for k, line in enumerate(lines):
                    self.text(x + (c - pad_in if a == "r" else pad_in),
                              self.y_in + pad_in + k * line_in, line, fontsize=size,
                              va="top", ha="right" if a == "r" else "left",
                              weight="bold" if bold else "normal", color=colour)
                x += c
            self.y_in += height
            self.fig.add_artist(self.plt.Line2D(
                [MARGIN_IN / w, (MARGIN_IN + self.width_in) / w],
                [1 - self.y_in / h] * 2, color="#9aa5b1", lw=0.5))

        heights = [cells(row, False)[1] for row in rows]
        header_height = cells(columns, True)[1]
        caption_in = size / 72 * 1.6
        title = title if title is not None else self.section
        bottom = A4_INCHES[1] - BOTTOM_IN

        def caption(continued: bool):
            if title:
                self.text(MARGIN_IN, self.y_in, f"{title} (continued)" if continued else
                          title, fontsize=size, weight="bold", va="top", color="#1f3b5c",
                          gid="table-caption")
                self.y_in += caption_in

        # never a single row alone: a table of up to three rows stays together, a longer
        # one starts with at least two rows and ends with at least two
        keep = sum(heights) if len(rows) <= 3 else sum(heights[:2])
        headed = self.pending is not None      # its section heading comes with it
        before = len(self.pages)
        self.room(header_height + keep)
        if not headed and (len(self.pages) != before or self.y_in <= TOP_IN + 1e-9):
            caption(False)            # a table at the top of a page says what it is
        draw(columns, fill=HEADER_GREY, bold=True)
        n, on_page = len(rows), 0
        for i, row in enumerate(rows):
            height = heights[i]
            last_two = sum(heights[i:i + 2]) if i == n - 2 and n > 3 else height
            if on_page and (self.y_in + height > bottom or self.y_in + last_two > bottom):
                self.new_page()
                caption(True)
                draw(columns, fill=HEADER_GREY, bold=True)
                on_page = 0
            on_page += 1
            strong = bool(emphasis and emphasis[i])
            draw(row, bold=strong, colour="#b00020" if strong else "black")
        self.y_in += 0.12

    def pairs(self, items: list[tuple[str, str]], *, size: float = 8.0,
              key_fraction: float = 0.27) -> None:
        """Label-value lines (a borderless two-column table)."""
        key_in = self.width_in * key_fraction
        line_in = size / 72 * 1.35
        for key, value in items:
            lines = wrap(printable(value, 4000), self.width_in - key_in, size)
            self.room(line_in * len(lines))
            self.text(MARGIN_IN, self.y_in, key, fontsize=size, va="top", weight="bold",
                      color="#333333")
            for k, line in enumerate(lines):
                self.text(MARGIN_IN + key_in, self.y_in + k * line_in, line, fontsize=size,
                          va="top")
            self.y_in += line_in * len(lines) + 0.02
        self.y_in += 0.08

    def axes(self, height_in: float, *, left_in: float = 0.0, width_in: float | None = None,
             new_row: bool = True):
        """Axes of ``height_in`` inches below the cursor (a new page when it does not fit)."""
        if new_row or self.pending is not None:
            self.room(height_in)
        w, h = A4_INCHES
        width_in = self.width_in - left_in if width_in is None else width_in
        ax = self.fig.add_axes([(MARGIN_IN + left_in) / w, 1 - (self.y_in + height_in) / h,
                                width_in / w, height_in / h])
        return ax

    def finish(self) -> list:
        """Headers and footers on every page; returns the pages."""
        if self.pending is not None:           # a last heading with nothing under it
            self.room(0.0)
        n = len(self.pages)
        w, h = A4_INCHES
        for i, fig in enumerate(self.pages, start=1):
            fig.text(MARGIN_IN / w, 1 - 0.3 / h, self.title, fontsize=9, weight="bold",
                     va="top", color="#1f3b5c", parse_math=False, gid="header-title")
            for k, line in enumerate(self.header_lines):
                fig.text(MARGIN_IN / w, 1 - (0.47 + 0.15 * k) / h, line, fontsize=7.5,
                         va="top", parse_math=False, gid="header-identity")
            fig.add_artist(self.plt.Line2D([MARGIN_IN / w, 1 - MARGIN_IN / w],
                                           [1 - 0.83 / h] * 2, color="#1f3b5c", lw=0.8))
            fig.add_artist(self.plt.Line2D([MARGIN_IN / w, 1 - MARGIN_IN / w],
                                           [0.45 / h] * 2, color="#9aa5b1", lw=0.5))
            fig.text(MARGIN_IN / w, 0.3 / h, self.footer, fontsize=6.5, va="center",
                     color="#444444", parse_math=False, gid="footer")
            fig.text(1 - MARGIN_IN / w, 0.3 / h, f"page {i} of {n}", fontsize=7.5,
                     va="center", ha="right", parse_math=False, gid="page-number")
        return self.pages
