"""Text rules: normalisation, wrapped lines, headings, garbage glyphs."""
from kit.prep.text import garbage_reason, join_lines, nfkc_keep_chinese_punct


def test_nfkc_turns_radicals_into_characters_but_keeps_chinese_punctuation():
    assert nfkc_keep_chinese_punct("⼗⼀⼈") == "十一人"
    assert nfkc_keep_chinese_punct("ＡＢ１２，。；：？！（）") == "AB12，。；：？！（）"


def test_wrapped_chinese_lines_are_joined_without_spaces():
    lines = ["第二条 中华人民共和国境内的企业、个体经济组织、民办",
             "非企业单位等组织与劳动者建立劳动关系，适用本法。",
             "第三条 订立劳动合同，应当遵循合法、公平的原则。"]
    pars = join_lines(lines)
    assert pars[0] == "第二条 中华人民共和国境内的企业、个体经济组织、民办非企业单位等组织与劳动者建立劳动关系，适用本法。"
    assert pars[1].startswith("第三条")


def test_section_heading_without_a_space_starts_its_own_paragraph():
    # annual reports print "第七节优先股相关情况" with no space; a wrapped reference "第三章规定的…" is not a heading
    pars = join_lines(["5、控股股东股份限制减持情况□ 适用 √ 不适用", "第七节优先股相关情况", "报告期公司不存在优先股。"])
    assert pars == ["5、控股股东股份限制减持情况□ 适用 √ 不适用", "第七节优先股相关情况", "报告期公司不存在优先股。"]
    pars = join_lines(["用人单位应当按照本法第二十条和", "第三章规定的程序办理手续。"])
    assert pars == ["用人单位应当按照本法第二十条和第三章规定的程序办理手续。"]


def test_an_article_number_glued_to_its_text_starts_a_paragraph_only_after_a_sentence_end():
    # OCR drops the space after 第十五条; the line before it is a full line that ends a sentence
    pars = join_lines(["用人单位自用工之日起满一年不与劳动者订立书面劳动合",
                       "同的，视为用人单位与劳动者已订立无固定期限劳动合同。",
                       "第十五条以完成一定工作任务为期限的劳动合同，是指用",
                       "人单位与劳动者约定以某项工作的完成为合同期限的劳动合同。"])
    assert [p[:8] for p in pars] == ["用人单位自用工之", "第十五条以完成一"]
    # after a line that stops mid-sentence it is a wrapped cross-reference
    pars = join_lines(["（三）连续订立二次固定期限劳动合同，且劳动者没有本法",
                       "第三十九条和第四十条第一项、第二项规定的情形，续订劳动合",
                       "同的。"])
    assert pars == ["（三）连续订立二次固定期限劳动合同，且劳动者没有本法第三十九条和第四十条第一项、第二项规定的情形，续订劳动合同的。"]
    # nor is "第三条规定的…" / "第三条第二款…" after a full sentence-ending line an article
    pars = join_lines(["劳动者提前三十日以书面形式通知用人单位，可以解除劳动合同。",
                       "第三十七条规定的期限届满后，劳动者可以离职，用人单位不得",
                       "拒绝办理手续。"])
    assert len(pars) == 1


def test_table_of_contents_lines_stay_separate():
    pars = join_lines(["第一节 重要提示、目录和释义 ........................ 2",
                       "第二节 公司简介和主要财务指标 .................... 6"])
    assert len(pars) == 2


def test_garbage_detector_on_text():
    assert garbage_reason('当依照有关法律!行政法规规定的权利和义务订立合同"第三十九条 #格式合同条款定义及使用人义务$采用格'
                          '式条款订立合同的%提供格式条款的一方应当遵循公平原则确定当事人之间的权利和义务%并采取合理的方式') is not None
    assert garbage_reason("(cid:12)(cid:13)(cid:14) abc") is not None
    assert garbage_reason("第一条 为了完善劳动合同制度，明确劳动合同双方当事人的权利和义务，保护劳动者的合法权益，"
                          "构建和发展和谐稳定的劳动关系，制定本法。") is None
