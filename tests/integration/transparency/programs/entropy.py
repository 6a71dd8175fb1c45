"""Issue an order number, a coupon code and a shuffled sample of the inventory."""
import os
import random
import secrets
import uuid

items = [line.split(",")[0] for line in open("inventory.csv").read().splitlines()[1:]]
rng = random.Random()
print("order", uuid.uuid4().hex, "for", len(items), "items in", os.environ["TR_REGION"])
print("coupon", secrets.token_hex(8), "valid for", len(secrets.token_urlsafe(6)), "days")
print("salt", os.urandom(6).hex())
print("draw", random.randint(1, 10**6), f"{random.random():.12f}")
print("sample", rng.sample(range(10**9), 3))
print("system", random.SystemRandom().randint(1, 10**9))
print("choice", secrets.choice(range(10**9)))
print("items", len(items), ",".join(sorted(items)))
