"""Running headers, footers and page numbers go (and are counted); everything else stays."""
from kit.prep.clean import RawPage, clean_pages
from kit.prep.layout import Line


def _raw(number, texts):
    return RawPage(number, [Line(i, t) for i, t in enumerate(texts)], "\n".join(texts))


def test_running_headers_footers_and_page_numbers_are_dropped_and_counted():
    """Every page-number form and a header whose date/url/page counter changes per page."""
    numbers = ["-1-", "第2页", "3/20", "- 4 -", "—5—", "第 6 页 共 20 页"]
    topics = ["工资支付", "休息休假", "社会保险", "劳动安全", "职业培训", "争议处理"]
    raw, bodies = [], []
    for i, (number, topic) in enumerate(zip(numbers, topics), start=1):
        body = [f"本页讲{topic}的规定。", f"用人单位应当依法办理{topic}事项。", f"劳动者对{topic}有异议的可以申诉。"]
        raw.append(_raw(i, [f"file://G:\\法规\\刑法\\page{i}.htm 2002-9-{i}",
                            f"某某股份有限公司 2019 年年度报告全文 {i}", *body, number]))
        bodies.append("".join(body))
    pages = clean_pages(raw)
    assert [p.text.replace("\n", "") for p in pages] == bodies
    assert pages[0].dropped_top.startswith("file://") and "年度报告全文 1" in pages[0].dropped_top
    assert [p.dropped_bottom for p in pages] == numbers


def test_a_lone_number_inside_a_page_is_text():
    """A year or an amount alone on a line in the middle of a page is content, not a page number."""
    words = ["甲", "乙", "丙"]
    pages = clean_pages([_raw(i, [f"{w}标题", f"{w}收入", "2019", "同比增长", "12", f"{w}说明。", str(i)])
                         for i, w in enumerate(words, start=1)])
    assert pages[0].text.replace("\n", "") == "甲标题甲收入2019同比增长12甲说明。"
    assert pages[0].dropped_bottom == "1"


def test_table_rows_stay_rows_in_place():
    lines = [Line(0, "一、主要数据"), Line(1, "项目 | 2019年 | 2018年", "row"), Line(2, "收入 | 1.0 | 2.0", "row"),
             Line(3, "以上数据经过审计。")]
    (page,) = clean_pages([RawPage(1, lines, "")])
    assert [(b.kind, b.text) for b in page.blocks] == [
        ("par", "一、主要数据"), ("row", "项目 | 2019年 | 2018年"), ("row", "收入 | 1.0 | 2.0"), ("par", "以上数据经过审计。")]
