"""The filters of the service-backed change lists, in the sidebar as Django's list filters are
(rendered by Django's ``admin/filter.html``): each reads its query parameters and turns them into
arguments of the service call.

- ``DateFilter``: Django's DateFieldListFilter links (any date, today, past 7 days, this month,
  this year) in the site's time zone, under Axes' parameter names (``attempt_time__gte``,
  ``attempt_time__lt``), so Axes' bookmarked date filters keep working.
- ``ChoiceFilter``: one parameter, a few values (Axes' ``locked_out=yes|no``, an outcome).
- ``ExactFilter``: an exact IP or username (``ip=``, ``username=``): the service then reads only
  that attacker's or victim's records, so its view is complete. Shown only while set, with
  "All" to drop it; the detail page links to it.

A value that is not one of the filter's is an ``InvalidFilter``: the page says so and lists
without that filter.
"""

from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy

ALL = gettext_lazy("All")


class InvalidFilter(ValueError):
    """A query parameter a filter cannot read."""


class DateFilter:
    template = "admin/filter.html"
    is_shown = True

    def __init__(self, params, *, field, title, since_argument, until_argument):
        self.title = title
        self.since_parameter = f"{field}__gte"
        self.until_parameter = f"{field}__lt"
        self.parameters = (self.since_parameter, self.until_parameter)
        self.since_argument = since_argument
        self.until_argument = until_argument
        self.values = {name: params[name] for name in self.parameters if params.get(name)}

    @property
    def is_active(self):
        return bool(self.values)

    def arguments(self):
        return {
            self.since_argument: _moment(self.values.get(self.since_parameter)),
            self.until_argument: _moment(self.values.get(self.until_parameter)),
        }

    def choices(self, cl):
        for display, values in self._links():
            yield {
                "display": display,
                "selected": values == self.values,
                "query_string": cl.get_query_string(values, remove=self.parameters),
            }

    def _links(self):
        # As Django's DateFieldListFilter for a DateTimeField, so the links read the same.
        now = timezone.now()
        if timezone.is_aware(now):
            now = timezone.localtime(now)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow = today + timedelta(days=1)
        if today.month == 12:
            next_month = today.replace(year=today.year + 1, month=1, day=1)
        else:
            next_month = today.replace(month=today.month + 1, day=1)
        next_year = today.replace(year=today.year + 1, month=1, day=1)
        ranges = (
            (gettext_lazy("Any date"), None, None),
            (gettext_lazy("Today"), today, tomorrow),
            (gettext_lazy("Past 7 days"), today - timedelta(days=7), tomorrow),
            (gettext_lazy("This month"), today.replace(day=1), next_month),
            (gettext_lazy("This year"), today.replace(month=1, day=1), next_year),
        )
        for display, since, until in ranges:
            values = {}
            if since is not None:
                values = {self.since_parameter: str(since), self.until_parameter: str(until)}
            yield display, values


class ChoiceFilter:
    template = "admin/filter.html"
    is_shown = True

    def __init__(self, params, *, parameter, title, choices):
        """``choices``: (value in the URL, display, service arguments) for each choice."""
        self.title = title
        self.parameter = parameter
        self.parameters = (parameter,)
        self._choices = choices
        self.value = params.get(parameter) or None
        if self.value is not None and self.value not in {value for value, _, _ in choices}:
            raise InvalidFilter(f"{parameter}: {self.value!r:.50} is not one of its choices")

    @property
    def is_active(self):
        return self.value is not None

    def arguments(self):
        for value, _, arguments in self._choices:
            if value == self.value:
                return arguments
        return {}

    def choices(self, cl):
        yield {
            "display": ALL,
            "selected": self.value is None,
            "query_string": cl.get_query_string(remove=self.parameters),
        }
        for value, display, _ in self._choices:
            yield {
                "display": display,
                "selected": value == self.value,
                "query_string": cl.get_query_string({self.parameter: value}),
            }


class ExactFilter:
    template = "admin/filter.html"

    def __init__(self, params, *, parameter, title):
        self.title = title
        self.parameter = parameter
        self.parameters = (parameter,)
        self.value = (params.get(parameter) or "").strip() or None

    @property
    def is_active(self):
        return self.value is not None

    @property
    def is_shown(self):
        return self.is_active

    def arguments(self):
        return {self.parameter: self.value}

    def choices(self, cl):
        yield {
            "display": ALL,
            "selected": False,
            "query_string": cl.get_query_string(remove=self.parameters),
        }
        yield {
            "display": self.value,
            "selected": True,
            "query_string": cl.get_query_string({self.parameter: self.value}),
        }


def _moment(text):
    """A date filter's value as an aware datetime: Django's links write ``str(datetime)``; a
    hand-written date means its midnight in the site's time zone."""
    if text is None:
        return None
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = None if day is None else datetime.combine(day, time())
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidFilter(f"{text!r:.50} is not a date")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def date_filter(params):
    """The date of an attempt: a record's latest failure, a log entry's time."""
    return DateFilter(
        params,
        field="attempt_time",
        title=gettext_lazy("attempt time"),
        since_argument="since",
        until_argument="until",
    )


def ip_filter(params):
    return ExactFilter(params, parameter="ip", title=gettext_lazy("IP address"))


def username_filter(params):
    return ExactFilter(params, parameter="username", title=gettext_lazy("username"))
