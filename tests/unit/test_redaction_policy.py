"""The redaction policy: what counts as a secret by name and by shape, and that redacting twice changes nothing
(a replay redacts what the program does with the placeholders it was given, and its keys must still match)."""

from __future__ import annotations

import base64
import json

import pytest

from pytest_retrace.redaction import DEFAULT, DEFAULT_NAMES, PLACEHOLDER, VALUE_PATTERNS, Redaction, normalized

P = PLACEHOLDER


@pytest.mark.parametrize("name", [
    "PASSWORD", "db_passwd", "MYSQL_PWD", "STRIPE_KEY", "SENTRY_DSN", "API_TOKEN", "apiKey", "X-Api-Key",
    "HTTP_AUTHORIZATION", "Proxy-Authorization", "HTTP_COOKIE", "Set-Cookie", "sessionid", "csrftoken",
    "client_secret", "AWS_SECRET_ACCESS_KEY", "private_key", "credentials", "webhook_signature", "refresh_token",
    "accessKey", "OAUTH_CLIENT", "jwt", "pass",
])
def test_secret_names_are_found(name: str) -> None:
    assert DEFAULT.matches(name), normalized(name)


@pytest.mark.parametrize("name", [
    "OLDPWD", "HOME", "PATH", "keyboard", "monkey", "author", "authors", "author_id", "DATABASE_URL",
    "username", "compass", "LANG", "hotkeys_enabled", "bypass_cache",
])
def test_ordinary_names_are_not_secrets(name: str) -> None:
    assert not DEFAULT.matches(name), normalized(name)


def test_names_are_normalized_so_patterns_see_words() -> None:
    assert normalized("X-Api-Key") == "_x_api_key_"
    assert normalized("stripeKey") == "_stripe_key_"
    assert normalized("APIKey") == "_api_key_"
    assert normalized("HTTP_AUTHORIZATION") == "_http_authorization_"


@pytest.mark.parametrize(("value", "expected"), [
    ("postgresql://app:hunter2@db:5432/shop", f"postgresql://app:{P}@db:5432/shop"),
    ("redis://:s3cr3t@cache/0", f"redis://:{P}@cache/0"),
    ("host=db password=hunter2 user=me", f"host=db password={P} user=me"),
    ("Server=x;Pwd=hunter2;Database=y", f"Server=x;Pwd={P};Database=y"),
    ("password='two words' host=db", f"password={P} host=db"),
    ("Bearer abcdefgh12345678", f"Bearer {P}"),
    ("Basic " + base64.b64encode(b"me:hunter2").decode(), f"Basic {P}"),
    ("AKIAIOSFODNN7EXAMPLE", P),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", P),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", P),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", P),
    ("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", P),
])
def test_secret_shapes_are_found_and_keep_their_shape(value: str, expected: str) -> None:
    assert DEFAULT.text(value) == expected
    assert DEFAULT.text(expected) == expected  # idempotent


@pytest.mark.parametrize("value", [
    "https://example.org/path?x=1", "http://host:8080/a@b", "Basic plan", "Bearer", "keyboard", "hello world",
    "AKIA-not-a-key", "eyJ alone", "ssh://git@github.com/o/r.git", "password reset sent",
])
def test_ordinary_values_stay(value: str) -> None:
    assert DEFAULT.text(value) == value


def test_adding_and_removing_patterns() -> None:
    policy = Redaction.configured(add=["customer_ref"], remove=["session", "jwt"])
    assert policy.matches("X_CUSTOMER_REF") and not DEFAULT.matches("X_CUSTOMER_REF")
    assert not policy.matches("SESSION_ID") and DEFAULT.matches("SESSION_ID")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    assert policy.text(jwt) == jwt
    with pytest.raises(ValueError, match="none of the defaults"):
        Redaction.configured(remove=["nonsense"])
    for crafted in ("(unclosed", "(((.*)*)*)*#", "a?" * 30 + "a" * 30, "x+"):
        with pytest.raises(ValueError, match="is not words of a name"):
            Redaction.configured(add=[crafted])
    assert Redaction.configured(add=["Customer_Ref|billing_id"]).matches("X_CUSTOMER_REF")


def test_the_policy_travels_in_the_header_and_comes_back_the_same() -> None:
    policy = Redaction.configured(add=["x_ref"], remove=["dsn", "jwt"])
    header = {"redaction": policy.to_header(["SENTRY_DSN"])}
    assert Redaction.from_header(header) == policy
    assert header["redaction"]["redacted"] == ["SENTRY_DSN"]
    # Made before policies: only the environment's snapshot was redacted; replay redacts nothing more.
    assert Redaction.from_header({"redaction": {"pattern": "(?i)secret", "redacted": []}}).names == ()
    # A crafted header's patterns: only the defaults and plain ones are taken (no pattern that matches slowly).
    crafted = {"redaction": {"names": ["(((.*)*)*)*#", "a?" * 30, "secret", "customer_ref"], "values": ["jwt", "x"]}}
    assert Redaction.from_header(crafted) == Redaction(("secret", "customer_ref"), ("jwt",))


def test_replace_secrets_false_redacts_nothing() -> None:
    keep = Redaction(replace_secrets=False)
    assert keep.environ({"API_TOKEN": "t0k"}) == ({"API_TOKEN": "t0k"}, [])
    assert keep.argv(["a.py", "--password=x"]) == (["a.py", "--password=x"], [])
    assert keep.text("postgresql://u:pw@db/x") == "postgresql://u:pw@db/x"
    assert keep.http_head(b"GET / HTTP/1.1\r\nAuthorization: Bearer abcdefgh1234\r\n\r\n").endswith(b"1234\r\n\r\n")


def test_environment_names_and_values() -> None:
    env, names = DEFAULT.environ({"DATABASE_URL": "postgresql://u:pw@db/x", "STRIPE_KEY": "sk_x", "HOME": "/root"})
    assert env == {"DATABASE_URL": f"postgresql://u:{P}@db/x", "STRIPE_KEY": P, "HOME": "/root"}
    assert names == ["DATABASE_URL", "STRIPE_KEY"]


def test_program_arguments() -> None:
    argv, names = DEFAULT.argv(["app.py", "--password=hunter2", "--token", "t0k", "--verbose", "--auth-file",
                                "-x", "postgresql://u:pw@db/x", "plain"])
    assert argv == ["app.py", f"--password={P}", "--token", P, "--verbose", "--auth-file", "-x",
                    f"postgresql://u:{P}@db/x", "plain"]
    assert names == ["--password", "--token", "--auth-file"]
    assert DEFAULT.argv(argv)[0] == argv


def test_query_strings_and_urls_keep_what_is_not_secret_byte_for_byte() -> None:
    assert DEFAULT.query("a=1%2C2&api_key=abc&b=x+y") == "a=1%2C2&api_key=REDACTED-by-pytest-retrace&b=x+y"
    url = DEFAULT.url("https://me:pw@api.example/v1?api_key=abc&q=1#top")
    assert url == f"https://me:{P}@api.example/v1?api_key=REDACTED-by-pytest-retrace&q=1#top"
    assert DEFAULT.url(url) == url
    # The replayed program built the URL from a redacted value, quoted by its library its own way: same key.
    assert DEFAULT.url("https://me:REDACTED-by-pytest-retrace@api.example/v1?api_key=zzz&q=1#top") == url


def test_headers_and_cookies() -> None:
    assert DEFAULT.header("Authorization", "Bearer abc") == P
    assert DEFAULT.header("Cookie", "sid=abc; theme=dark") == f"sid={P}; theme={P}"
    assert DEFAULT.header("Set-Cookie", "sid=abc; Path=/; HttpOnly") == f"sid={P}; Path=/; HttpOnly"
    assert DEFAULT.header("Accept", "text/html") == "text/html"


def test_bodies_by_content_type() -> None:
    form = DEFAULT.body(b"user=ann&password=hunter2", "application/x-www-form-urlencoded")
    assert form == b"user=ann&password=REDACTED-by-pytest-retrace"
    body = DEFAULT.body(json.dumps({"user": "ann", "token": "t0k", "auth": {"scheme": "x", "tries": 3},
                                    "flags": [True, None], "keys": ["k1", "k2"]}).encode(), "application/json")
    assert json.loads(body) == {"user": "ann", "token": P, "auth": {"scheme": P, "tries": P},
                                "flags": [True, None], "keys": [P, P]}
    unchanged = b'{"user":  "ann"}'
    assert DEFAULT.body(unchanged, "application/json") is unchanged
    assert DEFAULT.body("caf\u00e9 password=x".encode(), "text/plain") == f"caf\u00e9 password={P}".encode()


def test_http_payloads_on_the_socket_layer() -> None:
    basic = base64.b64encode(b"me:hunter2").decode()
    request = (f"GET /v1?api_key=abc HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\r\nbody").encode()
    redacted = DEFAULT.http_head(request)
    assert b"hunter2" not in redacted and basic.encode() not in redacted and b"abc" not in redacted
    assert redacted.endswith(b"\r\n\r\nbody") and DEFAULT.http_head(redacted) == redacted
    response = b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=s3cr3t; Path=/\r\nContent-Length: 2\r\n\r\nok"
    assert DEFAULT.http_head(response) == f"HTTP/1.1 200 OK\r\nSet-Cookie: sid={P}; Path=/\r\n".encode() + \
        b"Content-Length: 2\r\n\r\nok"
    assert DEFAULT.http_head(b"\x16\x03\x01binary") == b"\x16\x03\x01binary"


def test_call_arguments() -> None:
    assert DEFAULT.data({"user": "ann", "password": "pw", "n": 3, "dsn": b"x"}) == \
        {"user": "ann", "password": P, "n": 3, "dsn": P}
    assert DEFAULT.data(["postgresql://u:pw@h/d", ("Bearer abcdefgh1234",)]) == \
        [f"postgresql://u:{P}@h/d", (f"Bearer {P}",)]


def test_every_default_is_documented_by_name() -> None:
    assert len(set(DEFAULT_NAMES)) == len(DEFAULT_NAMES) and DEFAULT.values == tuple(VALUE_PATTERNS)


def test_a_received_http_head_is_recorded_redacted_and_never_longer_than_asked() -> None:
    from types import SimpleNamespace

    from pytest_retrace.boundaries.payloads import received

    engine = SimpleNamespace(redaction=DEFAULT)
    answer = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nContent-Length: 0\r\n\r\n"
    run, holder = received(engine, len(answer), lambda: answer)  # type: ignore[arg-type]
    recorded = run()
    assert holder == [answer]  # the program gets what came
    assert recorded == b"HTTP/1.1 200 OK\r\nSet-Cookie:****\r\nContent-Length: 0\r\n\r\n"  # fits the buffer
    run, _ = received(engine, 4096, lambda: answer)  # type: ignore[arg-type]
    assert run() == f"HTTP/1.1 200 OK\r\nSet-Cookie: a={P}\r\nContent-Length: 0\r\n\r\n".encode()
    run, _ = received(SimpleNamespace(redaction=Redaction(replace_secrets=False)), 10, lambda: answer)  # type: ignore[arg-type]
    assert run() == answer


def test_a_crafted_header_gives_a_usable_policy() -> None:
    crafted = {"redaction": {"names": ["(unclosed", "x" * 5000, 7, "token"], "values": ["jwt", "exec", None],
                             "replace_secrets": "yes"}}
    policy = Redaction.from_header(crafted)
    assert policy == Redaction(("token",), ("jwt",), True)
    assert Redaction.from_header({"redaction": {"names": 5, "values": "jwt"}}) == Redaction((), (), True)
    assert Redaction.from_header({"redaction": None}) == Redaction((), (), True)


def test_values_redacted_whole_are_replaced_wherever_they_show_up_while_recording() -> None:
    env = {"API_TOKEN": "tok-abcdef-123456", "TR_DSN": "host=db port=5432 user=app", "XDG_SESSION_TYPE": "tty",
           "HOME": "/root"}
    redacted, _ = DEFAULT.environ(env)
    assert redacted["TR_DSN"] == env["TR_DSN"]  # a DSN with no password holds no secret, and a program parses it
    argv = ["app.py", "--token", "tok-1234567", "--api-key=abcdefgh99"]
    policy = DEFAULT.knowing(list(env.values()) + argv, list(redacted.values()) + DEFAULT.argv(argv)[0])
    assert set(policy.known) == {"tok-abcdef-123456", "tok-1234567", "abcdefgh99"}  # not "tty": short
    assert policy.text("id tok-abcdef-123456 sent") == f"id {P} sent"
    assert policy.url("https://api/v1/tok-1234567/items") == f"https://api/v1/{P}/items"
    assert "known" not in policy.to_header([]) and Redaction.from_header({"redaction": policy.to_header([])}) == DEFAULT


@pytest.mark.parametrize(("value", "expected"), [
    ("https://f00dface@o1.ingest.example/42", f"https://{P}@o1.ingest.example/42"),
    ("postgresql://app:pw@db/shop", f"postgresql://app:{P}@db/shop"),
    ("postgresql+psycopg2://db/shop", "postgresql+psycopg2://db/shop"),
    ("host=db port=5432 user=app", "host=db port=5432 user=app"),
    ("host=db password=hunter2", f"host=db password={P}"),
    ("https://hooks.example/T00/B00/XXXX", P),
    ("plain-secret", P),
])
def test_a_secret_named_value_a_program_parses_keeps_its_shape(value: str, expected: str) -> None:
    assert DEFAULT.value("SOME_DSN", value) == expected
    assert DEFAULT.value("SOME_DSN", expected) == expected


@pytest.mark.parametrize("unit", ["a.", "eyJa.", "a://", "a://b:", "password= ", "Bearer ", "Basic ", "sk_live_",
                                  "-----BEGIN PRIVATE KEY-----", '"token":"', "a=", " "])
def test_redacting_takes_linear_time_on_any_value(unit: str) -> None:
    """A request body is anyone's input: 100 KB built to make a pattern backtrack (a scheme-like run of
    ``a.a.a.`` took 18 s) is redacted as fast as any other 100 KB. The bound is far above linear time and
    far below what quadratic time takes."""
    import time

    text = unit * (100_000 // len(unit)) + " ://"  # a clue of the URL pattern: it runs
    start = time.process_time()
    DEFAULT.text(text)
    DEFAULT.body(text.encode(), "application/x-www-form-urlencoded")
    DEFAULT.body(text.encode(), "application/json")
    DEFAULT.value("API_TOKEN", text)
    assert time.process_time() - start < 1.0


def test_short_secret_names_and_the_working_folder() -> None:
    """``pwd`` (a parameter, a query field) and ``PGPASS``/``DBPASS``/``GH_PAT`` are secrets; the ``PWD``
    variable is the working folder and stays; ``BYPASS_CACHE`` and ``COMPASS_DIR`` are no passwords."""
    for name in ("pwd", "PGPASS", "DBPASS", "GH_PAT", "MYAPP_DB_PW", "SERVICE_CRED"):
        assert DEFAULT.matches(name), name
    for name in ("BYPASS_CACHE", "COMPASS_DIR", "SURPASS"):
        assert not DEFAULT.matches(name), name
    environ, redacted = DEFAULT.environ({"PWD": "/srv/app", "DB_PWD": "s3cr3t-pw"})
    assert environ == {"PWD": "/srv/app", "DB_PWD": PLACEHOLDER} and redacted == ["DB_PWD"]
    assert DEFAULT.text("token github_pat_11ABCDEFG0123456789_abcdefghijkl") == f"token {PLACEHOLDER}"


def test_every_default_name_pattern_holds_a_clue_the_quick_check_looks_for() -> None:
    """A preview is looked at pair by pair only when a clue of some name pattern is in it: a default pattern
    without one of the clues would be skipped there."""
    import re

    from pytest_retrace.redaction import _NAME_CLUES

    for pattern in DEFAULT_NAMES:
        letters = re.sub(r"\(\?<?[!=][^)]*\)|\[[^]]*\]|[()?|_^$\\]", "", pattern)  # what it matches literally
        assert _NAME_CLUES.search(letters), pattern
    nested = '{"data": {"stripeKey": "sk-abcdef"}, "user": {"password": "x"}}'
    assert "sk-abcdef" not in DEFAULT.fragment(nested) and '"x"' not in DEFAULT.fragment(nested)


def test_parts_replaced_in_a_value_are_known_and_replaced_wherever_they_show_up() -> None:
    """A DSN-named variable's user, a URL's token: the replay runs with them replaced, and what the program passes
    on from them (a driver's ``user`` argument) must be keyed the same way while recording."""
    environ = {"SHOP_DSN": "postgresql://shopkeeper@db.internal:5432/shop",
               "SENTRY_DSN": "https://0123456789abcdef@o1.ingest.sentry.io/5", "HOME": "/home/someone"}
    redacted, names = DEFAULT.environ(environ)
    assert sorted(names) == ["SENTRY_DSN", "SHOP_DSN"]
    knowing = DEFAULT.knowing([environ[n] for n in names], [redacted[n] for n in names])
    assert set(knowing.known) == {"shopkeeper", "0123456789abcdef"}
    assert knowing.data({"user": "shopkeeper", "host": "db.internal"}) == {"user": PLACEHOLDER, "host": "db.internal"}
    assert knowing.text("key=0123456789abcdef") == f"key={PLACEHOLDER}"
    short = DEFAULT.knowing(["postgresql://bob@db/x"], [f"postgresql://{PLACEHOLDER}@db/x"])
    assert short.known == ()  # "bob" would show up by chance
    assert DEFAULT.knowing(["abc"], ["something else entirely " + PLACEHOLDER]).known == ()  # parts that do not line up
