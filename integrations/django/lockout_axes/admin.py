"""The Django admin's "Access attempts" view, over the lockout service's attempt records.

With ``AXES_HANDLER = "lockout_axes.handler.LockoutHandler"``, Axes' own AccessAttempt table
stays empty: failures and lockouts are records in the service. This module puts those records
where operators look for them, in the admin's "Access attempts", wherever the site mounts its
admin.

- ``lockout_axes.models.AccessAttempt`` is an unmanaged model without a table: it gives the
  admin something to register (the entry in the index and the sidebar) and Django the
  ``view_accessattempt`` and ``delete_accessattempt`` permissions to grant, as Axes' models do.
  Superusers have both; staff need them; nobody adds or changes a record here.
- ``AccessAttemptAdmin.changelist_view`` is served from the service, one page per request
  (``list_per_page`` records, about: the service pages by its own cursor, so the list offers
  "Next page" and "First page" rather than page numbers). It filters as the service does: an
  exact IP, an exact username, locked records only. Its template extends Django's
  ``admin/change_list.html`` and overrides only the blocks that read a database changelist
  (search, filters, results, pagination), so the page follows the admin's layout, style and
  ``actions.js`` in every Django version.
- The one action, "Delete selected access attempts", stands in for Django's delete_selected
  (which needs a QuerySet): Django's ``admin/delete_selected_confirmation.html`` asks first, then
  the service deletes exactly the selected records (``POST /v1/attempts/delete``), each deletion
  is logged in the admin's LogEntry history, and Django's "Successfully deleted" message reports
  how many the service removed. Site-wide actions are left out: they expect a QuerySet.
- Axes registers its AccessAttempt admin when ``axes.admin`` is imported. This module imports it
  first and unregisters that one, whatever the order of INSTALLED_APPS (the admin's autodiscovery
  then finds ``axes.admin`` already imported); Axes' log admins stay. Like Axes' admin, this one
  is registered only while ``AXES_ENABLE_ADMIN`` is true.
"""

import math
from datetime import timedelta
from types import SimpleNamespace

import axes.admin  # noqa: F401 -- registers Axes' admins now, so that one can be replaced
from axes.conf import settings
from axes.models import AccessAttempt as AxesAccessAttempt
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.utils import model_ngettext
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.timesince import timeuntil
from django.utils.translation import gettext, gettext_lazy, ngettext

from lockout_axes import client, records
from lockout_axes.models import AccessAttempt

# The status filter's query parameter and its one value; "ip" and "username" are the service's.
STATUS_PARAMETER = "status"
LOCKED_STATUS = "locked"


class AccessAttemptAdmin(admin.ModelAdmin):
    actions = ["delete_selected"]
    change_list_template = "admin/lockout_axes/accessattempt/change_list.html"

    def get_urls(self):
        # The list is the whole view: a record has no page of its own.
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        """This admin's own actions: site-wide ones expect a QuerySet."""
        return {
            name: action
            for name, action in super().get_actions(request).items()
            if name in self.actions
        }

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._run_action(request)
        filters = {
            "ip": request.GET.get("ip", "").strip() or None,
            "username": request.GET.get("username") or None,
            "locked_only": request.GET.get(STATUS_PARAMETER) == LOCKED_STATUS,
        }
        cursor = request.GET.get("cursor") or None
        try:
            page = records.fetch_page(limit=self.list_per_page, cursor=cursor, **filters)
        except client.LockoutError as error:
            message = gettext("Could not list the access attempts: %(error)s") % {"error": error}
            self.message_user(request, message, messages.ERROR)
            page = records.Page([], None)
        rows = [(record, self.status(record)) for record in page.records]

        media = self.media
        action_form = None
        if self.get_actions(request):
            action_form = self.action_form(auto_id=None)
            action_form.fields["action"].choices = self.get_action_choices(request)
            media += action_form.media

        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Select %s to view") % self.opts.verbose_name,
            "subtitle": None,
            "opts": self.opts,
            # What Django's change_list.html and actions.html read of a database changelist.
            "cl": SimpleNamespace(
                opts=self.opts, has_filters=True, result_list=rows, result_count=len(rows)
            ),
            "rows": rows,
            "filters": filters,
            "status_choices": _status_choices(request, filters["locked_only"]),
            "next_page_query": page.next_cursor
            and _query_string(request, {"cursor": page.next_cursor}),
            "first_page_query": cursor and _query_string(request, {"cursor": None}),
            "empty_value_display": self.get_empty_value_display(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": media,
            "action_form": action_form,
            "actions_on_top": self.actions_on_top,
            "actions_on_bottom": self.actions_on_bottom,
            "actions_selection_counter": self.actions_selection_counter,
            "selection_note": gettext("0 of %(cnt)s selected") % {"cnt": len(rows)},
            "module_name": str(self.opts.verbose_name_plural),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_list_template, context)

    def status(self, record):
        """Locked out and for how long, or how many failures are left before the lock."""
        if record.locked:
            if record.retry_after is None:
                return gettext("Locked out")
            return gettext("Locked out, %(time)s left") % {"time": _time_left(record.retry_after)}
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
        except client.LockoutError as error:
            message = gettext("Could not delete the access attempts: %(error)s") % {"error": error}
            self.message_user(request, message, messages.ERROR)
            return None
        self._log_deletions(request, identities)
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

    def _log_deletions(self, request, identities):
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


def _status_choices(request, locked_only):
    """The status filter's links, as Django's ``admin/filter.html`` shows a list filter's."""
    return [
        {
            "display": display,
            "selected": selected,
            "query_string": _query_string(request, {STATUS_PARAMETER: value, "cursor": None}),
        }
        for display, value, selected in (
            (gettext("All"), None, not locked_only),
            (gettext("Locked out"), LOCKED_STATUS, locked_only),
        )
    ]


def _query_string(request, changes):
    """This page's query string with ``changes`` made; a None value removes the parameter."""
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return f"?{query.urlencode()}"


def _time_left(retry_after):
    # Whole minutes, rounded up: "1 minute" rather than "0 minutes" for the last seconds.
    now = timezone.now()
    minutes = math.ceil(retry_after / timedelta(minutes=1))
    return timeuntil(now + timedelta(minutes=minutes), now)


if admin.site.is_registered(AxesAccessAttempt):
    admin.site.unregister(AxesAccessAttempt)

if settings.AXES_ENABLE_ADMIN:
    admin.site.register(AccessAttempt, AccessAttemptAdmin)
