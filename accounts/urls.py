from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html",
                                                 redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html",
            success_url=reverse_lazy("accounts:settings"),
        ),
        name="password_change",
    ),
    path("settings/", views.settings_page, name="settings"),
    path("presence/", views.presence_beat, name="presence"),
    path("tokens/", views.create_token, name="create_token"),
    path("tokens/<int:pk>/revoke/", views.revoke_token, name="revoke_token"),
    path("notification/", views.save_webhook, name="save_webhook"),
    path("notification/test/", views.test_webhook, name="test_webhook"),
    path("notification/snooze/", views.snooze_alerts, name="snooze_alerts"),
    path("notification/deliveries/", views.deliveries, name="deliveries"),
    path("notification/deliveries/retry/", views.retry_deliveries, name="retry_deliveries"),
    path("notification/deliveries/<uuid:pk>/", views.delivery, name="delivery"),
    path("notification/deliveries/<uuid:pk>/redeliver/", views.redeliver, name="redeliver"),
]  # fmt: skip
