"""The self-service unlock link's page (``LOCKOUT_UNLOCK_EMAIL``): a site includes these,
``path("account/lockout/", include("lockout_axes.urls"))``."""

from django.urls import path

from lockout_axes.unlock import unlock_view

app_name = "lockout_axes"
urlpatterns = [path("unlock/<str:token>/", unlock_view, name="unlock")]
