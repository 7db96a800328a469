"""A change list whose rows come from the lockout service, on Django's own change list page.

Django's ChangeList reads a QuerySet. ``ServiceChangeList`` carries what Django's change list
templates and tags read of one (``search_form``, ``admin_list_filter``, ``pagination``,
``admin/change_list_results.html``), so the page has Django's search box (``q=``), filter sidebar,
sortable column headers (``o=``: column numbers from 1, in Axes' column order, so that Axes'
bookmarked orders keep their meaning) and paginator (``p=``), in every supported Django version.

``ServiceListAdmin`` is the ModelAdmin around it. A subclass names its ``columns``, its
``list_filters`` (``lockout_axes.admin.filters``), its default order, how a page is fetched
(``fetch_rows``) and how a row is drawn (``row_cells``). Every failed service call is an error
message on the page, never a server error.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ERROR_FLAG, ORDER_VAR, PAGE_VAR, SEARCH_VAR
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from lockout_axes import client
from lockout_axes.admin.filters import InvalidFilter

# A failed service call. A missing LOCKOUT_ADMIN_TOKEN is ImproperlyConfigured in client.admin_call.
SERVICE_ERRORS = (client.LockoutError, ImproperlyConfigured)


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    # The service's order by this column, ascending (its descending order is "-" + this).
    order: str | None = None
    nowrap: bool = False


@dataclass(frozen=True)
class Rows:
    """A page of rows and what is known of the rest."""

    items: list
    # How many rows match, when the service counts them.
    total: int | None
    # Whether the next page holds rows.
    more: bool


class ServiceChangeList:
    """What Django's change list templates and tags read of a ChangeList."""

    is_popup = False
    add_facets = False
    is_facets_optional = False
    formset = None
    date_hierarchy = None
    show_all = False
    can_show_all = False

    def __init__(self, request, model_admin):
        self.model_admin = model_admin
        self.model = model_admin.model
        self.opts = model_admin.opts
        self.filter_params = {
            name: values
            for name, values in request.GET.lists()
            if name not in (PAGE_VAR, ERROR_FLAG)
        }
        self.params = {name: values[-1] for name, values in self.filter_params.items()}
        self.query = self.params.get(SEARCH_VAR, "")
        self.search_fields = model_admin.search_fields
        self.search_help_text = model_admin.search_help_text
        self.list_per_page = model_admin.list_per_page
        self.page_num = _positive_int(request.GET.get(PAGE_VAR)) or 1
        self.ordering = model_admin.ordering_from(self.params.get(ORDER_VAR, ""))
        self.result_list = []
        self.result_count = self.full_result_count = 0
        self.paginator = Paginator(range(0), self.list_per_page)
        self.multi_page = False
        self.page_range = []

    @property
    def offset(self):
        return (self.page_num - 1) * self.list_per_page

    def read_filters(self, makers):
        """The filters, from this page's parameters; error texts of the values they cannot read
        (those filters are shown, unset)."""
        self.filters, errors = [], []
        for make in makers:
            try:
                spec = make(self.params)
                spec.arguments()
            except InvalidFilter as error:
                errors.append(str(error))
                spec = make({})
            self.filters.append(spec)
        self.has_active_filters = any(spec.is_active for spec in self.filters)
        # What the sidebar shows (Django's name); an exact filter only while set.
        self.filter_specs = [spec for spec in self.filters if spec.is_shown]
        self.has_filters = bool(self.filter_specs)
        every_parameter = [name for spec in self.filters for name in spec.parameters]
        self.clear_all_filters_qs = self.get_query_string(remove=every_parameter)
        return errors

    def filter_arguments(self):
        arguments = {}
        for spec in self.filters:
            arguments |= spec.arguments()
        return arguments

    def show(self, rows):
        self.result_list = rows.items
        known = rows.total
        if known is None:
            # Pages up to this one, and the next one when it holds rows.
            known = self.offset + len(rows.items) + (1 if rows.more else 0)
            self.result_count = self.full_result_count = None
        else:
            self.result_count = self.full_result_count = known
        self.paginator = Paginator(range(known), self.list_per_page)
        self.multi_page = self.page_num > 1 or rows.more
        self.page_range = (
            self.paginator.get_elided_page_range(self.page_num) if self.multi_page else []
        )

    def get_query_string(self, new_params=None, remove=()):
        """This list's query string (its page left out) with ``new_params`` set (a None value
        removes one) and the parameters ``remove`` names removed; as Django's ChangeList."""
        params = {name: values for name, values in self.filter_params.items() if name not in remove}
        for name, value in (new_params or {}).items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = [value]
        return "?" + urlencode(sorted(params.items()), doseq=True)


class ServiceListAdmin(admin.ModelAdmin):
    """A read-only list served from the service (a subclass may add actions and views)."""

    change_list_template = "admin/lockout_axes/change_list.html"
    actions = None
    columns = ()
    # Column number (from 1) and direction of the default order; None: the service's only order.
    default_ordering = None
    list_filters = ()
    # Only shown: the service searches these.
    search_fields = ("ip", "username", "user_agent", "path")

    def get_urls(self):
        changelist = self.admin_site.admin_view(self.changelist_view)
        return [path("", changelist, name=self.url_name("changelist"))]

    def url_name(self, view):
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def admin_url(self, view, *args):
        return reverse(f"admin:{self.url_name(view)}", args=args, current_app=self.admin_site.name)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def fetch_rows(self, request, *, offset, limit, search, order, **filters):
        raise NotImplementedError

    def row_cells(self, request, item):
        """The row's values by column name: text (escaped when shown), a datetime or None."""
        raise NotImplementedError

    def detail_url(self, item):
        """The page a row's first cell links to, if any."""
        return None

    def ordering_from(self, parameter):
        """(column number, descending) of the first sortable column ``o=`` names, else the
        default order."""
        for part in parameter.split("."):
            number = _positive_int(part.lstrip("-"))
            if number and number <= len(self.columns) and self.columns[number - 1].order:
                return number, part.startswith("-")
        return self.default_ordering

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        cl = ServiceChangeList(request, self)
        for error in cl.read_filters(self.list_filters):
            self.message_user(request, gettext("Filter ignored: %s") % error, messages.ERROR)
        order = None
        if cl.ordering is not None:
            number, descending = cl.ordering
            order = ("-" if descending else "") + self.columns[number - 1].order
        try:
            rows = self.fetch_rows(
                request,
                offset=cl.offset,
                limit=cl.list_per_page,
                search=cl.query.strip(),
                order=order,
                **cl.filter_arguments(),
            )
        except SERVICE_ERRORS as error:
            message = gettext("Could not list the %(items)s: %(error)s") % {
                "items": self.opts.verbose_name_plural,
                "error": error,
            }
            self.message_user(request, message, messages.ERROR)
            rows = Rows([], 0, False)
        if not rows.items and cl.page_num > 1:
            # Past the end (rows expired since the link was drawn): the last page there is.
            last = Paginator(range(rows.total or 0), cl.list_per_page).num_pages
            return HttpResponseRedirect(cl.get_query_string({PAGE_VAR: str(last)}))
        cl.show(rows)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Select %s to view") % self.opts.verbose_name,
            "subtitle": None,
            "opts": self.opts,
            "cl": cl,
            "media": self.media,
            "result_headers": list(self._headers(request, cl)),
            "num_sorted_fields": 1 if cl.ordering else 0,
            "results": [self._cells(request, item) for item in rows.items],
            "empty_value_display": self.get_empty_value_display(),
            "module_name": str(self.opts.verbose_name_plural),
            **self.list_context(request, cl),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_list_template, context)

    def service_error(self, request, template, error):
        """A failed service call as an error message; ``template`` has one ``%s``: the error."""
        self.message_user(request, template % error, messages.ERROR)

    def list_context(self, request, cl):
        """More for the page's template (a subclass' actions, notices)."""
        return {}

    def shows_checkboxes(self, request):
        return False

    def _headers(self, request, cl):
        if self.shows_checkboxes(request):
            label = gettext("Select all objects on this page for an action")
            yield {
                "text": format_html(
                    '<input type="checkbox" id="action-toggle" aria-label="{}">', label
                ),
                "class_attrib": mark_safe(' class="action-checkbox-column"'),
                "sortable": False,
            }
        sorted_number, descending = cl.ordering or (None, False)
        for number, column in enumerate(self.columns, start=1):
            if not column.order:
                yield {
                    "text": column.label,
                    "class_attrib": format_html(' class="column-{}"', column.name),
                    "sortable": False,
                }
                continue
            is_sorted = number == sorted_number
            classes = ["sortable", f"column-{column.name}"]
            if is_sorted:
                classes.append("sorted descending" if descending else "sorted ascending")
            # As Django: a click sorts by this column ascending, or reverses the current order.
            flip = ("" if is_sorted and descending else "-" if is_sorted else "") + str(number)
            yield {
                "text": column.label,
                "sortable": True,
                "sorted": is_sorted,
                "ascending": is_sorted and not descending,
                "sort_priority": 1 if is_sorted else 0,
                "url_primary": cl.get_query_string({ORDER_VAR: flip}),
                "url_remove": cl.get_query_string({ORDER_VAR: ""}),
                "url_toggle": cl.get_query_string({ORDER_VAR: flip}),
                "class_attrib": format_html(' class="{}"', " ".join(classes)),
            }

    def _cells(self, request, item):
        values = self.row_cells(request, item)
        cells = []
        if self.shows_checkboxes(request):
            label = gettext("Select this object for an action - %s") % item
            cells.append(
                format_html(
                    '<td class="action-checkbox"><input type="checkbox" name="{}" value="{}" '
                    'class="action-select" aria-label="{}"></td>',
                    helpers.ACTION_CHECKBOX_NAME,
                    item.pk,
                    label,
                )
            )
        link = self.detail_url(item)
        for number, column in enumerate(self.columns, start=1):
            text = self._display(values[column.name])
            classes = f"field-{column.name}" + (" nowrap" if column.nowrap else "")
            if number == 1 and link:
                cells.append(
                    format_html('<th class="{}"><a href="{}">{}</a></th>', classes, link, text)
                )
            else:
                cells.append(format_html('<td class="{}">{}</td>', classes, text))
        return cells

    def _display(self, value):
        if value is None or value == "":
            return self.get_empty_value_display()
        if isinstance(value, datetime):
            return formats.localize(timezone.template_localtime(value))
        return value


def _positive_int(text):
    try:
        number = int(text)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
