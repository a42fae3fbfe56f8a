"""The admin dashboard: delivery numbers for the last 24 hours or 7 days, with a chart
drawn as inline SVG on the server (no script, no CDN: it renders offline)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from hooks.tools import stats

CHART_WIDTH, CHART_HEIGHT = 720, 180


@dataclass
class Bar:
    x: float
    width: float
    ok_y: float
    ok_h: float
    bad_y: float
    bad_h: float
    label: str
    title: str


def bars(summary: stats.Summary) -> list[Bar]:
    """Stacked bars (successes below, failures on top) scaled to the chart."""
    buckets = summary.buckets
    peak = max((ok + bad for _, ok, bad in buckets), default=0) or 1
    slot = CHART_WIDTH / max(len(buckets), 1)
    label_format = "%H:%M" if summary.period == "24h" else "%b %d"
    result = []
    for index, (start, ok, bad) in enumerate(buckets):
        ok_h = CHART_HEIGHT * ok / peak
        bad_h = CHART_HEIGHT * bad / peak
        result.append(
            Bar(
                x=index * slot + 1,
                width=max(slot - 2, 1),
                ok_y=CHART_HEIGHT - ok_h,
                ok_h=ok_h,
                bad_y=CHART_HEIGHT - ok_h - bad_h,
                bad_h=bad_h,
                label=start.strftime(label_format)
                if index % max(len(buckets) // 8, 1) == 0
                else "",
                title=f"{start:%Y-%m-%d %H:%M}: {ok} succeeded, {bad} failed",
            )
        )
    return result


@staff_member_required
@permission_required("hooks.view_delivery", raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    period = request.GET.get("period", "24h")
    if period not in stats.PERIODS:
        period = "24h"
    summary = stats.summary(period)
    context = {
        **admin.site.each_context(request),
        "title": "Webhook dashboard",
        "summary": summary,
        "bars": bars(summary),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "periods": list(stats.PERIODS),
        "failure_sample": f"{stats.FAILURE_SAMPLE:,}",
    }
    return TemplateResponse(request, "admin/hooks/dashboard.html", context)
