"""record_django's configuration (settings.RETRACE_RECORDINGS, WSGI_APPLICATION) and the crash Django turned into a
500, in process: Django's settings configured once for this module, nothing served."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core.signals import got_request_exception  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from pytest_retrace.kinds import inprocess  # noqa: E402
from pytest_retrace.kinds.request import crash_catcher, django_entry, record_django  # noqa: E402


@pytest.fixture(autouse=True)
def installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service set up installs the boundaries for its process's life: not in this test session's process."""
    monkeypatch.setattr(inprocess._Installation, "off", True)


@pytest.fixture(scope="module", autouse=True)
def configured() -> None:
    if not settings.configured:
        settings.configure(INSTALLED_APPS=[], USE_TZ=True, USE_I18N=False, TEMPLATES=[],
                           ROOT_URLCONF=__name__, WSGI_APPLICATION=f"{__name__}.application")


urlpatterns: list[object] = []


def application(environ: object, start_response: object) -> list[bytes]:
    return []


def test_the_entry_is_where_wsgi_application_says() -> None:
    entry, root = django_entry(f"{__name__}.application")
    assert entry == f"{__name__}:application"
    assert root == str(Path(__file__).resolve().parent)


@pytest.mark.parametrize("setting", [None, "application"])
def test_an_unusable_wsgi_application_says_what_to_set(setting: str | None) -> None:
    with pytest.raises(ValueError, match="WSGI_APPLICATION = 'mysite.wsgi.application'.*entry="):
        django_entry(setting)


def test_a_module_that_is_not_there_is_named() -> None:
    with pytest.raises(ValueError, match="'no_such_site.wsgi.application', whose module is not importable"):
        django_entry("no_such_site.wsgi.application")


def test_options_come_from_the_settings_and_arguments_win(tmp_path: Path) -> None:
    with override_settings(RETRACE_RECORDINGS={"directory": str(tmp_path / "a"), "keep": "errors", "max_files": 3}):
        middleware = record_django(application)
        assert (middleware.folder, middleware.keep, middleware.max_files) == (tmp_path / "a", "errors", 3)
        assert middleware.entry == f"{__name__}:application" and middleware.__wrapped__ is application
        middleware = record_django(application, tmp_path / "b", keep="all")
        assert (middleware.folder, middleware.keep, middleware.max_files) == (tmp_path / "b", "all", 3)


def test_no_folder_or_a_bad_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no folder for the recordings.*RETRACE_RECORDINGS"):
        record_django(application)
    with override_settings(RETRACE_RECORDINGS="recordings"), pytest.raises(ValueError, match="make it a dict"):
        record_django(application)


def test_the_crash_django_answered_500_is_the_calling_threads_and_read_once() -> None:
    raised = crash_catcher(application)

    def fail(message: str) -> None:
        try:
            raise KeyError(message)
        except KeyError:
            got_request_exception.send(sender=None, request=None)  # as Django's response_for_exception does

    other = threading.Thread(target=fail, args=("other thread",))
    other.start()
    other.join()
    assert raised() is None  # another thread's request
    fail("this thread")
    crash = raised()
    assert isinstance(crash, KeyError) and crash.args == ("this thread",)
    assert raised() is None
    assert "django.core.signals" in sys.modules
