"""The evaluation report (评标报告) as a PDF in Chinese, ready for the experts to sign.

``render(report)`` turns a ``Report`` (a JSON-ready model: ``Report.model_validate(json)``) into
PDF bytes; ``ca.pades`` adds the experts' signatures afterwards, one incremental update each.
The sections follow the order of the session: tender and lot, committee, preliminary review
(初步评审) with the reasons of every failure, scores (price score, item scores, totals; the
items in tables of ``ITEMS_PER_TABLE`` columns, so any number fits A4), each member's own score
sheets (per member, per bid, per item: so that a member's signature binds what they scored, not
only the committee's aggregate), ranking and recommended
candidates (推荐中标候选人), deviation flags (评分偏差) and how each was resolved, clarifications
(澄清) and dissent (不同意见). A layout fpdf2 cannot make fails with ``report_render_failed``.

The text is set in WenQuanYi Micro Hei (Debian's fonts-wqy-microhei), embedded as a subset so
every reader shows the same glyphs; ``find_cjk_font`` looks in the usual places and asks
fontconfig, and fails with ``report_font_missing`` naming the package to install.

Output is deterministic: the same report gives the same bytes (the creation date is the
report's ``created_at``; fpdf2 derives the file identifier from the content). Library: fpdf2,
pinned in pyproject.toml.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.errors import FPDFException
from fpdf.fonts import TTFFont
from pydantic import BaseModel, ConfigDict

from bidroom.errors import ReportError

FONT_PACKAGE = "fonts-wqy-microhei"
FONT_PATHS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
    Path("/usr/local/share/fonts/wqy-microhei.ttc"),
)
FONT = "wqy"
BODY, SMALL, HEADING, TITLE = 10.5, 9.0, 13.0, 18.0
# Item columns in one score table: with the bidder and, in the last table, price, price score and
# total, an A4 page then still gives an item about four Chinese characters a line at SMALL.
ITEMS_PER_TABLE = 8
HEADINGS = FontFace(fill_color=(230, 230, 230))  # no bold: the font has no bold face

# the model ---------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


WITHDREW = "回避"  # a seat's note for an expert who left it after declaring a conflict


class Seat(_Model):
    seat: str
    venue: str
    expert: str
    note: str = ""  # e.g. 替补 (replacement), 回避 (withdrew)


class Committee(_Model):
    leader: str
    seats: tuple[Seat, ...]


class Review(_Model):
    """One bidder's preliminary review: passed, or failed with the written reasons."""

    bidder: str
    passed: bool
    reasons: tuple[str, ...] = ()


class Item(_Model):
    id: str
    name: str


class Score(_Model):
    """Scores as decimal strings, as bidroom.scoring writes them."""

    bidder: str
    price: str
    price_score: str
    items: dict[str, str]  # item id -> committee score
    total: str


class Sheet(_Model):
    """One expert's own score sheet for one bid, as it stood when the scores were locked (a
    re-score replaces the sheet it corrects): what that expert's signature binds them to."""

    expert: str
    bidder: str
    items: dict[str, str]  # item id -> the expert's score, as they gave it
    total: str  # the total they stated, else the sum of their item scores


class Standing(_Model):
    rank: int
    bidder: str
    total: str


class Flag(_Model):
    expert: str
    bidder: str
    item: str
    kind: str
    resolution: str  # re-scored, or the expert's written reason


class Clarification(_Model):
    bidder: str
    question: str
    answer: str
    answered_at: str = ""


class Dissent(_Model):
    expert: str
    text: str


class Report(_Model):
    tender: str
    lot: str
    title: str
    created_at: dt.datetime
    committee: Committee
    reviews: tuple[Review, ...]
    items: tuple[Item, ...]
    scores: tuple[Score, ...]
    ranking: tuple[Standing, ...]
    sheets: tuple[Sheet, ...] = ()  # every member's own sheets, by member then bid
    recommended: tuple[str, ...]
    flags: tuple[Flag, ...] = ()
    clarifications: tuple[Clarification, ...] = ()
    dissent: tuple[Dissent, ...] = ()


# the font ----------------------------------------------------------------------------------


def find_cjk_font(candidates: Sequence[Path] = FONT_PATHS) -> Path:
    """The WenQuanYi Micro Hei file: a known path, else what fontconfig knows; else raise."""
    for path in candidates:
        if path.is_file():
            return path
    found = _fontconfig("WenQuanYi Micro Hei")
    if found is not None:
        return found
    raise ReportError(
        f"no Chinese font for the report: install the Debian package {FONT_PACKAGE}",
        code="report_font_missing",
        detail={"looked_in": [str(p) for p in candidates], "package": FONT_PACKAGE},
    )


def _fontconfig(family: str) -> Path | None:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    answer = subprocess.run(
        [fc_match, "-f", "%{family}\n%{file}", family], capture_output=True, text=True, check=False
    )
    lines = answer.stdout.splitlines()
    if answer.returncode != 0 or len(lines) != 2 or family not in lines[0]:
        return None  # fc-match always answers something; only the asked family will do
    path = Path(lines[1])
    return path if path.is_file() else None


# rendering ---------------------------------------------------------------------------------


def render(report: Report, font: Path | None = None) -> bytes:
    """The report as PDF bytes, the same bytes for the same report; ReportError
    ``report_render_failed`` if fpdf2 cannot lay it out."""
    font = font or find_cjk_font()
    pdf = FPDF(format="A4")
    try:
        _write(pdf, report, font)
        return bytes(pdf.output())
    except (FPDFException, ValueError) as exc:  # fpdf2 raises both for layout it cannot do
        raise ReportError(
            f"the evaluation report cannot be laid out: {exc}",
            code="report_render_failed",
            detail={"tender": report.tender, "lot": report.lot, "why": str(exc)},
        ) from exc
    finally:
        _close_fonts(pdf)  # output() closes the font files, but a failure never reaches it


def _write(pdf: FPDF, report: Report, font: Path) -> None:
    _document(pdf, report, font)
    _heading_block(pdf, report)
    _committee(pdf, report.committee)
    _reviews(pdf, report.reviews)
    _scores(pdf, report)
    _sheets(pdf, report)
    _ranking(pdf, report)
    _flags(pdf, report.flags)
    _clarifications(pdf, report.clarifications)
    _dissent(pdf, report.dissent)
    _signatures(pdf, report.committee)


def _document(pdf: FPDF, report: Report, font: Path) -> None:
    pdf.set_creation_date(report.created_at)
    pdf.set_title(f"评标报告 {report.tender} {report.lot}")
    pdf.set_creator("bidroom")
    pdf.set_lang("zh-CN")
    pdf.add_font(FONT, fname=str(font), collection_font_number=0)
    pdf.set_font(FONT, size=BODY)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()


def _close_fonts(pdf: FPDF) -> None:
    for face in pdf.fonts.values():
        if isinstance(face, TTFFont):
            face.close()  # closing twice is harmless


def _section(pdf: FPDF, title: str) -> None:
    pdf.ln(4)
    pdf.set_font(FONT, size=HEADING)
    pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=BODY)


def _para(pdf: FPDF, text: str) -> None:
    pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")


def _table(
    pdf: FPDF,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[float] | None = None,
) -> None:
    """A table whose header row is repeated at the top of every page it runs onto; ``widths``
    are relative column widths (equal if None)."""
    pdf.set_font(FONT, size=SMALL)
    with pdf.table(
        text_align="LEFT", line_height=5.5, headings_style=HEADINGS, col_widths=widths
    ) as table:
        for row in (header, *rows):
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.set_font(FONT, size=BODY)


def _heading_block(pdf: FPDF, report: Report) -> None:
    pdf.set_font(FONT, size=TITLE)
    pdf.cell(0, 12, "评标报告", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=BODY)
    _para(pdf, f"项目：{report.title}")
    _para(pdf, f"招标编号：{report.tender}    标段：{report.lot}")
    _para(pdf, f"报告日期：{report.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC")


def _committee(pdf: FPDF, committee: Committee) -> None:
    _section(pdf, "一、评标委员会")
    rows = [(s.seat, s.venue, s.expert, s.note) for s in committee.seats]
    _table(pdf, ("席位", "评标场地", "专家", "备注"), rows)
    _para(pdf, f"评标委员会组长：{committee.leader}")


def _reviews(pdf: FPDF, reviews: Sequence[Review]) -> None:
    _section(pdf, "二、初步评审")
    rows = [
        (r.bidder, "通过" if r.passed else "不通过", "；".join(r.reasons) or "—") for r in reviews
    ]
    _table(pdf, ("投标人", "结论", "理由"), rows)


def _scores(pdf: FPDF, report: Report) -> None:
    """One table per ITEMS_PER_TABLE items, each with the bidder; price, price score and total
    close the last, so any number of items fits the page width."""
    _section(pdf, "三、详细评审得分")
    items, step = report.items, ITEMS_PER_TABLE
    parts = [items[at : at + step] for at in range(0, len(items), step)] or [()]
    for number, part in enumerate(parts, start=1):
        if len(parts) > 1:
            first = (number - 1) * step + 1
            _para(pdf, f"评分项 {first}–{first + len(part) - 1}（共 {len(items)} 项）")
        _score_table(pdf, report.scores, part, last=number == len(parts))


def _sheets(pdf: FPDF, report: Report) -> None:
    """Each member's own sheet per bid (the committee's scores above are their aggregate): a row
    per member and bid, the member named in it; the items cut as in the score tables, the
    member's total closing the last."""
    if not report.sheets:
        return
    _para(pdf, "各评标专家评分表（每位专家对每个投标人各评分项的评分，以各自数字证书签名提交）：")
    items, step = report.items, ITEMS_PER_TABLE
    parts = [items[at : at + step] for at in range(0, len(items), step)] or [()]
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        header = ("专家", "投标人", *[i.name for i in part], *(("合计",) if last else ()))
        rows = [
            (
                s.expert,
                s.bidder,
                *[s.items.get(i.id, "—") for i in part],
                *((s.total,) if last else ()),
            )
            for s in report.sheets
        ]
        _table(pdf, header, rows, (1.5, 2.5, *[1.0] * len(part), *((1.0,) if last else ())))


def _score_table(pdf: FPDF, scores: Sequence[Score], items: Sequence[Item], last: bool) -> None:
    closing = ("投标报价", "价格分", "总分") if last else ()
    header = ("投标人", *[i.name for i in items], *closing)
    rows = [
        (
            s.bidder,
            *[s.items.get(i.id, "—") for i in items],
            *((s.price, s.price_score, s.total) if last else ()),
        )
        for s in scores
    ]
    widths = (2.5, *[1.0] * len(items), *((1.6, 1.0, 1.0) if last else ()))
    _table(pdf, header, rows, widths)


def _ranking(pdf: FPDF, report: Report) -> None:
    _section(pdf, "四、排名与推荐中标候选人")
    _table(
        pdf, ("名次", "投标人", "总分"), [(str(s.rank), s.bidder, s.total) for s in report.ranking]
    )
    named = "、".join(report.recommended) or "无"
    _para(pdf, f"推荐中标候选人（按顺序）：{named}")


def _flags(pdf: FPDF, flags: Sequence[Flag]) -> None:
    _section(pdf, "五、评分偏差及处理")
    if not flags:
        _para(pdf, "无。")
        return
    rows = [(f.expert, f.bidder, f.item, f.kind, f.resolution) for f in flags]
    _table(pdf, ("专家", "投标人", "评分项", "偏差类型", "处理结果"), rows)


def _clarifications(pdf: FPDF, clarifications: Sequence[Clarification]) -> None:
    _section(pdf, "六、澄清")
    if not clarifications:
        _para(pdf, "无。")
    for c in clarifications:
        when = f"（{c.answered_at}）" if c.answered_at else ""
        _para(pdf, f"{c.bidder}  问：{c.question}")
        _para(pdf, f"答{when}：{c.answer}")


def _dissent(pdf: FPDF, dissent: Sequence[Dissent]) -> None:
    _section(pdf, "七、不同意见")
    if not dissent:
        _para(pdf, "无。")
    for d in dissent:
        _para(pdf, f"{d.expert}：{d.text}")


def _signatures(pdf: FPDF, committee: Committee) -> None:
    _section(pdf, "八、评标委员会成员签字")
    names = "、".join(s.expert for s in committee.seats if s.note != WITHDREW)
    _para(pdf, f"本报告由以下专家以数字证书逐一签署（PAdES 电子签名，附可信时间戳）：{names}")
