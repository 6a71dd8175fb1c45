"""A request's response summary (what a recording's outcome and its replay compare) does not depend on how the
body was cut into chunks, nor on what the app does with a chunk after handing it over; bodies beyond what is held
undigested summarize the same way."""

from __future__ import annotations

import hashlib

from pytest_retrace.format import codec
from pytest_retrace.kinds.request import Response
from pytest_retrace.redaction import DEFAULT


def summary(chunks: list[bytes | bytearray]) -> tuple[str, int, str]:
    response = Response(DEFAULT)
    response.start("200 OK", [("Content-Type", "text/plain")])
    for chunk in chunks:
        response.feed(chunk)
    stream = response.summary()
    return stream.digest, stream.size, str(stream.head)


def expected(body: bytes) -> str:
    digest = hashlib.blake2b(codec.packb(["200 OK", [["Content-Type", "text/plain"]]]), digest_size=16)
    digest.update(hashlib.blake2b(body, digest_size=16).digest())
    return digest.hexdigest()


def test_the_summary_is_the_same_however_the_body_is_cut() -> None:
    body = bytes(range(256)) * 1000  # beyond the bytes held undigested
    whole = summary([body])
    assert whole[0] == expected(body) and whole[1] == len(body)
    assert summary([body[i : i + 777] for i in range(0, len(body), 777)]) == whole
    assert summary([b"", body[:10], b"", body[10:]]) == whole
    assert summary([]) == (expected(b""), 0, summary([b""])[2])


def test_a_chunk_the_app_changes_after_handing_it_over_is_summarized_as_it_was() -> None:
    chunk = bytearray(b"first")
    response = Response(DEFAULT)
    response.start("200 OK", [("Content-Type", "text/plain")])
    response.feed(chunk)
    chunk[:] = b"CHANGED"
    assert response.summary().digest == expected(b"first")


def test_headers_the_app_changes_after_start_response_are_summarized_as_they_were() -> None:
    headers = [("Content-Type", "text/plain")]
    response = Response(DEFAULT)
    response.start("200 OK", headers)
    response.feed(b"body")
    headers.append(("X-Later", "1"))
    assert response.summary().digest == expected(b"body")
