"""``LockoutMiddleware``: the answer to a login refused because the lockout service was
unavailable (LOCKOUT_ON_ERROR = "deny"): HTTP 503 saying that logging in is temporarily
unavailable, from the template ``lockout_axes/unavailable.html`` (a site overrides it as any app
template), or JSON for XHR and API requests, where Axes' lockout page would tell the user that
they are locked out. With ``LOCKOUT_DEVICE_COOKIE``, the response of a successful login gets
the device cookie the handler kept on the request (``lockout_axes.devices``: Axes' handler API
sees no response). Every other response passes through unchanged.

It goes right before Axes' ``AxesMiddleware``, which stays where it is (last, as Axes asks, and
as Axes' own check ``axes.W002`` wants it): on the way out it sees the response Axes' middleware
made of the refused login and replaces it. The ``lockout`` system checks report a site without
it, or with it after Axes' middleware, where it would see the response before Axes' does.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from axes.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

from lockout_axes import devices
from lockout_axes.handler import REFUSED_UNAVAILABLE_FLAG

UNAVAILABLE_TEMPLATE = "lockout_axes/unavailable.html"
UNAVAILABLE_STATUS = 503
UNAVAILABLE_MESSAGE = "Logging in is temporarily unavailable. Please try again in a few minutes."


class LockoutMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        response = self.get_response(request)
        if _refused_unavailable(request):
            return unavailable_response(request)
        devices.set_cookie(request, response)
        return response

    async def __acall__(self, request):
        response = await self.get_response(request)
        if _refused_unavailable(request):
            return await sync_to_async(unavailable_response, thread_sensitive=True)(request)
        devices.set_cookie(request, response)
        return response


def _refused_unavailable(request):
    return getattr(request, REFUSED_UNAVAILABLE_FLAG, False) and settings.AXES_ENABLED


def unavailable_response(request):
    """The 503 of a login refused for want of the service's verdict."""
    response = _unavailable_response(request)
    # The handler logged this refusal, and the client the outage's cause: Django is not to log
    # each refused login as a server error too (by default mailed to ADMINS, one per login).
    response._has_been_logged = True
    return response


def _unavailable_response(request):
    if _wants_json(request):
        response = JsonResponse(
            {"error": "login_unavailable", "detail": UNAVAILABLE_MESSAGE},
            status=UNAVAILABLE_STATUS,
        )
        # As Axes' JSON lockout answer, so that the same scripts can read this one.
        response["Access-Control-Allow-Origin"] = settings.AXES_ALLOWED_CORS_ORIGINS
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = (
            "Origin, Content-Type, Accept, Authorization, x-requested-with"
        )
        return response
    try:
        body = render_to_string(UNAVAILABLE_TEMPLATE, {"message": UNAVAILABLE_MESSAGE}, request)
    except TemplateDoesNotExist:
        body = UNAVAILABLE_MESSAGE
        return HttpResponse(body, status=UNAVAILABLE_STATUS, content_type="text/plain")
    return HttpResponse(body, status=UNAVAILABLE_STATUS)


def _wants_json(request):
    if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
        return True
    return request.accepts("application/json") and not request.accepts("text/html")
