"""A record's own page in "Access attempts" (``<admin>/lockout_axes/accessattempt/<id>/change/``):
every field, the events naming it, its latest access-log entries and links to all the records
of its IP and username (the exact filters, complete however many records the service holds);
and its deletion (``.../<id>/delete/``), asked first on Django's confirmation page.

``<id>`` is the record's identity as compact JSON, quoted as Django quotes primary keys. A
record gone (expired, reset) sends back to the list with a message.
"""

from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.timesince import timeuntil
from django.utils.translation import gettext, ngettext

from lockout_axes import access_log, records
from lockout_axes.admin.changelist import SERVICE_ERRORS

# The access-log entries a record's page shows.
RECENT_LOG_ENTRIES = 20


class RecordPages:
    """The record pages of AccessAttemptAdmin, which gives ``status`` and ``log_deletions``."""

    change_form_template = "admin/lockout_axes/accessattempt/detail.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The record's page: every field, its events and its latest access-log entries."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        record = self._record_or_redirect(request, object_id)
        if isinstance(record, HttpResponseRedirect):
            return record
        events = entries = None
        try:
            events = records.fetch_events(record)
        except SERVICE_ERRORS as error:
            self.service_error(request, gettext("Could not read its events: %s"), error)
        identity = record.identity
        if identity.ip or identity.username:
            try:
                entries = access_log.fetch_page(
                    offset=0, limit=RECENT_LOG_ENTRIES, ip=identity.ip, username=identity.username
                ).entries
            except SERVICE_ERRORS as error:
                self.service_error(request, gettext("Could not read its access log: %s"), error)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("View %s") % self.opts.verbose_name,
            "subtitle": str(record),
            "opts": self.opts,
            "original": record,
            "object_id": object_id,
            "fields": self._fields(record),
            "events": None if events is None else [_describe(event) for event in events],
            "log_entries": entries,
            "narrowing_links": self._narrowing_links(identity),
            "has_delete_permission": self.has_delete_permission(request),
            "delete_url": self.admin_url("delete", quote(record.pk)),
            "empty_value_display": self.get_empty_value_display(),
            "media": self.media,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_form_template, context)

    def delete_view(self, request, object_id, extra_context=None):
        """Django's confirmation page for one record, then its deletion in the service."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        identity = _identity(object_id)
        changelist = self.admin_url("changelist")
        if request.method == "POST" and request.POST.get("post"):
            try:
                removed = records.delete([identity])
            except SERVICE_ERRORS as error:
                self.service_error(request, gettext("Could not delete it: %s"), error)
                return HttpResponseRedirect(request.path)
            if removed:
                self.log_deletions(request, [identity])
                message = gettext("The %(name)s “%(obj)s” was deleted successfully.")
                level = messages.SUCCESS
            else:
                message = gettext("The %(name)s “%(obj)s” was already gone (expired or reset).")
                level = messages.WARNING
            self.message_user(
                request, message % {"name": self.opts.verbose_name, "obj": identity}, level
            )
            return HttpResponseRedirect(changelist)
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Are you sure?"),
            "subtitle": None,
            "object_name": str(opts.verbose_name),
            "object": identity,
            "deleted_objects": [f"{capfirst(opts.verbose_name)}: {identity}"],
            "model_count": {opts.verbose_name_plural: 1}.items(),
            "perms_lacking": None,
            "protected": None,
            "opts": opts,
            "app_label": opts.app_label,
            "media": self.media,
            "is_popup": False,
            "to_field": None,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            self.delete_confirmation_template
            or [
                f"admin/{opts.app_label}/{opts.model_name}/delete_confirmation.html",
                f"admin/{opts.app_label}/delete_confirmation.html",
                "admin/delete_confirmation.html",
            ],
            context,
        )

    def _record_or_redirect(self, request, object_id):
        identity = _identity(object_id)
        changelist = self.admin_url("changelist")
        try:
            record = records.fetch_record(identity)
        except SERVICE_ERRORS as error:
            self.service_error(request, gettext("Could not read the access attempt: %s"), error)
            return HttpResponseRedirect(changelist)
        if record is None:
            message = gettext(
                "The %(name)s “%(obj)s” does not exist any more: it expired or was reset."
            )
            self.message_user(
                request,
                message % {"name": self.opts.verbose_name, "obj": identity},
                messages.WARNING,
            )
            return HttpResponseRedirect(changelist)
        return record

    def _fields(self, record):
        identity = record.identity
        return [
            (gettext("IP address"), identity.ip),
            (gettext("Username"), identity.username),
            (gettext("User agent (of the identity)"), identity.user_agent),
            (gettext("Device (of a device token)"), identity.device),
            (gettext("Failures"), record.failures),
            (gettext("Status"), self.status(record)),
            (gettext("First failure"), record.first_failure),
            (gettext("Latest failure (attempt time)"), record.last_failure),
            (gettext("User agent of the latest failure"), record.user_agent),
            (gettext("Path of the latest failure"), record.path),
            (gettext("Lockouts it started (repeat offenders)"), record.lockouts),
            (gettext("Identity in the service"), record.key),
        ]

    def _narrowing_links(self, identity):
        """Links to the complete lists of this record's IP and username."""
        changelist = self.admin_url("changelist")
        links = []
        if identity.ip:
            links.append(
                (
                    gettext("All access attempts of IP %s") % identity.ip,
                    f"{changelist}?{urlencode({'ip': identity.ip})}",
                )
            )
        if identity.username:
            links.append(
                (
                    gettext("All access attempts of username %s") % identity.username,
                    f"{changelist}?{urlencode({'username': identity.username})}",
                )
            )
        return links


def _describe(event):
    """(time, what happened, by whom) of an event, for the record's page."""
    if event.kind == "lockout_started":
        what = gettext("Locked out")
        if event.lockout is not None:
            now = timezone.now()
            what = gettext("Locked out for %(duration)s") % {
                "duration": timeuntil(now + event.lockout, now)
            }
    elif event.kind == "lockout_reset":
        what = ngettext(
            "Reset (%(count)d record removed)",
            "Reset (%(count)d records removed)",
            event.removed or 0,
        ) % {"count": event.removed or 0}
    elif event.kind == "lockout_expired":
        what = gettext("Lockout ran out")
    else:
        what = event.kind
    return event.time, what, event.by


def _identity(object_id):
    try:
        return records.Identity.from_pk(unquote(object_id))
    except ValueError as error:
        raise BadRequest(str(error)) from None
