"""URLconf of the admin tests: the admin mounted away from ``/admin/``, as Climweb mounts it."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("dj-ad-admin/", admin.site.urls)]
