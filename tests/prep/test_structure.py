"""Structure: the titles headings give their chunks, and where a law article starts (also when OCR glued its
number to its text)."""
import re

import pdfplumber
import pypdfium2
import pytest

from kit.prep import PrepOptions
from kit.prep.chunk import chunk_document
from kit.prep.clean import RawPage, clean_pages
from kit.prep.document import Document, Page
from kit.prep.layout import Line
from kit.prep.pdf import read_pdf
from kit.prep.structure import heading_title, sections_of

from conftest import LAW_PDFS

LABOUR = LAW_PDFS / "中华人民共和国劳动合同法_2012修正.pdf"


def _articles(doc) -> list[str]:
    return [u.article for s in sections_of(doc) for u in s.units if u.kind == "article"]


# --- headings set with letter spacing ------------------------------------------------------------------

def test_letter_spaced_heading_words_lose_their_spaces_but_the_numbering_keeps_its_own():
    assert heading_title("第一编 总 则") == "第一编 总则"
    assert heading_title("第二章 自 然 人") == "第二章 自然人"
    assert heading_title("第三节  拘　役") == "第三节 拘役"          # wide and ideographic spaces too
    assert heading_title("第十条 自 然 人") == "第十条 自然人"
    assert heading_title("一、 总 则") == "一、 总则"
    assert heading_title("（一） 总 则") == "（一） 总则"
    # a space between words of several characters stands for a lost 、 (公司法_1999: 公司合并、分立): it stays
    assert heading_title("第七章 公司合并 分立") == "第七章 公司合并 分立"
    assert heading_title("第七节优先股相关情况") == "第七节优先股相关情况"
    doc = Document(path="a.pdf", name="a", pages=[Page.from_text(
        1, "第一编 总 则\n第二章 自 然 人\n第十三条 自然人从出生时起到死亡时止，具有民事权利能力。")])
    (chunk,) = chunk_document(doc, PrepOptions(max_tokens=200), len)
    assert chunk.title == "第一编 总则 第二章 自然人 第十三条"


def test_titles_of_the_letter_spaced_criminal_law_read_as_a_user_types_them(shared_dir):
    """刑法_1997 sets its 编/章/节 headings letter-spaced ("第一编 总 则", "第三章 刑 罚", "第三节 拘 役")."""
    titles = {s.title for s in sections_of(read_pdf(LAW_PDFS / "中华人民共和国刑法_1997.pdf", ocr="off"))}
    assert "第一编 总则 第三章 刑罚 第三节 拘役" in titles
    assert "第二编 分则 第一章 危害国家安全罪" in titles
    single = re.compile(r"(?:^| )[\u4e00-\u9fff](?= |$)")     # a one-character "word": a letter-spaced run
    assert not [t for t in titles if single.search(t)]
    # 公司法_1999's spaces stand for lost 、 and stay
    titles = {s.title for s in sections_of(read_pdf(LAW_PDFS / "中华人民共和国公司法_1999修正.pdf", ocr="off"))}
    assert {"第七章 公司合并 分立", "第三章 股份有限公司的设立和组织机构 第三节 董事会 经理"} <= titles


# --- article numbers glued to their text (OCR) ---------------------------------------------------------

# What RapidOCR read from pages 5 and 6 of 劳动合同法_2012 (rendered at 144 dpi): the ideographic space after
# each article number is gone ("第十五条以完成…"). "第三十九条和第四十条…" is the wrapped tail of a sentence
# ("…劳动者没有本法" / "第三十九条和…"): a cross-reference, not an article.
OCR_PAGES = [
    ["定退休年龄不足十年的；",
     "（三）连续订立二次固定期限劳动合同，且劳动者没有本法",
     "第三十九条和第四十条第一项、第二项规定的情形，续订劳动合",
     "同的。",
     "用人单位自用工之日起满一年不与劳动者订立书面劳动合",
     "同的，视为用人单位与劳动者已订立无固定期限劳动合同。",
     "第十五条以完成一定工作任务为期限的劳动合同，是指用",
     "人单位与劳动者约定以某项工作的完成为合同期限的劳动合同。",
     "用人单位与劳动者协商一致，可以订立以完成一定工作任务",
     "为期限的劳动合同。",
     "第十六条劳动合同由用人单位与劳动者协商一致，并经用",
     "人单位与劳动者在劳动合同文本上签字或者盖章生效。",
     "劳动合同文本由用人单位和劳动者各执一份。",
     "第十七条劳动合同应当具备以下条款：",
     "（一）用人单位的名称、住所和法定代表人或者主要负责人;",
     "（二）劳动者的姓名、住址和居民身份证或者其他有效身份",
     "证件号码；",
     "（三）劳动合同期限；",
     "（四）工作内容和工作地点；",
     "（五）工作时间和休息休假；",
     "（六）劳动报酬；",
     "（七）社会保险；"],
    ["（八）劳动保护、劳动条件和职业危害防护；",
     "（九）法律、法规规定应当纳入劳动合同的其他事项。",
     "劳动合同除前款规定的必备条款外，用人单位与劳动者可以",
     "约定试用期、培训、保守秘密、补充保险和福利待遇等其他事项。",
     "第十八条劳动合同对劳动报酬和劳动条件等标准约定不",
     "明确，引发争议的，用人单位与劳动者可以重新协商；协商不成",
     "的，适用集体合同规定；没有集体合同或者集体合同未规定劳动",
     "报酬的，实行同工同酬；没有集体合同或者集体合同未规定劳动",
     "条件等标准的，适用国家有关规定。",
     "第十九条劳动合同期限三个月以上不满一年的，试用期不",
     "得超过一个月；劳动合同期限一年以上不满三年的，试用期不得",
     "超过二个月；三年以上固定期限和无固定期限的劳动合同，试用",
     "期不得超过六个月。",
     "同一用人单位与同一劳动者只能约定一次试用期。",
     "以完成一定工作任务为期限的劳动合同或者劳动合同期限",
     "不满三个月的，不得约定试用期。",
     "试用期包含在劳动合同期限内。劳动合同仅约定试用期的，",
     "试用期不成立，该期限为劳动合同期限。",
     "第二十条劳动者在试用期的工资不得低于本单位相同岗",
     "位最低档工资或者劳动合同约定工资的百分之八十，并不得低于",
     "用人单位所在地的最低工资标准。",
     "第二十一条在试用期中，除劳动者有本法第三十九条和第",
     "-6一"],
]
OCR_ARTICLES = ["第十五条", "第十六条", "第十七条", "第十八条", "第十九条", "第二十条", "第二十一条"]


def _ocr_doc(pages: list[list[str]]) -> Document:
    raw = [RawPage(n, [Line(0, t) for t in lines], "\n".join(lines), ocr=True) for n, lines in enumerate(pages, 5)]
    return Document(path="scan.pdf", name="scan", pages=clean_pages(raw))


def test_article_numbers_that_ocr_glued_to_their_text_start_articles():
    doc = _ocr_doc(OCR_PAGES)
    assert _articles(doc) == OCR_ARTICLES
    sections = sections_of(doc)
    units = {u.article: u.text for s in sections for u in s.units if u.kind == "article"}
    assert units["第十七条"].startswith("第十七条劳动合同应当具备以下条款：\n（一）")
    assert units["第十七条"].endswith("（八）劳动保护、劳动条件和职业危害防护；\n（九）法律、法规规定应当纳入劳动合同的其他事项。\n"
                                   "劳动合同除前款规定的必备条款外，用人单位与劳动者可以约定试用期、培训、保守秘密、补充保险和福利待遇等其他事项。")
    # the wrapped cross-reference stays inside the sentence it continues, before the first article
    before = [u.text for u in sections[0].units if not u.article]
    assert "（三）连续订立二次固定期限劳动合同，且劳动者没有本法第三十九条和第四十条第一项、第二项规定的情形，续订劳动合同的。" in before
    chunks = chunk_document(doc, PrepOptions(max_tokens=200), len)
    assert [c.title for c in chunks if "条" in c.title][0].startswith("第十五条")


def test_a_glued_number_inside_a_sentence_is_a_cross_reference_not_an_article():
    pages = [["第三条 劳动者有下列情形之一的，用人单位可以解除劳动合同，但劳动者符合本法",
              "第四十二条规定情形的除外：",
              "（一）在试用期间被证明不符合录用条件的；",
              "第四条 用人单位依照本法",
              "第三条规定解除劳动合同的，应当依照本法",
              "第十条有关规定向劳动者支付经济补偿。"]]
    assert _articles(_ocr_doc(pages)) == ["第三条", "第四条"]


ARTICLE_COUNTS = {   # each law's real number of articles, all found by prep on the PDFs' text layers
    "中华人民共和国公司法_1999修正.pdf": 230,
    "中华人民共和国刑法_1997.pdf": 452,
    "中华人民共和国劳动合同法_2012修正.pdf": 98,
    "中华人民共和国劳动合同法实施条例_excerpt.pdf": 38,
    "中华人民共和国宪法_2004修正.pdf": 138,
    "中华人民共和国就业促进法_2007.pdf": 69,
}


def test_the_article_count_of_every_law_pdf_with_a_text_layer_is_unchanged(shared_dir):
    """Glued article numbers now open articles (after a sentence end), and the count on the text layers must
    not move: the same counts as before that change. Their only lines that start with a glued number are the
    three wrapped cross-references (公司法 "第五十四条第一款…", 劳动合同法 "第三十九条和…", "第四十二条第二项…"),
    each after a line that ends mid-sentence."""
    assert sorted(p.name for p in LAW_PDFS.glob("*.pdf")) == sorted(ARTICLE_COUNTS)
    for name, count in ARTICLE_COUNTS.items():
        articles = _articles(read_pdf(LAW_PDFS / name, ocr="off"))
        assert (len(articles), len(set(articles))) == (count, count), name


@pytest.mark.slow
def test_articles_of_a_scanned_statute_page_are_articles(shared_dir, tmp_path):
    """Pages 5 and 6 of 劳动合同法 rendered into an image-only PDF and read back by RapidOCR: every article that
    starts on them is an article of its own."""
    pdf = pypdfium2.PdfDocument(str(LABOUR))
    images = [pdf[i].render(scale=150 / 72).to_pil().convert("RGB") for i in (4, 5)]
    images[0].save(tmp_path / "scan.pdf", save_all=True, append_images=images[1:], resolution=150)
    with pdfplumber.open(tmp_path / "scan.pdf") as scan:
        assert not scan.pages[0].extract_text().strip()
    doc = read_pdf(tmp_path / "scan.pdf", ocr="auto")
    assert doc.ocr_pages == 2
    assert _articles(doc) == OCR_ARTICLES
