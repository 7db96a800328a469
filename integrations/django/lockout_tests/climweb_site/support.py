"""The login pages of the Climweb-like site and how each one posts its form, and requests from
distinct client addresses."""

from dataclasses import dataclass


@dataclass(frozen=True)
class LoginPage:
    name: str
    url: str
    username_field: str

    def post(self, client, username, password, **headers):
        form = {self.username_field: username, "password": password}
        return client.post(self.url, form, **headers)


LOGIN_PAGES = [
    LoginPage("wagtail", "/cms-admin/login/", "username"),
    LoginPage("django-admin", "/dj-ad-admin/login/", "username"),
    LoginPage("allauth", "/auth/login/", "login"),
]


# Where Axes finds the client behind Climweb's two proxies, as docs/django.md advises a site
# behind two proxies (Climweb's own settings find no address: every login is from 0.0.0.0).
BEHIND_TWO_PROXIES = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")


def from_ip(ip):
    """The headers of a request from ``ip`` through two proxies, for BEHIND_TWO_PROXIES."""
    return {"HTTP_X_FORWARDED_FOR": f"{ip}, 10.0.0.1, 10.0.0.2", "REMOTE_ADDR": "10.0.0.3"}
