"""Self-service unlock (``LOCKOUT_UNLOCK_EMAIL = True``): a user whose username is locked out
gets an email with a link that removes the username's locks (not its addresses': an attacker
who gets the link gains nothing against the lock of the address that guesses).

``offer`` runs on the lockout's path (the handler's ``user_locked_out``): for an active user of
that username with an email address, at most once per lockout (a shared Django cache counts),
it has the service mint an unlock token (``POST /v1/unlock-tokens``, LOCKOUT_ADMIN_TOKEN) and
mails the link (templates ``lockout_axes/unlock_email_subject.txt`` and
``lockout_axes/unlock_email.txt``). The response is the same lockout page whether or not a
mail went, so the requester learns nothing of the username.

``unlock_view`` is the link's page (``lockout_axes.urls``): GET asks for a click and redeems
nothing (mail scanners open links), POST redeems the token (``POST /v1/unlock``): once; a token
used before, expired or forged unlocks nothing. Template ``lockout_axes/unlock.html``.
"""

import hashlib
from logging import getLogger

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from lockout_axes import client

log = getLogger(__name__)

SUBJECT_TEMPLATE = "lockout_axes/unlock_email_subject.txt"
BODY_TEMPLATE = "lockout_axes/unlock_email.txt"
PAGE_TEMPLATE = "lockout_axes/unlock.html"
URL_NAME = "lockout_axes:unlock"


def enabled():
    return getattr(settings, "LOCKOUT_UNLOCK_EMAIL", False) is True


def offer(request, username, lock_seconds):
    """After ``username`` was locked out (for ``lock_seconds``): the unlock email to its user,
    unless one went (or failed to go) during this lockout, or the life of its link if shorter."""
    if not username:
        return
    user = _user_with_email(username)
    if user is None:
        return
    sent = _sent_key(username)
    if not cache.add(sent, True, timeout=lock_seconds):
        return
    try:
        link_seconds = _send(request, user, username)
    except (client.LockoutError, NoReverseMatch, OSError) as error:
        # The mark stays: under attack, one try (and one log line) per lockout, not per guess.
        log.error("AXES: No unlock email went to the user of %r: %s", username, error)
        return
    # A lockout that outlasts the link may mail a new one.
    cache.touch(sent, min(lock_seconds, link_seconds))


@never_cache
@require_http_methods(["GET", "POST"])
def unlock_view(request, token):
    if request.method == "POST":
        state, status = _redeem(token)
    else:
        state, status = "confirm", 200
    response = render(request, PAGE_TEMPLATE, {"state": state}, status=status)
    # The link's token stays off other sites' logs.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _user_with_email(username):
    model = get_user_model()
    try:
        user = model._default_manager.get_by_natural_key(username)
    except (model.DoesNotExist, model.MultipleObjectsReturned):
        return None
    if not user.is_active or not getattr(user, model.get_email_field_name(), None):
        return None
    return user


def _send(request, user, username):
    """Mails the user a new unlock link; returns how long it works, in seconds."""
    minted = client.admin_call("POST", "/v1/unlock-tokens", {"username": username})
    link = request.build_absolute_uri(reverse(URL_NAME, kwargs={"token": minted["token"]}))
    context = {
        "user": user,
        "username": username,
        "unlock_url": link,
        "expires_in_minutes": max(1, minted["expires_in_secs"] // 60),
        "site_host": request.get_host(),
    }
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context, request).split())
    body = render_to_string(BODY_TEMPLATE, context, request)
    email = getattr(user, get_user_model().get_email_field_name())
    send_mail(subject, body, None, [email])
    log.info("AXES: Sent an unlock email to the user of %r.", username)
    return minted["expires_in_secs"]


def _redeem(token):
    """The page's state and status once the service has the token."""
    try:
        answer = client.unlock_call(token)
    except client.RequestRejected as error:
        if error.status == 400:
            return "invalid", 400
        log.error("AXES: An unlock link could not be redeemed: %s", error)
        return "unavailable", 503
    except client.LockoutError as error:
        log.error("AXES: An unlock link could not be redeemed: %s", error)
        return "unavailable", 503
    # A new lockout may mail a new link.
    cache.delete(_sent_key(answer["username"]))
    log.info(
        "AXES: Unlocked %r with an unlock email (%d records removed).",
        answer["username"],
        answer["removed"],
    )
    return "unlocked", 200


def _sent_key(username):
    """The cache key that marks an unlock email sent for ``username`` (of LOCKOUT_SCOPE)."""
    scope = getattr(settings, "LOCKOUT_SCOPE", None) or ""
    digest = hashlib.sha256(f"{scope}\0{username}".encode()).hexdigest()
    return f"lockout_axes:unlock_email:{digest}"
