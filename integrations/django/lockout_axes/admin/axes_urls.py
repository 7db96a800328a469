"""Axes' admin URLs, kept for bookmarks and links while lockout's pages stand in for Axes'.

``AxesRedirectAdmin`` is registered for Axes' own models (AccessAttempt, AccessLog,
AccessFailureLog): it is in no index or sidebar, and each of its URLs redirects to lockout's
page for the same model, the list's query string kept (the pages share Axes' parameter names:
``q``, ``o``, ``p``, ``attempt_time__gte``/``__lt``, ``locked_out``). An Axes row's page
(``<id>/change/``) goes to the list: Axes' row ids name nothing in the service.
"""

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path, reverse


class AxesRedirectAdmin(admin.ModelAdmin):
    # The lockout model whose pages stand for this Axes model; set per registration.
    lockout_model = None

    def get_model_perms(self, request):
        return {}

    def has_module_permission(self, request):
        return False

    def get_urls(self):
        redirect = self.admin_site.admin_view(self.redirect_view)
        return [
            path("", redirect, name=f"{self.opts.app_label}_{self.opts.model_name}_changelist"),
            path("<path:object_id>/", redirect),
        ]

    def redirect_view(self, request, object_id=None):
        target_opts = self.lockout_model._meta
        target = reverse(
            f"admin:{target_opts.app_label}_{target_opts.model_name}_changelist",
            current_app=self.admin_site.name,
        )
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(f"{target}?{query}" if query and object_id is None else target)


def redirect_admin(lockout_model):
    """An AxesRedirectAdmin class that sends Axes' URLs of one model to ``lockout_model``'s."""
    return type(
        f"{lockout_model.__name__}RedirectAdmin",
        (AxesRedirectAdmin,),
        {"lockout_model": lockout_model, "__module__": __name__},
    )
