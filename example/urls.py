from django.urls import path

from example import views

urlpatterns = [
    path("", views.console, name="console"),
    path("api/messages", views.message_types, name="message-types"),
    path("api/me", views.whoami, name="whoami"),
    path("api/login", views.login_view, name="login"),
    path("api/logout", views.logout_view, name="logout"),
]
