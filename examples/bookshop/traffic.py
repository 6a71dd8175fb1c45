"""python traffic.py URL [REQUESTS] [CLIENTS] [--crash]: browse the bookshop the way its users do — pages,
logins, orders, reviews, API calls — from CLIENTS concurrent clients, REQUESTS requests in all (default 60 from
4). Each client keeps its own cookies (its login session). Prints how many answers of each status came back, and
with --json every answer's status and body digest, in request order, to compare two runs."""

from __future__ import annotations

import hashlib
import json
import random
import sys
import threading
from collections import Counter

import requests

USERS = ["ada", "grace", "alan", "edsger", "barbara", "donald", "ken", "dennis"]  # one a client: answers
# depend on what that client did only, however the clients' requests interleave


def visits(client: int, count: int, crash: bool) -> list[tuple[str, str, dict | None]]:
    """What one client does, decided up front (the same every run): (method, path, form or JSON)."""
    draw = random.Random(client)
    user = USERS[client % len(USERS)]
    steps: list[tuple[str, str, dict | None]] = [("POST", "/login", {"name": user, "password": user + "-secret"})]
    while len(steps) < count:
        kind = draw.randrange(10)
        if kind == 0:
            steps.append(("GET", "/", None))
        elif kind == 1:
            steps.append(("GET", f"/books/{draw.randint(1, 4)}", None))
        elif kind == 2:
            steps.append(("GET", "/orders", None))
        elif kind == 3:
            steps.append(("POST", "/orders", {"book_id": str(draw.randint(1, 4)), "quantity": "1"}))
        elif kind == 4:
            steps.append(("GET", "/api/books", None))
        elif kind == 5:
            steps.append(("POST", f"/api/books/{draw.randint(1, 6)}/reviews", {"json": {"stars": draw.randint(1, 5)}}))
        elif kind == 6:
            steps.append(("GET", "/api/stats", None))
        elif kind == 7:
            steps.append(("GET", f"/books/{draw.choice([99, 404])}", None))  # no such book: 404
        elif kind == 8 and crash and draw.random() < 0.25:
            steps.append(("GET", "/books/5", None))  # a book nobody reviewed yet: now and then
        else:
            steps.append(("POST", "/login", {"name": user, "password": "guess"}))  # a wrong password: 401
    return steps[:count]


def browse(url: str, client: int, count: int, crash: bool, answers: dict[tuple[int, int], tuple[int, str]]) -> None:
    with requests.Session() as http:
        for i, (method, path, data) in enumerate(visits(client, count, crash)):
            if data is not None and "json" in data:
                response = http.request(method, url + path, json=data["json"], timeout=30, allow_redirects=False)
            else:
                response = http.request(method, url + path, data=data, timeout=30, allow_redirects=False)
            answers[client, i] = (response.status_code, hashlib.sha256(response.content).hexdigest()[:16])


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    url = args[0].rstrip("/")
    total = int(args[1]) if len(args) > 1 else 60
    clients = int(args[2]) if len(args) > 2 else 4
    answers: dict[tuple[int, int], tuple[int, str]] = {}
    threads = [threading.Thread(target=browse, args=(url, c, total // clients + (c < total % clients),
                                                     "--crash" in sys.argv, answers)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = Counter(status for status, _ in answers.values())
    print(f"{len(answers)} requests: " + ", ".join(f"{n} × {s}" for s, n in sorted(statuses.items())))
    if "--json" in sys.argv:
        print(json.dumps({f"{c}.{i}": answer for (c, i), answer in sorted(answers.items())}))


if __name__ == "__main__":
    main()
