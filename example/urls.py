from django.urls import path

from actors.contract.views import schema_view
from actors.tracing.views import trace_view
from example import views

urlpatterns = [
    path("", views.console, name="console"),
    path("api/schema", schema_view, name="schema"),
    # The console's waterfall; development only (it answers 404 unless DEBUG is on).
    path("envelope/trace/<str:i>", trace_view, name="trace"),
    path("api/me", views.whoami, name="whoami"),
    path("api/login", views.login_view, name="login"),
    path("api/logout", views.logout_view, name="logout"),
]
