"""Climweb's login pages: the Wagtail admin, the Django admin and allauth."""

from django.contrib import admin
from django.urls import include, path
from wagtail.admin import urls as wagtailadmin_urls

urlpatterns = [
    path("cms-admin/", include(wagtailadmin_urls)),
    path("dj-ad-admin/", admin.site.urls),
    path("auth/", include("allauth.urls")),
]
