"""Other inputs (txt, md, docx, a JSONL corpus) flow through the same chunking, ids and fidelity check."""
import json
import os
import re

import pdfplumber
import pytest

from kit.io import read_json
from kit.prep import PrepOptions, prep
from kit.prep.inputs import find_inputs, read_text, text_blocks
from kit.prep.pdf import read_pdf
from kit.prep.structure import sections_of
from kit.prep.text import SENTENCE_END

from conftest import DATA, LAW_PDFS

STARD = DATA / "retrieval" / "stard_dev" / "corpus.jsonl"


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f]


def _prep(inputs, out, **kw):
    lines = []
    result = prep(inputs, out, PrepOptions(progress=False, workers=1, **kw), echo=lines.append)
    return result, (_rows(out) if out.exists() else []), lines


def test_text_and_markdown_files(tmp_path):
    (tmp_path / "规章.txt").write_text("第一章 总则\n第一条 为了规范管理，制定本办法。\n第二条 本办法适用于全体员工。\n",
                                       encoding="utf-8")
    (tmp_path / "说明.md").write_text("# 员工手册\n\n## 一、考勤\n\n员工应当按时上下班。迟到三次记旷工一天。\n\n"
                                      "| 项目 | 天数 |\n|---|---|\n| 年假 | 5 |\n| 病假 | 10 |\n", encoding="utf-8")
    (tmp_path / "旧文件.txt").write_bytes("第一条 本制度由行政部负责解释。".encode("gb18030"))
    result, rows, lines = _prep([tmp_path], tmp_path / "out" / "corpus.jsonl")
    assert result.files == 3 and result.files_failed == 0 and not lines
    by_doc = {}
    for r in rows:
        by_doc.setdefault(r["doc"], []).append(r)
    assert [r["title"] for r in by_doc["规章"]] == ["第一章 总则 第一条至第二条"]
    md = by_doc["说明"]
    assert md[0]["title"] == "员工手册 一、考勤"
    assert md[0]["text"] == "员工应当按时上下班。迟到三次记旷工一天。\n项目 | 天数\n年假 | 5\n病假 | 10"
    assert by_doc["旧文件"][0]["text"] == "第一条 本制度由行政部负责解释。"   # GB18030 read as such
    assert all(v >= 0.995 for v in result.fidelity.values()), result.fidelity


def test_hard_line_breaks_of_text_copied_out_of_a_pdf_are_joined_like_the_pdf(tmp_path):
    blocks = lambda text: [b.text for b in text_blocks(text.split("\n"))]
    # a break inside a word is joined, however few lines the text has
    assert blocks("第一百三十三条 民事法律行为是民事主体通过意思表示设立、变更、终止民\n事法律关系的行为。") == [
        "第一百三十三条 民事法律行为是民事主体通过意思表示设立、变更、终止民事法律关系的行为。"]
    # a blank line, a line that ends a sentence (even a full one) and a title shorter than the text's lines
    # keep their breaks; an article marker starts a paragraph
    text = ("民事法律行为\n"
            "第一百三十四条 民事法律行为可以基于双方或者多方的意思表示一致成立，也可以基于单方的意思表示成立。\n"
            "法人、非法人组织依照法律或者章程规定的议事方式和表决程序作出决议的，该决议行为成\n立。\n"
            "\n"
            "第一百三十五条 民事法律行为可以采用书面形式、口头形式或者其他形式；法律、行政法\n"
            "规规定或者当事人约定采用特定形式的，应当采用特定形式。\n"
            "第一百三十六条 民事法律行为自成立时生效，但是法律另有规定或者当事人另有约定的除外。\n"
            "行为人非依法律规定或者未经对方同意，不得擅自变更或者解除民事法律行为。")
    assert blocks(text) == [
        "民事法律行为",
        "第一百三十四条 民事法律行为可以基于双方或者多方的意思表示一致成立，也可以基于单方的意思表示成立。",
        "法人、非法人组织依照法律或者章程规定的议事方式和表决程序作出决议的，该决议行为成立。",
        "第一百三十五条 民事法律行为可以采用书面形式、口头形式或者其他形式；法律、行政法规规定或者当事人约定采用特定形式的，"
        "应当采用特定形式。",
        "第一百三十六条 民事法律行为自成立时生效，但是法律另有规定或者当事人另有约定的除外。",
        "行为人非依法律规定或者未经对方同意，不得擅自变更或者解除民事法律行为。"]
    # a typed text (one paragraph a line) is left as it is; Markdown paragraphs are joined the same way
    typed = "公司简介\n本公司成立于2001年，主营软件开发。\n主要业务\n软件开发、系统集成和技术咨询服务。"
    assert blocks(typed) == typed.split("\n")
    (tmp_path / "a.md").write_text("# 民事法律行为\n\n民事法律行为是民事主体通过意思表示设立、变更、终止民\n事法律关系的行为。\n",
                                   encoding="utf-8")
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    result, rows, _ = _prep([tmp_path], tmp_path / "out" / "corpus.jsonl")
    md = [r for r in rows if r["doc"] == "a" and r["title"] == "民事法律行为"]
    assert md[0]["text"] == "民事法律行为是民事主体通过意思表示设立、变更、终止民事法律关系的行为。"
    assert all(v >= 0.995 for v in result.fidelity.values()), result.fidelity


def test_a_law_copied_out_of_its_pdf_into_a_text_file_reads_like_the_pdf(shared_dir, tmp_path):
    """劳动合同法's text layer saved as TXT (what copying out of a PDF viewer gives) breaks lines inside words
    ("民办" / "非企业单位"): the TXT gives the PDF's articles, and the only lines of its chunks that stop
    mid-sentence are those of the PDF's chunks (its table of contents), the document's title (the PDF path drops
    it as a running header) and the page numbers that the copy carries (—6—)."""
    with pdfplumber.open(LAW_PDFS / "中华人民共和国劳动合同法_2012修正.pdf") as pdf:
        text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "民办\n非企业单位" in text
    (tmp_path / "劳动合同法.txt").write_text(text, encoding="utf-8")
    txt = sections_of(read_text(tmp_path / "劳动合同法.txt", "txt"))
    from_pdf = sections_of(read_pdf(LAW_PDFS / "中华人民共和国劳动合同法_2012修正.pdf", ocr="off"))
    articles = lambda sections: [u.article for s in sections for u in s.units if u.kind == "article"]
    assert articles(txt) == articles(from_pdf) and len(articles(txt)) == 98
    assert [s.title for s in txt if s.title] == [s.title for s in from_pdf if s.title]
    def cut_lines(path):
        result, rows, _ = _prep([path], tmp_path / path.with_suffix(".jsonl").name)
        body = "\n".join(r["text"] for r in rows)
        return result, body, [ln for ln in body.split("\n") if not ln.endswith(SENTENCE_END)]

    result, body, cut = cut_lines(tmp_path / "劳动合同法.txt")
    assert "民办非企业单位" in body
    # the copy's page numbers (—6—) are dropped on purpose and the sentences they cut are whole again
    assert not re.search(r"—\d+—", body) and "本法第三十九条和第四十条第一项" in body
    assert min(result.fidelity.values()) >= 0.995, result.fidelity
    _, _, pdf_cut = cut_lines(LAW_PDFS / "中华人民共和国劳动合同法_2012修正.pdf")
    assert "目 录" in pdf_cut and cut == ["中华人民共和国劳动合同法"] + pdf_cut, cut


def test_page_numbers_of_a_pdf_copy_are_dropped_wherever_the_page_broke():
    from kit.prep.inputs import drop_page_numbers

    lines = ["除劳动者有本法第三十九条和第", "—6—", "四十条第一项规定的情形外。", "", "- 7 -", "", "第四十条 乙",
             "第 8 页 共 20 页", "9/20", "2024", "iv", "—", "表 3"]
    kept, dropped = drop_page_numbers(lines)
    assert dropped == ["—6—", "- 7 -", "第 8 页 共 20 页", "9/20"]
    # a bare number, a roman numeral, a lone dash can be the text itself anywhere in a file: they stay
    assert kept == ["除劳动者有本法第三十九条和第", "四十条第一项规定的情形外。", "第四十条 乙", "2024", "iv", "—", "表 3"]


@pytest.mark.parametrize("folder", ["laws", "annual_reports", "manuals"])
def test_every_shared_pdf_copied_into_text_with_page_numbers_loses_only_them(shared_dir, tmp_path, folder):
    """Every PDF of ../shared (not the broken ones) as a user's TXT copy: its pages' text with a page number line
    (—N—) at each page break. No page number is left in a chunk, no other text is lost (fidelity), and no chunk
    line is cut where a page broke mid-sentence unless the PDF's own chunks cut it there too (checked by count)."""
    pdfs = sorted((DATA / "pdfs" / folder).glob("*.pdf"))
    assert pdfs
    for pdf_path in pdfs:
        with pdfplumber.open(pdf_path) as pdf:
            pages = [p.extract_text() or "" for p in pdf.pages]
        if not any(pages):
            continue   # a scan: no text layer to copy
        copy = tmp_path / folder / (pdf_path.stem + ".txt")
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text("".join(f"{t}\n—{n}—\n" for n, t in enumerate(pages, 1)), encoding="utf-8")
        result, rows, lines = _prep([copy], tmp_path / folder / (pdf_path.stem + ".jsonl"))
        assert result.files_failed == 0, lines
        body = "\n".join(r["text"] for r in rows)
        assert not re.search(r"^—\d+—$", body, re.M), pdf_path.name
        assert min(result.fidelity.values()) >= 0.995, (pdf_path.name, result.fidelity)


def test_word_documents_keep_headings_paragraphs_and_tables_in_order(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("差旅费管理办法", level=1)
    d.add_heading("第一章 总则", level=2)
    d.add_paragraph("第一条 为加强差旅费管理，制定本办法。")
    table = d.add_table(rows=3, cols=2)
    for row, (a, b) in zip(table.rows, [("城市", "住宿标准"), ("北京", "500元"), ("上海", "500元")]):
        row.cells[0].text, row.cells[1].text = a, b
    d.add_paragraph("第二条 超标准部分由个人承担。")
    d.save(tmp_path / "差旅.docx")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    result, rows, lines = _prep([tmp_path], tmp_path / "corpus.jsonl")
    assert result.files == 2 and result.files_failed == 1
    assert [ln for ln in lines if "broken.docx" in ln] == [ln for ln in lines if "not a Word .docx file" in ln]
    assert len(lines) == 1
    (chunk,) = rows
    assert chunk["title"] == "差旅费管理办法 第一章 总则 第一条至第二条"
    assert chunk["text"] == ("第一条 为加强差旅费管理，制定本办法。\n城市 | 住宿标准\n北京 | 500元\n上海 | 500元\n"
                             "第二条 超标准部分由个人承担。")


def test_a_beir_corpus_enters_as_documents_with_source_ids(shared_dir, tmp_path):
    if not STARD.exists():
        pytest.skip("stard_dev corpus missing")
    sample = tmp_path / "stard.jsonl"
    source = [json.loads(x) for x in STARD.read_text(encoding="utf-8").splitlines()[:300]]
    sample.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in source) + "\n", encoding="utf-8")
    result, rows, _ = _prep([sample], tmp_path / "corpus.jsonl", max_tokens=120)
    assert result.files_failed == 0 and result.fidelity[str(sample)] >= 0.995
    ids = {r["_id"] for r in source}
    assert {r["source_id"] for r in rows} == ids                  # every row reaches the corpus, by its id
    by_id = {r["_id"]: r for r in source}
    for r in rows:                                               # a chunk holds text of one row only
        assert r["text"].replace("\n", "") in by_id[r["source_id"]]["text"].replace("\n", "")
        assert r["title"].startswith(by_id[r["source_id"]]["title"]) and r["doc"] == by_id[r["source_id"]]["title"]
    long_rows = [i for i in ids if len(by_id[i]["text"]) > 200]
    assert long_rows and all(sum(1 for r in rows if r["source_id"] == i) >= 2 for i in long_rows)


def test_rows_sharing_a_doc_form_one_document_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "a1", "doc": "手册", "title": "第一章 总则", "text": "第一条 为了规范管理，制定本办法。"}, ensure_ascii=False),
        json.dumps({"id": "a2", "doc": "手册", "title": "第二章 附则", "text": "第二条 本办法自发布之日起施行。"}, ensure_ascii=False),
        json.dumps({"_id": 7, "text": "没有标题的一行，以编号命名。"}, ensure_ascii=False),
        json.dumps({"id": "bad", "title": "缺少正文"}, ensure_ascii=False),
        "{not json",
    ]) + "\n", encoding="utf-8")
    result, rows, lines = _prep([path], tmp_path / "out.jsonl")
    assert lines == [f"{path}:4: row has no 'text'", f"{path}:5: not valid JSON (Expecting property name "
                     f"enclosed in double quotes at column 2)"]
    assert [(r["doc"], r["source_id"], r["page_start"]) for r in rows] == [("手册", "a1", 1), ("手册", "a2", 2),
                                                                          ("7", "7", 1)]
    assert rows[1]["title"] == "第二章 附则 第二条"


def test_folders_skip_readme_and_hidden_files_but_named_files_are_read(tmp_path):
    for name in ("README.md", "SOURCE.txt", ".hidden.txt", "~$lock.docx", "notes.csv", "a.txt"):
        (tmp_path / name).write_text("内容。", encoding="utf-8")
    files, notes = find_inputs([tmp_path], ["README*", "SOURCE*"])
    assert [f.name for f in files] == ["a.txt"] and not notes
    result, _, _ = _prep([tmp_path], tmp_path / "out" / "corpus.jsonl")
    assert result.files == 1 and result.excluded == ["README.md", "SOURCE.txt"]
    assert "left out by exclude patterns: 2 files (README.md, SOURCE.txt)" in result.summary()
    files, _ = find_inputs([tmp_path / "README.md"], ["README*"])
    assert [f.name for f in files] == ["README.md"]


def test_a_file_name_that_is_not_utf8_does_not_stop_the_batch(shared_dir, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    good = LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"
    (folder / "good.pdf").write_bytes(good.read_bytes())
    odd = os.path.join(os.fsencode(str(folder)), "合同".encode("gbk") + b".txt")   # a GBK name from Windows
    with open(odd, "wb") as f:
        f.write("第一条 本合同自双方签字之日起生效。".encode("utf-8"))
    with open(os.path.join(os.fsencode(str(folder)), "法规".encode("gbk") + b".pdf"), "wb") as f:
        f.write(good.read_bytes())
    with open(os.path.join(os.fsencode(str(folder)), "坏".encode("gbk") + b".pdf"), "wb") as f:
        f.write(b"not a pdf")
    result, rows, lines = _prep([folder], tmp_path / "corpus.jsonl", ocr="off")
    assert result.files == 4 and result.files_failed == 1
    named = [ln for ln in lines if "file name is not valid UTF-8" in ln]
    assert len(named) == 3 and all("\ufffd" in ln for ln in named)
    assert len([ln for ln in lines if "not a PDF" in ln]) == 1
    assert {r["doc"] for r in rows} == {"good", "合同".encode("gbk").decode("utf-8", "replace"),
                                        "法规".encode("gbk").decode("utf-8", "replace")}
    assert json.dumps(read_json(tmp_path / "corpus.stats.json"))   # the stats name the files too


def test_a_named_file_of_another_type_is_one_line(tmp_path):
    (tmp_path / "旧合同.doc").write_bytes(b"\xd0\xcf\x11\xe0 old Word binary")
    (tmp_path / "a.txt").write_text("第一条 本合同自签字之日起生效。", encoding="utf-8")
    result, rows, lines = _prep([tmp_path / "旧合同.doc", tmp_path / "a.txt"], tmp_path / "corpus.jsonl")
    assert result.files_failed == 1 and len(rows) == 1
    assert lines == [f"{tmp_path / '旧合同.doc'}: not a document prep reads (.doc): PDF, TXT, MD, DOCX or JSONL"]
