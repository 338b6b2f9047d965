"""Test PDFs made with reportlab: its built-in Adobe-GB1 CID font (STSong-Light) needs no font file, so the
layouts below are made the same way on any machine. Each is a layout that real Chinese documents have and
that damaged text before: shaded/boxed article numbers, a framed paragraph, two columns, a table over a
page break."""
from __future__ import annotations

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph, SimpleDocTemplate, Spacer, Table
from reportlab.platypus import TableStyle

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
CN = "零一二三四五六七八九十"
STYLE = ParagraphStyle("zh", fontName=FONT, fontSize=11, leading=16, wordWrap="CJK")


def cn_number(n: int) -> str:
    if n < 10:
        return CN[n]
    tens, ones = divmod(n, 10)
    return (CN[tens] if tens > 1 else "") + "十" + (CN[ones] if ones else "")


def article_body(n: int) -> str:
    return (f"有下列情形之一的，第{cn_number(n)}项所称的当事人应当依照本法规定履行相应义务，"
            f"不得以任何理由拒绝或者拖延；造成他人损害的，应当依法承担赔偿责任，并赔偿第{n}号登记簿记载的全部损失。")


def _wrap(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)]


def shaded_articles(path, articles: int = 14) -> list[str]:
    """A statute whose article numbers sit in shaded, framed boxes with a rule closing the box's line (the
    layout that pdfplumber's default find_tables() turns into one-row "tables"). Articles run over the page
    break. Returns the articles as they read."""
    c = canvas.Canvas(str(path), pagesize=A4)
    w, h = A4
    y = h - 72
    c.setFont(FONT, 14)
    c.drawString(200, y, "第一章 总则")
    y -= 63   # so that an article runs over the page break
    texts = []
    for n in range(1, articles + 1):
        number = f"第{cn_number(n)}条"
        lines = _wrap(article_body(n), 38)
        texts.append(f"{number} {article_body(n)}")
        for i, line in enumerate(lines):
            if y < 80:
                c.showPage()
                y = h - 72
            c.setFont(FONT, 11)
            if i == 0:
                c.setFillColor(colors.lightgrey)
                c.rect(70, y - 4, 62, 16, fill=1, stroke=1)          # shaded box behind the number
                c.setFillColor(colors.black)
                c.rect(70, y - 4, w - 140, 16, fill=0, stroke=1)     # the box's frame runs along the line
                c.drawString(72, y, number)
                c.drawString(136, y, line)
            else:
                c.drawString(72, y, line)
            y -= 20
        y -= 6
    c.save()
    return texts


def framed_paragraph(path) -> tuple[str, str, str]:
    """Text, a multi-line paragraph inside a frame (and a shaded title bar), text."""
    before = "本制度自发布之日起施行，由人力资源部负责解释。"
    framed = ("特别提示：员工在办理离职手续前，应当将所保管的公司财产、文件资料和电子数据全部交还，"
              "并由部门负责人签字确认；未办理交接手续擅自离职的，公司将依法追究其责任，由此造成的损失由员工承担。")
    after = "附件一列明了交接清单的格式，各部门可以根据实际情况补充。"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont(FONT, 11)
    c.drawString(72, 760, before)
    lines = _wrap(framed, 36)
    top = 735
    c.setFillColor(colors.lightgrey)
    c.rect(66, top - 4, 440, 16, fill=1, stroke=1)
    c.setFillColor(colors.black)
    c.rect(66, top - 8 - 20 * len(lines), 440, 20 * len(lines) + 24, fill=0, stroke=1)
    c.drawString(72, top, "重要提示")
    for i, line in enumerate(lines):
        c.drawString(72, top - 20 * (i + 1), line)
    c.drawString(72, top - 20 * len(lines) - 40, after)
    c.save()
    return before, "重要提示" + framed, after


def two_columns(path) -> tuple[str, list[str], list[str]]:
    """A full-width title, then two columns of running text (left column first when read)."""
    left = [f"左栏第{cn_number(i)}段：公司应当建立健全内部控制制度，明确各部门的职责权限，"
            f"保证财务报告的真实、准确、完整，防止舞弊行为的发生，第{i}次检查结果应当存档备查。" for i in range(1, 5)]
    right = [f"右栏第{cn_number(i)}段：董事会负责内部控制的建立健全和有效实施，监事会对董事会建立与实施"
             f"内部控制进行监督，经理层负责组织领导企业内部控制的日常运行，第{i}季度报告应当及时披露。"
             for i in range(1, 5)]
    title = "内部控制评价报告"
    doc = BaseDocTemplate(str(path), pagesize=A4, leftMargin=50, rightMargin=50, topMargin=60, bottomMargin=60)
    w, h = A4
    col = (w - 100 - 24) / 2
    frames = [Frame(50, 60, w - 100, h - 180, id="title", showBoundary=0)]
    doc.addPageTemplates([PageTemplate(id="p", frames=[
        Frame(50, h - 120, w - 100, 60, id="head"),
        Frame(50, 60, col, h - 190, id="left"),
        Frame(50 + col + 24, 60, col, h - 190, id="right")])])
    del frames
    from reportlab.platypus import FrameBreak
    story = [Paragraph(title, ParagraphStyle("t", parent=STYLE, fontSize=16, leading=20)), FrameBreak()]
    for p in left:
        story += [Paragraph(p, STYLE), Spacer(1, 6)]
    story.append(FrameBreak())
    for p in right:
        story += [Paragraph(p, STYLE), Spacer(1, 6)]
    doc.build(story)
    return title, left, right


def long_table(path, rows: int = 70) -> tuple[str, list[list[str]], str]:
    """Text, a ruled table of ``rows`` rows that runs over a page break (header repeated), text."""
    before = "三、主要会计数据和财务指标如下表所示，单位为人民币元。"
    after = "四、上述数据已经会计师事务所审计，审计意见为标准无保留意见。"
    data = [["项目", "本年金额", "上年金额"]] + [
        [f"第{i}项费用", f"{i * 1234.5:,.2f}", f"{i * 987.25:,.2f}"] for i in range(1, rows + 1)]
    doc = SimpleDocTemplate(str(path), pagesize=A4)
    table = Table(data, repeatRows=1, colWidths=[160, 120, 120])
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT), ("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    doc.build([Paragraph(before, STYLE), Spacer(1, 8), table, Spacer(1, 8), Paragraph(after, STYLE)])
    return before, data, after
