from django.urls import path

from actors.metrics.views import metrics_view

urlpatterns = [path("metrics", metrics_view)]
