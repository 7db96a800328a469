"""The admin's "Access logs" and "Access failures" (Axes' names), read-only, from the service's
access log (``GET /v1/logs``): every login it saw, newest first, searched (``q=``: IP, username,
user agent, path), filtered by outcome, date, exact IP or username, and paged (``list_per_page``
entries a page; the service says whether a next page exists, not how many entries match, so the
paginator shows the pages up to the next one). "Access failures" are the failures and the
refusals of logins while locked out (Axes' ``locked_out``).
"""

from django.utils.translation import gettext, gettext_lazy

from lockout_axes import access_log
from lockout_axes.admin.changelist import Column, Rows, ServiceListAdmin
from lockout_axes.admin.filters import ChoiceFilter, date_filter, ip_filter, username_filter
from lockout_axes.admin.permissions import AxesPermissions

OUTCOME_LABELS = {
    "failure": gettext_lazy("Failure"),
    "refused": gettext_lazy("Refused (locked out)"),
    "success": gettext_lazy("Success"),
}


def _outcome_filter(outcomes):
    def make(params):
        return ChoiceFilter(
            params,
            parameter="outcome",
            title=gettext_lazy("outcome"),
            choices=tuple(
                (outcome, OUTCOME_LABELS[outcome], {"outcomes": (outcome,)}) for outcome in outcomes
            ),
        )

    return make


class AccessLogAdmin(AxesPermissions, ServiceListAdmin):
    axes_model_name = "accesslog"
    outcomes = access_log.OUTCOMES
    columns = (
        Column("attempt_time", gettext_lazy("attempt time"), nowrap=True),
        Column("ip", gettext_lazy("IP address"), nowrap=True),
        Column("username", gettext_lazy("username")),
        Column("user_agent", gettext_lazy("user agent")),
        Column("path", gettext_lazy("path"), nowrap=True),
        Column("outcome", gettext_lazy("outcome"), nowrap=True),
    )
    search_help_text = gettext_lazy("IP address, username, user agent or path contains the text")

    @property
    def list_filters(self):
        return (date_filter, _outcome_filter(self.outcomes), ip_filter, username_filter)

    def has_delete_permission(self, request, obj=None):
        return False

    def fetch_rows(self, request, *, offset, limit, search, order, outcomes=None, **filters):
        last_offset = access_log.OFFSET_LIMIT - limit
        if offset > last_offset:
            return Rows([], None, False)
        page = access_log.fetch_page(
            offset=offset,
            limit=limit,
            outcomes=outcomes or self.outcomes,
            search=search,
            **filters,
        )
        more = page.more
        if more and offset + limit > last_offset:
            more = False
            self.message_user(
                request,
                gettext(
                    "Only the newest %(count)s matching entries are paged: narrow the list by "
                    "date, outcome, IP address or username to see older ones."
                )
                % {"count": access_log.OFFSET_LIMIT},
            )
        return Rows(page.entries, None, more)

    def row_cells(self, request, entry):
        return {
            "attempt_time": entry.time,
            "ip": entry.ip,
            "username": entry.username,
            "user_agent": entry.user_agent,
            "path": entry.path,
            "outcome": OUTCOME_LABELS.get(entry.outcome, entry.outcome),
        }


class AccessFailureLogAdmin(AccessLogAdmin):
    axes_model_name = "accessfailurelog"
    outcomes = ("failure", "refused")
