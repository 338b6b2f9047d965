"""Small corpus fixtures in prep's corpus.jsonl format, and a way to run the real `kit` CLI."""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

# Real-looking paragraphs (labour-law style) with titles as prep would emit them.
PARAGRAPHS = [
    ("第十条", "建立劳动关系，应当订立书面劳动合同。已建立劳动关系，未同时订立书面劳动合同的，应当自用工之日起一个月内订立书面劳动合同。用人单位与劳动者在用工前订立劳动合同的，劳动关系自用工之日起建立。"),
    ("第三章 劳动合同的履行和变更", "用人单位应当按照劳动合同约定和国家规定，向劳动者及时足额支付劳动报酬。用人单位拖欠或者未足额支付劳动报酬的，劳动者可以依法向当地人民法院申请支付令。"),
    ("第十九条 试用期", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，试用期不得超过二个月！同一用人单位与同一劳动者只能约定一次试用期。"),
    ("一、公司概况", "本公司主要从事新能源汽车动力电池的研发、生产和销售。报告期内，公司实现营业收入一百二十亿元，同比增长百分之十八？研发投入占营业收入的比例为百分之六点五。"),
    ("", "设备开机前，请确认电源电压与铭牌标注一致；首次使用时应先空载运行五分钟。如发现异常噪声或异味，应立即切断电源并联系售后服务人员。"),
    ("（二）风险提示", "原材料价格波动可能对公司毛利率产生不利影响。公司已通过长期协议和套期保值等方式降低相关风险；同时持续优化产品结构，提高高附加值产品的比重。"),
]

# Common characters for synthetic chunks: distinct text per chunk, so LLM answers never collide.
_CHARS = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
          "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开"
          "它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条"
          "只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边")


def synthetic_chunks(n: int, seed: int = 0, doc: str = "synthetic") -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sentences = ["".join(rng.choice(_CHARS) for _ in range(rng.randint(12, 24))) for _ in range(3)]
        text = "，".join(sentences[:2]) + "。" + sentences[2] + "。"
        out.append({"id": f"{doc}-{i:04d}", "doc": doc, "page_start": 1 + i // 4, "page_end": 1 + i // 4,
                    "title": f"第{i + 1}节", "text": text})
    return out


def paragraph_chunks(doc: str = "劳动合同法") -> list[dict]:
    return [{"id": f"{doc}-{i:04d}", "doc": doc, "page_start": i + 1, "page_end": i + 1, "title": t, "text": x}
            for i, (t, x) in enumerate(PARAGRAPHS)]


def write_corpus(path: Path, chunks: list[dict], extra_lines: list[str] = ()) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


# The installed CLI, started the way a user's shell would (a separate process).
KIT = [sys.executable, "-c", "import sys; from kit.cli import main; sys.exit(main())"]


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus.jsonl", paragraph_chunks())
