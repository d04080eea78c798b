"""When will an invoice be paid: a transparent statistical model learned from the ledger's history.

An invoice's *days late* is its payment date minus its due date (negative when paid early). Each
customer has a usual lateness: the recency-weighted mean of its paid invoices' days late (a
half-life in days counted back from the as-of day), shrunk a little toward the whole book's. The
book's spread around each customer's usual lateness is estimated with Kaplan-Meier, so that
invoices still open count honestly: open on the as-of day says "not paid before today", which is
all that is known of it (censoring). A customer's distribution is its usual lateness plus that
spread, mixed with its own Kaplan-Meier distribution in the share n / (n + OWN_PRIOR_INVOICES),
n being the recency-weighted count of its paid invoices: a steady payer with a dozen payments
speaks mostly for itself. A customer with no payment yet gets the book's behaviour, and every
answer says which (`basis`: "customer" or "portfolio").

A customer's lateness may drift: each customer's trend (days late gained per day, an ordinary
least-squares line through its paid invoices' days late against their due dates, leaving out those
paid far outside its habit: see `within_habit`) is shrunk toward
no trend by how much it is to be believed (empirical Bayes): by tau^2 / (tau^2 + se^2), se being
the line's own standard error and tau^2 how much customers' trends truly differ across the book
(the spread of the book's estimated trends around their mean, less what their standard errors
explain). A book whose customers keep their habits gets tau^2 = 0: no customer is given a trend.
The usual lateness and the distributions are learned from days late brought to the as-of day along
that trend, and each invoice is expected along it at its own due date.

A dispute is the one thing about an invoice itself the model uses: when the book has paid at
least MIN_DISPUTED disputed invoices, a disputed one is expected later by how much later the book's
disputed invoices were paid than the others (less what the customer's usual lateness already holds
of its own disputes).

For an open invoice the model conditions on what is known on the as-of day (not paid yet): the
expected payment date is the median of what remains (the date that minimises the mean absolute
error), the likely range its 10th and 90th percentiles. Mass the history never saw paid (the last
observations still open) is "later than anything seen": it falls in no forecast week, and is left
out of the expected date, which is put TAIL_DAYS past the as-of day when nothing seen is that late.

Fitting is one pass over the history; every question after that is a few binary searches, so the
plan can ask it of 100,000 invoices cheaply."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

PRIOR_INVOICES = 0.25  # the book's usual lateness counts as this many of the customer's invoices
MIN_DISPUTED = 5  # paid disputed invoices the book needs before a dispute moves a forecast
OWN_PRIOR_INVOICES = 4.0  # the pooled spread counts as this many of the customer's own invoices
CUSTOMER_HALF_LIFE_DAYS = 180.0  # a customer's payment from this long ago counts half
PORTFOLIO_HALF_LIFE_DAYS = 365.0
TAIL_DAYS = 30  # a median beyond all history: this many days past what history covers
LOW_QUANTILE, HIGH_QUANTILE = 0.1, 0.9
RECENT_INVOICES = 12  # "usually pays 9 days late (last 12 invoices)"
MIN_TREND_INVOICES = 4  # paid invoices a customer needs for a trend (a line and its error)
MIN_RESISTANT_INVOICES = 6  # paid invoices a customer needs before any is left out of its trend
OUTLIER_SPREADS = 5.0  # left out of a trend: this many robust standard deviations off the line
MIN_SPREAD_DAYS = 1.0  # the least spread a customer is taken to have (days late are whole days)

CUSTOMER, PORTFOLIO = "customer", "portfolio"


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """One invoice's history: paid on `paid_on`, or still open (None) on the as-of day."""

    customer: Hashable
    due_date: date
    paid_on: date | None
    disputed: bool = False


@dataclass(frozen=True, slots=True)
class DaysLate:
    """A distribution of days late: `days` ascending, `cumulative[i]` the mass at or before
    days[i]; what is left up to 1 lies beyond every day seen (the tail)."""

    days: tuple[int, ...]
    cumulative: tuple[float, ...]

    def at_least(self, day: int) -> float:
        """P(days late >= day), tail included."""
        below = bisect_left(self.days, day)  # points strictly before `day`
        return 1.0 - (self.cumulative[below - 1] if below else 0.0)

    @property
    def last_day(self) -> int | None:
        return self.days[-1] if self.days else None


EMPTY = DaysLate((), ())


class Tally:
    """Kaplan-Meier's input summed by day: the weight leaving the risk set after each day, and
    how much of it was paid that day. Memory grows with the days seen, not the invoices."""

    __slots__ = ("events", "leaving")

    def __init__(self) -> None:
        self.events: dict[int, float] = defaultdict(float)
        self.leaving: dict[int, float] = defaultdict(float)

    def add(self, days: int, paid: bool, weight: float) -> None:
        if weight <= 0:
            return
        self.leaving[days] += weight
        if paid:
            self.events[days] += weight

    def distribution(self) -> DaysLate:
        """The Kaplan-Meier distribution. An open invoice observed at t days is at risk at t
        (it may still be paid that day)."""
        events, leaving = self.events, self.leaving
        at_risk = sum(leaving.values())
        if at_risk <= 0 or not events:
            return EMPTY
        surviving, mass = 1.0, 0.0
        days_out: list[int] = []
        cumulative: list[float] = []
        for day in sorted(leaving):
            paid_weight = events.get(day, 0.0)
            if paid_weight > 0 and at_risk > 0:
                step = surviving * paid_weight / at_risk
                surviving -= step
                mass += step
                days_out.append(day)
                cumulative.append(min(mass, 1.0))
            at_risk -= leaving[day]
        return DaysLate(tuple(days_out), tuple(cumulative))


def kaplan_meier(observations: Iterable[tuple[int, bool, float]]) -> DaysLate:
    """(days late or days open so far, paid?, weight) -> the Kaplan-Meier distribution."""
    tally = Tally()
    for days, paid, weight in observations:
        tally.add(days, paid, weight)
    return tally.distribution()


@dataclass(frozen=True, slots=True)
class Profile:
    """How one customer pays, as far as history tells: its usual lateness (`shift`, in days)."""

    shift: int
    paid_invoices: int
    recent_days_late: tuple[int, ...]  # days late of the last RECENT_INVOICES paid, newest first
    own: DaysLate = EMPTY  # its own days late (Kaplan-Meier), for the share `weight`
    weight: float = 0.0
    own_offset: int = 0  # days added to its own distribution (a disputed invoice's extra)
    dispute_lift: int = 0  # how much later than usual its disputed invoices are expected
    slope: float = 0.0  # its trend: days late gained per day, as believed (shrunk)
    span: int = 0  # days from its oldest paid invoice's due date to the as-of day

    def drift(self, due_date: date, as_of: date) -> int:
        """Days its lateness has moved along its trend between the as-of day and `due_date` (not
        carried further from the as-of day than the history it was seen over)."""
        if not self.slope:
            return 0
        offset = max(-self.span, min(self.span, (due_date - as_of).days))
        return round(self.slope * offset)

    @property
    def basis(self) -> str:
        return CUSTOMER if self.paid_invoices else PORTFOLIO

    @property
    def usual_days_late(self) -> int | None:
        """The median days late of the recent paid invoices (None with no payment yet)."""
        if not self.recent_days_late:
            return None
        ordered = sorted(self.recent_days_late)
        return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True, slots=True)
class Prediction:
    expected_pay_date: date
    low: date  # 10th percentile
    high: date | None  # 90th percentile; None when it lies beyond all history
    p_paid_by_due_plus_30: float
    basis: str


@dataclass
class PaymentModel:
    as_of: date
    spread: DaysLate  # days late around each customer's usual lateness, the whole book's
    usual: int  # the book's usual lateness: a customer without history's
    profiles: dict[Hashable, Profile] = field(default_factory=dict)
    paid_invoices: int = 0  # how many paid invoices it learned from
    # paid, but on or after the as-of day: open on that day, so nothing learned from their payment
    paid_since: int = 0
    # brought_forward's answers by (customer, or None for the book's, days late today, days):
    # a plan asks it for each invoice, and many share a profile and a due date
    _brought: dict[tuple[Hashable, int, int], float] = field(
        default_factory=dict, repr=False, compare=False
    )
    # profile's answers moved by a trend or a dispute, by (customer or None, days moved)
    _moved: dict[tuple[Hashable, int], Profile] = field(
        default_factory=dict, repr=False, compare=False
    )

    def profile(
        self, customer: Hashable, disputed: bool = False, due_date: date | None = None
    ) -> Profile:
        """The customer's profile; for an invoice due on `due_date` (and disputed), moved along
        its trend to that day (and by what a dispute costs)."""
        found = self.profiles.get(customer)
        if found is None:  # no payment yet: the book's (kept under None)
            found = self.profiles.get(None) or Profile(self.usual, 0, ())
        lift = found.drift(due_date, self.as_of) if due_date is not None else 0
        if disputed:
            lift += found.dispute_lift
        if not lift:
            return found
        key = (customer if found.paid_invoices else None, lift)
        moved = self._moved.get(key)
        if moved is None:
            moved = self._moved[key] = replace(found, shift=found.shift + lift, own_offset=lift)
        return moved

    def survival(self, profile: Profile, day: int) -> float:
        """P(days late >= day) for the customer."""
        pooled = self.spread.at_least(day - profile.shift)
        if not profile.weight:
            return pooled
        own = profile.own.at_least(day - profile.own_offset)
        return profile.weight * own + (1 - profile.weight) * pooled

    def _last_day(self, profile: Profile) -> int:
        last = self.spread.last_day
        pooled = profile.shift + (last if last is not None else 0)
        own = profile.own.last_day
        if own is None or not profile.weight:
            return pooled
        return max(pooled, own + profile.own_offset)

    def _quantile(self, profile: Profile, opened: int, q: float) -> int | None:
        """The smallest day d >= opened by which a share q of the remaining *paid* mass is paid
        (the tail, never seen paid, is left out); None when history saw nothing paid that late."""
        last = self._last_day(profile)
        if opened > last:
            return None
        since = self.survival(profile, opened)
        beyond = self.survival(profile, last + 1)  # the tail
        if since - beyond <= 1e-12:
            return None
        target = since - q * (since - beyond)  # survival left once q of the paid mass is paid
        lo, hi = opened, last
        while lo < hi:
            mid = (lo + hi) // 2
            if self.survival(profile, mid + 1) <= target + 1e-12:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def predict(self, customer: Hashable, due_date: date, disputed: bool = False) -> Prediction:
        """For an invoice open on the as-of day: when it is expected to be paid, and how surely."""
        profile = self.profile(customer, disputed, due_date)
        opened = (self.as_of - due_date).days  # it was not paid before today
        middle = self._quantile(profile, opened, 0.5)
        low = self._quantile(profile, opened, LOW_QUANTILE)
        high = self._quantile(profile, opened, HIGH_QUANTILE)
        beyond = max(opened, 0) + TAIL_DAYS
        return Prediction(
            expected_pay_date=_later(due_date, middle if middle is not None else beyond),
            low=_later(due_date, low if low is not None else beyond),
            high=_later(due_date, high) if high is not None else None,
            p_paid_by_due_plus_30=self.paid_between(profile, opened, opened, 31),
            basis=profile.basis,
        )

    def paid_between(self, profile: Profile, opened: int, first: int, end: int) -> float:
        """P(first <= days late < end | days late >= opened)."""
        since = self.survival(profile, opened)
        first = max(first, opened)
        if since <= 0 or end <= first:
            return 0.0
        share = (self.survival(profile, first) - self.survival(profile, end)) / since
        return min(1.0, max(0.0, share))

    def week_shares(
        self, customer: Hashable, due_date: date, week_starts: list[date], disputed: bool = False
    ) -> list[float]:
        """The probability that the invoice is paid in each week (7 days from each start)."""
        profile = self.profile(customer, disputed, due_date)
        opened = (self.as_of - due_date).days
        since = self.survival(profile, opened)
        if since <= 0 or not week_starts:
            return [0.0] * len(week_starts)
        # Consecutive weeks share their boundaries: one survival a boundary, not three a week.
        edges = [(start - due_date).days for start in week_starts]
        edges.append(edges[-1] + 7)
        left = [self.survival(profile, edge) if edge > opened else since for edge in edges]
        shares = []
        for n, start in enumerate(edges[:-1]):
            end = start + 7
            if end <= opened or edges[n + 1] != end:  # before today, or weeks not back to back
                shares.append(self.paid_between(profile, opened, start, end))
                continue
            shares.append(min(1.0, max(0.0, (left[n] - left[n + 1]) / since)))
        return shares

    def brought_forward(
        self, customer: Hashable, due_date: date, days: int, disputed: bool = False
    ) -> float:
        """P(paid within `days` days from the as-of day): what a touch today can move sooner."""
        opened = (self.as_of - due_date).days
        if disputed:
            return self._brought_forward(self.profile(customer, disputed, due_date), opened, days)
        # `opened` stands for the due date: the trend's move is the same for the same key
        key = (customer if customer in self.profiles else None, opened, days)
        found = self._brought.get(key)
        if found is None:
            profile = self.profile(customer, due_date=due_date)
            found = self._brought[key] = self._brought_forward(profile, opened, days)
        return found

    def _brought_forward(self, profile: Profile, opened: int, days: int) -> float:
        return self.paid_between(profile, opened, opened, opened + days)


def _later(day: date, days: int) -> date:
    """`day` moved by `days`, kept within the calendar (a due date typed as 9999-12-31)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def _decay(half_life_days: float) -> Callable[[int], float]:
    """Recency weights by age in days, worked out once per distinct age (a few thousand)."""
    weights: dict[int, float] = {}

    def weight(age: int) -> float:
        found = weights.get(age)
        if found is None:
            found = weights[age] = 0.5 ** (age / half_life_days)
        return found

    return weight


def fit(records: Iterable[PaymentRecord], as_of: date) -> PaymentModel:
    """Learn from invoices paid before `as_of` and those still open on it (censored); invoices
    paid on or after `as_of` are treated as open, as they were on that day."""
    records = list(records)
    learner = Learner(as_of, records)
    for record in records:
        if record.paid_on is None:
            learner.add_open(record.customer, record.due_date, record.disputed)
    return learner.model()


class Learner:
    """The model learned in two steps, so that open invoices need not be held: the paid ones
    first (`records`: those not paid before `as_of` among them count as open), then each open
    invoice as it is read (`add_open`; the plan feeds them while it reads its customers), then
    `model()`.

    A customer's usual lateness is the recency-weighted mean of its paid invoices' days late
    (brought to the as-of day along its trend), shrunk toward the book's by PRIOR_INVOICES; the
    spread is the Kaplan-Meier distribution of every invoice's days late less its customer's usual
    lateness at its due date (open invoices censored)."""

    def __init__(self, as_of: date, records: Iterable[PaymentRecord]) -> None:
        self.as_of = as_of
        self.customer_weight = _decay(CUSTOMER_HALF_LIFE_DAYS)
        self.book_weight = _decay(PORTFOLIO_HALF_LIFE_DAYS)
        # (paid on, days late, age, disputed, due date less the as-of day) by customer
        paid_rows_by: dict[Hashable, list[tuple[date, int, int, bool, int]]] = defaultdict(list)
        paid_later: list[PaymentRecord] = []  # paid on or after `as_of`: open on that day
        sums = {False: [0.0, 0.0, 0], True: [0.0, 0.0, 0]}  # disputed? -> weight, total, count
        for record in records:
            paid_on = record.paid_on
            if paid_on is None:
                continue
            if paid_on >= as_of:
                paid_later.append(record)
                continue
            due = record.due_date
            age = max((as_of - due).days, 0)
            days = (paid_on - due).days
            paid_rows_by[record.customer].append(
                (paid_on, days, age, record.disputed, (due - as_of).days)
            )
            weight = self.book_weight(age)
            figures = sums[record.disputed]
            figures[0] += weight
            figures[1] += weight * days
            figures[2] += 1
        extra = 0
        undisputed, disputed = sums[False], sums[True]
        if disputed[2] >= MIN_DISPUTED and undisputed[0]:
            extra = max(0, round(disputed[1] / disputed[0] - undisputed[1] / undisputed[0]))
        book_weight = undisputed[0] + disputed[0]
        usual = round((undisputed[1] + disputed[1]) / book_weight) if book_weight else 0
        # A customer's usual lateness already holds its share of disputes: a disputed invoice is
        # expected `extra` days later than an undisputed one, so later than usual by the rest.
        book_rate = disputed[2] / (disputed[2] + undisputed[2]) if undisputed[2] else 0.0
        self.usual = usual
        self.paid_invoices = int(undisputed[2] + disputed[2])
        self.spread = Tally()
        self.profiles: dict[Hashable, Profile] = {
            None: Profile(usual, 0, (), dispute_lift=round(extra * (1 - book_rate)))
        }
        self.own: dict[Hashable, Tally] = {}
        slopes = trends(
            {
                customer: Line.of(within_habit([(t, days) for _, days, _, _, t in rows]))
                for customer, rows in paid_rows_by.items()
                if len(rows) >= MIN_TREND_INVOICES
            }
        )
        for customer, rows in paid_rows_by.items():
            n = total = 0.0
            slope = slopes.get(customer, 0.0)
            own = self.own[customer] = Tally()
            brought = []  # days late brought to the as-of day along its trend, and age
            oldest = 0
            for _, days, age, _, t in rows:
                if slope:
                    days = round(days - slope * t)
                weight = self.customer_weight(age)
                n += weight
                total += weight * days
                own.add(days, True, weight)
                brought.append((days, age))
                oldest = min(oldest, t)
            shift = round((total + PRIOR_INVOICES * usual) / (n + PRIOR_INVOICES))
            for days, age in brought:
                self.spread.add(days - shift, True, self.book_weight(age))
            rows.sort(reverse=True)
            rate = (sum(d for *_, d, _ in rows) + PRIOR_INVOICES * book_rate) / (
                len(rows) + PRIOR_INVOICES
            )
            self.profiles[customer] = Profile(
                shift,
                len(rows),
                tuple(days for _, days, *_ in rows[:RECENT_INVOICES]),
                weight=n / (n + OWN_PRIOR_INVOICES),
                dispute_lift=round(extra * (1 - rate)),
                slope=slope,
                span=-oldest,
            )
        self.paid_since = len(paid_later)
        for record in paid_later:
            self.add_open(record.customer, record.due_date, record.disputed)

    def add_open(self, customer: Hashable, due_date: date, disputed: bool = False) -> None:
        """An invoice open on the as-of day: not paid in its first days (as many as so far)."""
        days = (self.as_of - due_date).days
        age = max(days, 0)
        profile = self.profiles.get(customer)
        if profile is None:  # no payment yet: the book's usual lateness
            self.spread.add(days - self.usual, False, self.book_weight(age))
            return
        # not paid in its first `days` days: along the trend, that many less the drift to its due date
        days -= profile.drift(due_date, self.as_of)
        self.spread.add(days - profile.shift, False, self.book_weight(age))
        self.own[customer].add(days, False, self.customer_weight(age))

    def add_open_dues(self, customer: Hashable, due_dates: Iterable[date]) -> None:
        """`add_open` for each of one customer's open invoices, given by their due dates in
        order: the same tallies, with the customer's profile looked up once."""
        as_of, spread, book_weight = self.as_of, self.spread, self.book_weight
        profile = self.profiles.get(customer)
        if profile is None:
            usual = self.usual
            for due_date in due_dates:
                days = (as_of - due_date).days
                spread.add(days - usual, False, book_weight(max(days, 0)))
            return
        own, shift, customer_weight = self.own[customer], profile.shift, self.customer_weight
        for due_date in due_dates:
            days = (as_of - due_date).days
            age = max(days, 0)
            days -= profile.drift(due_date, as_of)
            spread.add(days - shift, False, book_weight(age))
            own.add(days, False, customer_weight(age))

    def model(self) -> PaymentModel:
        model = PaymentModel(
            self.as_of,
            self.spread.distribution(),
            self.usual,
            paid_invoices=self.paid_invoices,
            paid_since=self.paid_since,
        )
        for customer, profile in self.profiles.items():
            own = self.own.get(customer)
            model.profiles[customer] = (
                replace(profile, own=own.distribution()) if own is not None else profile
            )
        return model


@dataclass(frozen=True, slots=True)
class Line:
    """What a least-squares line of days late against due date needs of a customer's paid
    invoices: their count and sums, `t` being the due date less the as-of day."""

    count: int
    t: float
    days: float
    t2: float
    tdays: float
    days2: float

    @classmethod
    def of(cls, points: Iterable[tuple[int, int]]) -> Line:
        """The sums of (t, days late) points, in one pass."""
        count = 0
        t_sum = days_sum = t2 = tdays = days2 = 0
        for t, days in points:
            count += 1
            t_sum += t
            days_sum += days
            t2 += t * t
            tdays += t * days
            days2 += days * days
        return cls(count, t_sum, days_sum, t2, tdays, days2)

    def fit(self) -> tuple[float, float] | None:
        """(slope, its squared standard error), or None with too few invoices or one due date."""
        count = self.count
        if count < MIN_TREND_INVOICES:
            return None
        sxx = self.t2 - self.t * self.t / count
        if sxx <= 1e-9:
            return None
        sxy = self.tdays - self.t * self.days / count
        syy = self.days2 - self.days * self.days / count
        slope = sxy / sxx
        residual = max(syy - slope * sxy, 0.0)
        # at least a day's variance: days late are whole days, a perfect line is not a certainty
        return slope, max(residual / (count - 2), 1.0) / sxx


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return (ordered[middle] + ordered[~middle]) / 2


def within_habit(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A customer's paid invoices, (due date less the as-of day, days late), less those paid far
    outside its habit, which are not its trend: one dispute paid two months late would tilt a
    steady payer's line, or make it too uncertain to believe. The habit is Tukey's resistant
    line: through the median due date and median days late of the oldest third and of the newest
    third, set at the median of the points' offsets from it (medians, so the outliers do not move
    it). Its spread is 1.4826 times the median distance of the points from it (a standard
    deviation, were they normal; at least MIN_SPREAD_DAYS), and a point more than OUTLIER_SPREADS
    of it off the line is left out. Fewer than MIN_RESISTANT_INVOICES points are kept whole."""
    if len(points) < MIN_RESISTANT_INVOICES:
        return points
    ordered = sorted(points)
    third = len(ordered) // 3
    oldest, newest = ordered[:third], ordered[-third:]
    t_old = _median([t for t, _ in oldest])
    t_new = _median([t for t, _ in newest])
    if t_new <= t_old:  # all due on the same few days: no line to stand on
        return points
    slope = (_median([d for _, d in newest]) - _median([d for _, d in oldest])) / (t_new - t_old)
    offsets = [days - slope * t for t, days in ordered]
    level = _median(offsets)
    spread = max(1.4826 * _median([abs(o - level) for o in offsets]), MIN_SPREAD_DAYS)
    bound = OUTLIER_SPREADS * spread
    return [point for point, o in zip(ordered, offsets, strict=True) if abs(o - level) <= bound]


def trends(lines: dict[Hashable, Line]) -> dict[Hashable, float]:
    """Each customer's trend in days late per day, as believed. A customer's least-squares slope
    b, with standard error se, is shrunk toward no trend by tau^2 / (tau^2 + se^2), tau^2 being how
    much customers' trends truly differ: the variance of the book's slopes around their mean less
    their mean se^2 (empirical Bayes). Customers with fewer than MIN_TREND_INVOICES paid invoices,
    or all due the same day, have no trend; so has everyone when tau^2 comes out at zero."""
    estimates = {}
    for customer, line in lines.items():
        found = line.fit()
        if found is not None:
            estimates[customer] = found
    if len(estimates) < 2:
        return {}
    slopes = [slope for slope, _ in estimates.values()]
    centre = sum(slopes) / len(slopes)
    noise = sum(error for _, error in estimates.values()) / len(estimates)
    tau2 = sum((slope - centre) ** 2 for slope in slopes) / len(slopes) - noise
    if tau2 <= 0:
        return {}
    return {
        customer: slope * tau2 / (tau2 + error) for customer, (slope, error) in estimates.items()
    }


def usual_lateness(model: PaymentModel, customer: Hashable) -> str:
    """ "usually pays 9 days late (last 12 invoices)", or "no payment history yet"."""
    profile = model.profile(customer)
    days = profile.usual_days_late
    if days is None:
        return "no payment history yet"
    count = len(profile.recent_days_late)
    last = f"last {count} invoice{'s' if count != 1 else ''}"
    if days == 0:
        return f"usually pays on the due date ({last})"
    if days < 0:
        return f"usually pays {-days} day{'s' if days != -1 else ''} early ({last})"
    return f"usually pays {days} day{'s' if days != 1 else ''} late ({last})"
