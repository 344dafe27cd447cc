"""The dunning policy as pure functions (``Policy``, ``plan_case``), on hand-worked timelines.

Timeline used throughout (retry days 1, 3, 5; grace 7; suspension 14):

    day 0      2026-11-02 10:00 UTC   the payment failed
    slot 1     2026-11-03 10:00       day 0 + 24 h
    slot 3     2026-11-05 10:00       day 0 + 72 h
    slot 5     2026-11-07 10:00       day 0 + 120 h
    restricted 2026-11-09 10:00       day 0 + 7 × 24 h
    suspended  2026-11-16 10:00       day 0 + 14 × 24 h
"""

from __future__ import annotations

import datetime as dt

import pytest

from pmfin.stripe_ops.dunning import Case, Policy, plan_case
from pmfin.stripe_ops.invoices import Attempt, Card, is_hard

UTC = dt.timezone.utc
DAY0 = dt.datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
POLICY = Policy()
OPEN = {"id": "in_1Case", "status": "open", "amount_remaining": 4900, "currency": "usd", "number": "A-0001"}

DEFAULT = Card("pm_default", "visa", "9995", 12, 2030, created=300, is_default=True)
OLDEST = Card("pm_oldest", "mastercard", "0002", 1, 2031, created=100)
NEWER = Card("pm_newer", "amex", "4242", 6, 2029, created=200)
EXPIRED = Card("pm_expired", "visa", "1111", 10, 2026, created=150)  # valid through 2026-10-31


def t(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def case(**kw) -> Case:
    fields = dict(tenant_id="t1", invoice_id="in_1Case", day0=DAY0, amount_due=4900)
    fields.update(kw)
    return Case(**fields)


def attempt(pm: str, *, slot: int | None, outcome: str | None, code=None, decline=None, hard=None, when=DAY0) -> Attempt:
    return Attempt("in_1Case", "dunning" if slot else "manual", slot, pm, None, f"k:{pm}:{slot}", when, when,
                   outcome, code, decline, hard, None)


def test_slots_and_stages_fall_on_exact_instants():
    assert [POLICY.due(DAY0, s) for s in POLICY.retry_days] == [t(3), t(5), t(7)]
    assert POLICY.stage_at(DAY0, t(9, 9, 59)) == "grace"
    assert POLICY.stage_at(DAY0, t(9)) == "restricted"
    assert POLICY.stage_at(DAY0, t(16, 9, 59)) == "restricted"
    assert POLICY.stage_at(DAY0, t(16)) == "suspended"


def test_before_the_first_slot_the_case_waits():
    plan = plan_case(POLICY, case(), OPEN, None, [], t(3, 9, 59))
    assert plan.slot is None and plan.stage_to is None and plan.result == "waiting"
    assert plan.next_retry == t(3) and plan.day == 0  # 23 h 59 min after day 0: still day 0


def test_a_due_slot_tries_the_default_card_first_then_the_others_oldest_first():
    cards = sorted([OLDEST, NEWER, DEFAULT], key=lambda c: (not c.is_default, c.created))
    plan = plan_case(POLICY, case(), OPEN, cards, [], t(3))
    assert plan.slot == 1 and plan.skipped_slots == []
    assert [(s.payment_method_id, s.action) for s in plan.cards] == [
        ("pm_default", "try"), ("pm_oldest", "try"), ("pm_newer", "try")]
    assert plan.cards[0].key == "pmfin:dunning:in_1Case:1:pm_default"
    assert plan.next_retry == t(5)


def test_a_late_run_makes_one_retry_for_the_latest_slot_and_skips_the_earlier():
    # cron missed days: first run on 2026-11-06 00:00 — slots 1 (11-03) and 3 (11-05) are due
    plan = plan_case(POLICY, case(), OPEN, [DEFAULT], [], t(6, 0))
    assert plan.slot == 3 and plan.skipped_slots == [1]
    assert plan.next_retry == t(7)
    # all three missed: only slot 5, never two slots in one run
    plan = plan_case(POLICY, case(), OPEN, [DEFAULT], [], t(8))
    assert (plan.slot, plan.skipped_slots, plan.next_retry) == (5, [1, 3], None)


def test_slots_already_acted_on_are_not_due_again():
    plan = plan_case(POLICY, case(slots={1: "declined"}), OPEN, [DEFAULT], [], t(4))
    assert plan.slot is None and plan.next_retry == t(5)


def test_hard_declines_and_expired_cards_are_not_tried():
    history = [
        attempt("pm_oldest", slot=1, outcome="declined", code="card_declined", decline="stolen_card", hard=True),
        attempt("pm_default", slot=1, outcome="declined", code="card_declined", decline="insufficient_funds", hard=False),
    ]
    plan = plan_case(POLICY, case(slots={1: "declined"}), OPEN, [DEFAULT, EXPIRED, OLDEST, NEWER], history, t(5))
    steps = {s.payment_method_id: (s.action, s.reason) for s in plan.cards}
    assert steps["pm_default"] == ("try", None)  # a soft decline is tried again
    assert steps["pm_oldest"] == ("skip", "hard decline (stolen_card) in the day-1 retry")
    assert steps["pm_expired"] == ("skip", "expired 10/2026")
    assert steps["pm_newer"] == ("try", None)


def test_a_card_already_tried_in_this_slot_is_not_tried_again_after_a_crash():
    history = [attempt("pm_default", slot=3, outcome="declined", code="card_declined", decline="do_not_honor", hard=False)]
    plan = plan_case(POLICY, case(slots={1: "declined"}), OPEN, [DEFAULT, NEWER], history, t(5, 11))
    assert [(s.payment_method_id, s.action) for s in plan.cards] == [("pm_default", "skip"), ("pm_newer", "try")]


@pytest.mark.parametrize(
    "status, close, result",
    [("paid", "paid_elsewhere", "recovered"), ("void", "voided", "written_off"), ("uncollectible", "uncollectible", "written_off")],
)
def test_an_invoice_settled_elsewhere_closes_the_case_without_a_charge(status, close, result):
    plan = plan_case(POLICY, case(), {**OPEN, "status": status}, [DEFAULT], [], t(3))
    assert (plan.close, plan.result, plan.slot, plan.cards) == (close, result, None, [])


def test_stages_advance_only_forward_and_a_late_run_jumps_to_the_latest():
    assert plan_case(POLICY, case(slots={1: "d", 3: "d", 5: "d"}), OPEN, None, [], t(9)).stage_to == "restricted"
    assert plan_case(POLICY, case(stage="restricted", slots={1: "d", 3: "d", 5: "d"}), OPEN, None, [], t(12)).stage_to is None
    assert plan_case(POLICY, case(slots={1: "d", 3: "d", 5: "d"}), OPEN, None, [], t(16)).stage_to == "suspended"


def test_expiry_is_the_end_of_the_expiry_month():
    card = Card("pm", "visa", "4242", 2, 2028, 0)
    assert not card.expired(dt.datetime(2028, 2, 29, 23, 59, tzinfo=UTC))  # 2028 is a leap year
    assert card.expired(dt.datetime(2028, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "code, decline, hard",
    [("expired_card", None, True), ("card_declined", "stolen_card", True), ("card_declined", "insufficient_funds", False),
     ("card_declined", "generic_decline", False), ("card_declined", "do_not_honor", False), ("incorrect_number", None, True),
     ("processing_error", None, False), ("card_declined", "fraudulent", True)],
)
def test_hard_declines_are_judged_on_decline_code_else_code(code, decline, hard):
    assert is_hard(code, decline) is hard


def test_custom_retry_days():
    policy = Policy(retry_days=(2, 4), grace_days=3, suspend_days=10)
    plan = plan_case(policy, case(), OPEN, [DEFAULT], [], t(4, 12))
    assert plan.slot == 2 and plan.next_retry == t(6) and plan.stage_to is None
    plan = plan_case(policy, case(slots={2: "declined"}), OPEN, [DEFAULT], [], t(5, 10))
    assert plan.slot is None and plan.stage_to == "restricted"  # 2026-11-05 10:00 = day 0 + 3 days
