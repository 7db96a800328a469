"""A Climweb-like Django site, for the tests that must see lockout-axes in a real site's setup:
``DJANGO_SETTINGS_MODULE=lockout_tests.climweb_site.settings``.

What Climweb has, as its operator runs it: the Wagtail admin's login at ``/cms-admin/login/``,
the Django admin at ``/dj-ad-admin/``, django-allauth under ``/auth/`` (``/auth/login/``),
wagtail-2fa's middleware, ``AxesStandaloneBackend`` first, Axes' middleware last (as
``lockout_axes.middleware.LockoutMiddleware``), Climweb's Axes settings (3 failures, 30 minutes,
``[["username", "ip_address"]]``, reset on success, ``AXES_IPWARE_PROXY_COUNT = 2``: the
client's address is the first of ``X-Forwarded-For``, written by two proxies) and its own
``axes/lockout.html``. LOCKOUT_URL and LOCKOUT_ADMIN_TOKEN come from the test session's service
(lockout_tests/conftest.py), LOCKOUT_SCOPE is ``climweb``.

It runs in the environment of requirements-climweb.txt (Climweb's pins: Wagtail, allauth,
wagtail-2fa, django-axes 8.0.0), in a pytest run of its own, as ./run-tests does:
``pytest --ds=lockout_tests.climweb_site.settings lockout_tests/climweb_site``. support.py
has the login pages, conftest.py the fixtures its tests share.
"""
