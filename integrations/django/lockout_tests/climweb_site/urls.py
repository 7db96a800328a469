"""Climweb's login pages: the Wagtail admin, the Django admin and allauth; and the page of
lockout_axes' unlock links, which a site includes for LOCKOUT_UNLOCK_EMAIL."""

from django.contrib import admin
from django.urls import include, path
from wagtail.admin import urls as wagtailadmin_urls

urlpatterns = [
    path("cms-admin/", include(wagtailadmin_urls)),
    path("dj-ad-admin/", admin.site.urls),
    path("auth/", include("allauth.urls")),
    path("account/lockout/", include("lockout_axes.urls")),
]
