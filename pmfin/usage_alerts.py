"""Usage alerts (issue 9; seed: Usage Tracking & Alerts): tenants warned at a share of their plan's
limits, and at the limit, through the notification mechanism — once per tenant, metric,
threshold and month, however often cron runs it.

The figures are ``pmfin.metrics.usage.tenant_usage``'s (the same as ``pmfin usage report`` and
``pmfin billing show``). A metric is **at the threshold** when used ÷ limit ≥ the threshold (0.8
by default) and below 1, **at the limit** when used ÷ limit ≥ 1 — or when the plan allows none
(a limit of 0) and some are used. A tenant found at the limit first is told the limit only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from pmfin.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from pmfin.metrics.usage import TenantUsage
    from pmfin.notify import SendReport
    from pmfin.settings import Settings

METRICS = (  # (name, the figure, its limit, the share, words)
    ("emails", "emails_sent", "email_limit", "email_share", "emails this month"),
    ("seats", "seats", "seat_limit", "seat_share", "seats"),
    ("ips", "ips", "ip_limit", "ip_share", "dedicated IPs"),
)


def parse_threshold(value: str | float | Decimal) -> Decimal:
    try:
        t = Decimal(str(value).strip().rstrip("%"))
    except Exception:  # noqa: BLE001 - decimal's InvalidOperation and friends
        raise UsageError(f"--threshold must be a share such as 0.8 (80 %), got {value!r}") from None
    if str(value).strip().endswith("%"):
        t = t / 100
    if not t.is_finite() or not Decimal(0) < t <= Decimal(1):
        raise UsageError(f"--threshold must be a share above 0 and at most 1 (e.g. 0.8 for 80 %), got {value!r}")
    return t


@dataclass(frozen=True)
class UsageAlert:
    tenant_id: str
    tenant_name: str | None
    month: str
    metric: str
    used: int
    limit: int
    share: Decimal | None
    level: str  # threshold / limit
    threshold: Decimal
    plan: str | None

    @property
    def key(self) -> str:
        mark = "limit" if self.level == "limit" else f"{self.threshold.normalize()}"
        return f"usage:{self.tenant_id}:{self.metric}:{mark}:{self.month}"


def find(usages: list[TenantUsage], threshold: Decimal) -> list[UsageAlert]:
    """The alerts in ``usages`` (pure): one per tenant and metric, the highest level reached."""
    out = []
    for u in usages:
        for metric, used_attr, limit_attr, share_attr, _ in METRICS:
            used, limit, share = getattr(u, used_attr), getattr(u, limit_attr), getattr(u, share_attr)
            if limit is None:
                continue
            if limit == 0:
                level = "limit" if used > 0 else None
            elif share is not None and share >= 1:
                level = "limit"
            elif share is not None and share >= threshold:
                level = "threshold"
            else:
                level = None
            if level:
                out.append(UsageAlert(u.tenant_id, u.tenant_name, str(u.month), metric, used, limit, share, level,
                                      threshold, u.plan_name or u.plan_id))
    return out


def _notice(alert: UsageAlert):
    from pmfin.notify import Notice

    words = next(w for name, *_, w in METRICS if name == alert.metric)
    plan = f" on the {alert.plan} plan" if alert.plan else ""
    pct = f"{alert.share * 100:.0f}%" if alert.share is not None else "all"
    if alert.level == "limit":
        subject = f"You have reached your limit of {words}{plan}"
        line = f"{alert.used:,} of {alert.limit:,} {words} used ({pct}) in {alert.month}."
        severity = "critical"
        advice = "Upgrade your plan or add capacity to keep sending without interruption."
    else:
        subject = f"You have used {pct} of your {words}{plan}"
        line = f"{alert.used:,} of {alert.limit:,} {words} used in {alert.month} ({pct})."
        severity = "warning"
        advice = "You may want to upgrade before you reach the limit."
    body = f"{line}\n\n{advice}\nSee your usage in PenguinMails: Settings → Billing.\n"
    return Notice(alert.tenant_id, alert.key, f"usage_{alert.level}", severity, subject, body, f"{subject}: {line}")


@dataclass
class AlertReport:
    month: str
    threshold: Decimal
    alerts: list[UsageAlert]
    new: list[str]  # keys recorded now (told for the first time)
    notifications: SendReport | None = None


def run(engine: Engine, settings: Settings, month, *, threshold: Decimal, notify: bool,
        tenant_ids: list[str] | None = None, now: dt.datetime | None = None) -> AlertReport:
    """Find the alerts of ``month``; with ``notify`` record each once and send the emails."""
    from pmfin.metrics.usage import tenant_usage

    with engine.connect() as conn:
        usages = tenant_usage(conn, month, tenant_ids=tenant_ids, now=now)
    alerts = find(usages, threshold)
    report = AlertReport(str(month), threshold, alerts, [])
    if not notify:
        return report
    from pmfin.notify import record, send_pending

    with engine.begin() as conn:
        for alert in alerts:
            if record(conn, _notice(alert), smtp_configured=settings.smtp is not None, at=now):
                report.new.append(alert.key)
    if report.new and settings.smtp is not None:
        report.notifications = send_pending(engine, settings.smtp, keys=report.new)
    return report
