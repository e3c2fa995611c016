"""The leaderboard page: ranking, sorting, baselines, the own row, visibility, the chart."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from challenges.models import ChallengePhaseSplit
from challenges.services.hosting import host_participation_for
from challenges.services.submission_choices import submission_set_public
from frontend.charts import best_score_svg, running_best
from tests.frontend.conftest import _finished

pytestmark = pytest.mark.django_db


def rows(html: str) -> list[str]:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return body.split("<tr")[1:]


def test_teams_rank_by_the_default_label_and_sort_by_any_label(world, client_as):
    url = f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/"
    page = client_as("anonymous").get(url).content.decode()
    first, second = rows(page)
    assert "Dave Team" in first and "0.9100" in first  # Accuracy 0.91 beats 0.81
    page = client_as("anonymous").get(url, {"order": "Macro-F1"}).content.decode()
    first, second = rows(page)
    assert "Charlie Team" in first and "<td>1</td>" in first  # ranked by Macro-F1 now
    assert 'aria-sort="descending"' in page


def test_the_own_row_is_highlighted_and_baselines_are_marked(world, client_as, users):
    test = world.challenge.phases.get(codename="test")
    hosts = host_participation_for(challenge=world.challenge, user=users["alice"])
    _finished(
        test,
        hosts.team,
        users["alice"],
        scores={"public": {"Accuracy": 0.5, "Macro-F1": 0.5}},
        stdout="",
        is_baseline=True,
        method_name="majority class",
    )
    url = f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/"
    page = client_as("participant").get(url).content.decode()
    own = [r for r in rows(page) if 'class="own' in r]
    assert len(own) == 1 and "Charlie Team" in own[0] and "(your team)" in own[0]
    baseline = [r for r in rows(page) if "baseline" in r.split(">")[0]]
    assert len(baseline) == 1 and "majority class" in baseline[0]
    assert 'class="baseline"' in page  # the chart's dashed line


def test_a_hidden_submission_leaves_the_public_board_hosts_still_see_it(world, client_as, users):
    # The starter shows every submission (is_submission_public); let teams choose.
    world.challenge.phases.filter(codename="test").update(is_submission_public=False)
    world.dave_sub.refresh_from_db()
    submission_set_public(submission=world.dave_sub, user=users["dave"], is_public=False)
    url = f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/"
    for role in ("participant", "other_team", "host"):
        assert "Dave Team" not in "".join(rows(client_as(role).get(url).content.decode()))
    everything = client_as("host").get(url, {"scope": "all"}).content.decode()
    assert "Dave Team" in "".join(rows(everything))
    ignored = client_as("participant").get(url, {"scope": "all"}).content.decode()
    assert "Dave Team" not in "".join(rows(ignored))


def test_an_owner_only_split_shows_each_team_its_own_row(world, client_as):
    ChallengePhaseSplit.objects.filter(dataset_split__codename="public").update(visibility=2)
    url = f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/"
    page = client_as("participant").get(url).content.decode()
    assert "Charlie Team" in page and "Dave Team" not in page
    assert "Team" not in "".join(rows(client_as("anonymous").get(url).content.decode()))
    host = client_as("host").get(url).content.decode()
    assert "Charlie Team" in host and "Dave Team" in host


def test_the_chart_is_inline_svg_drawn_by_the_server(world, client_as):
    page = client_as("anonymous").get(
        f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/"
    )
    svg = page.content.decode().split('<figure class="chart-box">')[1].split("<figcaption>")[0]
    root = ET.fromstring(svg.strip())  # noqa: S314 - our own output
    assert root.tag.endswith("svg")
    assert len(root.findall("{http://www.w3.org/2000/svg}circle")) >= 2
    assert "<script" not in svg


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_running_best_keeps_only_improvements():
    points = [(T0 + dt.timedelta(hours=h), v) for h, v in [(0, 0.5), (1, 0.4), (2, 0.7), (3, 0.6)]]
    assert [v for _, v in running_best(points, higher_is_better=True)] == [0.5, 0.7]
    assert [v for _, v in running_best(points, higher_is_better=False)] == [0.5, 0.4]


def test_the_chart_escapes_labels_and_handles_one_point_and_none():
    svg = best_score_svg([(T0, 1.0)], label="<b>&", higher_is_better=True, baselines=[("<i>", 1.0)])
    ET.fromstring(svg)  # noqa: S314 - our own output
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert "No scored submissions yet" in best_score_svg([], label="x", higher_is_better=True)


def tick_labels(svg: str) -> list[str]:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    return [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_one_accuracy_is_drawn_on_its_natural_scale_with_one_tick_precision():
    svg = best_score_svg([(T0, 0.68)], label="Accuracy", higher_is_better=True)
    labels = tick_labels(svg)
    values, dates = labels[:-2], labels[-2:]
    assert values == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    # Both ends of the time axis in one format, in the reader's zone, named.
    assert len(dates[0]) == len(dates[1]) == len("2026-01-01 00:00 UTC")
    assert [d.split()[-1] for d in dates] == ["UTC", "UTC"]


def test_an_unbounded_metric_gets_round_ticks_around_its_values():
    points = [(T0, 2.5), (T0 + dt.timedelta(hours=1), 2.1)]
    labels = tick_labels(best_score_svg(points, label="RMSE", higher_is_better=False))[:-2]
    assert labels == ["2.1", "2.2", "2.3", "2.4", "2.5"]
    assert len({len(label.split(".")[1]) for label in labels}) == 1  # one precision
    assert float(labels[0]) <= 2.1 and float(labels[-1]) >= 2.5


def test_an_entry_lacking_the_ordering_label_shows_no_rank_and_an_empty_cell(world, client_as):
    from challenges.models import SubmissionResult
    from challenges.services.leaderboard_refresh import leaderboard_refresh_team

    SubmissionResult.objects.filter(
        submission=world.dave_sub, phase_split__dataset_split__codename="public"
    ).update(scores={"Accuracy": 0.91})
    leaderboard_refresh_team(phase=world.dave_sub.phase, team_id=world.dave_team.pk)
    html = (
        client_as("host")
        .get(f"/challenges/{world.challenge.pk}/phases/test/leaderboard/public/?order=Macro-F1")
        .content.decode()
    )
    body = rows(html)
    assert "None" not in "".join(body)
    dave = next(r for r in body if "Dave Team" in r)
    assert "<td><span" in dave and "–</span></td>" in dave and "0.9100" in dave
    assert '<td class="num"></td>' in dave  # the Macro-F1 it lacked
    assert body.index(dave) == len(body) - 1
    charlie = next(r for r in body if "Charlie Team" in r)
    assert re.search(r"<td>1</td>", charlie)
