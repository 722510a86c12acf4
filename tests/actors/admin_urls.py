"""URLs for the admin page test (tests/deferred_settings.py with ENVELOPE_TEST_ADMIN=1)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
