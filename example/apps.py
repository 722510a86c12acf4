from django.apps import AppConfig


class ExampleConfig(AppConfig):
    name = "example"
    label = "example"
    verbose_name = "Envelope Router example"
    default_auto_field = "django.db.models.BigAutoField"
