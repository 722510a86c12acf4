"""HTTP of the multi-server test: a logout view (the user_logged_out signal closes sockets)."""

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("logged out")


urlpatterns = [path("logout/", logout_view)]
