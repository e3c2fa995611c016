"""A Japanese reader's journey in a real browser (locale ja-JP, in Tokyo): sign up, make
a team, take part, submit, read the leaderboard; a host's broken zip. No English may be
left on these pages except names and data (the challenge's own texts, metrics, teams).

Failures leave screenshots of every page in test-artifacts/ (tests/e2e/conftest.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from challenges.models import Challenge
from tests.challenges import bundle_factory as bf
from tests.e2e.test_browser import load_starter

pytestmark = [pytest.mark.e2e, pytest.mark.services]

# Names that stay as they are in Japanese pages: the product, protocols and formats, the
# language switcher's "English", and time zone abbreviations.
ALLOWED_WORDS = {
    "evalserver",
    "API",
    "CSV",
    "csv",
    "zip",
    "URL",
    "ID",
    "EvalAI",
    "Starters",  # EvalAI-Starters, a repository's name
    "HTML",
    "Python",
    "English",
    "JST",
    "UTC",
    "Asia",
    "Tokyo",
    "sha256",
    "stdout",
    "stderr",
    "pickle",
    "KB",
    "MB",
    "GB",
}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# Everything a person reads: text outside host content (bundle HTML in .html, code and
# logs) and the read attributes.
READ_TEXT = """() => {
  const skip = "script, style, code, pre, .html, [data-stdout], [data-stderr]";
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    if (!parent || parent.closest(skip) || parent.closest("[hidden]")) continue;
    if (node.textContent.trim()) out.push(node.textContent.trim());
  }
  document.querySelectorAll("[title], [aria-label], [placeholder], [data-confirm]").forEach(el => {
    if (el.closest(skip)) return;
    ["title", "aria-label", "placeholder", "data-confirm"].forEach(a => {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    });
  });
  return out;
}"""


def data_of(challenge: Challenge) -> list[str]:
    """The challenge's own words: shown as the host wrote them, in any language."""
    found = [challenge.title, challenge.short_description, challenge.host_team.name]
    found += [challenge.leaderboard_description, *[str(tag) for tag in challenge.tags or []]]
    for phase in challenge.phases.all():
        found += [phase.name, phase.codename]
        found += [str(item.get("name", "")) for item in phase.public_data or []]
        for attribute in phase.submission_meta_attributes or []:
            found += [str(attribute.get("name", "")), str(attribute.get("description", ""))]
            found += [str(o) for o in attribute.get("options") or []]
        for split in phase.phase_splits.select_related("dataset_split", "leaderboard"):
            found += [split.dataset_split.name, split.dataset_split.codename]
            found += [str(label) for label in split.leaderboard.schema.get("labels", [])]
    return sorted({f for f in found if f}, key=len, reverse=True)


def english_left(page, data: list[str]) -> list[str]:
    left = []
    for text in page.evaluate(READ_TEXT):
        for item in data:
            text = text.replace(item, " ")
        words = {w for w in WORD.findall(text) if sum(c.isalpha() for c in w) >= 2}
        if words - ALLOWED_WORDS:
            left.append(text)
    return left


def assert_japanese(page, data: list[str]) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    left = english_left(page, data)
    assert left == [], f"{page.url}: {left}"


def test_a_japanese_reader_signs_up_takes_part_submits_and_reads_the_leaderboard(
    e2e, users, host_teams, starter_zips, starter_dir
):
    challenge = load_starter(users, host_teams["alice"], starter_zips["tabular_classification"])
    data = sorted(
        [*data_of(challenge), "hanako", "花子チーム", "sample", "sample_submission_dev.csv"],
        key=len,
        reverse=True,
    )
    page = e2e.page(locale="ja-JP", timezone_id="Asia/Tokyo")

    page.goto("/")
    assert_japanese(page, data)
    page.get_by_role("link", name="新規登録").first.click()
    assert_japanese(page, data)
    page.get_by_label("ユーザー名").fill("hanako")
    page.get_by_label("メールアドレス").fill("hanako@example.jp")
    page.get_by_label("パスワード", exact=True).fill("hanako-long-passphrase-1")
    page.get_by_label("パスワード(確認用)").fill("hanako-long-passphrase-1")
    page.get_by_role("button", name="アカウントを作成").click()
    page.wait_for_url("**/teams/")
    expect(page.locator(".flash.success")).to_contain_text("ようこそ、hanako さん")
    assert_japanese(page, data)

    page.get_by_label("チーム名").fill("花子チーム")
    page.get_by_role("button", name="チームを作成").click()
    expect(page.locator(".flash.success")).to_contain_text("チーム「花子チーム」を作成しました")
    assert_japanese(page, data)

    page.get_by_role("link", name="コンペ", exact=True).click()
    page.get_by_role("link", name=challenge.title).click()
    assert_japanese(page, data)
    # Dates in the browser's zone (Tokyo), named, and the deadline read relatively.
    expect(page.locator("p.meta time").first).to_contain_text("JST")
    expect(page.locator("footer")).to_contain_text("Asia/Tokyo")
    page.get_by_label("利用規約を読み、同意します").check()
    page.get_by_role("button", name="参加", exact=True).click()
    expect(page.locator(".flash.success")).to_contain_text("参加しました")
    assert_japanese(page, data)

    page.get_by_role("link", name="Dev Phase に提出").click()
    expect(page.locator("#quota")).to_contain_text("件提出できます")
    assert_japanese(page, data)
    page.get_by_label("提出ファイル").set_input_files(
        str(starter_dir / "tabular_classification" / "sample_submission_dev.csv")
    )
    page.get_by_label("手法名").fill("sample")
    page.get_by_label("Tree ensemble").check()
    page.get_by_role("button", name="アップロードして提出").click()
    status = page.locator("#upload-result [data-status]")
    expect(status).to_have_text("完了", timeout=60_000)
    expect(page.locator("[data-progress-text]")).to_have_text("アップロードしました。")
    assert_japanese(page, data)

    page.get_by_role("link", name="自分の提出一覧").click()
    expect(page.locator("table.submissions")).to_contain_text("完了")
    assert_japanese(page, data)

    page.goto(f"/challenges/{challenge.pk}/")
    page.get_by_role("link", name="リーダーボード: Dev Split").click()
    expect(page.locator("table.leaderboard tbody tr.own")).to_contain_text("花子チーム")
    expect(page.locator("table.leaderboard tbody tr.own time")).to_contain_text("JST")
    assert_japanese(page, data)


def test_a_japanese_host_reads_a_broken_zips_problems_in_a_japanese_page(
    e2e, users, host_teams, tmp_path
):
    codename = {}

    def break_it(config):
        codename["taken"] = config["challenge_phases"][0]["codename"]
        config["challenge_phases"][1]["codename"] = codename["taken"]
        config["challenge_phases"][0]["max_submissions_per_day"] = "many"
        config["titel"] = "typo"  # a warning, with "did you mean"

    bad = tmp_path / "bad.zip"
    bad.write_bytes(bf.with_config(break_it))
    page = e2e.page(locale="ja-JP", timezone_id="Asia/Tokyo")
    page.goto("/accounts/login/")
    page.get_by_label("ユーザー名").fill("alice")
    page.get_by_label("パスワード").fill("pw-alice-123")
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto("/host/upload/")
    assert_japanese(page, ["Alice Labs", "alice"])
    page.get_by_label("コンペの zip ファイル").set_input_files(str(bad))
    page.get_by_role("button", name="アップロード", exact=True).click()
    problems = page.locator("#upload-result .problems")
    expect(problems).to_contain_text("zip ファイルを読み込めませんでした")
    expect(problems).to_contain_text("challenge_phases[1].codename")
    assert problems.locator("tr.problem.error").count() >= 2
    assert problems.locator("tr.problem.warning").count() >= 1
    # The problems' messages are Japanese too; what is left of the Latin script is data:
    # key paths and values quoted from the config.
    messages = " ".join(problems.locator("tr.problem td:last-child").all_inner_texts())
    assert "すでに" in messages and "整数" in messages and "誤りではありませんか" in messages
    data = ["Alice Labs", "alice", "challenge_phases[0]", f"'{codename['taken']}'", "'many'"]
    assert_japanese(page, [*data, "'titel'", "'title'"])
    assert not Challenge.objects.exists()
