"""Settings of the Climweb-like site (see this package's docstring)."""

import os
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "climweb-site-tests"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "lockout_tests.climweb_site.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "wagtail_2fa",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail.sites",
    "wagtail",
    "modelcluster",
    "taggit",
    "allauth",
    "allauth.account",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "lockout_axes",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wagtail_2fa.middleware.VerifyUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Just before Climweb's last one, axes.middleware.AxesMiddleware.
    "lockout_axes.middleware.LockoutMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
STATIC_URL = "/static/"
WAGTAIL_SITE_NAME = "Climweb (tests)"
WAGTAILADMIN_BASE_URL = "http://testserver"
WAGTAIL_2FA_REQUIRED = False
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_EMAIL_VERIFICATION = "none"

# Climweb's Axes settings.
AXES_FAILURE_LIMIT = 3
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_PROXY_COUNT = 2
AXES_LOCKOUT_TEMPLATE = "axes/lockout.html"

# lockout-axes, as docs/django.md's snippet has it: the values come from the environment (the
# compose file's env_file); the tests' session service overrides LOCKOUT_URL and the admin token.
AXES_HANDLER = "lockout_axes.handler.LockoutHandler"
LOCKOUT_URL = os.environ.get("LOCKOUT_URL", "http://lockout:8080")
LOCKOUT_API_TOKEN = os.environ.get("LOCKOUT_API_TOKEN") or None
LOCKOUT_ADMIN_TOKEN = os.environ.get("LOCKOUT_ADMIN_TOKEN") or None
LOCKOUT_TIMEOUT = float(os.environ.get("LOCKOUT_TIMEOUT", "5"))
LOCKOUT_ON_ERROR = os.environ.get("LOCKOUT_ON_ERROR", "deny")
LOCKOUT_SCOPE = os.environ.get("LOCKOUT_SCOPE", "climweb")

# The tests' passwords are checked hundreds of times; Django's default hasher is slow by design.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
