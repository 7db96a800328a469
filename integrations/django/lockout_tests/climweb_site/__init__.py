"""A Climweb-like Django site, for the tests that must see lockout-axes in a real site's setup:
``DJANGO_SETTINGS_MODULE=lockout_tests.climweb_site.settings``.

What Climweb has, as its operator runs it: the Wagtail admin's login at ``/cms-admin/login/``,
the Django admin at ``/dj-ad-admin/``, django-allauth under ``/auth/`` (``/auth/login/``),
wagtail-2fa's middleware, ``AxesStandaloneBackend`` first, Axes' middleware last (with
``lockout_axes.middleware.LockoutMiddleware`` just before it), Climweb's Axes settings (3
failures, 30 minutes, ``[["username", "ip_address"]]``, reset on success,
``AXES_IPWARE_PROXY_COUNT = 2``; with
Axes' default ``AXES_IPWARE_META_PRECEDENCE_ORDER``, ``REMOTE_ADDR`` alone, Axes then finds no
client address, and the handler sends IP ``0.0.0.0``) and its own ``axes/lockout.html``. The
LOCKOUT_* settings come from the environment, as from Climweb's env_file; in the tests,
LOCKOUT_URL and LOCKOUT_ADMIN_TOKEN are the test session's service's (lockout_tests/conftest.py),
and LOCKOUT_SCOPE is ``climweb``. ``python -m lockout_tests.climweb_site.manage COMMAND`` is its
``climweb COMMAND``.

It runs in the environment of requirements-climweb.txt (Climweb's pins: Wagtail, allauth,
wagtail-2fa, django-axes 8.0.0), in a pytest run of its own, as ./run-tests does:
``pytest --ds=lockout_tests.climweb_site.settings lockout_tests/climweb_site``. support.py
has the login pages, conftest.py the fixtures its tests share.
"""
