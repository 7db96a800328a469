"""The login pages of the Climweb-like site and how each one posts its form."""

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
