"""Staff who hold Django Axes' permissions keep their rights on lockout's pages: Axes'
``axes.view_<model>`` (or ``change_<model>``) grants the view of the page that stands for that
model, ``axes.delete_accessattempt`` deletion, as lockout's own ``lockout_axes.*`` permissions do.
An operator who was granted Axes' permissions needs nothing new after the switch.
"""


class AxesPermissions:
    # Axes' model this page stands for, as in its permissions' codenames ("accessattempt").
    axes_model_name = None

    def has_module_permission(self, request):
        return super().has_module_permission(request) or request.user.has_module_perms("axes")

    def has_view_permission(self, request, obj=None):
        return (
            super().has_view_permission(request, obj)
            or self._has_axes_permission(request, "view")
            or self._has_axes_permission(request, "change")
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) or self._has_axes_permission(
            request, "delete"
        )

    def _has_axes_permission(self, request, action):
        return request.user.has_perm(f"axes.{action}_{self.axes_model_name}")
