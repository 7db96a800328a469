"""The admin's "Access attempts": the service's attempt records, with Axes' columns.

The list (``ServiceListAdmin``) is newest first by the latest failure (Axes' "attempt time"),
sortable by it and by failures, searched (``q=``: IP, username, user agent, path), filtered by
the date of the latest failure and by lock, and paged exactly (``list_per_page`` rows, Django's
paginator, the service's count). When the service sorted among only the records it read (its
``view_scan_limit``), the page says so. Each row links to the record's page (``record_page``).

Deleting, from the list ("Delete selected access attempts", which stands in for Django's
delete_selected, which needs a QuerySet) or from a record's page, asks first on Django's own
confirmation page, then the service deletes exactly those records (``POST
/v1/attempts/delete``) and each deletion is written in the admin's LogEntry history.
"""

import math
from datetime import timedelta

from axes.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.utils import model_ngettext, quote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.timesince import timeuntil
from django.utils.translation import gettext, gettext_lazy, ngettext

from lockout_axes import records
from lockout_axes.admin.changelist import SERVICE_ERRORS, Column, Rows, ServiceListAdmin
from lockout_axes.admin.filters import ChoiceFilter, date_filter, ip_filter, username_filter
from lockout_axes.admin.permissions import AxesPermissions
from lockout_axes.admin.record_page import RecordPages


def _locked_filter(params):
    return ChoiceFilter(
        params,
        parameter="locked_out",
        title=gettext_lazy("locked out"),
        choices=(
            ("yes", gettext_lazy("Yes"), {"locked": True}),
            ("no", gettext_lazy("No"), {"locked": False}),
        ),
    )


class AccessAttemptAdmin(RecordPages, AxesPermissions, ServiceListAdmin):
    axes_model_name = "accessattempt"
    actions = ["delete_selected"]
    # Axes' columns, in its order; "attempt time" is the latest failure.
    columns = (
        Column("attempt_time", gettext_lazy("attempt time"), order="last_failure", nowrap=True),
        Column("ip", gettext_lazy("IP address"), nowrap=True),
        Column("user_agent", gettext_lazy("user agent")),
        Column("username", gettext_lazy("username")),
        Column("path", gettext_lazy("path"), nowrap=True),
        Column("failures", gettext_lazy("failures"), order="failures"),
        Column("status", gettext_lazy("status"), nowrap=True),
    )
    default_ordering = (1, True)
    list_filters = (date_filter, _locked_filter, ip_filter, username_filter)
    search_help_text = gettext_lazy("IP address, username, user agent or path contains the text")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            *super().get_urls(),
            path("<path:object_id>/change/", view(self.change_view), name=self.url_name("change")),
            path("<path:object_id>/delete/", view(self.delete_view), name=self.url_name("delete")),
        ]

    def get_actions(self, request):
        """This admin's own actions: site-wide ones expect a QuerySet."""
        return {
            name: action
            for name, action in super().get_actions(request).items()
            if name in self.actions
        }

    def shows_checkboxes(self, request):
        return bool(self.get_actions(request))

    def fetch_rows(self, request, *, offset, limit, search, order, **filters):
        page = records.fetch_page(offset=offset, limit=limit, order=order, search=search, **filters)
        if not page.complete:
            self.message_user(
                request,
                gettext(
                    "The service holds more access attempts than it sorts at once: these are "
                    "sorted and counted among the %(scanned)s it read. Narrow the list to one "
                    "IP address or username (a record's page links to them) to see all of its "
                    "attempts."
                )
                % {"scanned": page.scanned},
                messages.WARNING,
            )
        return Rows(page.records, page.total, offset + limit < page.total)

    def row_cells(self, request, record):
        return {
            "attempt_time": record.last_failure,
            "ip": record.identity.ip,
            "user_agent": record.user_agent,
            "username": record.identity.username,
            "path": record.path,
            "failures": record.failures,
            "status": self.status(record),
        }

    def detail_url(self, record):
        return self.admin_url("change", quote(record.pk))

    def list_context(self, request, cl):
        actions = self.get_actions(request)
        if not actions:
            return {"action_form": None}
        action_form = self.action_form(auto_id=None)
        action_form.fields["action"].choices = self.get_action_choices(request)
        return {
            "action_form": action_form,
            "media": self.media + action_form.media,
            "actions_on_top": self.actions_on_top,
            "actions_on_bottom": self.actions_on_bottom,
            "actions_selection_counter": self.actions_selection_counter,
            "selection_note": gettext("0 of %(cnt)s selected") % {"cnt": len(cl.result_list)},
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            if not self.has_view_permission(request):
                raise PermissionDenied
            return self._run_action(request)
        return super().changelist_view(request, extra_context)

    def status(self, record):
        """Locked out and for how long (or would be, in observe mode), or how many failures are
        left before the lock."""
        if record.locked:
            if record.retry_after is not None:
                return gettext("Locked out, %(time)s left") % {
                    "time": _time_left(record.retry_after)
                }
            if record.spraying_for is not None:
                return gettext("Locked out for password spraying, %(time)s left") % {
                    "time": _time_left(record.spraying_for)
                }
            return gettext("Locked out")
        if record.would_lock_for is not None:
            return gettext("Would be locked out (observe mode), %(time)s left") % {
                "time": _time_left(record.would_lock_for)
            }
        limit = settings.AXES_FAILURE_LIMIT
        # A callable limit depends on the request; Axes' admin shows no count then either.
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            return gettext("Not locked out")
        remaining = max(limit - record.failures, 0)
        return ngettext(
            "%(count)d attempt remaining", "%(count)d attempts remaining", remaining
        ) % {"count": remaining}

    @admin.action(
        permissions=["delete"],
        description=gettext_lazy("Delete selected %(verbose_name_plural)s"),
    )
    def delete_selected(self, request, identities):
        """Django's confirmation page first, then the service deletes the selected records."""
        if not request.POST.get("post"):
            return self._confirm_deletion(request, identities)
        try:
            removed = records.delete(identities)
        except SERVICE_ERRORS as error:
            self.service_error(request, gettext("Could not delete the access attempts: %s"), error)
            return None
        self.log_deletions(request, identities)
        self.message_user(
            request,
            gettext("Successfully deleted %(count)d %(items)s.")
            % {"count": removed, "items": model_ngettext(self.opts, removed)},
            messages.SUCCESS,
        )
        return None

    def _run_action(self, request):
        """Run the chosen action on the selected records, as Django's changelist does."""
        back_to_list = HttpResponseRedirect(request.get_full_path())
        actions = self.get_actions(request)
        name = request.POST.get("action")
        if name not in actions:
            self.message_user(request, gettext("No action selected."), messages.WARNING)
            return back_to_list
        try:
            identities = list(
                dict.fromkeys(
                    records.Identity.from_pk(pk)
                    for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
                )
            )
        except ValueError as error:
            raise BadRequest(str(error)) from None
        if not identities:
            self.message_user(
                request,
                gettext(
                    "Items must be selected in order to perform actions on them. No items "
                    "have been changed."
                ),
                messages.WARNING,
            )
            return back_to_list
        action = actions[name][0]
        return action(self, request, identities) or back_to_list

    def _confirm_deletion(self, request, identities):
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Delete multiple objects"),
            "subtitle": None,
            "objects_name": str(model_ngettext(opts, len(identities))),
            "deletable_objects": [
                [f"{capfirst(opts.verbose_name)}: {identity}" for identity in identities]
            ],
            "model_count": {opts.verbose_name_plural: len(identities)}.items(),
            "queryset": identities,
            "perms_lacking": None,
            "protected": None,
            "opts": opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            self.delete_selected_confirmation_template
            or [
                f"admin/{opts.app_label}/{opts.model_name}/delete_selected_confirmation.html",
                f"admin/{opts.app_label}/delete_selected_confirmation.html",
                "admin/delete_selected_confirmation.html",
            ],
            context,
        )

    def log_deletions(self, request, identities):
        content_type = ContentType.objects.get_for_model(self.model)
        LogEntry.objects.bulk_create(
            LogEntry(
                user_id=request.user.pk,
                content_type=content_type,
                object_id=identity.pk,
                object_repr=str(identity)[: LogEntry._meta.get_field("object_repr").max_length],
                action_flag=DELETION,
            )
            for identity in identities
        )


def _time_left(retry_after):
    # Whole minutes, rounded up: "1 minute" rather than "0 minutes" for the last seconds.
    now = timezone.now()
    minutes = math.ceil(retry_after / timedelta(minutes=1))
    return timeuntil(now + timedelta(minutes=minutes), now)
